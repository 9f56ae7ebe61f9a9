// A field bus between the controller and its modules delays every command (one poll to send it, one
// to read the result back). The uncommanded-current check must allow for that delay, or a normal stop
// ramp trips it; and only by that delay (StationSpec.commandLatency, set from the board's buses).
import BoardFile
import ChargerCore
import ChargerHAL
import ChargerRuntime
import StationLoop
import LoopContract
import SimPlant
import Testing

/// The plant's modules behind a bus that delivers each cycle's commands `delay` cycles late.
final class DelayedModules: PowerModuleBus {
    let inner: SimModuleBus
    let delay: Int
    var pending: [ModuleArray<ModuleOutputs>] = []
    init(_ plant: Plant, delay: Int) { inner = SimModuleBus(plant); self.delay = delay }
    func sample(into modules: inout ModuleArray<ModuleInputs>, count: Int) { inner.sample(into: &modules, count: count) }
    func apply(_ modules: inout ModuleArray<ModuleOutputs>, count: Int) {
        pending.append(modules)
        if pending.count > delay { var o = pending.removeFirst(); inner.apply(&o, count: count) }
    }
}

@Suite struct FieldBusLatency {
    func session(latency: TimeSpan) throws -> SessionSummary {
        var b = try board("sim-60kw")
        b.spec.commandLatency = latency
        let sim = Simulation(board: b, cars: [0: try car("capacity=10kWh,soc=70,target=80")]) { DelayedModules($0, delay: 250) }
        sim.run(for: .s(600)) { $0.allCarsGone }
        return sim.summary(timedOut: !sim.allCarsGone)
    }

    @Test func aStopRampThroughA250msBusTripsTheCheckThatIgnoresTheBus() throws {
        let s = try session(latency: .zero)
        #expect(s.faults.contains { $0.code == .overCurrent }, "200 A/s × 250 ms = 50 A behind the command, beyond the 20 A margin")
    }

    @Test func withTheBusLatencyKnownTheSessionEndsNormally() throws {
        let s = try session(latency: .ms(300))
        #expect(s.faults.isEmpty, "\(s.faults.map(\.code.name))")
        #expect(s.endState == .completed)
    }
}
