// `--inject WHAT[:GUN][=VALUE]@TIME`: fault injection and operator actions on the simulated board,
// scheduled in virtual time. TIME is a time (`90s`, `5min`, `1500ms`, `300`) or `stop` (the moment the
// gun enters the stopping phase).
import BoardFile
import ChargerCore
import LoopContract
import SimPlant
import StationLoop

public enum InjectionTime: Sendable, Equatable {
    case at(Instant)
    case onStop
}

public enum InjectionAction: Sendable, Equatable {
    case plant(Plant.Injection)
    case reset(gun: Int)
    case stop(gun: Int)
    case stationSetpoint(Watts?)
    case gunSetpoint(gun: Int, Watts?)
    /// Out of service (true) or back, as `service GUN off|on` on the console.
    case outOfService(gun: Int, Bool)
}

public struct ScheduledInjection: Sendable, Equatable {
    public var text: String
    public var time: InjectionTime
    public var action: InjectionAction
    public var done = false
}

extension ScheduledInjection {
    /// An operator's action at a time, as the loop's command (what a bench board takes from `--inject`);
    /// nil for a plant fault or an action at the stop.
    public var scheduledCommand: ScheduledCommand? {
        guard case .at(let at) = time else { return nil }
        let c: OperatorCommand
        switch action {
        case .reset(let g): c = .reset(gun: Int8(g))
        case .stop(let g): c = .stop(gun: Int8(g))
        case .stationSetpoint(let p): c = .stationSetpoint(p)
        case .gunSetpoint(let g, let p): c = .gunSetpoint(gun: Int8(g), p)
        case .outOfService(let g, let out): c = .outOfService(gun: Int8(g), out)
        case .plant: return nil
        }
        return ScheduledCommand(text: text, at: at, command: c)
    }
}

public struct InjectionError: Error, CustomStringConvertible {
    public var text: String
    public var why: String
    public var description: String { "--inject '\(text)': \(why)" }
}

public enum InjectionParser {
    public static let names = [
        "estop", "estop-release", "door", "door-close", "mains-loss", "mains-restore", "rcd-trip", "rcd-selftest-fail", "pe-loss",
        "insulation=R", "imd-selftest-fail", "imd-silent", "meter-silent", "meter-gain=P%", "meter-offset=A", "meter-drift=P%/h", "meter-reset", "module-fail=N", "module-silent=N",
        "weld=K1|K2", "fail-close=K1|K2", "lock-jam", "overheat=+T", "overvoltage=V", "overcurrent=A", "cc1=V", "aux=V", "latch",
        "bms-silent", "bms-recover", "bms-stop", "bms-pause", "bms-resume", "v2g-withdraw", "unplug", "reset", "stop",
        "service-off", "service-on", "setpoint=P", "gun-setpoint=P",
    ]

    // Long: one case per injection name (the table `names` lists), each with its value's own check
    public static func parse(_ text: String, spec: StationSpec) throws(InjectionError) -> ScheduledInjection {
        func fail(_ why: String) -> InjectionError { InjectionError(text: text, why: why) }
        guard let at = text.lastIndex(of: "@") else { throw fail("missing '@TIME' (e.g. estop@120s)") }
        let head = String(text[..<at])
        let timeText = String(text[text.index(after: at)...])
        let time: InjectionTime
        if timeText.lowercased() == "stop" { time = .onStop }
        else {
            switch QuantityText.parse(timeText, .time) {
            case .success(let s) where s >= 0:
                guard TimeSpan.checkedSeconds(s) != nil else { throw fail("'\(timeText)': the time is beyond 100 years") }
                time = .at(Instant(micros: Int64((s * 1e6).rounded())))
            case .success: throw fail("'\(timeText)': the time must be ≥ 0")
            case .failure(let e): throw fail("\(e) (a time is e.g. 90s, 5min, 1500ms; or 'stop')")
            }
        }
        var what = head
        var value: String? = nil
        if let eq = head.firstIndex(of: "=") { what = String(head[..<eq]); value = String(head[head.index(after: eq)...]) }
        var gun = 0
        if let colon = what.firstIndex(of: ":") {
            guard let g = Int(what[what.index(after: colon)...]), g >= 0, g < spec.gunCount else {
                throw fail("gun must be 0...\(spec.gunCount - 1)")
            }
            gun = g
            what = String(what[..<colon])
        }
        func need() throws(InjectionError) -> String {
            guard let value, !value.isEmpty else { throw fail("'\(what)' needs a value ('\(what)=...')") }
            return value
        }
        func quantity(_ table: UnitTable) throws(InjectionError) -> Double {
            switch QuantityText.parse(try need(), table) {
            case .success(let x): return x
            case .failure(let e): throw fail(e.description)
            }
        }
        let action: InjectionAction
        switch what.lowercased() {
        case "estop": action = .plant(.emergencyStop(true))
        case "estop-release": action = .plant(.emergencyStop(false))
        case "door": action = .plant(.door(true))
        case "door-close": action = .plant(.door(false))
        case "mains-loss": action = .plant(.mains(false))
        case "mains-restore": action = .plant(.mains(true))
        case "rcd-trip", "ground-fault": action = .plant(.groundFault(gun: gun))
        case "rcd-selftest-fail": action = .plant(.groundDetectorSelfTestFails(gun: gun))
        case "pe-loss": action = .plant(.peLoss(gun: gun))
        case "insulation":
            let r = try quantity(.resistance)
            guard r >= 0 else { throw fail("resistance must be ≥ 0") }
            action = .plant(.insulation(gun: gun, Ohms(r)))
        case "imd-selftest-fail": action = .plant(.imdSelfTestFails(gun: gun))
        case "imd-silent": action = .plant(.imdSilent(gun: gun))
        case "meter-silent": action = .plant(.meterSilent(gun: gun))
        case "meter-gain":
            let p = try quantity(.percent)
            guard abs(p) <= 50 else { throw fail("a meter's gain error must be within ±50 %") }
            action = .plant(.meterGain(gun: gun, 1 + p / 100))
        case "meter-offset":
            let a = try quantity(.current)
            guard abs(a) <= 100 else { throw fail("a meter's current offset must be within ±100 A") }
            action = .plant(.meterOffset(gun: gun, Amps(a)))
        case "meter-drift":
            let p = try quantity(.percentPerHour)
            guard abs(p) <= 50 else { throw fail("a meter's drift must be within ±50 %/h") }
            action = .plant(.meterDrift(gun: gun, p / 100))
        case "meter-reset": action = .plant(.meterReset(gun: gun))
        case "module-fail", "module-silent":
            guard let m = Int(try need()), m >= 0, m < spec.moduleCount else { throw fail("module must be 0...\(spec.moduleCount - 1)") }
            action = .plant(what.lowercased() == "module-fail" ? .moduleFail(m) : .moduleSilent(m))
        case "weld", "fail-close":
            let k = try need().uppercased()
            guard k == "K1" || k == "K2" else { throw fail("contactor must be K1 or K2") }
            let n = k == "K1" ? 1 : 2
            action = .plant(what.lowercased() == "weld" ? .weld(gun: gun, contactor: n) : .failToClose(gun: gun, contactor: n))
        case "lock-jam": action = .plant(.lockJam(gun: gun))
        case "overheat":
            let t = try quantity(.temperatureRise)
            action = .plant(.gunTemperatureOffset(gun: gun, Celsius(t)))
        case "overvoltage":
            let v = try quantity(.voltage)
            guard v > 0 else { throw fail("voltage must be > 0") }
            action = .plant(.overVoltage(gun: gun, Volts(v)))
        case "overcurrent":
            // Negative: a current out of the car (a module running away in reverse, V2G).
            let a = try quantity(.current)
            guard a != 0, abs(a) <= 10_000 else { throw fail("current must be non-zero, within ±10000 A") }
            action = .plant(.overCurrent(gun: gun, Amps(a)))
        case "cc1":
            let v = try quantity(.voltage)
            action = .plant(.cc1(gun: gun, Volts(v)))
        case "aux":
            let v = try quantity(.voltage)
            guard v >= 0 && v <= 30 else { throw fail("the auxiliary supply's voltage must be 0 to 30 V") }
            action = .plant(.auxSupply(gun: gun, Volts(v)))
        case "latch": action = .plant(.latchPressed(gun: gun))
        case "bms-silent": action = .plant(.bmsSilent(gun: gun, true))
        case "bms-recover": action = .plant(.bmsSilent(gun: gun, false))
        case "bms-stop": action = .plant(.bmsStop(gun: gun))
        case "bms-pause": action = .plant(.bmsPause(gun: gun, true))
        case "bms-resume": action = .plant(.bmsPause(gun: gun, false))
        case "v2g-withdraw": action = .plant(.v2gWithdraw(gun: gun))
        case "unplug": action = .plant(.unplug(gun: gun))
        case "reset": action = .reset(gun: gun)
        case "stop": action = .stop(gun: gun)
        case "service-off": action = .outOfService(gun: gun, true)
        case "service-on": action = .outOfService(gun: gun, false)
        case "setpoint", "gun-setpoint":
            let v = try need()
            var p: Watts? = nil
            if v.lowercased() != "none" {
                // Signed (V2G): negative asks for export; within ±10 MW, a station's largest connection.
                let w = try quantity(.power)
                guard abs(w) <= 10_000_000 else { throw fail("a power setpoint must be within ±10 MW (out of range)") }
                p = Watts(w)
            }
            action = what.lowercased() == "setpoint" ? .stationSetpoint(p) : .gunSetpoint(gun: gun, p)
        default:
            throw fail("unknown injection '\(what)' (known: \(names.joined(separator: ", ")))")
        }
        if case .onStop = time, case .plant(.weld) = action {} else if case .onStop = time {
            throw fail("'@stop' applies to weld= only")
        }
        return ScheduledInjection(text: text, time: time, action: action)
    }
}
