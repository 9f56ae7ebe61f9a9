// chargerd: the charger controller. On a sim board it runs the mocked plant and a simulated car in
// virtual time; the contract is documented in docs/chargerd.md ("chargerd contract").
import ArgumentParser
import GBT27930
import BoardFile
import SiteFile
import ChargerCore
import ChargerRuntime
import Station
import LoopContract
import SimPlant
import RealTime
import GPIOD
import Console
import Journal
import Grid
import GridInterfaces
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The firmware's version, shown by `version` on the console and at start.
let firmwareVersion = "chargerd 0.6.0"

struct Chargerd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chargerd",
        abstract: "DC charger controller.",
        subcommands: [Run.self, JournalCommand.self, Passwd.self, EMSMap.self, CANDatabase.self, Unit.self, GPIOCost.self, FirmwarePack.self],
        defaultSubcommand: Run.self)
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the controller (the default): a simulated board in virtual time, a bench board against the plant emulator.",
        discussion: """
        Exit status: 0 session ended normally; 1 session ended with a fault (listed); 2 bad arguments or
        board file; 3 an invariant of the simulation failed; 4 the session did not end within --max-time; 5 a Reset or a firmware installed (OCPP); 6 plug and charge refused the car (no energy, no fault).
        Injections (--inject WHAT[:GUN][=VALUE]@TIME): \(InjectionParser.names.joined(separator: ", ")).
        """)

    @Option(name: .long, help: "Board file (Boards/*.toml).")
    var board: String?

    @Flag(name: .long, help: "List every fault code with its reaction class, and exit.")
    var listFaults = false

    @Flag(name: .long, help: "With --list-faults: docs/faults.md's \"Fault by fault\" (what trips each code, the checks, the reset).")
    var markdown = false

    @Option(name: .long, help: "Car on gun 0: 'capacity=60kWh,soc=20,target=80,max-voltage=500V[,max-current=250A][,plug-at=2s]'.")
    var car: String?

    @Option(name: .long, parsing: .singleValue, help: "A car on another gun: 'GUN:capacity=...,soc=...' (repeatable).")
    var carOn: [String] = []

    @Option(name: .long, help: "Virtual-time speed: a factor (60 = one simulated minute per second) or 'max'.")
    var speed: String = "max"

    @Flag(name: .long, help: "Run on the real-time loop at the board's period in wall-clock time (SCHED_FIFO, CPU, mlockall from the board's [runtime]; degrades with one warning without the rights).")
    var realtime = false

    @Flag(name: .long, help: "Print the final summary as one JSON object on the last line of standard output.")
    var json = false

    @Option(name: .long, parsing: .singleValue, help: "Inject a fault or action: WHAT[:GUN][=VALUE]@TIME (repeatable).")
    var inject: [String] = []

    @Option(name: .long, help: "Simulated seconds between status lines (0: none).")
    var statusInterval: Double = 60

    @Option(name: .customLong("max-time"), help: "Give up after this much time, in seconds: simulated on sim and bench boards (default 6 h), wall-clock on a real board (default: none, it runs until stopped).")
    var maxTimeOption: Double? = nil
    var maxTime: Double { maxTimeOption ?? 6 * 3600 }

    @Flag(name: .long, help: "Run without a session limit: wait for cars as a real charger does; a new simulated car arrives --arrival-interval after the previous one left. Stops at --max-time or on SIGINT/SIGTERM.")
    var continuous = false

    @Option(name: .long, help: "Continuous mode: simulated seconds between one car leaving and the next arriving.")
    var arrivalInterval: Double = 600

    @Option(name: .long, help: "Bench board: stop after this many sessions ended (finished, or the car gone before); 0 runs until --max-time or a signal.")
    var sessions: Int = 0

    @Option(name: .long, help: "Print resident memory every this many simulated seconds (0: never): 'memory: t=… s rss … kB peak … kB sessions …'.")
    var memoryInterval: Double = 0

    @Option(name: .long, help: "Technician console: 'pty' (a new pseudo-terminal, its path printed), 'stdin', 'board' (the board file's [console] UART), or a serial device path.")
    var console: String?

    @Option(name: .long, help: "Technicians' credentials file (user:crypt-hash lines; make entries with 'chargerd passwd').")
    var credentials: String?

    @Option(name: .long, help: "Write every CAN frame of the car links ([[can]]) to this file in candump's log format (candump -L; canplayer replays it).")
    var canLog: String?

    @Option(name: .long, help: "Journal directory (faults, sessions, acting commands); default: the board file's [storage] journal, else memory only.")
    var journal: String?

    @Option(name: .long, help: "Journal file size before rotation, in kB (default: board file, else 1024).")
    var journalMaxKb: Int?

    @Option(name: .long, help: "Journal files kept (default: board file, else 8).")
    var journalFiles: Int?

    @Flag(name: .long, help: "Print 'journal: #SEQ KIND acknowledged' after each record is on storage (tests, HIL).")
    var journalAcks = false

    @Option(name: .long, help: "Sign each session's end record with this private key (PEM); default: the charge point's key from the OCPP certificate store, when one is installed. 'chargerd journal verify' checks them.")
    var signingKey: String?

    @Option(name: .long, help: "Site file (EMS Modbus TCP server, OCPP 1.6J central system, time-of-use schedule); see docs/grid.md.")
    var site: String?

    @Option(name: .long, help: "The station clock at the start of the run, RFC 3339 (e.g. 2026-11-24T14:00:00+08:00); default: now. Time-of-use periods and OCPP timestamps follow it.")
    var startTime: String?

    @Option(name: .long, help: "The idTag the driver presents at the plug (an RFID card), sent to the central system with Authorize; without it a session waits for a RemoteStartTransaction.")
    var idTag: String?

    @Option(name: .long, help: "Console: seconds without a key before a technician is logged out.")
    var consoleIdle: Double = 600

    @Option(name: .long, help: "Console: seconds logins stay locked after 5 failures.")
    var consoleLockout: Double = 300

    /// The site's grid interfaces, if a site file is given.
    func makeGrid(board: Board, desk: OperatorDesk, paced: Bool, speed: Double) throws -> GridDesk? {
        guard let site else {
            if startTime != nil || idTag != nil { fail("--start-time and --id-tag need a --site file") }
            return nil
        }
        let config: SiteConfig
        do { config = try SiteLoader.load(path: site, board: board) } catch { fail("site file: \(error)") }
        // The charge point's private key, as the credentials file: refused if others can write it.
        if let key = config.ocpp?.keyFile {
            do { if let w = try Credentials.checkPermissions(key, what: "OCPP key") { writeStderr("chargerd: warning: \(w)\n") } } catch { fail("site \(site): \(error)") }
        }
        if (config.ems != nil || config.ocpp != nil) && !paced {
            fail("site \(site): the EMS server and the OCPP client talk to peers in wall-clock time: run with --realtime or --speed FACTOR (not max)")
        }
        var start: Int64
        if let t = startTime {
            guard let ms = Timestamp.parse(t) else { fail("--start-time '\(t)': expected RFC 3339, e.g. 2026-11-24T14:00:00+08:00") }
            start = ms
        } else {
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            start = Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
        }
        if desk.signer == nil, let dir = config.ocpp?.stateDirectory { desk.signer = RecordSigner.chargePointKey(stateDirectory: dir) }
        let g = try GridDesk(site: config, board: board, startEpochMillis: start, desk: desk)
        if let o = g.ocpp {
            o.speedFactor = speed
            for gun in 0..<board.spec.gunCount { o.present(idTag: idTag, gun: gun) }
        }
        return g
    }

    mutating func run() throws {
        if listFaults {
            if markdown { print(FaultGuide.markdown(), terminator: ""); return }
            for code in FaultCode.allCases {
                let scope = code.isStationWide ? "station" : "gun"
                print("\(code.name.padding(toLength: 30, withPad: " ", startingAt: 0)) \(code.reaction.name.padding(toLength: 20, withPad: " ", startingAt: 0)) \(scope)")
            }
            return
        }
        guard let board else { fail("--board FILE is required (see --help)") }
        let loaded: Board
        do { loaded = try BoardLoader.load(path: board) } catch {
            fail("board file: \(error)")
        }
        if canLog != nil && loaded.can.isEmpty {
            fail("--can-log: board '\(loaded.name)' has no car link on CAN ([[can]]); on a sim board the car's messages are typed values")
        }
        if loaded.kind == .bench {
            var actions: [ScheduledCommand] = []
            for text in inject {
                let i: ScheduledInjection
                do { i = try InjectionParser.parse(text, spec: loaded.spec) } catch { fail("\(error)") }
                if case .plant = i.action { fail("--inject '\(text)': on a bench board the plant is the emulator's: give plant faults to charger-plant --inject") }
                guard let c = i.scheduledCommand else { fail("--inject '\(text)': on a bench board operator actions take a time") }
                actions.append(c)
            }
            guard car == nil && carOn.isEmpty && speed == "max" && !realtime && !continuous else {
                fail("on a bench board the car and the speed are the plant emulator's (charger-plant --car, --speed); --realtime and --continuous do not apply")
            }
            installSignalHandlers()
            let desk = try OperatorDesk(run: self, board: loaded)
            var run = BenchRun(board: loaded, statusInterval: statusInterval, maxTime: maxTime, sessions: sessions, actions: actions, desk: desk)
            run.canLog = canLog
            // The plant's clock paces a bench board (the emulator's speed): the grid peers see it as paced.
            run.grid = try makeGrid(board: loaded, desk: desk, paced: true, speed: 1)
            run.json = json
            throw ExitCode(exitStatus(run.run()))
        }
        guard loaded.kind != .real else {
            guard car == nil && carOn.isEmpty && speed == "max" && inject.isEmpty && !continuous else {
                fail("on a real board the car, the plant and the time are real: --car, --car-on, --speed, --inject and --continuous do not apply")
            }
            // GPIO first: every output requested at its safe level before anything else can fail.
            let front: GPIOFrontEnd
            do { front = try GPIOFrontEnd(map: loaded.gpio, guns: loaded.spec.gunCount, modules: loaded.spec.moduleCount, period: loaded.spec.period) } catch {
                fail("board '\(loaded.name)' (\(board)): \(error)")
            }
            installSignalHandlers()
            let desk: OperatorDesk
            do { desk = try OperatorDesk(run: self, board: loaded) } catch { front.makeSafe(); throw error }
            guard (maxTimeOption ?? 1) > 0, statusInterval >= 0 else { front.makeSafe(); fail("--status-interval and --max-time must be positive") }
            var run = RealBoardRun(board: loaded, front: front, statusInterval: statusInterval, maxTime: maxTimeOption ?? .infinity, sessions: sessions, json: json, desk: desk)
            run.canLog = canLog
            run.grid = try makeGrid(board: loaded, desk: desk, paced: true, speed: 1)
            throw ExitCode(exitStatus(run.run()))
        }
        var cars: [Int: CarProfile] = [:]
        do {
            cars[0] = try car.map { try CarProfile.parse($0) } ?? CarProfile()
            for c in carOn {
                guard let colon = c.firstIndex(of: ":"), let g = Int(c[..<colon]), g >= 0, g < loaded.spec.gunCount else {
                    fail("--car-on '\(c)': expected GUN:PROFILE with GUN 0...\(loaded.spec.gunCount - 1)")
                }
                cars[g] = try CarProfile.parse(String(c[c.index(after: colon)...]))
            }
        } catch { fail("\(error)") }
        var scheduled: [ScheduledInjection] = []
        for text in inject {
            do { scheduled.append(try InjectionParser.parse(text, spec: loaded.spec)) } catch { fail("\(error)") }
        }
        var factor: Double? = nil
        if speed.lowercased() != "max" {
            guard let f = Double(speed), f > 0, f.isFinite else { fail("--speed '\(speed)': expected a positive factor or 'max'") }
            factor = f
        }
        guard statusInterval >= 0, maxTime > 0, arrivalInterval >= 0, memoryInterval >= 0 else { fail("--status-interval, --max-time, --arrival-interval and --memory-interval must be positive") }

        if realtime && factor != nil { fail("--realtime runs at the board's own period (1x); drop --speed") }

        installSignalHandlers()
        let sim = Simulation(board: loaded, cars: cars, injections: scheduled)
        let desk = try OperatorDesk(run: self, board: loaded)
        sim.restoreLatched(desk.latchedAtStart)
        let grid = try makeGrid(board: loaded, desk: desk, paced: realtime || factor != nil, speed: factor ?? 1)
        if realtime {
            let code = runRealTime(sim: sim, board: loaded, statusInterval: statusInterval, maxTime: maxTime, json: json, desk: desk, grid: grid)
            throw ExitCode(exitStatus(code))
        }
        let body = RealTimeSimulation(sim: sim, statusEvery: 0, probeReaction: false)
        desk.attach(view: body.view.buffer, commands: body.commands.queue, rt: { "virtual time: no real-time loop in this mode (t=\(fmt(sim.now.seconds, 1)) s, speed \(factor.map { "\(fmt($0, 0))x" } ?? "max")); run with --realtime for loop timing" }, comm: { "simulated board: its devices are the plant model's (no field bus)" },
                    grid: grid.map { g in { g.consoleText() } })
        grid?.start()
        let gridEvery = UInt64(max(1, 100_000_000 / loaded.loopSettings.periodNanos))
        var cycleIndex: UInt64 = 0
        let profiles = cars
        var pace = Pacer(factor: factor)
        let status = statusInterval > 0 ? TimeSpan.seconds(statusInterval) : nil
        var nextStatus = Instant.zero + (status ?? .zero)
        let end = Instant.zero + .seconds(maxTime)
        print("chargerd: board \(loaded.name) (\(loaded.path), checksum \(loaded.checksum)), \(loaded.spec.gunCount) gun(s), \(loaded.spec.moduleCount) modules, speed \(factor.map { "\(fmt($0, 0))x" } ?? "max")")
        var timedOut = false
        let memoryEvery = memoryInterval > 0 ? TimeSpan.seconds(memoryInterval) : nil
        var nextMemory = Instant.zero + (memoryEvery ?? .zero)
        let notifier = ServiceNotifier()
        let guns = loaded.spec.gunCount
        notifier.send("READY=1\nSTATUS=" + serviceStatus(phases: (0..<guns).map { sim.phase($0) }, faults: 0))
        var orderly = OrderlyStop()
        while true {
            body.runCycle(deadline: 0, index: cycleIndex)
            if notifier.enabled && cycleIndex % 1000 == 0 {
                notifier.tick(cycles: cycleIndex, status: serviceStatus(phases: (0..<guns).map { sim.phase($0) }, faults: sim.faults.count))
            }
            if let grid, cycleIndex % gridEvery == 0 { body.grid.buffer.write(grid.tick(view: body.gridView.buffer.read())) }
            cycleIndex &+= 1
            while let e = body.events.queue.pop() { desk.record(e); grid?.loopEvent(e) }
            if let memoryEvery, sim.now >= nextMemory {
                nextMemory = nextMemory + memoryEvery
                printMemory(sim)
            }
            if let status, sim.now >= nextStatus {
                nextStatus = nextStatus + status
                for g in 0..<loaded.spec.gunCount { print(sim.statusLine(gun: g)) }
                fflush(nil)
            }
            pace.wait(virtual: sim.now)
            if stopRequested {
                // Sessions stop in order (docs/technician.md): each running one gets the operator's stop
                // and the run goes on until it has ended (CST, current to zero, K1/K2 open, welding check,
                // unlock; its session-end record journalled with the meter's energy), for at most
                // `orderlyStopBound` of station time (issue 36: SIGTERM mid-session journalled no
                // session end, and journal stats counted 0 of 1 sessions, 0.000 kWh).
                if orderly.done(phases: (0..<guns).map { sim.phase($0) }, now: sim.now,
                                stop: { _ = body.commands.queue.push(.stop(gun: Int8($0))) }) { break }
                continue
            }
            if sim.now >= end { timedOut = !continuous; break }
            if sim.allCarsGone {
                if !continuous { break }
                // The next car for each gun arrives after the arrival interval.
                for (g, p) in profiles {
                    var next = p
                    next.plugAt = (sim.now - .zero) + .seconds(arrivalInterval)
                    sim.plant.attach(car: next, gun: g)
                }
                let started = sim.reports.reduce(0) { $0 + $1.startedSessions }, completed = sim.reports.reduce(0) { $0 + $1.completedSessions }
                print("chargerd: car served (\(started) session(s) so far, \(completed) completed); next car in \(fmt(arrivalInterval, 0)) s")
            }
        }
        if memoryEvery != nil { printMemory(sim) }
        notifier.send("STOPPING=1")
        while let e = body.events.queue.pop() { desk.record(e); grid?.loopEvent(e) }
        if let grid { _ = grid.tick(view: body.gridView.buffer.read()); grid.shutdown() }
        desk.shutdown(at: sim.now)
        throw ExitCode(exitStatus(finish(sim, timedOut: timedOut, continuous: continuous, json: json, midSession: orderly.until != nil)))
    }
}

/// The real-time mode: the cyclic executive runs the cycles on its own thread; this thread only prints
/// what comes out of the loop's event queue, and stops the loop on SIGINT/SIGTERM or when the cars are gone.
func runRealTime(sim: Simulation, board: Board, statusInterval: Double, maxTime: Double, json: Bool, desk: OperatorDesk, grid: GridDesk?) -> Int32 {
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
    let maxCycles = UInt64(maxTime * 1e9 / Double(period))
    var timedOut = false
    func drain() {
        while let e = body.events.queue.pop() { printEvent(e); desk.record(e); grid?.loopEvent(e) }
        fflush(nil)
    }
    var nextGrid = monotonicNanos()
    while true {
        sleepUntil(nanos: monotonicNanos() + 20_000_000)
        drain()
        if let grid, monotonicNanos() >= nextGrid {
            nextGrid += 100_000_000
            body.grid.buffer.write(grid.tick(view: body.gridView.buffer.read()))
        }
        if stopRequested || body.done { break }
        if loop.cycles >= maxCycles { timedOut = true; break }
    }
    loop.requestStop()
    loop.join()
    drain()
    grid?.shutdown()
    desk.shutdown(at: sim.now)
    let dropped = body.events.queue.dropped
    print("loop: " + loop.statistics().line + (dropped > 0 ? "; \(dropped) events dropped (queue full)" : ""))
    return finish(sim, timedOut: timedOut, continuous: false, json: json)
}

/// The end of a run, either mode: each gun's last status line, the summary (and its JSON line), the
/// reason on standard error when the session did not end normally (unless the operator stopped it),
/// and the exit status.
func finish(_ sim: Simulation, timedOut: Bool, continuous: Bool, json: Bool, midSession: Bool = false) -> Int32 {
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

func monotonicSeconds() -> Double { Double(monotonicNanos()) / 1e9 }

/// SIGINT or SIGTERM, or the central system's Reset (the OCPP client's thread), asked the run to end: set
/// from a signal handler and another thread, read by the main thread's loop, so an atomic (a lock-free
/// store is async-signal-safe; issue 34 found the plain global a data race).
private let stopFlag = Atomic<Bool>(false)
nonisolated var stopRequested: Bool {
    get { stopFlag.load(ordering: .acquiring) }
    set { stopFlag.store(newValue, ordering: .releasing) }
}
/// How long, in station time, an orderly stop on SIGINT or SIGTERM waits for the running sessions to end:
/// a stop takes the car's BST/BSD exchange (up to 10 s, docs/standards.md "Fault reactions"), the welding
/// check and the unlock; 30 s covers them with room.
let orderlyStopBound = TimeSpan.s(30)

/// The orderly stop of a loop driven by chargerd on SIGINT or SIGTERM (a simulated board in virtual time,
/// a bench board, a real board): the first call after the signal sends the operator's stop to every gun whose session
/// runs; the loop ends once none is in a session any more, or `orderlyStopBound` after the signal
/// (station time). Before it, the real board's loop stopped at the signal and forced the outputs safe:
/// K1/K2 opened under the charging current (docs/technician.md promises "sessions stop in order").
struct OrderlyStop {
    /// A session holds its gun from the lock to the unlock.
    static let inSession: Set<SessionPhase> = [.locking, .auxPower, .handshake, .insulationCheck, .identification, .parameterExchange,
                                               .precharge, .charging, .stopping, .statistics, .weldingCheck, .unlocking]
    private(set) var until: Instant? = nil
    /// True when the loop may end now.
    mutating func done(phases: [SessionPhase], now: Instant, stop: (Int) -> Void) -> Bool {
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
/// The central system asked for a Reset (OCPP): the run ends in order and chargerd exits 5, which the
/// service manager restarts (Restart=on-failure).
/// Written by the OCPP client's thread (onReset, onFirmwareInstalled), read by the main thread: under a
/// lock (a String is not one machine word; the plain global was a data race, issue 34).
private let resetReason = Mutex<String?>(nil)
nonisolated var resetRequested: String? {
    get { resetReason.withLock { $0 } }
    set { resetReason.withLock { $0 = newValue } }
}
/// The exit status, 5 when the run ended for a Reset.
func exitStatus(_ code: Int32) -> Int32 { resetRequested != nil ? 5 : code }
func installSignalHandlers() {
    signal(SIGINT) { _ in stopRequested = true }
    signal(SIGTERM) { _ in stopRequested = true }
}

func writeStderr(_ s: String) {
    var bytes = Array(s.utf8)
    _ = write(2, &bytes, bytes.count)
}

func fail(_ message: String) -> Never {
    writeStderr("chargerd: \(message)\n")
    exit(2)
}

struct EMSMap: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ems-map",
        abstract: "Print the EMS Modbus TCP register map as CSV (the data file HIL/ems-register-map.csv).")
    func run() throws { print(EMSRegisterMap.csv, terminator: "") }
}

struct CANDatabase: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "can-dbc",
        abstract: "Print the GB/T 27930-2015 messages as a DBC file (the data file HIL/can/gbt27930-2015.dbc).")
    func run() throws { print(GBT27930.dbc, terminator: "") }
}

Chargerd.main()
