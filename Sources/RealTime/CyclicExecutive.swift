// The cyclic executive: the control loop on its own thread, woken by clock_nanosleep(CLOCK_MONOTONIC,
// TIMER_ABSTIME) at an absolute deadline every period, with memory locked, the stack pre-faulted,
// SCHED_FIFO and CPU affinity as the board file says (docs/realtime.md "Real-time runtime").
// It measures itself: wake-up latency and compute time into fixed-size histograms, missed deadlines,
// overruns, and a run of misses beyond the board's limit is handed to the body as a fault that must put
// the outputs in their safe state.
import CRealTime
import SystemErrors
import SystemPackage
import Synchronization

/// What the loop runs. Called on the real-time thread only.
public protocol CycleBody: AnyObject {
    /// One control cycle. `deadline` is the CLOCK_MONOTONIC instant (ns) the cycle was scheduled for.
    func runCycle(deadline: Int64, index: UInt64)
    /// The loop missed more deadlines in a row than the board allows: put every output in its safe
    /// state now, and latch the fault (the next cycles run on, so it is logged and shown).
    func loopOverrun(consecutiveMisses: Int, at deadline: Int64)
    /// The loop is stopping (normal exit, SIGTERM/SIGINT): leave every output in its safe state.
    func loopStopped()
}

/// The loop's settings, from the board file's [runtime] table.
public struct LoopSettings: Sendable, Equatable {
    /// Period in ns (the board's `period`, 1 ms by default).
    public var periodNanos: Int64
    /// SCHED_FIFO priority 1–99; 0 runs under the normal scheduler on purpose.
    public var priority: Int32
    /// CPU to pin the loop to, or nil.
    public var cpu: Int?
    /// mlockall(MCL_CURRENT|MCL_FUTURE) before starting.
    public var lockMemory: Bool
    /// More missed deadlines in a row than this is a fault (E29).
    public var missLimit: Int
    /// Hold /dev/cpu_dma_latency at 0 µs while running (no deep C-states; what cyclictest does too).
    public var holdCPUWakeLatency: Bool
    /// Stack touched before the first cycle, and the thread's stack size.
    public var stackPrefaultBytes: Int
    public var stackBytes: Int

    public init(periodNanos: Int64 = 1_000_000, priority: Int32 = 80, cpu: Int? = nil, lockMemory: Bool = true,
                missLimit: Int = 3, holdCPUWakeLatency: Bool = true, stackPrefaultBytes: Int = 256 * 1024, stackBytes: Int = 1024 * 1024) {
        self.periodNanos = periodNanos; self.priority = priority; self.cpu = cpu; self.lockMemory = lockMemory
        self.holdCPUWakeLatency = holdCPUWakeLatency
        self.missLimit = missLimit; self.stackPrefaultBytes = stackPrefaultBytes; self.stackBytes = stackBytes
    }
}

/// What the process obtained from the kernel, and what it did not.
public struct RealTimeGrant: Sendable, Equatable {
    public var memoryLocked = false
    public var memoryLockError: Errno? = nil
    public var fifo = false
    public var fifoError: Errno? = nil
    public var pinnedCPU: Int? = nil
    public var affinityError: Errno? = nil
    public var cpuWakeLatencyHeld = false
    public var cpuWakeLatencyError: Errno? = nil
    public var requested: LoopSettings
    public init(requested: LoopSettings) { self.requested = requested }

    /// Everything asked for was granted.
    public var complete: Bool {
        (memoryLocked || !requested.lockMemory) && (fifo || requested.priority == 0) && (pinnedCPU != nil || requested.cpu == nil)
    }

    /// One warning naming what is missing and how to grant it, or nil when nothing is.
    public var warning: String? {
        var missing: [String] = []
        if requested.priority > 0 && !fifo {
            missing.append("SCHED_FIFO priority \(requested.priority) refused (\(fifoError.cName)): grant LimitRTPRIO=\(requested.priority) in the systemd unit, or CAP_SYS_NICE")
        }
        if requested.lockMemory && !memoryLocked {
            missing.append("memory not locked (\(memoryLockError.cName)): grant LimitMEMLOCK=infinity in the systemd unit, or CAP_IPC_LOCK")
        }
        if requested.holdCPUWakeLatency && !cpuWakeLatencyHeld {
            missing.append("/dev/cpu_dma_latency not held at 0 µs (\(cpuWakeLatencyError.cName)): the CPU may sleep in deep idle states; grant write access to /dev/cpu_dma_latency")
        }
        if let cpu = requested.cpu, pinnedCPU == nil {
            missing.append("not pinned to CPU \(cpu) (\(affinityError.cName); this machine has \(rt_cpu_count()) CPUs): fix [runtime] cpu in the board file")
        }
        guard !missing.isEmpty else { return nil }
        return "running without real-time guarantees: " + missing.joined(separator: "; ") + " (docs/realtime.md: \"Real-time rights\")"
    }
}

public enum LoopError: Error, CustomStringConvertible {
    case threadStart(Errno)
    case alreadyStarted
    public var description: String {
        switch self {
        case .threadStart(let e): "cannot start the control-loop thread (\(e.cName))"
        case .alreadyStarted: "the control loop is already running"
        }
    }
}

/// Counters the loop keeps (relaxed atomics: written by the loop, read by anyone through `statistics()`).
struct LoopCounters: ~Copyable {
    let cycles = Atomic<UInt64>(0)
    /// Deadlines passed without a cycle (the loop woke a whole period or more late and skipped them).
    let misses = Atomic<UInt64>(0)
    /// Cycles whose compute ran past the next deadline.
    let overruns = Atomic<UInt64>(0)
    let longestMissRun = Atomic<Int>(0)
    /// Heap allocations made inside cycles, when an allocation probe is installed.
    let allocations = Atomic<UInt64>(0)
    let overrunFaults = Atomic<UInt64>(0)
    init() {}
}

/// A copy of the loop's counters and histograms.
public struct LoopStatistics: Sendable {
    public var cycles: UInt64
    public var misses: UInt64
    public var overruns: UInt64
    public var longestMissRun: Int
    public var allocations: UInt64
    public var overrunFaults: UInt64
    public var wakeLatency: HistogramSnapshot
    public var computeTime: HistogramSnapshot

    /// One line for logs and the console's `rt` command.
    public var line: String {
        let w = wakeLatency, c = computeTime
        return "\(cycles) cycles, \(misses) missed deadlines (longest run \(longestMissRun)), \(overruns) overruns; "
            + "wake-up latency p50 \(w.percentileMicros(0.5)) µs p99 \(w.percentileMicros(0.99)) µs max \(Int(w.maxMicros)) µs; "
            + "cycle compute p50 \(c.percentileMicros(0.5)) µs p99 \(c.percentileMicros(0.99)) µs max \(Int(c.maxMicros)) µs"
    }
}

/// The control loop.
public final class CyclicExecutive: @unchecked Sendable {
    public let settings: LoopSettings
    let body: any CycleBody
    /// Wake-up latency (actual wake − deadline) and compute time (wake → cycle done).
    public let wakeLatency = LatencyRecorder()
    public let computeTime = LatencyRecorder()
    let counterStorage: UnsafeMutablePointer<LoopCounters>
    /// Optional probe returning the calling thread's allocation count (tests and benchmark).
    public var allocationProbe: (@convention(c) () -> UInt64)?

    private let stopFlag = Atomic<Bool>(false)
    private let startedFlag = Atomic<Int>(0)  // 0 not yet, 1 running, 2 finished
    private let grantBits = Atomic<Int>(0)
    private let fifoErrno = Atomic<Int32>(0)
    private let affinityErrno = Atomic<Int32>(0)
    private var thread: UInt64 = 0
    private var latencyFD: Int32 = -1
    private var running = false
    public private(set) var grant: RealTimeGrant

    public init(settings: LoopSettings, body: any CycleBody) {
        self.settings = settings
        self.body = body
        counterStorage = .allocate(capacity: 1)
        counterStorage.initialize(to: LoopCounters())
        grant = RealTimeGrant(requested: settings)
    }

    deinit {
        if running { requestStop(); join() }
        counterStorage.deinitialize(count: 1)
        counterStorage.deallocate()
    }

    /// Locks memory, starts the loop thread, waits until it has set its scheduling, and returns what
    /// was granted. Never fails for lack of rights (see `RealTimeGrant.warning`).
    @discardableResult
    public func start() throws(LoopError) -> RealTimeGrant {
        guard !running else { throw .alreadyStarted }
        stopFlag.store(false, ordering: .relaxed)
        startedFlag.store(0, ordering: .relaxed)
        if settings.lockMemory {
            let e = rt_lock_memory()
            grant.memoryLocked = e == 0
            grant.memoryLockError = Errno(c: e)
        }
        if settings.holdCPUWakeLatency {
            let fd = rt_hold_cpu_dma_latency(0)
            if fd >= 0 { latencyFD = fd; grant.cpuWakeLatencyHeld = true } else { grant.cpuWakeLatencyError = Errno(c: -fd) }
        }
        let context = Unmanaged.passUnretained(self).toOpaque()
        var handle: UInt64 = 0
        let e = rt_thread_start(executiveThreadEntry, context, settings.stackBytes, &handle)
        guard e == 0 else {
            if grant.memoryLocked { rt_unlock_memory() }
            rt_release_cpu_dma_latency(latencyFD)
            latencyFD = -1
            throw .threadStart(Errno(rawValue: e))
        }
        thread = handle
        running = true
        while startedFlag.load(ordering: .acquiring) == 0 { _ = rt_sleep_until_ns(rt_monotonic_ns() + 100_000) }
        let bits = grantBits.load(ordering: .acquiring)
        grant.fifo = bits & 1 != 0
        grant.fifoError = Errno(c: fifoErrno.load(ordering: .relaxed))
        grant.pinnedCPU = bits & 2 != 0 ? settings.cpu : nil
        // The loop owns its CPU: the starting thread (and every thread it starts afterwards: console,
        // Modbus polling, logging) moves off it. On a non-PREEMPT_RT kernel a normal thread in a
        // system call on the loop's CPU can hold the loop off until the call ends.
        // (Best effort: on a one-CPU machine there is nowhere else to go.)
        if let cpu = grant.pinnedCPU { _ = rt_exclude_cpu(Int32(cpu)) }
        grant.affinityError = Errno(c: affinityErrno.load(ordering: .relaxed))
        return grant
    }

    /// Asks the loop to stop after its current cycle (async-signal-safe: one atomic store).
    public func requestStop() { stopFlag.store(true, ordering: .releasing) }

    /// Waits for the loop thread to end (after `requestStop`). The body's `loopStopped` has run.
    public func join() {
        guard running else { return }
        _ = rt_thread_join(thread)
        running = false
        if settings.lockMemory && grant.memoryLocked { rt_unlock_memory() }
        rt_release_cpu_dma_latency(latencyFD)
        latencyFD = -1
    }

    /// Cycles run so far (any thread).
    public var cycles: UInt64 { counterStorage.pointee.cycles.load(ordering: .relaxed) }

    /// The loop's figures now (any thread).
    public func statistics() -> LoopStatistics {
        let c = counterStorage
        return LoopStatistics(cycles: c.pointee.cycles.load(ordering: .relaxed), misses: c.pointee.misses.load(ordering: .relaxed),
                              overruns: c.pointee.overruns.load(ordering: .relaxed),
                              longestMissRun: c.pointee.longestMissRun.load(ordering: .relaxed),
                              allocations: c.pointee.allocations.load(ordering: .relaxed),
                              overrunFaults: c.pointee.overrunFaults.load(ordering: .relaxed),
                              wakeLatency: wakeLatency.histogram.snapshot(), computeTime: computeTime.histogram.snapshot())
    }

    public var isFinished: Bool { startedFlag.load(ordering: .acquiring) == 2 }

    /// The loop, on its own thread.
    fileprivate func threadMain() {
        var bits = 0
        if let cpu = settings.cpu {
            let e = rt_set_affinity(Int32(cpu))
            if e == 0 { bits |= 2 } else { affinityErrno.store(e, ordering: .relaxed) }
        }
        if settings.priority > 0 {
            let e = rt_set_fifo(settings.priority)
            if e == 0 { bits |= 1 } else { fifoErrno.store(e, ordering: .relaxed) }
        }
        rt_prefault_stack(settings.stackPrefaultBytes)
        grantBits.store(bits, ordering: .releasing)
        startedFlag.store(1, ordering: .releasing)
        loop()
        body.loopStopped()
        startedFlag.store(2, ordering: .releasing)
    }

    private func loop() {
        let period = settings.periodNanos
        let wake = wakeLatency.histogram, compute = computeTime.histogram
        let c = counterStorage
        var deadline = rt_monotonic_ns() + period
        var index: UInt64 = 0
        var missRun = 0
        var faulted = false
        while !stopFlag.load(ordering: .acquiring) {
            _ = rt_sleep_until_ns(deadline)
            let woke = rt_monotonic_ns()
            let late = woke - deadline
            wake.record(nanos: late)
            if late >= period {
                // Whole periods passed while asleep: those deadlines had no cycle. Skip them.
                let missed = Int(late / period)
                c.pointee.misses.add(UInt64(missed), ordering: .relaxed)
                missRun += missed
                deadline += Int64(missed) * period
                if missRun > c.pointee.longestMissRun.load(ordering: .relaxed) {
                    c.pointee.longestMissRun.store(missRun, ordering: .relaxed)
                }
                if missRun > settings.missLimit && !faulted {
                    faulted = true
                    c.pointee.overrunFaults.add(1, ordering: .relaxed)
                    body.loopOverrun(consecutiveMisses: missRun, at: deadline)
                }
            } else {
                missRun = 0
                faulted = false
            }
            let before = allocationProbe?() ?? 0
            body.runCycle(deadline: deadline, index: index)
            if let probe = allocationProbe { c.pointee.allocations.add(probe() &- before, ordering: .relaxed) }
            let done = rt_monotonic_ns()
            compute.record(nanos: done - woke)
            if done > deadline + period { c.pointee.overruns.add(1, ordering: .relaxed) }
            c.pointee.cycles.add(1, ordering: .relaxed)
            index &+= 1
            deadline += period
        }
    }
}

/// Thread entry (a nonisolated top-level function: a closure from main.swift would inherit
/// @MainActor and trap on this thread).
private func executiveThreadEntry(_ context: UnsafeMutableRawPointer?) {
    guard let context else { return }
    Unmanaged<CyclicExecutive>.fromOpaque(context).takeUnretainedValue().threadMain()
}

/// The monotonic clock in ns (the runtime's only clock; the core takes time as an input).
public func monotonicNanos() -> Int64 { rt_monotonic_ns() }
/// Sleeps until an absolute CLOCK_MONOTONIC instant.
public func sleepUntil(nanos: Int64) { _ = rt_sleep_until_ns(nanos) }
/// Peak and current resident memory of this process in kB.
public func peakResidentKB() -> Int { rt_peak_rss_kb() }
public func currentResidentKB() -> Int { rt_current_rss_kb() }
/// CPUs this process may use.
public func availableCPUs() -> Int { Int(rt_cpu_count()) }

