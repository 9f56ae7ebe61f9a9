// The one reading of "a number and its unit" ("750 V", "60kW", "+80 C", "-5 kW", "40 kOhm", "1500 ms") for
// every text a person writes: board and site files, HIL scenarios, `--inject` and `--car`. The board
// files' rules: the number first (sign, digits, point, exponent), spaces allowed before the unit, and the
// unit required, spelled as its table spells it ("kW", not "KW": "mW" would be a milliwatt).

/// The units one quantity may be written in, each with its factor to the base unit.
public struct UnitTable: Sendable {
    /// What the quantity is, for messages ("voltage").
    public let what: String
    public let units: [String: Double]
    public init(_ what: String, _ units: [String: Double]) { self.what = what; self.units = units }

    public static let voltage = UnitTable("voltage", ["V": 1, "kV": 1000])
    public static let current = UnitTable("current", ["A": 1, "kA": 1000])
    public static let power = UnitTable("power", ["W": 1, "kW": 1000, "MW": 1_000_000])
    public static let energy = UnitTable("energy", ["Wh": 1, "kWh": 1000, "MWh": 1_000_000])
    public static let temperature = UnitTable("temperature", ["°C": 1, "C": 1, "degC": 1])
    /// A temperature difference: kelvin as well.
    public static let temperatureRise = UnitTable("temperature rise", ["°C": 1, "C": 1, "degC": 1, "K": 1])
    public static let time = UnitTable("time", ["us": 1e-6, "ms": 1e-3, "s": 1, "min": 60, "h": 3600])
    public static let resistance = UnitTable("resistance", ["Ω": 1, "Ohm": 1, "kΩ": 1e3, "kOhm": 1e3, "MΩ": 1e6, "MOhm": 1e6])
    public static let ramp = UnitTable("current ramp", ["A/s": 1])
    /// A share of a quantity (an accuracy class, a meter's gain error).
    public static let percent = UnitTable("percentage", ["%": 1])
    /// A share that changes with time (a meter's drift).
    public static let percentPerHour = UnitTable("drift", ["%/h": 1])

    /// "V, kV": the units as a message lists them.
    public var list: String { units.keys.sorted().joined(separator: ", ") }
}

/// Why a text is not a quantity; the description names the text and what would be right.
public enum QuantityTextError: Error, Equatable, CustomStringConvertible {
    case notANumber(String)
    case noUnit(String, what: String, units: String)
    case wrongUnit(String, what: String, units: String)

    public var description: String {
        switch self {
        case .notANumber(let t): "'\(t)' does not start with a number"
        case .noUnit(let t, let what, let units): "'\(t)' has no unit; a \(what) needs one of \(units)"
        case .wrongUnit(let u, let what, let units): "'\(u)' is not a unit of \(what) (use \(units))"
        }
    }
}

public enum QuantityText {
    /// The value of `text` in the table's base unit (volts, amps, watts, watt-hours, °C, seconds, ohms, A/s).
    public static func parse(_ text: String, _ table: UnitTable) -> Result<Double, QuantityTextError> {
        var numberPart = ""
        var unitPart = ""
        for ch in text {
            if unitPart.isEmpty && (ch.isNumber || ch == "." || ch == "-" || ch == "+" || ch == "e" && !numberPart.isEmpty) {
                numberPart.append(ch)
            } else if ch != " " || !unitPart.isEmpty {
                unitPart.append(ch)
            }
        }
        guard let n = Double(numberPart), n.isFinite else { return .failure(.notANumber(text)) }
        guard !unitPart.isEmpty else { return .failure(.noUnit(text, what: table.what, units: table.list)) }
        guard let f = table.units[unitPart] else { return .failure(.wrongUnit(unitPart, what: table.what, units: table.list)) }
        return .success(n * f)
    }
}
