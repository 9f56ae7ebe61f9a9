// What a supervised run counts from the loop's events, the summary of a real or bench board made from it,
// and an event as a console line.
import ChargerCore
import RealTime
import LoopContract
import StationLoop
#if canImport(Glibc)
import Glibc
#endif

/// What a supervised run counts from the loop's events: sessions ended (finished, faulted, or the car
/// left before it could: once each), the faults latched, the energy each gun delivered by its meter (from
/// the loop's session edges: the meter's readings buffer has one reader, the loop), and the figures of
/// the summary (peak power, SOC, temperature, sampled at each drain). A real or bench board's summary
/// is made from it; a simulated board's comes from the simulation.
package struct SessionTally {
    package var ended = 0
    package var faults: [FaultRecord] = []
    private var inSession: [Bool]
    package private(set) var lastPhase: [SessionPhase]
    private var energyAtStart: [Double?]
    package private(set) var delivered: [Double]
    /// V2G: the meter's export register over the sessions, per gun.
    private var exportAtStart: [Double?]
    package private(set) var exported: [Double]
    package private(set) var peakPower = 0.0
    package private(set) var maxTemperature = -100.0
    package private(set) var socStart: Double? = nil
    package private(set) var socEnd: Double? = nil

    package init(guns: Int) {
        inSession = Array(repeating: false, count: guns)
        lastPhase = Array(repeating: .unplugged, count: guns)
        energyAtStart = Array(repeating: nil, count: guns)
        delivered = Array(repeating: 0, count: guns)
        exportAtStart = Array(repeating: nil, count: guns)
        exported = Array(repeating: 0, count: guns)
    }

    package mutating func sample(_ st: GunStatus) {
        peakPower = max(peakPower, st.voltage.value * st.current.value / 1000)
        maxTemperature = max(maxTemperature, st.gunTemperature.value)
        if st.soc.isFinite {
            if socStart == nil && st.gun == 0 { socStart = st.soc }
            if st.gun == 0 { socEnd = st.soc }
        }
    }

    package mutating func note(_ e: LoopEvent) {
        switch e {
        case .fault(let r) where r.clearedAt == nil: faults.append(r)
        case .status(let st): sample(st)
        case .session(let edge):
            // The meter's energy at the session's edges, as the loop read it in that cycle.
            let g = Int(edge.gun)
            if edge.started { energyAtStart[g] = edge.meterEnergy.value; exportAtStart[g] = edge.meterExportEnergy.value }
            else if let e0 = energyAtStart[g] { delivered[g] += edge.meterEnergy.value - e0; energyAtStart[g] = nil }
            if !edge.started, let x0 = exportAtStart[g] { exported[g] += edge.meterExportEnergy.value - x0; exportAtStart[g] = nil }
        case .phase(let gun, let p, _):
            let g = Int(gun)
            // A session ends once: when it finishes, when a fault ends it, or when the car leaves first.
            if lastPhase[g] == .unplugged && p != .unplugged { inSession[g] = true }     // a car came
            if inSession[g] && (p == .finished || p == .faulted || p == .unplugged) {
                inSession[g] = false
                ended += 1
            }
            lastPhase[g] = p
        default: break
        }
    }

    package var energyText: String {
        delivered.indices.map { "gun\($0) \(fmt(delivered[$0] / 1000, 3)) kWh" + (exported[$0] > 0 ? " (exported \(fmt(exported[$0] / 1000, 3)) kWh)" : "") }.joined(separator: ", ")
    }

    package func printFaults() {
        if faults.isEmpty { print("faults: none") }
        for r in faults {
            print("fault: \(r.gun < 0 ? "station" : "gun\(r.gun)")\(r.module >= 0 ? " module \(r.module)" : "") \(r.code.name) at \(fmt(r.raisedAt.seconds, 3)) s (\(r.reaction.name)), value \(fmt(r.value, 3))")
        }
        fflush(nil)
    }

    /// The run's summary, as a sim board's: faults that stop a session make it `faulted`, then a time-out,
    /// an operator's stop, else `completed`.
    package func summary(board: String, loop: HardwareLoop, duration: Double, timedOut: Bool, interrupted: Bool) -> SessionSummary {
        let state: EndState
        if faults.contains(where: { $0.reaction > .reconnect }) { state = .faulted }
        else if timedOut { state = .timeout }
        else if interrupted { state = .interrupted }
        else { state = .completed }
        let end = loop.sessionEnd(gun: 0)
        var s = SessionSummary(board: board, energyKWh: delivered.reduce(0, +) / 1000, durationS: duration, peakPowerKW: peakPower,
                               endState: state, socStart: socStart, socEnd: socEnd, maxGunTemperature: maxTemperature, faults: faults,
                               violations: [], sessionsCompleted: ended, stopReason: end.stopReason.name,
                               insulationOhmPerVolt: end.insulation, insulationWarning: end.insulationWarning, limitShare: [])
        s.exportedKWh = exported.reduce(0, +) / 1000
        return s
    }

    /// The end of a real or bench board's run, the same contract as every board's: the summary and its
    /// JSON on the last line, the reason on standard error, the exit status (0; 1 a fault latched, or the
    /// run `broken` (the plant emulator gone); 4 fewer than `sessions` sessions ended by --max-time).
    package func finish(board: String, loop: HardwareLoop, duration: Double, timedOut: Bool, sessions: Int, json: Bool,
                        broken: Bool = false) -> Int32 {
        var summary = self.summary(board: board, loop: loop, duration: duration, timedOut: timedOut && sessions > 0, interrupted: stopRequested)
        if broken { summary.endState = .faulted }
        summary.memoryKB = (currentResidentKB(), peakResidentKB())
        print(summary.text, terminator: "")
        if json { print(summary.json) }
        fflush(nil)
        if broken { return 1 }
        if let f = faults.first, !stopRequested {
            writeStderr("chargerd: session did not end normally: \(f.code.name) at \(fmt(f.raisedAt.seconds, 3)) s (\(f.reaction.name))\n")
            return 1
        }
        if timedOut && sessions > 0 { writeStderr("chargerd: \(ended) of \(sessions) session(s) ended within --max-time\n"); return 4 }
        return 0
    }
}


/// One loop event as a console line (real-time and bench modes).
package func printEvent(_ e: LoopEvent) {
    switch e {
    case .status(let s): print(s.line)
    case .phase(let g, let p, let at): print("[\(fmt(at.seconds, 3).leftPad(10)) s] gun\(g) \(p.name)")
    case .fault(let r):
        let gun = r.gun < 0 ? "station" : "gun\(r.gun)"
        if let c = r.clearedAt { print("[\(fmt(c.seconds, 3).leftPad(10)) s] \(gun) cleared \(r.code.name)") }
        else { print("[\(fmt(r.raisedAt.seconds, 3).leftPad(10)) s] \(gun) FAULT \(r.code.name) (\(r.reaction.name)), value \(fmt(r.value, 1))") }
    case .overrun(let n, let at): print("[\(fmt(at.seconds, 3).leftPad(10)) s] loop missed \(n) deadlines in a row: outputs forced safe")
    case .service(let g, let out, let at): print("[\(fmt(at.seconds, 3).leftPad(10)) s] gun\(g) \(out ? "out of service" : "back in service")")
    case .session: break   // the journal's
    }
}
