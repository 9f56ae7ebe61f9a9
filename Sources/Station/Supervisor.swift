// The station's one supervisor: the thread that owns the loop's events (the main thread) on every board.
// It drains the loop's events into the console, the journal, the grid interfaces and the run's tally,
// ticks the grid every 100 ms of station time, tells the service manager how the guns stand, stops the
// running sessions in order on a signal or an OCPP Reset, and ends the run when its sessions are done or
// its time is up. What differs between boards is only how the cycles are driven (`LoopDriver`): in
// virtual time on this thread (a simulated board), by the cyclic executive on its own thread (a real
// board, a simulated board with --realtime), or one cycle per tick of the plant emulator (a bench board).
import BoardFile
import ChargerCore
import LoopContract
import RealTime
import StationLoop
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The loop as its supervisor sees it: events out, operator commands in, the station's view for the grid
/// and the grid's feed back. The hardware loop and the simulated board's real-time body are such loops.
package protocol SupervisedLoop: AnyObject {
    var events: SPSCBuffer<LoopEvent> { get }
    var commands: SPSCBuffer<OperatorCommand> { get }
    var gridView: TripleBufferStorage<StationView> { get }
    var grid: TripleBufferStorage<GridFeed> { get }
}

extension HardwareLoop: SupervisedLoop {}

/// How the cycles of a board are driven: the one thing the supervisor leaves to the board.
package protocol LoopDriver {
    /// The station's time by the driver's clock (virtual time, the plant's, or the monotonic clock since
    /// the loop started), read on the supervisor's thread.
    var now: Instant { get }
    /// Cycles run so far.
    var cycles: UInt64 { get }
    /// Runs the next cycle (virtual time, lockstep) or waits a moment while the cyclic executive runs
    /// them. False: the driver cannot go on (the plant emulator is gone).
    mutating func advance(_ s: Supervisor) -> Bool
    /// The grid's tick is due (every 100 ms of the driver's clock).
    mutating func gridDue() -> Bool
    /// The loop's events are due to be drained (every cycle in virtual time, every 64 in lockstep).
    func drainDue() -> Bool
    /// After the events were taken, before the run's end is judged (a simulated board's status lines and
    /// its pace to wall time).
    mutating func settle(_ s: Supervisor)
    /// The run has ended by the board's own rule (a simulated board's cars have all come and gone).
    mutating func finished(_ s: Supervisor) -> Bool
}

extension LoopDriver {
    package func drainDue() -> Bool { true }
    package mutating func settle(_ s: Supervisor) {}
    package mutating func finished(_ s: Supervisor) -> Bool { false }
}

/// Why a supervised run ended.
package enum RunEnding: Equatable {
    /// --sessions sessions ended.
    case sessionsDone
    /// --max-time of the driver's clock passed.
    case timedOut
    /// A signal or an OCPP Reset, and the running sessions stopped in order (or `orderlyStopBound`).
    case stopped
    /// The board's own end (`LoopDriver.finished`).
    case finished
    /// The driver could not go on (`LoopDriver.advance` gave false).
    case driverGone
}

package final class Supervisor {
    package let loop: any SupervisedLoop
    package let desk: OperatorDesk
    package let grid: GridDesk?
    package var tally: SessionTally
    /// Print each event as a console line (a simulated board in virtual time prints its own).
    package var echo = true
    /// End after this many sessions ended (0: no limit).
    package var sessions = 0
    /// End at this instant of the driver's clock (nil: no time limit).
    package var end: Instant? = nil
    /// Each gun's status at every drain (the bench's lockstep: the loop runs on this thread; a loop on a
    /// thread of its own reports its status by events instead).
    package var sample: ((Int) -> GunStatus)? = nil
    let notifier = ServiceNotifier()
    package private(set) var orderly = OrderlyStop()
    let requests: RunRequests

    package init(loop: any SupervisedLoop, desk: OperatorDesk, grid: GridDesk?, guns: Int, requests: RunRequests = .process) {
        self.loop = loop; self.desk = desk; self.grid = grid; self.requests = requests
        tally = SessionTally(guns: guns)
    }

    /// Takes every event the loop published: printed, journalled, handed to the grid, and counted.
    package func drain() {
        while let e = loop.events.queue.pop() {
            if echo { printEvent(e) }
            desk.record(e)
            grid?.loopEvent(e)
            tally.note(e)
        }
        if let sample { for g in tally.lastPhase.indices { tally.sample(sample(g)) } }
        if echo { fflush(nil) }
    }

    /// The grid's tick: the station's view in, the composite feed out to the loop.
    package func gridTick() {
        guard let grid else { return }
        loop.grid.buffer.write(grid.tick(view: loop.gridView.buffer.read()))
    }

    /// The service manager's status text now.
    package var serviceText: String { serviceStatus(phases: tally.lastPhase, faults: tally.faults.count) }

    /// Tells the service manager the loop runs (READY=1), once.
    package func ready() { notifier.send("READY=1\nSTATUS=" + serviceText) }

    /// The one loop around the cycles, until the run ends.
    package func run(_ driver: inout some LoopDriver) -> RunEnding {
        while true {
            guard driver.advance(self) else { return .driverGone }
            if grid != nil && driver.gridDue() { gridTick() }
            let stopping = requests.stop
            if driver.drainDue() || stopping { drain() }
            notifier.tick(cycles: driver.cycles, status: self.serviceText)
            driver.settle(self)
            if stopping {
                // Sessions stop in order (docs/technician.md): each running one gets the operator's stop and
                // the run goes on until it has ended (CST, current to zero, K1/K2 open, welding check,
                // unlock; its session-end record journalled with the meter's energy), for at most
                // `orderlyStopBound` of station time (issue 36: SIGTERM mid-session journalled no session end).
                if orderly.done(phases: tally.lastPhase, now: driver.now, stop: { _ = loop.commands.queue.push(.stop(gun: Int8($0))) }) {
                    return .stopped
                }
                continue
            }
            if sessions > 0 && tally.ended >= sessions { return .sessionsDone }
            if let end, driver.now >= end { return .timedOut }
            if driver.finished(self) { return .finished }
        }
    }

    /// The service manager hears the run is ending.
    package func stopping(_ status: String? = nil) { notifier.send("STOPPING=1" + (status.map { "\nSTATUS=" + $0 } ?? "")) }
}

/// SIGINT or SIGTERM, or the central system's Reset or a firmware installed (the OCPP client's thread),
/// asked the run to end. Set from a signal handler and another thread, read by the supervisor's: the stop
/// is an atomic (a lock-free store is async-signal-safe), the reset's reason is under a lock (a String is
/// not one machine word; the plain globals were a data race, issue 34).
package final class RunRequests: Sendable {
    private let stopFlag = Atomic<Bool>(false)
    private let resetReason = Mutex<String?>(nil)
    package init() {}
    /// The process's: what the signal handlers and the OCPP client set.
    package static let process = RunRequests()

    package var stop: Bool { stopFlag.load(ordering: .acquiring) }
    package func requestStop() { stopFlag.store(true, ordering: .releasing) }
    /// Why the run ends for a restart (nil: it does not).
    package var reset: String? { resetReason.withLock { $0 } }
    /// The central system asked for a Reset (OCPP), or a firmware was installed: the run ends in order and
    /// chargerd exits 5, which the service manager restarts (Restart=on-failure).
    package func requestReset(_ why: String) {
        resetReason.withLock { $0 = why }
        requestStop()
    }
    /// The exit status, 5 when the run ended for a Reset.
    package func exitStatus(_ code: Int32) -> Int32 { reset != nil ? 5 : code }
}

/// The process's stop request (SIGINT, SIGTERM, an OCPP Reset).
package var stopRequested: Bool { RunRequests.process.stop }
/// The process's reset request, with its reason.
package var resetRequested: String? { RunRequests.process.reset }
/// The exit status, 5 when the run ended for a Reset.
package func exitStatus(_ code: Int32) -> Int32 { RunRequests.process.exitStatus(code) }

package func installSignalHandlers() {
    // Touched here first: a global's lazy initialisation is not async-signal-safe, its use after is.
    _ = RunRequests.process.stop
    signal(SIGINT) { _ in RunRequests.process.requestStop() }
    signal(SIGTERM) { _ in RunRequests.process.requestStop() }
}

/// How long, in station time, an orderly stop on SIGINT or SIGTERM waits for the running sessions to end:
/// a stop takes the car's BST/BSD exchange (up to 10 s, docs/standards.md "Fault reactions"), the welding
/// check and the unlock; 30 s covers them with room.
package let orderlyStopBound = TimeSpan.s(30)

/// The orderly stop of a supervised run on SIGINT or SIGTERM (every board): the first call after the
/// signal sends the operator's stop to every gun whose session runs; the run ends once none is in a session
/// any more, or `orderlyStopBound` after the signal (station time). Before it, the real board's loop
/// stopped at the signal and forced the outputs safe: K1/K2 opened under the charging current
/// (docs/technician.md promises "sessions stop in order").
package struct OrderlyStop {
    /// A session holds its gun from the lock to the unlock.
    package static let inSession: Set<SessionPhase> = [.locking, .auxPower, .handshake, .insulationCheck, .identification, .parameterExchange,
                                                       .precharge, .charging, .stopping, .statistics, .weldingCheck, .unlocking]
    package private(set) var until: Instant? = nil
    package init() {}
    /// True when the run may end now.
    package mutating func done(phases: [SessionPhase], now: Instant, stop: (Int) -> Void) -> Bool {
        let running = phases.indices.filter { Self.inSession.contains(phases[$0]) }
        if running.isEmpty { return true }
        guard let until else {
            until = now + orderlyStopBound
            for g in running { stop(g) }
            print("chargerd: stopping \(running.count) session(s) in order before exiting (at most \(fmt(orderlyStopBound.seconds, 0)) s)")
            fflush(nil)
            return false
        }
        return now >= until
    }
}

package func monotonicSeconds() -> Double { Double(monotonicNanos()) / 1e9 }

package func writeStderr(_ s: String) {
    var bytes = Array(s.utf8)
    _ = write(2, &bytes, bytes.count)
}

/// A run that cannot start: the reason on standard error, exit status 2.
package func fail(_ message: String) -> Never {
    writeStderr("chargerd: \(message)\n")
    exit(2)
}

/// A loop the cyclic executive runs on its own thread (a real board; a simulated board with --realtime):
/// the supervisor wakes every 20 ms and ticks the grid every 100 ms of the monotonic clock.
package struct ExecutiveDriver: LoopDriver {
    let cyclesRun: () -> UInt64
    let clock: () -> Instant
    let done: () -> Bool
    var nextGrid = monotonicNanos()
    /// `now`: the station's time on the supervisor's thread; `done`: the board's own end.
    package init(cycles: @escaping () -> UInt64, now: @escaping () -> Instant, done: @escaping () -> Bool = { false }) {
        cyclesRun = cycles; clock = now; self.done = done
    }
    package var now: Instant { clock() }
    package var cycles: UInt64 { cyclesRun() }
    package mutating func advance(_ s: Supervisor) -> Bool {
        sleepUntil(nanos: monotonicNanos() + 20_000_000)
        return true
    }
    package mutating func gridDue() -> Bool {
        guard monotonicNanos() >= nextGrid else { return false }
        nextGrid += 100_000_000
        return true
    }
    package mutating func finished(_ s: Supervisor) -> Bool { done() }
}
