// The technician's console: what each command shows and does. Read-only commands need no login; acting
// ones need a technician's login, are refused unless the station allows them now, and are journalled
// with the user. It meets the control loop only through the station's view (a triple buffer, read) and
// the operator-command queue (pushed); it never waits on the loop.
import ChargerCore
import LoopContract
import Foundation
import Journal

/// What the console needs from the rest of chargerd (closures: the console's own thread calls them).
public struct ConsoleContext: @unchecked Sendable {
    /// The newest station view (the console thread is the triple buffer's only reader).
    public var view: () -> StationView
    /// Queues an operator command for the loop; false when the queue is full.
    public var send: (OperatorCommand) -> Bool
    public var journal: Journal
    /// nil: no credentials file, acting commands cannot be unlocked.
    public var credentials: Credentials?
    /// "chargerd 0.6.0" and the board: "NAME, checksum HEX", then lines such as "file PATH".
    public var version: String
    public var board: String
    /// The loop's timing (`rt`) and the field bus counters (`comm`), as text.
    public var rt: () -> String
    public var comm: () -> String
    /// Monotonic wall seconds (lockout, idle, watch) and a sleep (actuator tests wait for feedback).
    public var clock: () -> Double
    public var sleep: (Double) -> Void
    /// A module's communication errors as text ("-" where its devices are simulated).
    /// A module's field-bus counters for `modules` ("errors of exchanges"); a simulated board has none.
    public var moduleComm: (Int) -> String = { _ in "no bus" }
    /// The grid interfaces (EMS link, time of use, OCPP profiles, composite), nil without a site file.
    public var grid: (() -> String)? = nil
    /// V2G: sets (or, with nil, clears) a driver's plan on a gun: the lowest SOC to discharge to, the
    /// departure as a local minute of the day, the SOC wanted by then; returns the answer to show. Nil
    /// without a site file (no grid interfaces).
    /// Plug and charge: the whole VIN shown (the site's `show_vin`); masked otherwise.
    public var showVIN = false
    public var v2gPlan: ((Int, (minSoc: Double, departureMinute: Int, targetSoc: Double)?) -> String)? = nil
    /// The car links on CAN (counters, controller state, recent frames), nil on a board without one.
    public var can: (() -> String)? = nil
    public var idleLogout: Double = 600
    public var lockoutTime: Double = 300
    public var maxFailures = 5
    /// Seconds since 1970 (lockouts outlive a restart by it), and the journal's login records from
    /// before this start (`Journal.loginRecordsAtStart`).
    public var wallClock: () -> Double = wallClockSeconds
    public var loginHistory: [JournalEntry] = []

    public init(view: @escaping () -> StationView, send: @escaping (OperatorCommand) -> Bool, journal: Journal,
                credentials: Credentials?, version: String, board: String, rt: @escaping () -> String,
                comm: @escaping () -> String, clock: @escaping () -> Double, sleep: @escaping (Double) -> Void) {
        self.view = view; self.send = send; self.journal = journal; self.credentials = credentials
        self.version = version; self.board = board; self.rt = rt; self.comm = comm; self.clock = clock; self.sleep = sleep
    }
}

public final class ConsoleSession {
    public let ctx: ConsoleContext
    var editor = LineEditor()
    public private(set) var user: String? = nil
    var lastActivity: Double
    /// Failed logins and lockouts, per user name, on the console's clock.
    var guardian: LoginGuard
    /// Waiting for the password of this user.
    var loginUser: String? = nil
    /// `watch status`: the next refresh (wall seconds).
    var watchNext: Double? = nil
    /// A command that ends a running session, waiting for 'yes' until `until` on the console's clock.
    var pending: (raw: String, until: Double, body: () -> String?)? = nil
    /// How long a confirmation waits for its 'yes', in seconds.
    public static let confirmationWait = 30.0
    /// The phases of a session that an operator's stop, taking the gun out of service or a zero cap ends.
    static let runningPhases: Set<SessionPhase> = [.locking, .auxPower, .handshake, .insulationCheck, .identification,
                                                   .parameterExchange, .precharge, .charging]
    /// Temporary caps: gun → controller time (s) they expire at.
    var capExpiry: [Int: Double] = [:]
    var out: [UInt8] = []

    static let commands: [(name: String, acting: Bool, usage: String, help: String)] = [
        ("help", false, "help [COMMAND|CODE]", "list the commands, explain one, or a fault code (help E05)"),
        ("status", false, "status", "each gun: state, V, A, kW, the limit in force and its source, SOC, temperature, the car"),
        ("faults", false, "faults", "the fault log: time, code, reaction, value, cleared or latched"),
        ("modules", false, "modules", "each rectifier module: gun, setpoint, measured V/A/°C, state"),
        ("imd", false, "imd", "insulation monitor per gun: resistance, alarm, self-test"),
        ("limits", false, "limits [GUN]", "every limit source and its value; the one that binds"),
        ("rt", false, "rt", "control loop timing: latency histogram, misses, overruns"),
        ("comm", false, "comm", "per-device Modbus counters"),
        ("can", false, "can", "the car link on CAN: counters, controller state, each car message's age, the last frames"),
        ("log", false, "log [N]", "the last N journal records (default 20)"),
        ("stats", false, "stats", "availability and first-time charge success from the journal"),
        ("report", false, "report", "service report: dates covered, availability (out-of-service time apart), faults by code, the newest 20 sessions"),
        ("export", false, "export text|json", "the whole journal, for the operator's platform"),
        ("version", false, "version", "firmware and board file with its checksum"),
        ("watch", false, "watch status", "status refreshed every second until a key is pressed"),
        ("ascii", false, "ascii on|off", "spell °, Ω, ≤ and the like in ASCII, for terminals without UTF-8"),
        ("login", false, "login USER", "log in as a technician (asks for the password)"),
        ("logout", false, "logout", "end the technician session"),
        ("fault", true, "fault reset [GUN]", "clear latched faults whose cause has gone"),
        ("stop", true, "stop GUN", "stop the session on GUN in order"),
        ("test", true, "test contactor K1|K2|K3|K4 [GUN] | test lock [GUN] | test lamp [GUN]", "actuator test on an idle, unplugged gun below 60 V"),
        ("imd-selftest", true, "imd selftest [GUN]", "run the IMD self-test on an idle gun"),
        ("cap", true, "cap GUN KW [MINUTES] | cap GUN off", "temporary power cap (default 60 minutes)"),
        ("service", true, "service GUN off|on", "take a gun out of service (no new session; a running one stops) and back"),
        ("v2g", true, "v2g GUN MIN-SOC DEPARTURE TARGET | v2g GUN off", "a driver's V2G plan, e.g. 'v2g 0 40 07:00 80': export at peak no lower than 40 %, 80 % again by 07:00"),
    ]

    public init(ctx: ConsoleContext) {
        self.ctx = ctx
        lastActivity = ctx.clock()
        // Lockouts and the failures before them, as the journal kept them across the restart.
        guardian = LoginGuard.fromJournal(
            ctx.loginHistory, known: Set(ctx.credentials.map { Array($0.users.keys) } ?? []), maxFailures: ctx.maxFailures,
                                          base: ctx.lockoutTime, wallNow: ctx.wallClock(), now: lastActivity)
        editor.prompt = prompt
        let guns = max(1, ctx.view().gunCount)
        editor.complete = { Self.completions($0, guns: guns) }
    }

    /// Tab: the lines that complete what is typed, the command names first, then each command's words
    /// (issue 36, ask 5): `test contactor K1 0`, `service 0 off`, `help E05`, `export json`. User names are
    /// never offered.
    public static func completions(_ text: String, guns: Int) -> [String] {
        let words = text.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        let ended = text.hasSuffix(" ")
        // The words before the one being typed, and the start of that one.
        let done = ended ? words : Array(words.dropLast())
        let partial = ended ? "" : (words.last ?? "")
        let gunNames = (0..<guns).map(String.init)
        let d = done.map { $0.lowercased() }
        let names = Set(commands.map { $0.name == "imd-selftest" ? "imd" : $0.name }).sorted()
        var options: [String] = []
        let gunLast = guns > 1   // a gun word only where there is a choice
        switch d.count {
        case 0: options = names
        case 1:
            switch d[0] {
            case "help": options = names + FaultCode.allCases.map { String($0.name.prefix(3)) }
            case "test": options = ["contactor", "lamp", "lock"]
            case "fault": options = ["reset"]
            case "imd": options = ["selftest"]
            case "stop", "cap", "service", "limits", "v2g": options = gunNames
            case "watch": options = ["status"]
            case "export": options = ["json", "text"]
            case "ascii": options = ["off", "on"]
            default: break
            }
        case 2:
            switch (d[0], d[1]) {
            case ("test", "contactor"): options = ["K1", "K2", "K3", "K4"]
            case ("test", "lock"), ("test", "lamp"), ("fault", "reset"), ("imd", "selftest"): options = gunLast ? gunNames : []
            case ("service", _): options = ["off", "on"]
            case ("cap", _), ("v2g", _): options = ["off"]
            default: break
            }
        case 3 where d[0] == "test" && d[1] == "contactor": options = gunLast ? gunNames : []
        default: break
        }
        let head = done.isEmpty ? "" : done.joined(separator: " ") + " "
        return options.filter { $0.lowercased().hasPrefix(partial.lowercased()) }.map { head + $0 }
    }

    var prompt: String { user.map { "charger#\($0)> " } ?? "charger> " }

    /// The board's name and checksum on one line after `first`, its path on the next: a deep path
    /// wraps on its own lines and never splits the checksum from its label.
    func boardLines(first: String) -> [String] {
        ctx.board.split(separator: "\n").enumerated().flatMap { i, line in
            FaultGuide.wrap(i == 0 ? first + line : String(line), width: 80, indent: i == 0 ? "" : "  ", hanging: "    ")
        }
    }

    /// The greeting when a terminal attaches.
    public func banner() -> [UInt8] {
        say((boardLines(first: "\(ctx.version), board ")
             + ["Type 'help' for the commands. Read-only commands need no login."]).joined(separator: "\n"))
        showPrompt()
        return take()
    }

    /// Bytes typed by the technician; returns what to show.
    public func input(_ bytes: ArraySlice<UInt8>) -> [UInt8] {
        lastActivity = ctx.clock()
        // More bytes in one read than a person types (a flood, a paste): the editor echoes the line
        // once, at the end, not edit by edit (see `LineEditor.quiet`).
        editor.quiet = bytes.count > 64
        for b in bytes {
            // Any key ends a watch, and is taken by it (an arrow key's escape sequence goes to the editor,
            // which drops it whole): the bytes read with it are typed as usual, never lost or hidden
            // (found by the console fuzz target: "watch status\rx^Cb" left "b" invisible in the line).
            if watchNext != nil {
                watchNext = nil
                say("(watch ended)")
                showPrompt()
                if b != 0x1B { continue }
            }
            if let e = editor.feed(b, out: &out) {
                switch e {
                case .cancel:
                    if loginUser != nil { loginUser = nil; editor.echo = true }
                    if let p = pending { pending = nil; cancelled(p.raw) }
                    showPrompt()
                case .tooLong(let typed):
                    if loginUser != nil { loginUser = nil; editor.echo = true; say("login cancelled: the password was too long") }
                    else { say("refused: the line was \(typed) characters, longer than \(LineEditor.maxLine); nothing was run") }
                    if let p = pending { pending = nil; cancelled(p.raw) }
                    showPrompt()
                case .line(let l):
                    handle(l)
                    if watchNext == nil && loginUser == nil { showPrompt() }
                }
            }
        }
        editor.redraw(&out)
        editor.quiet = false
        return take()
    }

    /// Called a few times a second: `watch` refresh, idle logout, expiry of temporary caps.
    public func tick() -> [UInt8] {
        let now = ctx.clock()
        if let next = watchNext, now >= next {
            watchNext = next + 1
            out += Array("\u{1B}[H\u{1B}[2J".utf8)   // home, clear (VT100; a dumb terminal shows it as noise and scrolls)
            statusCommand()
            say("(watching: press any key to stop)")
        }
        if let u = user, now - lastActivity > ctx.idleLogout {
            journal(.logout(user: user, why: "idle for \(Int(ctx.idleLogout)) s"))
            user = nil
            say("\nlogged out: idle for \(Int(ctx.idleLogout)) s (\(u))")
            showPrompt()
        }
        let v = ctx.view()
        for (g, until) in capExpiry where v.at.seconds >= until {
            capExpiry[g] = nil
            _ = ctx.send(.operatorCap(gun: Int8(g), nil))
            ctx.journal.append(JournalEntry(.command(user: "console", command: "cap \(g) off", result: "temporary cap expired", gun: g), t: v.at.seconds))
        }
        return take()
    }

    /// The terminal went away (pty closed): the technician is logged out.
    public func disconnected() {
        if user != nil { journal(.logout(user: user, why: "terminal disconnected")) }
        user = nil; loginUser = nil; watchNext = nil
        let complete = editor.complete
        editor = LineEditor()
        editor.prompt = prompt
        editor.complete = complete
        out.removeAll()
    }

    // MARK: Commands

    func handle(_ raw: String) {
        if let u = loginUser {
            loginUser = nil
            editor.echo = true
            finishLogin(user: u, password: raw)
            return
        }
        // A command that ends a running session waits for 'yes' on the next line; anything else cancels it.
        if let p = pending {
            pending = nil
            if raw.trimmingSpaces.lowercased() == "yes" && ctx.clock() <= p.until { acting(p.raw) { p.body() } } else { cancelled(p.raw) }
            return
        }
        let words = raw.split(separator: " ").map(String.init)
        guard let cmd = words.first?.lowercased() else { return }
        let args = Array(words.dropFirst())
        // Strict arguments: a command given more words than it takes is refused with its usage, never run
        // on the words it knows (issue 36: 'cap 0 59.5 30 extra' capped the gun).
        let most: [String: Int] = ["status": 0, "faults": 0, "modules": 0, "rt": 0, "comm": 0, "can": 0, "stats": 0, "version": 0,
                                   "logout": 0, "whoami": 0, "log": 1, "export": 1, "watch": 1, "help": 2, "?": 2, "fault": 2,
                                   "stop": 1, "cap": 3, "imd": 2, "test": 3]
        if let n = most[cmd], args.count > n {
            let name = cmd == "?" ? "help" : cmd == "imd" && args.first?.lowercased() == "selftest" ? "imd-selftest" : cmd
            return usage(name)
        }
        switch cmd {
        case "help", "?": helpCommand(args)
        case "status": statusCommand()
        case "faults": faultsCommand()
        case "modules": modulesCommand()
        case "imd":
            if args.first?.lowercased() == "selftest" { acting(raw) { imdSelfTest(Array(args.dropFirst())) } }
            else if args.isEmpty { imdCommand() } else { usage("imd") }
        case "limits": limitsCommand(args)
        case "rt": say(ctx.rt())
        case "comm": say(ctx.comm())
        case "can": say(ctx.can?() ?? "this board has no car link on CAN ([[can]] in the board file)")
        case "log": logCommand(args)
        case "stats": statsCommand()
        case "report":
            guard args.isEmpty else { return usage("report") }
            let v = ctx.view()
            say(ServiceReport(entries: allEntries(), guns: max(1, v.gunCount)).text(sessionLimit: 20))
        case "export": exportCommand(args)
        case "version":
            say(([ctx.version] + boardLines(first: "board ")
                 + ctx.journal.liveReport.split(separator: "\n").flatMap {
                     FaultGuide.wrap($0.trimmingCharacters(in: .whitespaces), width: 80, indent: $0.hasPrefix(" ") ? "  " : "", hanging: "    ")
                 }).joined(separator: "\n"))
        case "watch":
            guard args.first?.lowercased() == "status" else { return usage("watch") }
            watchNext = ctx.clock()
            _ = tick()
        case "login": loginCommand(args)
        case "logout":
            if let u = user { journal(.logout(user: u, why: "by command")); user = nil; say("logged out (\(u))") } else { say("not logged in") }
        case "whoami": say(user ?? "not logged in")
        case "ascii":
            guard args.count == 1, ["on", "off"].contains(args[0].lowercased()) else { return usage("ascii") }
            ascii = args[0].lowercased() == "on"
            say(ascii ? "ascii on: degC, kOhm, <= (no UTF-8)" : "ascii off: °C, kΩ, ≤ (UTF-8)")
        case "fault": acting(raw) { faultCommand(args) }
        case "stop": confirmIfRunning(raw, gun: args.first, effect: "stops its session") { [unowned self] in self.stopCommand(args) }
        case "test": acting(raw) { testCommand(args) }
        case "cap":
            let zero = args.count >= 2 && Double(args[1].lowercased().replacingOccurrences(of: "kw", with: "")) == 0
            if zero { confirmIfRunning(raw, gun: args.first, effect: "holds its session at no power") { [unowned self] in self.capCommand(args) } }
            else { acting(raw) { capCommand(args) } }
        case "service":
            if args.count == 2 && args[1].lowercased() == "off" {
                confirmIfRunning(raw, gun: args.first, effect: "stops its session and takes the gun out of service") { [unowned self] in self.serviceCommand(args) }
            } else { acting(raw) { serviceCommand(args) } }
        case "v2g": acting(raw) { v2gCommand(args) }
        default:
            let printable = cmd.count > 24 ? String(cmd.prefix(24)) + "…" : cmd
            say("unknown command '\(printable)': type 'help'")
        }
    }

    func usage(_ name: String) {
        let c = Self.commands.first { $0.name == name }!
        say("usage: \(c.usage)")
    }

    func helpCommand(_ args: [String]) {
        if let a = args.first?.lowercased() {
            // A fault code: what trips it, the checks to make, what a reset does.
            if a.hasPrefix("e"), a.dropFirst().first?.isNumber == true {
                guard let code = FaultGuide.code(named: a) else { return say("no fault code '\(String(a.prefix(24)))': codes are E01...E\(FaultCode.allCases.count)") }
                return say(FaultGuide.help(code))
            }
            let key = a == "imd" && args.count > 1 ? "imd-selftest" : a
            guard let c = Self.commands.first(where: { $0.name == key }) else { return say("no command '\(String(a.prefix(24)))': type 'help'") }
            say(([c.usage] + FaultGuide.wrap(c.help, width: 80, indent: "  ") + (c.acting ? ["  needs a technician login"] : [])).joined(separator: "\n"))
            if key == "imd" { say("imd selftest [GUN]\n  run the IMD self-test on an idle gun (needs a technician login)") }
            return
        }
        // Within 80 columns: each description wrapped under its own indent.
        var lines = ["read-only:"]
        for c in Self.commands where !c.acting {
            lines += FaultGuide.wrap(c.help, width: 80, indent: "  \(c.usage.padding(toLength: 22, withPad: " ", startingAt: 0)) ",
                                     hanging: String(repeating: " ", count: 25))
        }
        lines.append("acting (after 'login USER'):")
        for c in Self.commands where c.acting {
            lines += FaultGuide.wrap(c.usage, width: 80, indent: "  ", hanging: "    ")
            lines += FaultGuide.wrap(c.help, width: 80, indent: "      ")
        }
        lines += FaultGuide.wrap("keys: Backspace, arrows and Home/End (or Ctrl-A/E) move, Ctrl-W erase word, Ctrl-U erase line, "
                                 + "Ctrl-C cancel, arrows up/down history, Tab completes; "
                                 + "'help CODE' explains a fault code (help E05)", width: 80, indent: "")
        say(lines.joined(separator: "\n"))
    }

    func statusCommand() {
        let v = ctx.view()
        guard v.cycles > 0 else { return say("no data from the control loop yet") }
        // Within 80 columns (issue 36: 93-95 columns a gun, the car's line 121): each gun's figures, its
        // switches, the car and its faults on lines of their own, long ones wrapped under a hanging indent.
        var station = "t=\(fmt(v.at.seconds, 1)) s  station: grid \(fmt(v.gridLimit.kilowatts, 0)) kW"
        if let sp = v.stationSetpoint { station += ", grid setpoint \(fmt(sp.kilowatts, 1)) kW" }
        if v.emergencyStop { station += ", E-STOP PRESSED" }
        if v.doorOpen { station += ", DOOR OPEN" }
        if !v.mainsPresent { station += ", MAINS LOST" }
        if !v.stationFaults.isEmpty { station += ", station faults " + v.stationFaults.codes.map(\.name).joined(separator: ", ") }
        var lines = FaultGuide.wrap(station, width: 80, indent: "", hanging: "    ")
        for g in 0..<v.gunCount {
            let x = v.guns[g]
            let st = x.status
            let head = "gun\(g) \(st.phase.name)\(x.outOfService ? " (OUT OF SERVICE)" : "")  \(fmt(st.voltage.value, 1)) V  \(fmt(st.current.value, 1)) A  \(fmt((st.voltage * st.current).kilowatts, 1)) kW"
                + "  limit \(fmt(st.powerLimit.kilowatts, 1)) kW (\(st.binding.name))"
            lines += FaultGuide.wrap(head, width: 80, indent: "", hanging: "      ")
            let plugged = st.phase != .unplugged
            lines.append("      SOC \(st.soc.isNaN || !plugged ? "-" : fmt(st.soc, 1) + " %")  gun \(fmt(st.gunTemperature.value, 1)) °C  meter \(fmt(x.meterEnergy.kilowattHours, 3)) kWh  CC1 \(fmt(x.cc1.value, 1)) V")
            lines.append("      lock \(x.lockConfirmed ? "locked" : "open")  K1 \(x.k1Closed ? "closed" : "open")  K2 \(x.k2Closed ? "closed" : "open")  K3/K4 \(x.k3k4Closed ? "closed" : "open")")
            if let mv = x.carMaxVoltage {
                var car = "car: max \(fmt(mv.value, 0)) V (BHM)"
                if let cv = x.carMaxChargeVoltage, let ci = x.carMaxChargeCurrent { car += ", charge max \(fmt(cv.value, 0)) V / \(fmt(ci.value, 0)) A (BCP)" }
                if let bv = x.carBatteryVoltage { car += ", battery \(fmt(bv.value, 1)) V" }
                if let dv = x.carVoltageDemand, let di = x.carCurrentDemand { car += ", asks \(fmt(dv.value, 1)) V \(fmt(di.value, 1)) A (BCL)" }
                if let t = x.carMaxCellTemperature { car += ", cells ≤ \(fmt(t.value, 0)) °C" }
                lines += FaultGuide.wrap(car, width: 80, indent: "      ", hanging: "           ")
            }
            if !st.faults.isEmpty {
                let f = "FAULT " + st.faults.codes.map(\.name).joined(separator: ", ") + " (latched: 'faults', 'help CODE', then 'fault reset' once the cause is gone)"
                lines += FaultGuide.wrap(f, width: 80, indent: "      ", hanging: "            ")
            }
        }
        say(lines.joined(separator: "\n"))
    }

    func faultsCommand() {
        let entries = ctx.journal.recent()
        let boot = entries.last?.boot ?? 0
        let faults = entries.compactMap { e -> (JournalEntry, FaultNote)? in if case .fault(let f) = e.event { (e, f) } else { nil } }
        guard !faults.isEmpty else { return say("no fault in the journal") }
        let cleared = Set(entries.compactMap { e -> UInt64? in if case .faultCleared(let f) = e.event, e.boot == boot { f.faultSeq } else { nil } })
        var s = ""
        // Two lines a fault, within 80 columns: what and where, then when and the reading against its limit.
        for (e, f) in faults.suffix(50) {
            let state = e.boot != boot ? "before restart" : cleared.contains(f.faultSeq ?? 0) ? "cleared" : (f.reaction == "derate" || f.reaction == "stop-and-reconnect") ? "logged" : "LATCHED"
            let module = f.text.flatMap { $0.hasPrefix("module ") ? $0 : nil }
            let again = f.text?.hasPrefix("latched again at start") == true ? " (again at start)" : ""
            s += "#\(e.seq) \(f.gun.map { "gun\($0)" } ?? "station")\(module.map { " " + $0 } ?? "") \(f.code) \(f.reaction) \(state)\(again)\n"
            let reading = FaultGuide.reading(value: f.value, unit: f.unit, limit: f.limit, code: f.code)
            s += "    t=\(fmt(e.t, 3)) s \(e.wall)\(reading.map { "  " + $0 } ?? "")\n"
        }
        s += "what a code means and what to check: 'help CODE' (e.g. 'help \(faults.last.map { String($0.1.code.prefix(3)) } ?? "E05")')"
        say(s)
    }

    func modulesCommand() {
        let v = ctx.view()
        guard v.moduleCount > 0 else { return say("no module") }
        // Within 80 columns. A silent module's readings are its last answer's, not the present: they are
        // not shown as measured (issue 36: a silent module showed 407.4 V and 73.6 A on an idle gun); the
        // last answer is listed below the table with its age.
        var s = "mod gun state   set V  set A  meas V  meas A     °C  last seen  comm errors"
        var stale: [String] = []
        for m in 0..<v.moduleCount {
            let x = v.modules[m]
            let silent = x.silentSince != nil || x.commLost
            let state = silent ? "SILENT" : x.faulted ? "FAULT" : x.enabled ? "on" : "off"
            let age = (v.at - x.seenAt).seconds
            let seen = x.seenAt == .never ? "never" : age < 10 ? "\(fmt(age * 1000, 0)) ms ago" : age < 600 ? "\(fmt(age, 1)) s ago" : "\(fmt(age / 60, 0)) min ago"
            let reading = silent || x.seenAt == .never
                ? "-".leftPad(7) + " " + "-".leftPad(7) + " " + "-".leftPad(6)
                : "\(fmt(x.voltage.value, 1).leftPad(7)) \(fmt(x.current.value, 1).leftPad(7)) \(fmt(x.temperature.value, 1).leftPad(6))"
            if silent && x.seenAt != .never {
                stale.append("module \(m) last answered \(seen): \(fmt(x.voltage.value, 1)) V, \(fmt(x.current.value, 1)) A, \(fmt(x.temperature.value, 1)) °C")
            }
            s += "\n\(String(m).leftPad(3)) \(x.gun < 0 ? "  -" : String(x.gun).leftPad(3)) \(state.padding(toLength: 6, withPad: " ", startingAt: 0)) \(fmt(x.voltageSetpoint.value, 1).leftPad(6)) \(fmt(x.currentSetpoint.value, 1).leftPad(6)) \(reading)  \(seen.padding(toLength: 10, withPad: " ", startingAt: 0)) \(ctx.moduleComm(m))"
        }
        for line in stale { s += "\n" + line }
        s += "\nper-device counters and the last Modbus error: 'comm'"
        say(s)
    }

    func imdCommand() {
        let v = ctx.view()
        var s = ""
        for g in 0..<v.gunCount {
            let x = v.guns[g]
            let r = x.insulation.value.isFinite ? "\(fmt(x.insulation.value / 1000, 1)) kΩ" : "not measuring (open circuit)"
            let seen = x.imdSeenAt == .never ? "never read" : "read \(fmt((v.at - x.imdSeenAt).seconds * 1000, 0)) ms ago"
            s += "gun\(g): insulation \(r), alarm \(x.imdAlarm ? "ON" : "off"), self-test \(x.imdSelfTest)\n"
            s += "      \(seen); ground-fault detector \(x.groundFaultTrip ? "TRIPPED" : "ok"), PE \(x.peContinuity ? "ok" : "LOST")\n"
            // The reading that tripped the last insulation fault of this gun, kept after the IMD reads again.
            let insulation = ctx.journal.recent().last { e in
                if case .fault(let f) = e.event { return f.gun == g && f.code == FaultCode.insulationFault.name }
                return false
            }
            if let e = insulation, case .fault(let f) = e.event {
                let reading = FaultGuide.reading(value: f.value, unit: f.unit, limit: f.limit, code: f.code) ?? "the IMD's alarm"
                s += "      last insulation fault #\(e.seq) at t=\(fmt(e.t, 3)) s: \(reading)\n"
            }
        }
        say(String(s.dropLast()))
    }

    /// Plug and charge on the `limits` page: the word on the car's VIN, and the VIN the car sent in this
    /// recognition (masked unless the site shows the whole; its bytes shown only when they are a VIN's).
    public static func vinLine(_ x: GunSnapshot, whole: Bool) -> String {
        var vin = "not sent yet"
        if x.vinSent {
            let b = (0..<17).map { x.vin[$0] }
            if b.allSatisfy({ $0 == 0 }) { vin = "none (short BRM)" }
            else if b.allSatisfy(BRM.isVINByte) { let t = String(decoding: b, as: UTF8.self); vin = whole ? t : BRM.maskedVIN(t) }
            else { vin = "malformed" }
        }
        let word: String
        switch x.vinCheck {
        case .notUsed: word = "not used"
        case .pending: word = "waiting for the answer (recognition held, at most \(Int(Standard.vinAnswerWait.seconds)) s)"
        case .accepted: word = "accepted"
        case .refused: word = "refused: no energy"
        case .refusedFallBack: word = "refused: waiting for an idTag or a remote start"
        case .pendingFallBack: word = "waiting for the answer (recognition held, at most \(Int(Standard.vinAnswerWait.seconds)) s; then an idTag or a remote start)"
        }
        return "by VIN, \(word)" + (x.vinSent ? "\n                   VIN \(vin)" : "")
    }

    func limitsCommand(_ args: [String]) {
        let v = ctx.view()
        guard args.count <= 1 else { return usage("limits") }
        // A gun named is a gun that exists: `limits 7`, `limits -1` and `limits x` are errors, not the
        // station line alone or every gun.
        var guns = Array(0..<v.gunCount)
        if let a = args.first {
            guard let g = gunArg(a, view: v) else { return }
            guns = [g]
        }
        var s = "station: grid connection \(fmt(v.gridLimit.kilowatts, 0)) kW (board file)"
        s += v.stationSetpoint.map { ", grid setpoint \(fmt($0.kilowatts, 1)) kW" } ?? ", no grid setpoint"
        for g in guns {
            let x = v.guns[g]
            let volts = max(x.status.voltage.value, 1)
            s += "\ngun\(g) (at \(fmt(volts, 0)) V): binding \(x.status.binding.name), limit \(fmt(x.currentLimit.value, 1)) A = \(fmt(x.status.powerLimit.kilowatts, 1)) kW"
            s += "\n  gun rating       \(fmt(x.ratedPower.kilowatts, 0)) kW, \(fmt(x.maxCurrent.value, 0)) A (board file)"
            s += "\n  connector        \(fmt(x.connectorCurrent.value, 0)) A (board file)"
            s += "\n  thermal          \(fmt(x.thermalCurrent.value, 1)) A at \(fmt(x.status.gunTemperature.value, 1)) °C (board derating curve)"
            s += "\n  grid setpoint    " + (x.gridSetpoint.map { "\(fmt($0.kilowatts, 1)) kW" } ?? "none")
                + (x.gridCurrentLimit.map { (x.gridSetpoint == nil ? "" : ", ") + "\(fmt($0.value, 1)) A" } ?? "")
                + (x.gridSource == .none ? "" : " (\(x.gridSource.name))")
            if !x.authorized { s += "\n  authorization    waiting (idTag or remote start)" }
            if x.vinCheck != .notUsed { s += "\n  authorization    " + Self.vinLine(x, whole: ctx.showVIN) }
            s += "\n  operator cap     " + (x.operatorCap.map { "\(fmt($0.kilowatts, 1)) kW" + (capExpiry[g].map { " until t=\(fmt($0, 0)) s" } ?? "") } ?? "none")
            s += "\n  vehicle demand   " + (x.carCurrentDemand.map { "\(fmt($0.value, 1)) A" } ?? "none")
            s += "\n  command now      \(fmt(x.currentSetpoint.value, 1)) A" + (x.currentSetpoint < .zero ? " (discharging: V2G)" : "")
            if x.carOffersDischarge || x.dischargeLimit > .zero {
                s += "\n  V2G discharge    " + (x.carOffersDischarge ? "the car offers it down to \(fmt(x.carMinSoc, 0)) %" : "no offer from the car")
                    + "; limit \(fmt(x.dischargeLimit.value, 1)) A (\(x.dischargeBinding.name)), \(fmt(x.meterExportEnergy.kilowattHours, 3)) kWh exported by the meter"
            }
        }
        if let grid = ctx.grid { s += "\n" + grid() }
        say(s)
    }

    func logCommand(_ args: [String]) {
        var n = 20
        if let a = args.first {
            guard let k = Int(a), k > 0, k <= Journal.recentLimit else { return say("log: N must be 1...\(Journal.recentLimit)") }
            n = k
        }
        let r = ctx.journal.recent(n)
        // Each record on lines of at most 80 columns, continued under a hanging indent (export keeps
        // one record a line, for machines).
        say(r.isEmpty ? "the journal is empty" : r.flatMap { FaultGuide.wrap($0.line, width: 80, indent: "", hanging: "    ") }.joined(separator: "\n"))
    }

    func allEntries() -> [JournalEntry] {
        if let d = ctx.journal.directory { return Journal.readAll(directory: d).entries }
        return ctx.journal.recent()
    }

    func statsCommand() {
        let v = ctx.view()
        say(OperatorStats(entries: allEntries(), guns: max(1, v.gunCount)).text.trimmingCharacters(in: .newlines))
    }

    func exportCommand(_ args: [String]) {
        let form = args.first?.lowercased()
        guard form == "text" || form == "json" else { return usage("export") }
        let entries = allEntries()
        if form == "text" { say(entries.map(\.line).joined(separator: "\n")) }
        else {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            say(entries.map { String(decoding: (try? enc.encode($0)) ?? Data(), as: UTF8.self) }.joined(separator: "\n"))
        }
    }

    // MARK: Login

    func loginCommand(_ args: [String]) {
        guard ctx.credentials != nil else { return say("login: no credentials file configured (chargerd --credentials FILE)") }
        guard args.count == 1 else { return usage("login") }
        let u = String(args[0].prefix(32))
        let name = Credentials.validUser(u) ? u : "(invalid name)"
        // A name locked out gets no password prompt: it is told how long is left, and the attempt is
        // journalled (issue 36, ask 6). The wait is said before anything is typed, so the password is not.
        let left = guardian.remaining(u, now: ctx.clock())
        if left > 0 {
            let s = Int(left.rounded(.up))
            journal(.loginRefused(user: name, text: "locked out, \(s) s left"))
            return say("login refused: \(name) is locked out for another \(s) s after \(ctx.maxFailures) failed logins (attempt journalled)")
        }
        loginUser = u
        editor.echo = false
        out += Array("password: ".utf8)
    }

    func finishLogin(user u: String, password: String) {
        let now = ctx.clock()
        let name = Credentials.validUser(u) ? u : "(invalid name)"
        // A lockout that began while the password was being typed (another terminal's failures).
        let left = guardian.remaining(u, now: now)
        if left > 0 {
            journal(.loginRefused(user: name, text: "locked out, \(Int(left.rounded(.up))) s left"))
            return say("login refused: \(name) is locked out for another \(Int(left.rounded(.up))) s")
        }
        if ctx.credentials?.verify(user: u, password: password) == true {
            user = u
            guardian.succeeded(u)
            journal(.login(user: u))
            say("logged in as \(u); acting commands are journalled with your name")
        } else {
            let (n, locked) = guardian.failed(u, now: now)
            journal(.loginFailed(user: name, text: "failure \(n) of \(ctx.maxFailures)"))
            if let seconds = locked {
                journal(.lockout(user: name, text: "\(ctx.maxFailures) failed logins: \(name) locked for \(Int(seconds)) s, until \(Journal.wallText(ctx.wallClock() + seconds))"))
                say("login failed; \(ctx.maxFailures) failures: \(name) locked out for \(Int(seconds)) s")
            } else {
                say("login failed")
            }
        }
    }

    @discardableResult
    func journal(_ event: JournalEvent) -> JournalEntry { ctx.journal.append(JournalEntry(event, t: ctx.view().at.seconds)) }

    // MARK: Acting commands

    /// Runs an acting command if a technician is logged in; journals it with the user and the result.
    func acting(_ raw: String, _ body: () -> String?) {
        guard let u = user else {
            say("'\(raw.split(separator: " ").first ?? "")' acts on the charger: log in first ('login USER')")
            return
        }
        let before = out.count
        let result = body()
        let shown = String(decoding: out[before...], as: UTF8.self)
        let rec = journal(.command(user: u, command: String(raw.prefix(LineEditor.maxLine)),
                                   result: result ?? shown.split(separator: "\r\n").last.map(String.init) ?? "", gun: nil))
        say("(journal #\(rec.seq))")
    }

    /// Runs an acting command at once, unless it would end a running session on its gun: then it says
    /// what runs there and what the command does to it, and waits for 'yes' on the next line (issue 36:
    /// 'service 0 off', 'stop', 'cap 0 0' ended a charge on one mistyped line). Not logged in, or a gun
    /// that does not parse: the command runs as typed and refuses as it always does.
    func confirmIfRunning(_ raw: String, gun text: String?, effect: String, _ body: @escaping () -> String?) {
        let v = ctx.view()
        let g: Int? = text.map { Int($0).flatMap { $0 >= 0 && $0 < v.gunCount ? $0 : nil } } ?? (v.gunCount == 1 ? 0 : nil)
        guard user != nil, let g, Self.runningPhases.contains(v.guns[g].status.phase) else { return acting(raw) { body() } }
        let x = v.guns[g].status
        let power = (x.voltage * x.current).kilowatts
        pending = (raw, ctx.clock() + Self.confirmationWait, body)
        say("gun\(g) is \(x.phase.name)\(x.phase == .charging ? " at \(fmt(power, 1)) kW" : "")\(x.soc.isFinite ? ", SOC \(fmt(x.soc, 1)) %" : ""): "
            + "'\(String(raw.prefix(40)))' \(effect).\ntype 'yes' to go on (within \(Int(Self.confirmationWait)) s); anything else cancels")
    }

    /// A confirmation answered with anything but 'yes' (or too late, or Ctrl-C): nothing ran; journalled.
    func cancelled(_ raw: String) {
        say("cancelled: '\(String(raw.prefix(40)))' was not run")
        if let u = user { journal(.command(user: u, command: String(raw.prefix(LineEditor.maxLine)), result: "cancelled at the confirmation", gun: nil)) }
    }

    /// GUN from `arg`, or gun 0 on a one-gun station; nil (and a message) otherwise.
    func gunArg(_ arg: String?, view v: StationView) -> Int? {
        if let a = arg {
            guard let g = Int(a), g >= 0, g < v.gunCount else { say("no gun '\(String(a.prefix(8)))': guns are 0...\(v.gunCount - 1)"); return nil }
            return g
        }
        if v.gunCount == 1 { return 0 }
        say("which gun? (0...\(v.gunCount - 1))")
        return nil
    }

    func faultCommand(_ args: [String]) -> String? {
        guard args.first?.lowercased() == "reset" else { usage("fault"); return "usage" }
        let v = ctx.view()
        let guns: [Int]
        if args.count > 1 { guard let g = gunArg(args[1], view: v) else { return "refused: bad gun" }; guns = [g] } else { guns = Array(0..<v.gunCount) }
        for g in guns where !ctx.send(.reset(gun: Int8(g))) { say("the loop's command queue is full: try again"); return "refused: queue full" }
        // The answer is the loop's: wait until the view has been published twice after the command
        // (the loop has taken it and stepped on), or the faults have cleared, within 5 s of wall time; a
        // busy host makes the wait longer, never the answer wrong.
        var after = ctx.view()
        let t0 = ctx.clock()
        func cleared() -> Bool { guns.allSatisfy { after.guns[$0].status.faults.isEmpty } }
        while ctx.clock() - t0 < 5 {
            ctx.sleep(0.05)
            after = ctx.view()
            if cleared() || after.cycles >= v.cycles &+ 250 { break }
        }
        if after.cycles < v.cycles &+ 250 && !cleared() {
            say("reset sent; the loop has not answered within 5 s: see 'faults'")
            return "no answer yet"
        }
        var still: [String] = []
        for g in guns { still += after.guns[g].status.faults.codes.map { "gun\(g) \($0.name)" } }
        if still.isEmpty { say("reset sent: no fault latched now"); return "cleared" }
        say("reset sent; still latched (cause present?): " + still.joined(separator: ", "))
        return "still latched: " + still.joined(separator: ", ")
    }

    func stopCommand(_ args: [String]) -> String? {
        let v = ctx.view()
        guard let g = gunArg(args.first, view: v) else { return "refused: bad gun" }
        guard v.guns[g].status.phase == .charging else { say("refused: gun\(g) is \(v.guns[g].status.phase.name), not charging"); return "refused" }
        _ = ctx.send(.stop(gun: Int8(g)))
        say("stop requested on gun\(g)")
        return "stop requested"
    }

    /// Why an actuator test is refused on gun `g` now, in words, or nil: the core's own reason
    /// (`actuatorTestRefusal`, as the loop last evaluated it) with the values behind it.
    func testRefusal(_ v: StationView, _ g: Int, _ kind: ActuatorTest) -> String? {
        let x = v.guns[g]
        switch kind == .contactorsK1K2 ? x.contactorTestRefusal : x.testRefusal {
        case nil: return nil
        case .faultLatched: return "gun\(g) has a latched fault (\(x.status.faults.codes.map(\.name).joined(separator: ",")))"
        case .notIdle: return "gun\(g) is not idle (\(x.status.phase.name))"
        case .plugged: return "gun\(g) is plugged in (CC1 \(fmt(x.cc1.value, 1)) V)"
        case .outputLive:
            let hi = max(x.vehicleSideVoltage.value, x.chargerSideVoltage.value)
            return "gun\(g) output is at \(fmt(hi, 0)) V (must be below \(fmt(Standard.unlockMaxVoltage.value, 0)) V)"
        }
    }

    func testCommand(_ args: [String]) -> String? {
        guard let what = args.first?.lowercased() else { usage("test"); return "usage" }
        var rest = Array(args.dropFirst())
        let kind: ActuatorTest
        var name = what
        switch what {
        case "contactor":
            guard let k = rest.first?.uppercased(), ["K1", "K2", "K3", "K4"].contains(k) else { usage("test"); return "usage" }
            kind = k == "K1" || k == "K2" ? .contactorsK1K2 : .contactorsK3K4
            name = "contactor \(k)"
            rest.removeFirst()
        case "lock": kind = .lock
        case "lamp": kind = .lamp
        default: usage("test"); return "usage"
        }
        let v = ctx.view()
        guard let g = gunArg(rest.first, view: v) else { return "refused: bad gun" }
        return runTest(kind, name: name, gun: g, hold: kind == .lamp ? 3 : 2)
    }

    func imdSelfTest(_ args: [String]) -> String? {
        let v = ctx.view()
        guard let g = gunArg(args.first, view: v) else { return "refused: bad gun" }
        return runTest(.imdSelfTest, name: "imd selftest", gun: g, hold: 10)
    }

    /// Holds the test for up to `hold` wall seconds, reports what the feedback said, and releases it.
    /// K1/K2 also under the gun's own contactor fault (E14, E15; `contactorRepairTest`), to check a repair
    /// before the reset: both the close and the open time are measured by the loop, to its cycle.
    func runTest(_ kind: ActuatorTest, name: String, gun g: Int, hold: Double) -> String? {
        let v = ctx.view()
        if let why = testRefusal(v, g, kind) { say("refused: \(why)"); return "refused: \(why)" }
        // The faults standing when the test began: only a new one aborts it (a repair test runs under its own).
        let standing = v.guns[g].status.faults
        let phase0 = v.guns[g].status.phase
        let closedBefore = v.guns[g].contactorClosedAt, openedBefore = v.guns[g].contactorOpenedAt
        guard ctx.send(.actuatorTest(gun: Int8(g), kind)) else { say("the loop's command queue is full: try again"); return "refused: queue full" }
        let t0 = ctx.clock()
        let v0 = v.at
        var result = "no feedback within \(fmt(hold, 0)) s"
        var closed = false
        var lamps = Set<UInt8>()
        func aborted(_ x: StationView) -> String? {
            let gx = x.guns[g]
            if gx.status.phase != phase0 { return "aborted: gun\(g) is \(gx.status.phase.name)" }
            let new = gx.status.faults.subtracting(standing)
            if !new.isEmpty { return "aborted: \(new.codes.map(\.name).joined(separator: ","))" }
            return nil
        }
        while ctx.clock() - t0 < hold {
            ctx.sleep(0.02)
            let x = ctx.view()
            let gx = x.guns[g]
            if let why = aborted(x) { result = why; break }
            let ms = fmt((x.at - v0).seconds * 1000, 0)
            switch kind {
            case .contactorsK1K2:
                if gx.contactorClosedAt != closedBefore && gx.k1Closed && gx.k2Closed {
                    closed = true
                    result = "K1 and K2 closed in \(fmt(gx.contactorCloseTime.seconds * 1000, 0)) ms (aux contacts)"
                    break
                }
                if gx.k1Closed != gx.k2Closed { result = "only \(gx.k1Closed ? "K1" : "K2") closed" }
                continue
            case .contactorsK3K4:
                if gx.k3k4Closed { result = "K3/K4 closed (aux contact) after \(ms) ms of controller time"; break }
            case .lock:
                if gx.lockConfirmed { result = "lock confirmed by its feedback after \(ms) ms of controller time"; break }
            case .lamp:
                lamps.insert(gx.lamp.rawValue)
                if lamps.count >= 2 { result = "lamp driven (charging / fault alternating)" }
                continue
            case .imdSelfTest:
                if gx.imdSelfTest == .passed { result = "IMD self-test passed after \(ms) ms of controller time"; break }
                if gx.imdSelfTest == .failed { result = "IMD self-test FAILED after \(ms) ms of controller time"; break }
                continue
            case .none: break
            }
            if result.hasPrefix("no feedback") { continue }
            break
        }
        _ = ctx.send(.actuatorTest(gun: Int8(g), .none))
        if kind == .contactorsK1K2 && closed {
            // The release: the open time, or contacts that stay closed (still welded).
            var opened = false
            let t1 = ctx.clock()
            while ctx.clock() - t1 < 2 {
                ctx.sleep(0.02)
                let gx = ctx.view().guns[g]
                if gx.contactorOpenedAt != openedBefore && !gx.k1Closed && !gx.k2Closed {
                    result += ", opened in \(fmt(gx.contactorOpenTime.seconds * 1000, 0)) ms"
                    opened = true
                    break
                }
            }
            if !opened {
                let gx = ctx.view().guns[g]
                result += "; \([gx.k1Closed ? "K1" : nil, gx.k2Closed ? "K2" : nil].compactMap { $0 }.joined(separator: " and ")) did NOT open within 2 s (welded?)"
            }
            if !standing.isEmpty && opened {
                result += "; \(standing.codes.map(\.name).joined(separator: ",")) still latched: 'fault reset' if the repair is done"
            }
        } else {
            ctx.sleep(0.1)
        }
        say(FaultGuide.wrap("test \(name) on gun\(g): \(result); released", width: 80, indent: "", hanging: "  ").joined(separator: "\n"))
        return result
    }

    func capCommand(_ args: [String]) -> String? {
        let v = ctx.view()
        guard args.count >= 2, args.count <= 3, let g = gunArg(args[0], view: v) else { usage("cap"); return "usage" }
        if args[1].lowercased() == "off" {
            capExpiry[g] = nil
            _ = ctx.send(.operatorCap(gun: Int8(g), nil))
            say("gun\(g): cap lifted")
            return "cap lifted"
        }
        let rated = v.guns[g].ratedPower.kilowatts
        let text = args[1].lowercased().replacingOccurrences(of: "kw", with: "")
        guard let kw = Double(text), kw.isFinite, kw >= 0, kw <= rated else {
            say("refused: cap '\(String(args[1].prefix(12)))' must be 0...\(fmt(rated, 0)) kW (gun\(g) rating, board file)")
            return "refused: out of range"
        }
        var minutes = 60.0
        if args.count > 2 {
            guard let m = Double(args[2]), m > 0, m <= 24 * 60 else { say("refused: minutes must be 1...1440"); return "refused: bad duration" }
            minutes = m
        }
        guard ctx.send(.operatorCap(gun: Int8(g), .kW(kw))) else { say("the loop's command queue is full: try again"); return "refused: queue full" }
        capExpiry[g] = v.at.seconds + minutes * 60
        say("gun\(g): capped at \(fmt(kw, 1)) kW for \(fmt(minutes, 0)) min")
        return "capped \(fmt(kw, 1)) kW for \(fmt(minutes, 0)) min"
    }

    func serviceCommand(_ args: [String]) -> String? {
        let v = ctx.view()
        guard args.count == 2, let g = gunArg(args[0], view: v), ["on", "off"].contains(args[1].lowercased()) else { usage("service"); return "usage" }
        let out = args[1].lowercased() == "off"
        _ = ctx.send(.outOfService(gun: Int8(g), out))
        let running = v.guns[g].status.phase == .charging
        say(out ? "gun\(g) out of service\(running ? ": the running session stops in order" : "")" : "gun\(g) back in service")
        return out ? "out of service" : "in service"
    }

    func v2gCommand(_ args: [String]) -> String? {
        let v = ctx.view()
        guard let plan = ctx.v2gPlan else { say("no V2G plans here: the station runs without a site file (no grid interfaces)"); return "no site file" }
        guard args.count == 2 || args.count == 4, let g = gunArg(args[0], view: v) else { usage("v2g"); return "usage" }
        if args.count == 2 {
            guard args[1].lowercased() == "off" else { usage("v2g"); return "usage" }
            let r = plan(g, nil); say(r); return r
        }
        func percent(_ t: String) -> Double? {
            let d = Double(t.hasSuffix("%") ? String(t.dropLast()) : t)
            return d.flatMap { $0.isFinite && $0 >= 0 && $0 <= 100 ? $0 : nil }
        }
        func minute(_ t: String) -> Int? {
            let p = t.split(separator: ":", omittingEmptySubsequences: false)
            guard p.count == 2, p[0].count == 2, p[1].count == 2, let h = Int(p[0]), let m = Int(p[1]), (0...23).contains(h), (0...59).contains(m)
            else { return nil }
            return h * 60 + m
        }
        guard let minSoc = percent(args[1]) else { say("min-soc '\(String(args[1].prefix(8)))': a percentage 0...100"); return "bad min-soc" }
        guard let dep = minute(args[2]) else { say("departure '\(String(args[2].prefix(8)))': a local time HH:MM"); return "bad departure" }
        guard let target = percent(args[3]) else { say("target '\(String(args[3].prefix(8)))': a percentage 0...100"); return "bad target" }
        let r = plan(g, (minSoc, dep, target)); say(r); return r
    }

    // MARK: Output

    /// `ascii on`: for terminals without UTF-8, every character outside ASCII that the console writes is
    /// spelled in ASCII ("°C" → "degC", "kΩ" → "kOhm", "≤" → "<="; anything else → "?").
    var ascii = false
    static let asciiSpelling: [Character: String] = ["°": "deg", "Ω": "Ohm", "≤": "<=", "≥": ">=", "→": "->", "…": "...", "–": "-",
                                                     "—": "-", "±": "+/-", "×": "x", "µ": "u", "⇄": "<->"]
    func say(_ s: String) {
        var text = s
        if ascii {
            text = String(s.flatMap { c -> String in c.isASCII ? String(c) : (Self.asciiSpelling[c] ?? "?") })
        }
        // 80 columns (issue 36): a line wider, whatever wrote it (a grid report, a refusal with its
        // figures), is wrapped at its spaces under its own indent.
        // (Most answers have no such line: bytes bound characters, so lines of at most 80 bytes need no look.)
        var run = 0, wide = false
        for b in text.utf8 { if b == 0x0A { run = 0 } else { run += 1; if run > 80 { wide = true; break } } }
        if wide { text = text.split(separator: "\n", omittingEmptySubsequences: false).flatMap(Self.fit).joined(separator: "\n") }
        out += Array((text.replacingOccurrences(of: "\n", with: "\r\n") + "\r\n").utf8)
    }

    /// One line as lines of at most 80 columns, wrapped at spaces, continuations indented two more than
    /// the line (a single word longer than that is left whole: the terminal wraps it).
    /// The line's own spacing (a table's columns) is kept.
    public static func fit(_ line: Substring) -> [String] {
        guard line.count > 80 else { return [String(line)] }
        let hanging = String(repeating: " ", count: min(line.prefix { $0 == " " }.count + 2, 40))
        var out: [String] = []
        var rest = Array(line)
        var first = true
        while rest.count > (first ? 80 : 80 - hanging.count) {
            let width = first ? 80 : 80 - hanging.count
            // The last space within the width that has text before it; none: the word is left whole.
            let lead = rest.prefix { $0 == " " }.count
            guard let cut = rest[..<(width + 1)].lastIndex(of: " "), cut > lead else { break }
            var head = String(rest[..<cut])
            while head.last == " " { head.removeLast() }
            out.append((first ? "" : hanging) + head)
            rest = Array(rest[(cut + 1)...].drop { $0 == " " })
            first = false
        }
        out.append((first ? "" : hanging) + String(rest))
        return out
    }
    func showPrompt() {
        editor.prompt = prompt
        out += Array(prompt.utf8)
    }
    func take() -> [UInt8] { defer { out.removeAll(keepingCapacity: true) }; return out }
}

