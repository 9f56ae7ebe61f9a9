import BoardFile
import ChargerCore
import ChargerRuntime
import StationLoop
import LoopContract
import SimPlant
import Testing

let repoRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}()

func board(_ name: String) throws -> Board { try BoardLoader.load(path: "\(repoRoot)/Boards/\(name).toml") }

func car(_ text: String) throws -> CarProfile { try CarProfile.parse(text) }

/// A simulation with a recorder of what happened, cycle by cycle.
final class Run {
    let sim: Simulation
    var phases: [SessionPhase] = []
    var phaseTimes: [(SessionPhase, Instant)] = []
    /// First instant each fault code was latched (from the log).
    var raisedAt: [FaultCode: Instant] = [:]
    /// Physical events seen on gun 0: K1/K2 both open after being closed, current at or below 5 A.
    var k1k2OpenedAt: [Instant] = []
    var maxStationPower = Watts.zero
    var peakGun = [Watts](repeating: .zero, count: 12)
    var wasClosed = false

    init(_ boardName: String, cars: [Int: CarProfile] = [0: CarProfile()], inject: [String] = []) throws {
        let b = try board(boardName)
        let injections = try inject.map { try InjectionParser.parse($0, spec: b.spec) }
        sim = Simulation(board: b, cars: cars, injections: injections)
        sim.observer = { [unowned self] s in self.record(s) }
    }

    func record(_ s: Simulation) {
        let p = s.phase(0)
        if phases.last != p { phases.append(p); phaseTimes.append((p, s.now)) }
        for f in s.faults where raisedAt[f.code] == nil { raisedAt[f.code] = f.raisedAt }
        let g = s.plant.guns[0]
        let closed = g.k1.closed || g.k2.closed
        if wasClosed && !closed { k1k2OpenedAt.append(s.now) }
        wasClosed = closed
        var station = Watts.zero
        for i in 0..<s.spec.gunCount {
            let pw = s.plant.guns[i].vehicleSide * s.plant.guns[i].current
            station += pw
            if pw > peakGun[i] { peakGun[i] = pw }
        }
        if station > maxStationPower { maxStationPower = station }
    }

    /// Runs until every car has gone (or the limit).
    @discardableResult
    func toEnd(limit: TimeSpan = .s(6 * 3600)) -> SessionSummary {
        sim.run(for: limit) { $0.allCarsGone }
        return sim.summary(timedOut: !sim.allCarsGone)
    }

    /// Runs until `t` (absolute simulated time).
    func until(_ t: Double) { sim.run(for: Instant(micros: Int64(t * 1e6)) - sim.now) }

    /// Runs until `cond` holds, at most `limit`; returns the instant it first held.
    @discardableResult
    func until(limit: TimeSpan, _ cond: (Simulation) -> Bool) -> Instant? {
        var at: Instant? = nil
        sim.run(for: limit) { s in if cond(s) { at = s.now; return true }; return false }
        return at
    }

    var current: Amps { sim.plant.guns[0].current }
    var k1k2Closed: Bool { sim.plant.guns[0].k1.closed || sim.plant.guns[0].k2.closed }
}

func expectNoViolations(_ run: Run, sourceLocation: SourceLocation = #_sourceLocation) {
    let v = run.sim.violations
    #expect(v.isEmpty, "invariants: \(v.prefix(3).map(\.description))", sourceLocation: sourceLocation)
}
