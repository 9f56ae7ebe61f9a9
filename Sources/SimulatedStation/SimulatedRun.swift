// chargerd on a simulated board: the mocked plant and the simulated cars, driven by the station's one
// supervisor (Station) either in virtual time on the supervisor's thread (at a speed factor or as fast as
// it goes) or by the cyclic executive at the board's own period (--realtime). The production path
// (Station) does not link the plant; this module is where the two meet.
import BoardFile
import ChargerCore
import ChargerRuntime
import LoopContract
import RealTime
import SimPlant
import Station
import StationLoop
#if canImport(Glibc)
import Glibc
#endif

extension RealTimeSimulation: SupervisedLoop {}

package struct SimulatedRun {
    package var board: Board
    package var sim: Simulation
    package var desk: OperatorDesk
    package var grid: GridDesk?
    /// The cars of the run, per gun (continuous mode sends the same again).
    package var cars: [Int: CarProfile]
    /// Virtual time as `factor` × wall time (nil: as fast as it goes).
    package var factor: Double? = nil
    package var statusInterval: Double = 60
    package var maxTime: Double = 6 * 3600
    package var continuous = false
    package var arrivalInterval: Double = 600
    package var memoryInterval: Double = 0
    package var json = false

    package init(board: Board, sim: Simulation, desk: OperatorDesk, grid: GridDesk?, cars: [Int: CarProfile]) {
        self.board = board; self.sim = sim; self.desk = desk; self.grid = grid; self.cars = cars
    }

    /// Virtual time on this thread. Exit status as docs/chargerd.md's contract says.
    package func run() -> Int32 {
        let body = RealTimeSimulation(sim: sim, statusEvery: 0, probeReaction: false)
        let factor = self.factor
        desk.attach(view: body.view.buffer, commands: body.commands.queue, rt: { [sim] in "virtual time: no real-time loop in this mode (t=\(fmt(sim.now.seconds, 1)) s, speed \(factor.map { "\(fmt($0, 0))x" } ?? "max")); run with --realtime for loop timing" }, comm: { "simulated board: its devices are the plant model's (no field bus)" },
                    grid: grid.map { g in { g.consoleText() } })
        grid?.start()
        print("chargerd: board \(board.name) (\(board.path), checksum \(board.checksum)), \(board.spec.gunCount) gun(s), \(board.spec.moduleCount) modules, speed \(factor.map { "\(fmt($0, 0))x" } ?? "max")")
        let sup = Supervisor(loop: body, desk: desk, grid: grid, guns: board.spec.gunCount)
        sup.echo = false        // the simulation prints its own lines
        sup.end = .zero + .seconds(maxTime)
        sup.ready()
        var driver = VirtualTimeDriver(run: self, body: body)
        let ending = sup.run(&driver)
        if memoryInterval > 0 { printMemory(sim) }
        sup.stopping()
        sup.drain()
        if let grid { _ = grid.tick(view: body.gridView.buffer.read()); grid.shutdown() }
        desk.shutdown(at: sim.now)
        return finish(timedOut: ending == .timedOut && !continuous, midSession: sup.orderly.until != nil)
    }

    /// The real-time mode: the cyclic executive runs the cycles on its own thread; the supervisor prints
    /// what comes out of the loop's event queue, and ends the run on SIGINT/SIGTERM (the sessions stopped
    /// in order), at --max-time of loop time, or when the cars are gone.
    package func runRealTime() -> Int32 {
        let period = board.loopSettings.periodNanos
        let statusEvery = statusInterval > 0 ? UInt64(max(1, (statusInterval * 1e9 / Double(period)).rounded())) : 0
        let body = RealTimeSimulation(sim: sim, statusEvery: statusEvery)
        let loop = CyclicExecutive(settings: board.loopSettings, body: body)
        desk.attach(view: body.view.buffer, commands: body.commands.queue, rt: { rtText(loop.statistics()) }, comm: { "simulated board: its devices are the plant model's (no field bus)" },
                    grid: grid.map { g in { g.consoleText() } })
        grid?.start()
        let grant: RealTimeGrant
        do { grant = try loop.start() } catch { fail("\(error)") }
        if let w = grant.warning { writeStderr("chargerd: warning: \(w)\n") }
        let sched = grant.fifo ? "SCHED_FIFO \(board.runtime.priority)" : "SCHED_OTHER"
        let cpu = grant.pinnedCPU.map { " on CPU \($0)" } ?? ""
        print("chargerd: board \(board.name) (\(board.path), checksum \(board.checksum)), real-time loop every \(fmt(Double(period) / 1e6, 3)) ms, \(sched)\(cpu), memory \(grant.memoryLocked ? "locked" : "not locked")")
        fflush(nil)
        let sup = Supervisor(loop: body, desk: desk, grid: grid, guns: board.spec.gunCount)
        sup.end = .zero + .seconds(maxTime)
        sup.ready()
        // The simulation's time is the loop's: its cycles at the board's period (read off the loop's thread).
        var driver = ExecutiveDriver(cycles: { loop.cycles }, now: { Instant(micros: Int64(loop.cycles) * (period / 1000)) },
                                     done: { body.done })
        let ending = sup.run(&driver)
        sup.stopping()
        loop.requestStop()
        loop.join()
        sup.drain()
        grid?.shutdown()
        desk.shutdown(at: sim.now)
        let dropped = body.events.queue.dropped
        print("loop: " + loop.statistics().line + (dropped > 0 ? "; \(dropped) events dropped (queue full)" : ""))
        return finish(timedOut: ending == .timedOut, midSession: sup.orderly.until != nil)
    }

    /// The end of a run, either mode: each gun's last status line, the summary (and its JSON line), the
    /// reason on standard error when the session did not end normally (unless the operator stopped it),
    /// and the exit status.
    func finish(timedOut: Bool, midSession: Bool) -> Int32 {
        for g in 0..<sim.spec.gunCount { print(sim.statusLine(gun: g)) }
        var summary = sim.summary(timedOut: timedOut, continuous: continuous, interrupted: stopRequested, midSession: midSession)
        summary.memoryKB = (currentResidentKB(), peakResidentKB())
        print(summary.text, terminator: "")
        if json { print(summary.json) }
        fflush(nil)
        if summary.endState != .completed && !stopRequested {
            let why = summary.faults.first.map { "\($0.code.name) at \(fmt($0.raisedAt.seconds, 3)) s (\($0.reaction.name))" }
                ?? summary.violations.first.map { "\($0)" } ?? summary.endState.rawValue
            writeStderr("chargerd: session did not end normally: \(why)\n")
        }
        return summary.exitCode
    }
}

/// A simulated board in virtual time: one cycle per step on the supervisor's thread, the status and
/// memory lines at their intervals of simulated time, paced to `factor` × wall time; in continuous mode
/// a new car comes `arrivalInterval` after the last left.
struct VirtualTimeDriver: LoopDriver {
    let sim: Simulation
    let body: RealTimeSimulation
    let cars: [Int: CarProfile]
    let continuous: Bool
    let arrivalInterval: Double
    let gridEvery: UInt64
    var index: UInt64 = 0
    var pace: Pacer
    let status: TimeSpan?
    var nextStatus: Instant
    let memoryEvery: TimeSpan?
    var nextMemory: Instant

    init(run: SimulatedRun, body: RealTimeSimulation) {
        sim = run.sim; self.body = body; cars = run.cars; continuous = run.continuous; arrivalInterval = run.arrivalInterval
        gridEvery = UInt64(max(1, 100_000_000 / run.board.loopSettings.periodNanos))
        pace = Pacer(factor: run.factor)
        status = run.statusInterval > 0 ? TimeSpan.seconds(run.statusInterval) : nil
        nextStatus = .zero + (status ?? .zero)
        memoryEvery = run.memoryInterval > 0 ? TimeSpan.seconds(run.memoryInterval) : nil
        nextMemory = .zero + (memoryEvery ?? .zero)
    }

    var now: Instant { sim.now }
    var cycles: UInt64 { index }

    mutating func advance(_ s: Supervisor) -> Bool {
        body.runCycle(deadline: 0, index: index)
        index &+= 1
        return true
    }

    /// Every 100 ms of virtual time, on the cycle just run.
    mutating func gridDue() -> Bool { (index &- 1) % gridEvery == 0 }

    /// After the cycle's events were taken: the status and memory lines, then the pace.
    mutating func settle(_ s: Supervisor) {
        if let memoryEvery, sim.now >= nextMemory {
            nextMemory = nextMemory + memoryEvery
            printMemory(sim)
        }
        if let status, sim.now >= nextStatus {
            nextStatus = nextStatus + status
            for g in 0..<sim.spec.gunCount { print(sim.statusLine(gun: g)) }
            fflush(nil)
        }
        pace.wait(virtual: sim.now)
    }

    mutating func finished(_ s: Supervisor) -> Bool {
        guard sim.allCarsGone else { return false }
        if !continuous { return true }
        // The next car for each gun arrives after the arrival interval.
        for (g, p) in cars {
            var next = p
            next.plugAt = (sim.now - .zero) + .seconds(arrivalInterval)
            sim.plant.attach(car: next, gun: g)
        }
        let started = sim.reports.reduce(0) { $0 + $1.startedSessions }, completed = sim.reports.reduce(0) { $0 + $1.completedSessions }
        print("chargerd: car served (\(started) session(s) so far, \(completed) completed); next car in \(fmt(arrivalInterval, 0)) s")
        return false
    }
}

/// The soak's memory line (`--memory-interval`): resident and peak (VmHWM) memory, sessions served.
func printMemory(_ sim: Simulation) {
    print("memory: t=\(fmt(sim.now.seconds, 0)) s rss \(currentResidentKB()) kB peak \(peakResidentKB()) kB sessions \(sim.reports.reduce(0) { $0 + $1.completedSessions })")
    fflush(nil)
}

/// Keeps virtual time at `factor` × wall time (no pacing at 'max').
struct Pacer {
    let factor: Double?
    var startWall: Double = monotonicSeconds()
    var lastCheck: Instant = .zero
    mutating func wait(virtual: Instant) {
        guard let factor, virtual - lastCheck >= .ms(20) else { return }
        lastCheck = virtual
        let due = startWall + virtual.seconds / factor
        let ahead = due - monotonicSeconds()
        if ahead > 0 {
            var ts = timespec(tv_sec: Int(ahead), tv_nsec: Int((ahead - Double(Int(ahead))) * 1e9))
            nanosleep(&ts, nil)
        }
    }
}
