// The end of a run as a person or a script sees it: the summary and its JSON (`--json`: one object on the
// last line of standard output, docs/chargerd.md "chargerd contract"). Every board's run ends with one.
import ChargerCore
import LoopContract
import Foundation

/// An invariant that failed, with when and what.
public struct InvariantViolation: Sendable, CustomStringConvertible {
    public var at: Instant
    public var gun: Int
    public var rule: String
    public var detail: String
    public init(at: Instant, gun: Int, rule: String, detail: String) {
        self.at = at; self.gun = gun; self.rule = rule; self.detail = detail
    }
    public var description: String { "t=\(fmt(at.seconds, 3)) s gun \(gun): \(rule): \(detail)" }
}

public enum EndState: String, Sendable {
    case completed, faulted, timeout, invariantViolated = "invariant-violated"
    /// Stopped by the operator (SIGINT/SIGTERM) with a session under way and no fault: a normal
    /// shutdown, not a failure.
    case interrupted
    /// Plug and charge refused the car (its VIN refused, unknown or absent): no energy, no fault.
    case notAuthorized = "not-authorized"
}

public struct SessionSummary: Sendable {
    public var board: String
    public var energyKWh: Double
    /// V2G: energy taken from the cars and exported (the meters' export registers; 0 without V2G).
    public var exportedKWh: Double = 0
    public var durationS: Double
    public var peakPowerKW: Double
    public var endState: EndState
    public var socStart: Double?
    public var socEnd: Double?
    public var maxGunTemperature: Double
    public var faults: [FaultRecord]
    public var violations: [InvariantViolation]
    public var sessionsCompleted: Int
    /// Why gun 0's last session stopped (vehicle-bst, operator, pause-timeout, fault, none).
    public var stopReason: String
    /// Gun 0's cable-check result in Ω/V, and whether it fell in GB/T's warning band (100–500 Ω/V).
    public var insulationOhmPerVolt: Double?
    public var insulationWarning: Bool
    public var limitShare: [(String, Double)]
    /// The process's resident memory now and at its peak, in kB (set by chargerd; not part of a replay).
    public var memoryKB: (resident: Int, peak: Int)? = nil

    public init(board: String, energyKWh: Double, durationS: Double, peakPowerKW: Double, endState: EndState, socStart: Double?,
                socEnd: Double?, maxGunTemperature: Double, faults: [FaultRecord], violations: [InvariantViolation], sessionsCompleted: Int,
                stopReason: String, insulationOhmPerVolt: Double?, insulationWarning: Bool, limitShare: [(String, Double)]) {
        self.board = board; self.energyKWh = energyKWh; self.durationS = durationS; self.peakPowerKW = peakPowerKW; self.endState = endState
        self.socStart = socStart; self.socEnd = socEnd; self.maxGunTemperature = maxGunTemperature; self.faults = faults
        self.violations = violations; self.sessionsCompleted = sessionsCompleted; self.stopReason = stopReason
        self.insulationOhmPerVolt = insulationOhmPerVolt; self.insulationWarning = insulationWarning; self.limitShare = limitShare
    }

    public var exitCode: Int32 {
        switch endState {
        case .completed, .interrupted: 0
        case .faulted: 1
        case .timeout: 4
        case .invariantViolated: 3
        case .notAuthorized: 6
        }
    }
}

extension SessionSummary {
    public var text: String {
        var s = "== session summary (\(board)) ==\n"
        s += "end state      \(endState.rawValue) (stop reason: \(stopReason))\n"
        s += "energy         \(fmt(energyKWh, 3)) kWh (meter, at the gun)\n"
        if exportedKWh > 0 { s += "exported       \(fmt(exportedKWh, 3)) kWh (V2G, the meter's export register)\n" }
        s += "duration       \(fmt(durationS, 1)) s simulated (\(fmt(durationS / 60, 1)) min)\n"
        s += "peak power     \(fmt(peakPowerKW, 1)) kW\n"
        if let a = socStart, let b = socEnd { s += "SOC            \(fmt(a, 1)) % → \(fmt(b, 1)) %\n" }
        s += "gun max temp   \(fmt(maxGunTemperature, 1)) °C\n"
        if let r = insulationOhmPerVolt {
            s += "insulation     \(r.isFinite ? fmt(r, 0) : "inf") Ω/V at the cable check\(insulationWarning ? " — WARNING band (100–500 Ω/V), charging allowed" : "")\n"
        }
        if !limitShare.isEmpty {
            s += "limit in force " + limitShare.map { "\($0.0) \(fmt($0.1 * 100, 0)) %" }.joined(separator: ", ") + " of charging time\n"
        }
        if faults.isEmpty { s += "faults         none\n" }
        for f in faults {
            s += "fault          \(f.code.name) gun \(f.gun) at \(fmt(f.raisedAt.seconds, 3)) s → \(f.reaction.name)"
            if f.value.isFinite { s += " (value \(fmt(f.value, 3)))" }
            if let c = f.clearedAt { s += ", cleared at \(fmt(c.seconds, 3)) s" }
            s += "\n"
        }
        for v in violations.prefix(20) { s += "INVARIANT      \(v)\n" }
        return s
    }

    /// One JSON object (the contract benches rely on; see docs/chargerd.md).
    public var json: String {
        func str(_ s: String) -> String {
            var out = "\""
            for u in s.unicodeScalars {
                switch u {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case "\n": out += "\\n"
                default:
                    if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
                }
            }
            return out + "\""
        }
        func num(_ v: Double, _ p: Int) -> String { v.isFinite ? fmt(v, p) : "null" }
        let fs = faults.map { f in
            "{\"code\":\(str(f.code.name)),\"gun\":\(f.gun),\"module\":\(f.module),\"at_s\":\(num(f.raisedAt.seconds, 3)),\"reaction\":\(str(f.reaction.name)),\"value\":\(num(f.value, 3)),\"unit\":\(str(f.measure.name)),\"limit\":\(f.limit.isFinite ? num(f.limit, 3) : "null"),\"cleared_at_s\":\(f.clearedAt.map { num($0.seconds, 3) } ?? "null")}"
        }
        let vs = violations.prefix(100).map { str($0.description) }
        let shares = limitShare.map { "\(str($0.0)):\(num($0.1, 4))" }
        var o = "{\"board\":\(str(board)),\"energy_kwh\":\(num(energyKWh, 3)),\"exported_kwh\":\(num(exportedKWh, 3)),\"duration_s\":\(num(durationS, 3)),"
        o += "\"peak_power_kw\":\(num(peakPowerKW, 2)),\"end_state\":\(str(endState.rawValue)),"
        o += "\"soc_start\":\(socStart.map { num($0, 2) } ?? "null"),\"soc_end\":\(socEnd.map { num($0, 2) } ?? "null"),"
        o += "\"max_gun_temperature_c\":\(num(maxGunTemperature, 1)),\"sessions_completed\":\(sessionsCompleted),\"stop_reason\":\(str(stopReason)),\"insulation_ohm_per_v\":\(insulationOhmPerVolt.map { num($0, 0) } ?? "null"),\"insulation_warning\":\(insulationWarning),"
        o += "\"limit_share\":{\(shares.joined(separator: ","))},"
        if let m = memoryKB { o += "\"rss_kb\":\(m.resident),\"peak_rss_kb\":\(m.peak)," }
        o += "\"faults\":[\(fs.joined(separator: ","))],\"invariant_violations\":[\(vs.joined(separator: ","))]}"
        return o
    }
}
