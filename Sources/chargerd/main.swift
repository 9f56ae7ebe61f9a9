// chargerd: the charger controller. On a sim board it runs the mocked plant and a simulated car in
// virtual time; the contract is documented in docs/chargerd.md ("chargerd contract").
import ArgumentParser
import GBT27930
import BoardFile
import SiteFile
import ChargerCore
import ChargerRuntime
import SimulatedStation
import Station
import StationLoop
import LoopContract
import SimPlant
import RealTime
import GPIOD
import Console
import Journal
import Grid
import GridInterfaces
import Foundation
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
        return try GridDesk.open(site: site, board: board, desk: desk, paced: paced, speed: speed, startTime: startTime, idTag: idTag)
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
        switch loaded.kind {
        case .bench: throw ExitCode(exitStatus(try benchRun(loaded).run()))
        case .real: throw ExitCode(exitStatus(try realRun(loaded).run()))
        case .sim:
            let run = try simulatedRun(loaded)
            throw ExitCode(exitStatus(realtime ? run.runRealTime() : run.run()))
        }
    }

    /// A bench board's run: the options that apply to it (the plant's are the emulator's).
    func benchRun(_ loaded: Board) throws -> BenchRun {
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
        let desk = try makeDesk(board: loaded)
        var run = BenchRun(board: loaded, statusInterval: statusInterval, maxTime: maxTime, sessions: sessions, actions: actions, desk: desk)
        run.canLog = canLog
        // The plant's clock paces a bench board (the emulator's speed): the grid peers see it as paced.
        run.grid = try makeGrid(board: loaded, desk: desk, paced: true, speed: 1)
        run.json = json
        return run
    }

    /// A real board's run: its GPIO lines requested (outputs safe) before anything else can fail.
    func realRun(_ loaded: Board) throws -> RealBoardRun {
        guard car == nil && carOn.isEmpty && speed == "max" && inject.isEmpty && !continuous else {
            fail("on a real board the car, the plant and the time are real: --car, --car-on, --speed, --inject and --continuous do not apply")
        }
        let front: GPIOFrontEnd
        do {
            front = try GPIOFrontEnd(map: loaded.gpio, guns: loaded.spec.gunCount, modules: loaded.spec.moduleCount, period: loaded.spec.period)
        } catch {
            fail("board '\(loaded.name)' (\(loaded.path)): \(error)")
        }
        installSignalHandlers()
        let desk: OperatorDesk
        do { desk = try makeDesk(board: loaded) } catch { front.makeSafe(); throw error }
        guard (maxTimeOption ?? 1) > 0, statusInterval >= 0 else { front.makeSafe(); fail("--status-interval and --max-time must be positive") }
        var run = RealBoardRun(
            board: loaded, front: front, statusInterval: statusInterval, maxTime: maxTimeOption ?? .infinity, sessions: sessions, json: json,
            desk: desk)
        run.canLog = canLog
        run.grid = try makeGrid(board: loaded, desk: desk, paced: true, speed: 1)
        return run
    }

    /// A simulated board's run: its cars, injections and pace from the options.
    func simulatedRun(_ loaded: Board) throws -> SimulatedRun {
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
        guard statusInterval >= 0, maxTime > 0, arrivalInterval >= 0, memoryInterval >= 0 else {
            fail("--status-interval, --max-time, --arrival-interval and --memory-interval must be positive")
        }
        if realtime && factor != nil { fail("--realtime runs at the board's own period (1x); drop --speed") }

        installSignalHandlers()
        let sim = Simulation(board: loaded, cars: cars, injections: scheduled)
        let desk = try makeDesk(board: loaded)
        sim.restoreLatched(desk.latchedAtStart)
        let grid = try makeGrid(board: loaded, desk: desk, paced: realtime || factor != nil, speed: factor ?? 1)
        var run = SimulatedRun(board: loaded, sim: sim, desk: desk, grid: grid, cars: cars)
        run.factor = factor
        run.statusInterval = statusInterval
        run.maxTime = maxTime
        run.continuous = continuous
        run.arrivalInterval = arrivalInterval
        run.memoryInterval = memoryInterval
        run.json = json
        return run
    }

    /// The journal and the console, as the options say.
    func makeDesk(board: Board) throws -> OperatorDesk {
        var o = DeskOptions()
        o.journal = journal; o.journalMaxKb = journalMaxKb; o.journalFiles = journalFiles; o.journalAcks = journalAcks
        o.console = console; o.credentials = credentials; o.consoleIdle = consoleIdle; o.consoleLockout = consoleLockout
        o.signingKey = signingKey
        return try OperatorDesk(options: o, board: board, version: firmwareVersion)
    }
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
