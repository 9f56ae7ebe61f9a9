// What a person or a script sees: one status line per interval, a summary, and the JSON contract
// (`--json`: one object on the last line of standard output).
import ChargerCore
import LoopContract
import Foundation
import StationLoop

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
