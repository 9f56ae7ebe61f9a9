// What a person or a script sees: one status line per interval, a summary, and the JSON contract
// (`--json`: one object on the last line of standard output).
import ChargerCore
import LoopContract
import Foundation

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

extension Simulation {
    /// The status line of gun `g`.
    public func statusLine(gun g: Int) -> String { status(gun: g).line }

    /// Gun `g`'s figures as of the last step (the status line's data; also what the real-time loop
    /// sends out by value).
    /// The station's view as the loop would publish it now (off the loop: the HIL runner's grid layer).
    public func stationView() -> StationView {
        var v = StationView()
        v.fill(frame, index: UInt64(max(0, frame.inputs.now.micros / max(1, spec.period.micros))), status: { status(gun: $0) })
        return v
    }

    public func status(gun g: Int) -> GunStatus {
        var soc = Double.nan
        plant.withGun(g) { soc = $0.car?.soc ?? .nan }
        return GunStatus(gun: Int8(g), at: frame.inputs.now, phase: frame.state.sessions[g].phase,
                         voltage: frame.inputs.guns[g].meterVoltage, current: frame.inputs.guns[g].meterCurrent,
                         powerLimit: frame.outputs.guns[g].powerLimit, binding: frame.outputs.guns[g].binding, soc: soc,
                         gunTemperature: frame.inputs.guns[g].gunTemperature, faults: frame.state.faults(gun: g))
    }

    /// `continuous`: the run had no session limit, so a car still charging at the end is no failure.
    /// `midSession`: the signal came while a session ran, which the run then stopped in order (its end
    /// is normal, the run's is not).
    public func summary(timedOut: Bool, continuous: Bool = false, interrupted: Bool = false, midSession: Bool = false) -> SessionSummary {
        var kwh = 0.0, peak = 0.0, maxT = -100.0
        var socStart: Double? = nil, socEnd: Double? = nil
        var completed = 0
        var normal = true, refused = false
        var share: [LimitSource: Double] = [:]
        var exported = 0.0
        for g in 0..<spec.gunCount {
            // Continuous mode: every session of the run (issue 36: the last car's alone, 3.095 of 3.5 kWh).
            kwh += (continuous ? runEnergy(gun: g) : energy(gun: g)).kilowattHours
            exported += self.exported(gun: g).kilowattHours
            peak = max(peak, reports[g].peakPower.kilowatts)
            maxT = max(maxT, reports[g].maxTemperature.value)
            if socStart == nil { socStart = reports[g].socStart }
            if socEnd == nil { socEnd = reports[g].socEnd }
            completed += reports[g].completedSessions
            if plant.guns[g].car != nil && !reports[g].endedNormally && !continuous {
                if reports[g].notAuthorized { refused = true } else { normal = false }
            }
            for k in LimitSource.allCases { share[k, default: 0] += reports[g].limitSourceTime[Int(k.rawValue)] }
        }
        let total = share.values.reduce(0, +)
        let shares = LimitSource.allCases.compactMap { s -> (String, Double)? in
            guard let v = share[s], v > 0, total > 0 else { return nil }
            return (s.name, v / total)
        }
        let state: EndState
        // Derate (a module lost) and reconnect (a car timeout the protocol retries) do not end a
        // session; anything stronger does. A fault that stood from before this start (latched again from
        // the journal) and was reset is the earlier run's, not this one's.
        let stopping = faults.contains { $0.reaction > .reconnect && !($0.restored && $0.clearedAt != nil) }
        if !violations.isEmpty { state = .invariantViolated }
        else if stopping { state = .faulted }
        else if timedOut { state = .timeout }
        // A signal ends a run that was serving cars (continuous mode: always) as interrupted, never as
        // completed (issue 36: "end state completed (stop reason: none)" after SIGINT mid-session).
        else if interrupted && (!normal || continuous || midSession) { state = .interrupted }
        else if !normal { state = .faulted }
        else if refused { state = .notAuthorized }
        else { state = .completed }
        var s = SessionSummary(board: board.name, energyKWh: kwh, durationS: now.seconds, peakPowerKW: peak, endState: state,
                               socStart: socStart, socEnd: socEnd, maxGunTemperature: maxT, faults: faults,
                               violations: violations, sessionsCompleted: completed,
                               stopReason: frame.state.sessions[0].stopReason.name,
                               insulationOhmPerVolt: frame.state.sessions[0].insulationMeasured.value > 0
                                   ? frame.state.sessions[0].insulationMeasured.value : nil,
                               insulationWarning: frame.state.sessions[0].insulationWarning, limitShare: shares)
        s.exportedKWh = exported
        return s
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
