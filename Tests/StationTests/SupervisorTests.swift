// The station's supervisor with plain values: a loop whose events a test writes, a driver whose clock a
// test moves. No board, no thread, no plant: what every board's run relies on (the sessions counted, the
// orderly stop, the run's ends, the stop and reset requests).
import BoardFile
import ChargerCore
import LoopContract
import RealTime
import Station
import StationLoop
import Testing

let repoRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)   // Tests/StationTests/SupervisorTests.swift
    return parts.joined(separator: "/")
}()

/// A loop whose events the test publishes and whose commands the test reads.
final class ScriptedLoop: SupervisedLoop {
    let events = SPSCBuffer<LoopEvent>(capacity: 256, filler: .overrun(misses: 0, at: .zero))
    let commands = SPSCBuffer<OperatorCommand>(capacity: 64, filler: .reset(gun: 0))
    let gridView = TripleBufferStorage(initial: StationView())
    let grid = TripleBufferStorage(initial: GridFeed())
    func publish(_ e: LoopEvent) { #expect(events.queue.push(e)) }
    func takeCommands() -> [OperatorCommand] {
        var out: [OperatorCommand] = []
        while let c = commands.queue.pop() { out.append(c) }
        return out
    }
}

/// One second of station time per step; at each step the script may publish events or end the driver.
struct ScriptedDriver: LoopDriver {
    var now: Instant = .zero
    var cycles: UInt64 = 0
    /// Called at each step with the step's number and the loop; false ends the driver (the emulator gone).
    var step: (UInt64, Instant) -> Bool
    var finishAt: Instant? = nil
    mutating func advance(_ s: Supervisor) -> Bool {
        cycles += 1
        now = now + .s(1)
        return step(cycles, now)
    }
    mutating func gridDue() -> Bool { false }
    mutating func finished(_ s: Supervisor) -> Bool { finishAt.map { now >= $0 } ?? false }
}

func desk() throws -> OperatorDesk {
    let board = try BoardLoader.load(path: "\(repoRoot)/Boards/sim-60kw.toml")
    return try OperatorDesk(options: DeskOptions(), board: board, version: "test")
}

func phase(_ g: Int8, _ p: SessionPhase, _ t: Instant) -> LoopEvent { .phase(gun: g, p, at: t) }
func edge(_ g: Int8, started: Bool, _ t: Instant, kWh: Double) -> LoopEvent {
    .session(SessionEdge(gun: g, started: started, at: t, meterEnergy: WattHours(kWh * 1000), soc: .nan, stopReason: .none))
}

@Suite struct SupervisorRun {
    @Test func endsWhenTheSessionsAreDoneAndCountsTheMetersEnergy() throws {
        let loop = ScriptedLoop()
        let sup = Supervisor(loop: loop, desk: try desk(), grid: nil, guns: 2, requests: RunRequests())
        sup.echo = false
        sup.sessions = 2
        var driver = ScriptedDriver(step: { n, t in
            switch n {
            case 1: loop.publish(phase(0, .locking, t)); loop.publish(edge(0, started: true, t, kWh: 100))
            case 2: loop.publish(phase(1, .locking, t)); loop.publish(edge(1, started: true, t, kWh: 7))
            case 5: loop.publish(phase(0, .finished, t)); loop.publish(edge(0, started: false, t, kWh: 112.5))
            case 6: loop.publish(phase(0, .unplugged, t))   // the same session: not counted again
            case 8: loop.publish(phase(1, .faulted, t)); loop.publish(edge(1, started: false, t, kWh: 8))
            default: break
            }
            return true
        })
        #expect(sup.run(&driver) == .sessionsDone)
        #expect(driver.cycles == 8)
        #expect(sup.tally.ended == 2)
        #expect(sup.tally.delivered == [12_500, 1_000])
    }

    @Test func aFaultIsTalliedOnceAndAClearingIsNot() throws {
        let loop = ScriptedLoop()
        let sup = Supervisor(loop: loop, desk: try desk(), grid: nil, guns: 1, requests: RunRequests())
        sup.echo = false
        sup.end = .zero + .s(3)
        var r = FaultRecord(sequence: 1, code: .emergencyStop, gun: -1, module: -1, raisedAt: .zero + .s(1), reaction: .emergency, value: 1)
        var driver = ScriptedDriver(step: { n, _ in
            if n == 1 { loop.publish(.fault(r)) }
            if n == 2 { r.clearedAt = .zero + .s(2); loop.publish(.fault(r)) }
            return true
        })
        #expect(sup.run(&driver) == .timedOut)
        #expect(driver.now == .zero + .s(3))
        #expect(sup.tally.faults.map(\.code) == [.emergencyStop])
    }

    @Test func theBoardsOwnEndAndAGoneDriverEndTheRun() throws {
        let loop = ScriptedLoop()
        let sup = Supervisor(loop: loop, desk: try desk(), grid: nil, guns: 1, requests: RunRequests())
        var a = ScriptedDriver(step: { _, _ in true }, finishAt: .zero + .s(4))
        #expect(sup.run(&a) == .finished)
        #expect(a.cycles == 4)
        var b = ScriptedDriver(step: { n, _ in n < 3 })
        #expect(sup.run(&b) == .driverGone)
        #expect(b.cycles == 3)
    }
}

@Suite struct OrderlyStopOnARequest {
    @Test func aStopRequestStopsTheRunningSessionsAndWaitsForThemToEnd() throws {
        let loop = ScriptedLoop()
        let requests = RunRequests()
        let sup = Supervisor(loop: loop, desk: try desk(), grid: nil, guns: 3, requests: requests)
        sup.echo = false
        var sent: [[OperatorCommand]] = []
        var driver = ScriptedDriver(step: { n, t in
            if n == 1 { loop.publish(phase(0, .charging, t)); loop.publish(phase(2, .precharge, t)) }
            if n == 3 { requests.requestStop() }
            sent.append(loop.takeCommands())
            // Gun 0's session ends 5 s after the stop, gun 2's 8 s after it.
            if n == 8 { loop.publish(phase(0, .finished, t)) }
            if n == 11 { loop.publish(phase(2, .unplugged, t)) }
            return true
        })
        #expect(sup.run(&driver) == .stopped)
        #expect(driver.cycles == 11)
        // The stop went once to each gun in a session (0 and 2), not to the idle gun 1.
        let stops = sent.flatMap { $0 }.compactMap { c -> Int8? in if case .stop(let g) = c { return g }; return nil }
        #expect(stops == [0, 2])
        #expect(sup.orderly.until == Instant.zero + .s(3) + orderlyStopBound)
    }

    @Test func aSessionThatDoesNotEndIsLeftAfterTheBound() throws {
        let loop = ScriptedLoop()
        let requests = RunRequests()
        let sup = Supervisor(loop: loop, desk: try desk(), grid: nil, guns: 1, requests: requests)
        sup.echo = false
        var driver = ScriptedDriver(step: { n, t in
            if n == 1 { loop.publish(phase(0, .charging, t)) }
            if n == 2 { requests.requestStop() }
            return true
        })
        #expect(sup.run(&driver) == .stopped)
        #expect(driver.now == Instant.zero + .s(2) + orderlyStopBound)
    }

    @Test func withNoSessionTheRunEndsAtOnce() throws {
        let loop = ScriptedLoop()
        let requests = RunRequests()
        let sup = Supervisor(loop: loop, desk: try desk(), grid: nil, guns: 2, requests: requests)
        requests.requestStop()
        var driver = ScriptedDriver(step: { _, _ in true })
        #expect(sup.run(&driver) == .stopped)
        #expect(driver.cycles == 1)
        #expect(loop.takeCommands().isEmpty)
    }
}

@Suite struct Requests {
    @Test func aResetIsAStopThatExitsFive() {
        let r = RunRequests()
        #expect(!r.stop && r.reset == nil && r.exitStatus(1) == 1)
        r.requestStop()
        #expect(r.stop && r.reset == nil && r.exitStatus(0) == 0)
        let s = RunRequests()
        s.requestReset("OCPP Reset Soft")
        #expect(s.stop && s.reset == "OCPP Reset Soft" && s.exitStatus(0) == 5 && s.exitStatus(1) == 5)
    }

    @Test func requestsFromAnotherThreadAreSeen() async {
        let r = RunRequests()
        await Task.detached { r.requestReset("firmware 0.7.0 installed") }.value
        #expect(r.stop && r.reset == "firmware 0.7.0 installed")
    }
}
