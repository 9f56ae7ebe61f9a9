// The real-time runtime: lock-free queues, histograms, the cyclic executive on a real thread with the
// simulated board, heap allocations counted per cycle, overrun and stop leaving the outputs safe.
// These are behaviour tests (no timing assertions: latency figures belong to `make bench`).
import BoardFile
import CAllocationCounter
import ChargerCore
import ChargerHAL
import ChargerRuntime
import StationLoop
import LoopContract
import Foundation
import RealTime
import SimPlant
import Synchronization
import Testing

let repoRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}()

func board(_ name: String) throws -> Board { try BoardLoader.load(path: "\(repoRoot)/Boards/\(name).toml") }

/// Settings for tests: the board's period, no SCHED_FIFO or memory locking (not what is tested here),
/// and a miss limit a loaded CI machine cannot reach by accident unless a test stalls on purpose.
func testSettings(_ b: Board, missLimit: Int = 1000) -> LoopSettings {
    var s = b.loopSettings
    s.priority = 0; s.cpu = nil; s.lockMemory = false; s.holdCPUWakeLatency = false; s.missLimit = missLimit
    return s
}

/// Waits (really) until `done` or `seconds` pass.
func wait(seconds: Double, until done: () -> Bool) {
    let end = monotonicNanos() + Int64(seconds * 1e9)
    while !done() && monotonicNanos() < end { sleepUntil(nanos: monotonicNanos() + 5_000_000) }
}

@Suite struct SPSCQueueTests {
    @Test func fifoOrderBoundedAndDropsCounted() {
        let b = SPSCBuffer<Int>(capacity: 5, filler: 0)
        let q = b.queue
        #expect(q.capacity == 8)
        for i in 0..<8 { #expect(q.push(i)) }
        #expect(!q.push(99))
        #expect(!q.push(100))
        #expect(q.dropped == 2)
        #expect(q.count == 8)
        for i in 0..<8 { #expect(q.pop() == i) }
        #expect(q.pop() == nil)
        #expect(q.push(7))
        #expect(q.pop() == 7)
    }

    /// One producer thread, one consumer thread, 200 000 values: every value arrives, in order, once.
    @Test func twoThreadsLoseNothingAndKeepOrder() async {
        let buffer = SPSCBuffer<UInt64>(capacity: 64, filler: 0)
        let q = buffer.queue
        let n: UInt64 = 200_000
        let producer = Thread {
            var i: UInt64 = 0
            while i < n { if q.push(i) { i += 1 } }
        }
        producer.start()
        var expected: UInt64 = 0
        var outOfOrder = 0
        let deadline = monotonicNanos() + 60_000_000_000
        while expected < n && monotonicNanos() < deadline {
            if let v = q.pop() {
                if v != expected { outOfOrder += 1 }
                expected += 1
            }
        }
        #expect(expected == n)
        #expect(outOfOrder == 0)
    }
}

@Suite struct HistogramTests {
    @Test func percentilesAndEdges() {
        let r = LatencyRecorder()
        let h = r.histogram
        for us in 1...100 { h.record(nanos: Int64(us) * 1000 + 400) }
        var s = h.snapshot()
        #expect(s.count == 100)
        #expect(s.percentileMicros(0.5) == 50)
        #expect(s.percentileMicros(0.99) == 99)
        #expect(s.percentileMicros(1.0) == 100)
        #expect(s.minNanos == 1400 && s.maxNanos == 100_400)
        // The coarse region (100 µs buckets from 2 ms) and the overflow bucket.
        h.record(nanos: 2_345_000)
        h.record(nanos: 250_000_000)
        h.record(nanos: -5)
        s = h.snapshot()
        #expect(s.count == 103)
        #expect(s.countAtOrAbove(micros: 2_000) == 2)
        #expect(s.percentileMicros(1.0) == HistogramLayout.coarseLimitMicros)
        #expect(HistogramLayout.lowerEdge(bucket: HistogramLayout.bucket(micros: 2_345)) == 2_300)
        h.reset()
        #expect(h.snapshot().count == 0)
    }

    /// cyclictest's histogram (µs → count) goes through the same percentile code.
    @Test func fromMicrosecondCounts() {
        let s = HistogramSnapshot(microsecondCounts: [10: 90, 40: 9, 900: 1], minMicros: 10, maxMicros: 900, meanMicros: 18.6)
        #expect(s.count == 100)
        #expect(s.percentileMicros(0.5) == 10)
        #expect(s.percentileMicros(0.99) == 40)
        #expect(s.percentileMicros(0.999) == 900)
    }
}

/// charger-bench's loop / cyclictest ratio is judged only where both sides measured.
@Suite struct LatencyJudgementTests {
    func hist(_ p99: Int, n: UInt64 = 1000, overflow: UInt64 = 0) -> HistogramSnapshot {
        HistogramSnapshot(
            microsecondCounts: [p99 / 2: n - n / 50 - overflow, p99: n / 50], overflow: overflow, minMicros: p99 / 2, maxMicros: p99,
            meanMicros: Double(p99) / 2)
    }
    func round(_ loop: Int, _ ref: Int, refOverflow: UInt64 = 0, misses: UInt64 = 0) -> LatencyJudgement.Round {
        .init(
            loop: hist(loop), loopCycles: 1000, loopMisses: misses, reference: .success(hist(ref, overflow: refOverflow)), referenceRangeMicros: 2000)
    }

    /// The noisy Xeon of the issue: cyclictest's p99 1951 µs (past the 1 ms period) in one round, its
    /// histogram's overflow in the two others; "0.02x: met" was printed. Now: no figure, with the reasons.
    @Test func aReferenceThatOverflowedOrCannotKeepThePeriodGivesNoFigure() {
        let o = LatencyJudgement.judge(
            [round(1890, 1951), round(2500, 1900, refOverflow: 600), round(1500, 1900, refOverflow: 600)], target: 1.25, periodMicros: 1000)
        #expect(o.ratio == nil)
        #expect(o.verdict == "no figure")
        #expect(o.why.contains("round 1: the machine is too noisy to judge (the reference's own p99 1951 µs ≥ the 1000 µs period)"))
        #expect(o.why.contains("round 2: the reference's p99 lies beyond its histogram (600 of 1000 samples ≥ 2000 µs)"))
        #expect(o.rounds.count == 3)
    }

    @Test func onlyRoundsWhereBothSidesMeasuredAreJudged() {
        let ok = LatencyJudgement.judge([round(60, 50), round(900, 50, misses: 600), round(60, 50)], target: 1.25, periodMicros: 1000)
        #expect(ok.verdict == "met")
        #expect(ok.ratio == 60.0 / 50.0)
        #expect(ok.rounds[1].contains("left out: the loop missed 600 of 1000 deadlines"))
        let slow = LatencyJudgement.judge([round(200, 50)], target: 1.25, periodMicros: 1000)
        #expect(slow.verdict == "missed")
        #expect(slow.ratio == 4)
        let none = LatencyJudgement.judge(
            [
                .init(
                    loop: hist(60), loopCycles: 1000, loopMisses: 0, reference: .failure(.init("cyclictest not installed")),
                    referenceRangeMicros: 2000)
            ],
                                          target: 1.25, periodMicros: 1000)
        #expect(none.verdict == "no figure")
        #expect(none.why == "round 1: the reference did not run (cyclictest not installed)")
    }
}

@Suite(.serialized) struct CyclicExecutiveTests {
    /// The malloc replacement is linked and counts this thread's allocations (the positive control
    /// for the zero-allocation test below: a probe that counts nothing would pass it trivially).
    @Test func allocationCounterCounts() {
        #expect(allocation_counter_active() == 1)
        let before = allocation_count_this_thread()
        let a = [Int](repeating: 7, count: Int.random(in: 100...200))
        #expect(a.count >= 100)
        #expect(allocation_count_this_thread() > before)
    }

    /// Thousands of real cycles of sim-dual-360kw on the loop thread, two cars plugging in, handshaking,
    /// cable-checking and charging: not one heap allocation inside a cycle.
    @Test func zeroAllocationsPerCycleOnSimDual360() throws {
        let b = try board("sim-dual-360kw")
        var c0 = CarProfile(); c0.maxVoltage = Volts(900); c0.plugAt = .ms(200)
        var c1 = CarProfile(); c1.plugAt = .ms(600)
        let sim = Simulation(board: b, cars: [0: c0, 1: c1])
        let body = RealTimeSimulation(sim: sim, statusEvery: 500)
        let loop = CyclicExecutive(settings: testSettings(b), body: body)
        loop.allocationProbe = allocation_count_this_thread
        try loop.start()
        wait(seconds: 30) { loop.cycles >= 4_000 }
        loop.requestStop()
        loop.join()
        let stats = loop.statistics()
        #expect(stats.cycles >= 4_000)
        #expect(stats.allocations == 0, "allocations in \(stats.cycles) cycles")
        // It did real work: the sessions left the unplugged state and status events came out.
        #expect(sim.phase(0) != .unplugged && sim.phase(1) != .unplugged)
        var statuses = 0
        while let e = body.events.queue.pop() { if case .status = e { statuses += 1 } }
        #expect(statuses >= 2)
        #expect(sim.violations.isEmpty, "\(sim.violations.first.map { "\($0)" } ?? "")")
    }

    /// A whole two-car session in virtual time (1.2 M cycles, every phase from plug-in to unplug):
    /// neither the controller's half of a cycle nor the simulator's half allocates.
    @Test func zeroAllocationsOverAWholeSession() throws {
        let b = try board("sim-dual-360kw")
        var c0 = CarProfile(); c0.capacity = .kWh(80); c0.maxVoltage = Volts(900)
        var c1 = CarProfile(); c1.soc = 30; c1.plugAt = .s(5)
        let sim = Simulation(board: b, cars: [0: c0, 1: c1])
        let (control, plant, cycles) = sim.countAllocations(limit: .s(3 * 3600), probe: allocation_count_this_thread)
        #expect(sim.allCarsGone && sim.reports[0].completedSessions == 1 && sim.reports[1].completedSessions == 1)
        #expect(cycles > 1_000_000)
        #expect(control == 0 && plant == 0, "control half \(control), plant half \(plant) over \(cycles) cycles")
    }

    /// The positive control on the loop itself: a cycle that allocates is counted.
    @Test func allocatingCycleIsCounted() throws {
        final class Allocating: CycleBody {
            var sink = 0
            func runCycle(deadline: Int64, index: UInt64) { sink += [Int](repeating: 1, count: 64 + Int(index % 3)).count }
            func loopOverrun(consecutiveMisses: Int, at deadline: Int64) {}
            func loopStopped() {}
        }
        let loop = CyclicExecutive(
            settings: LoopSettings(priority: 0, lockMemory: false, missLimit: 1000, holdCPUWakeLatency: false), body: Allocating())
        loop.allocationProbe = allocation_count_this_thread
        try loop.start()
        wait(seconds: 10) { loop.cycles >= 50 }
        loop.requestStop()
        loop.join()
        let stats = loop.statistics()
        #expect(stats.allocations >= stats.cycles)
    }

    /// A charging session on the loop; one cycle stalls for 40 ms (more misses in a row than the
    /// limit): the outputs go safe at once (plant: K1/K2 open, modules off), E29 is latched and logged
    /// with its time, an overrun event comes out, and an explicit reset clears it.
    @Test func overrunForcesSafeOutputsAndLatchesE29() throws {
        let b = try board("sim-60kw")
        let sim = Simulation(board: b, cars: [0: CarProfile()])
        sim.run(for: .s(60)) { $0.phase(0) == .charging && $0.inputs.guns[0].meterCurrent > Amps(100) }
        #expect(sim.phase(0) == .charging)
        final class Stalling: CycleBody {
            let inner: RealTimeSimulation
            let stallAt: UInt64
            init(_ inner: RealTimeSimulation, stallAt: UInt64) { self.inner = inner; self.stallAt = stallAt }
            func runCycle(deadline: Int64, index: UInt64) {
                inner.runCycle(deadline: deadline, index: index)
                if index == stallAt { sleepUntil(nanos: monotonicNanos() + 40_000_000) }
            }
            /// The plant's outputs the moment the overrun was handled (before any further cycle).
            var safeAtOverrun: Bool? = nil
            func loopOverrun(consecutiveMisses: Int, at deadline: Int64) {
                inner.loopOverrun(consecutiveMisses: consecutiveMisses, at: deadline)
                let p = inner.sim.plant
                safeAtOverrun = !p.guns[0].k1.commanded && !p.guns[0].k2.commanded && p.modules.allSatisfy { !$0.enabled }
            }
            func loopStopped() { inner.loopStopped() }
        }
        let inner = RealTimeSimulation(sim: sim, statusEvery: 0)
        let stalling = Stalling(inner, stallAt: 20)
        let loop = CyclicExecutive(settings: testSettings(b, missLimit: 10), body: stalling)
        try loop.start()
        var sawOverrun = false
        wait(seconds: 20) {
            while let e = inner.events.queue.pop() {
                if case .overrun(let n, _) = e, n > 10 {
                    sawOverrun = true
                }
            }
            return sawOverrun && loop.cycles > 200
        }
        loop.requestStop()
        loop.join()
        let stats = loop.statistics()
        #expect(sawOverrun)
        #expect(stats.overrunFaults >= 1 && stats.longestMissRun > 10)
        #expect(stalling.safeAtOverrun == true)
        let e29 = sim.faults.first { $0.code == .controlLoopOverrun }
        #expect(e29 != nil && e29!.reaction == .emergency && e29!.clearedAt == nil)
        #expect(sim.phase(0) == .faulted)

        // The explicit reset, through the command queue, on a fresh run of the loop.
        let loop2 = CyclicExecutive(settings: testSettings(b), body: inner)
        inner.commands.queue.push(.reset(gun: 0))
        try loop2.start()
        wait(seconds: 10) { sim.faults.first { $0.code == .controlLoopOverrun }?.clearedAt != nil || loop2.cycles > 2_000 }
        loop2.requestStop()
        loop2.join()
        #expect(sim.faults.first { $0.code == .controlLoopOverrun }?.clearedAt != nil)
        // The clearing came out of the loop as an event, with the time of the cycle that cleared it.
        var clearedEvent: FaultRecord? = nil
        while let e = inner.events.queue.pop() { if case .fault(let r) = e, r.code == .controlLoopOverrun, r.clearedAt != nil { clearedEvent = r } }
        #expect(clearedEvent?.clearedAt == sim.faults.first { $0.code == .controlLoopOverrun }?.clearedAt)
    }

    /// Stopping the loop (SIGTERM/SIGINT in chargerd) leaves every output in its safe state.
    @Test func stopLeavesOutputsSafe() throws {
        let b = try board("sim-60kw")
        let sim = Simulation(board: b, cars: [0: CarProfile()])
        sim.run(for: .s(60)) { $0.phase(0) == .charging && $0.inputs.guns[0].meterCurrent > Amps(100) }
        #expect(sim.plant.guns[0].k1.commanded && sim.plant.modules.contains { $0.enabled })
        let loop = CyclicExecutive(settings: testSettings(b), body: RealTimeSimulation(sim: sim, statusEvery: 0))
        try loop.start()
        wait(seconds: 10) { loop.cycles >= 100 }
        loop.requestStop()
        loop.join()
        #expect(loop.isFinished)
        #expect(!sim.plant.guns[0].k1.commanded && !sim.plant.guns[0].k2.commanded && !sim.plant.guns[0].k3k4.commanded)
        #expect(sim.plant.modules.allSatisfy { !$0.enabled && $0.currentSetpoint == .zero })
    }

    /// A ground fault on the loop: the cycle that first samples the trip commands K1/K2 open and the
    /// modules off (emergency: same cycle).
    @Test func groundFaultReactsInTheSameCycle() throws {
        let b = try board("sim-60kw")
        let sim = Simulation(board: b, cars: [0: CarProfile()], injections: [try InjectionParser.parse("ground-fault@12s", spec: b.spec)])
        sim.run(for: .ms(11_500))
        #expect(sim.phase(0) == .charging)
        let body = RealTimeSimulation(sim: sim, statusEvery: 0)
        let loop = CyclicExecutive(settings: testSettings(b), body: body)
        try loop.start()
        wait(seconds: 20) { body.reaction != nil }
        loop.requestStop()
        loop.join()
        let r = try #require(body.reaction)
        #expect(r.safeCycle == r.edgeCycle)
        #expect(r.edgeToAppliedNanos > 0)
        #expect(sim.faults.contains { $0.code == .groundFault })
    }
}

@Suite struct RealTimeSettingsTests {
    @Test func boardRuntimeTable() throws {
        let b = try board("sim-dual-360kw")
        #expect(b.loopSettings.periodNanos == 1_000_000)
        #expect(b.runtime.priority == 80 && b.runtime.cpu == 1 && b.runtime.lockMemory && b.runtime.missLimit == 40)
    }

    @Test(arguments: [
        ("priority = 120", "runtime.priority", "outside 0...99"),
        ("cpu = -1", "runtime.cpu", "outside"),
        ("miss_limit = 0", "runtime.miss_limit", "outside 1...1000"),
        ("lock_memory = 3", "runtime.lock_memory", "true or false"),
        ("stack = 3", "runtime.stack", "unknown key"),
    ])
    func badRuntimeKeys(line: String, key: String, why: String) throws {
        let base = try String(contentsOfFile: "\(repoRoot)/Boards/sim-60kw.toml", encoding: .utf8)
        let from = try #require(base.range(of: "[runtime]")), to = try #require(base.range(of: "[[gun]]"))
        let text = base.replacingCharacters(in: from.lowerBound..<to.lowerBound, with: "[runtime]\n\(line)\n\n")
        do {
            _ = try BoardLoader.parse(text, file: "x.toml")
            Issue.record("accepted \(line)")
        } catch {
            #expect(error.description.contains(key), "\(error)")
            #expect(error.description.contains(why), "\(error)")
        }
    }

    /// Without the rights, one warning names each missing right and how to grant it.
    @Test func degradedGrantWarning() {
        var g = RealTimeGrant(requested: LoopSettings(priority: 80, cpu: 1, lockMemory: true))
        g.fifoError = .notPermitted; g.memoryLockError = .noMemory; g.pinnedCPU = 1; g.cpuWakeLatencyHeld = true
        let w = g.warning
        #expect(w?.contains("SCHED_FIFO priority 80 refused (EPERM)") == true)
        #expect(w?.contains("LimitRTPRIO=80") == true && w?.contains("CAP_SYS_NICE") == true)
        #expect(w?.contains("memory not locked (ENOMEM)") == true && w?.contains("LimitMEMLOCK=infinity") == true)
        #expect(!g.complete)
        g.fifo = true; g.memoryLocked = true
        #expect(g.warning == nil && g.complete)
    }
}

/// The hardware watchdog's kick on the production loop (`HardwareLoop`), driven cycle by cycle with
/// chosen instants on the mocked board's devices: it follows the board file's `kick` as a time.
@Suite struct WatchdogKickTests {
    func loop(kickEvery: TimeSpan, kicked: @escaping () -> Void) throws -> HardwareLoop {
        let b = try board("sim-60kw")
        let plant = Plant(spec: b.spec, params: PlantParameters(b.plant!))
        return HardwareLoop(spec: b.spec, devices: plant.devices(), clock: LoopClock(), statusEvery: 0,
                            kick: kicked, kickEvery: kickEvery)
    }

    /// A starved loop that runs one cycle every 25 ms (the periods between skipped as missed) still kicks
    /// at least every 100 ms: 2 s of such cycles give 20 kicks, where a count of 100 cycles gave none
    /// after the first and let a 2 s watchdog run out.
    @Test func aStarvedLoopStillKicksOnTime() throws {
        var times: [Instant] = []
        var now = Instant.zero
        let l = try loop(kickEvery: .ms(100)) { times.append(now) }
        for i in 0..<80 {
            now = Instant(micros: Int64(i) * 25_000)
            l.cycle(now: now, index: UInt64(i))
        }
        #expect(times.count == 20 && l.kicks == 20)
        let gaps = zip(times.dropFirst(), times).map { ($0 - $1).micros }
        #expect(gaps.allSatisfy { $0 == 100_000 }, "\(gaps)")
    }

    /// A loop at its period kicks every 100 ms, not every cycle (one ioctl per kick interval).
    @Test func aHealthyLoopKicksOncePerInterval() throws {
        var count = 0
        let l = try loop(kickEvery: .ms(100)) { count += 1 }
        for i in 0..<1_000 { l.cycle(now: Instant(micros: Int64(i) * 1_000), index: UInt64(i)) }
        #expect(count == 10)
    }

    /// A cycle after a deadline burst does not kick; the next healthy cycle does, without waiting for
    /// another interval.
    @Test func aBurstWithholdsTheKickOnlyForItsCycle() throws {
        var at: [Int64] = []
        var now = Instant.zero
        let l = try loop(kickEvery: .ms(100)) { at.append(now.micros) }
        for i in 0..<250 {
            now = Instant(micros: Int64(i) * 1_000)
            if i == 100 { l.loopOverrun(consecutiveMisses: 50, at: Int64(i) * 1_000_000) }
            l.cycle(now: now, index: UInt64(i))
        }
        #expect(at == [0, 101_000, 201_000], "\(at)")
    }
}
