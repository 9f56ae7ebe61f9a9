// The [[gpio]] entries of a board file: each named signal of the board on a chip, a line, a direction
// and an active level (PX4/Zephyr: pins are board data, not code).
import ChargerCore

/// What a GPIO line does on a charger.
public enum GPIOSignal: String, Sendable, CaseIterable {
    // Per gun, outputs.
    case k1k2 = "k1k2"                 // DC contactor coils K1/K2
    case k3k4 = "k3k4"                 // auxiliary supply contactors K3/K4
    case lockMotor = "lock-motor"      // electronic lock: energised = locked
    case discharge = "discharge"       // output bleeder, wired normally closed: active = bleeder open
    case rcdTest = "rcd-test"          // the earth-fault detector's test input (active = test running)
    case lampGreen = "lamp-green", lampBlue = "lamp-blue", lampRed = "lamp-red"
    // Per gun, inputs.
    case k1Aux = "k1-aux", k2Aux = "k2-aux", k3k4Aux = "k3k4-aux"   // mirror contacts
    case lockFeedback = "lock-feedback"
    case rcdTrip = "rcd-trip"          // RCD / 6 mA DC fault detector relay
    case imdAlarm = "imd-alarm"        // IMD alarm relay
    case peMonitor = "pe-monitor"      // protective-earth continuity (active = continuity good)
    // Station, inputs.
    case emergencyStop = "estop", door = "door"
    case mains = "mains"               // AC mains present (active = present)
    // Station, output: the contactor coils' supply, a charge pump that holds it only while this line
    // toggles (`[contactor_supply]`): the loop flips it at every write of the outputs.
    case coilPump = "coil-pump"
    // Per module, output: the matrix relay connecting module `module` to gun `gun`.
    case matrix = "matrix"

    public var isOutput: Bool {
        switch self {
        case .k1k2, .k3k4, .lockMotor, .discharge, .rcdTest, .lampGreen, .lampBlue, .lampRed, .matrix, .coilPump: true
        default: false
        }
    }
    public var isStationWide: Bool { self == .emergencyStop || self == .door || self == .mains || self == .coilPump }
    /// Inputs whose trip must never be missed, however short: also watched as kernel edge events, and
    /// their active direction is never debounced (only the release is).
    public var isTripInput: Bool { self == .emergencyStop || self == .rcdTrip }
}

public enum ActiveLevel: String, Sendable { case high, low }

/// One line of the board's GPIO map.
public struct GPIOLineSpec: Sendable, Equatable {
    public var signal: GPIOSignal
    /// Gun index (per-gun signals and matrix relays), or nil for station signals.
    public var gun: Int?
    /// Module index (matrix relays only).
    public var module: Int?
    /// Chip name as in /dev (gpiochip0) or a path (/dev/gpiochip0).
    public var chip: String
    public var line: Int
    public var active: ActiveLevel
    /// Inputs: how long a new level must hold before the controller takes it (0: the next sample).
    public var debounce: TimeSpan = .zero
    public var isOutput: Bool { signal.isOutput }

    /// "k1k2 gun 0", "matrix module 3 → gun 1", "estop".
    public var name: String {
        if signal == .matrix { return "matrix module \(module ?? -1) → gun \(gun ?? -1)" }
        return gun.map { "\(signal.rawValue) gun \($0)" } ?? signal.rawValue
    }
}

extension BoardLoader {
    /// Reads and validates [[gpio]]: known signals, direction matching the signal, each line used once,
    /// gun and module indices that exist, a matrix relay only where the module may serve that gun.
    static func gpioMap(_ r: Reader, _ top: Section, guns: Int, modules: [ModuleSpec]) throws(BoardFileError) -> [GPIOLineSpec] {
        guard top.table["gpio"] != nil else { return [] }
        var out: [GPIOLineSpec] = []
        var used: [String: String] = [:]
        for e in try r.arrayOfTables(top, "gpio") {
            try r.onlyKeys(e, ["signal", "gun", "module", "chip", "line", "direction", "active", "debounce"])
            let text = try r.string(e, "signal")
            guard let signal = GPIOSignal(rawValue: text) else {
                throw r.error(e, "signal", "'\(text)' is not a known signal (\(GPIOSignal.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            let direction = try r.string(e, "direction")
            guard direction == "input" || direction == "output" else { throw r.error(e, "direction", "'\(direction)' is not one of input, output") }
            guard (direction == "output") == signal.isOutput else {
                throw r.error(e, "direction", "\(signal.rawValue) is an \(signal.isOutput ? "output" : "input") of the controller, not an \(direction)")
            }
            let activeText = try r.string(e, "active")
            guard let active = ActiveLevel(rawValue: activeText) else { throw r.error(e, "active", "'\(activeText)' is not one of high, low") }
            let chip = try r.string(e, "chip")
            guard !chip.isEmpty, chip.count < 64, !chip.contains(" ") else { throw r.error(e, "chip", "'\(chip)' is not a chip name (gpiochip0) or path") }
            let line = try r.integer(e, "line", range: 0...1023)
            var gun: Int? = nil, module: Int? = nil
            if signal.isStationWide {
                if e.table["gun"] != nil { throw r.error(e, "gun", "\(signal.rawValue) is a station signal: no gun") }
            } else {
                gun = try r.integer(e, "gun", range: 0...(guns - 1))
            }
            if signal == .matrix {
                let m = try r.integer(e, "module", range: 0...max(0, modules.count - 1))
                guard modules.indices.contains(m) else { throw r.error(e, "module", "module \(m) does not exist") }
                guard modules[m].gunMask & (1 << UInt16(gun!)) != 0 else {
                    throw r.error(e, "gun", "module \(m) cannot serve gun \(gun!) ([[modules]] guns)")
                }
                module = m
            } else if e.table["module"] != nil {
                throw r.error(e, "module", "only matrix relays name a module")
            }
            var spec = GPIOLineSpec(signal: signal, gun: gun, module: module, chip: chip, line: line, active: active)
            if e.table["debounce"] != nil {
                guard !signal.isOutput else { throw r.error(e, "debounce", "\(signal.rawValue) is an output: only inputs are debounced") }
                spec.debounce = try r.duration(e, "debounce", default: .zero, range: .zero...(.ms(500)))
            }
            let place = "\(chip):\(line)"
            if let other = used[place] { throw r.error(e, "line", "\(place) is already used by \(other)") }
            if out.contains(where: { $0.signal == spec.signal && $0.gun == spec.gun && $0.module == spec.module }) {
                throw r.error(e, "signal", "\(spec.name) is mapped twice")
            }
            used[place] = spec.name
            out.append(spec)
        }
        return out
    }
}
