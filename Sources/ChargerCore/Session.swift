// The DC session of one gun: GB/T 18487.1 Annex B with GB/T 27930 phases.
// Session logic decides what it *wants*; the safety supervisor (Safety.swift) and the arbiter in
// ControlStep.swift decide what is *allowed*, and always win.

public enum SessionPhase: UInt8, Sendable, CaseIterable {
    case unplugged, connecting, connected, locking, auxPower, handshake, insulationCheck, identification,
         parameterExchange, precharge, charging, stopping, statistics, weldingCheck, unlocking, finished, faulted

    public var name: String {
        switch self {
        case .unplugged: "unplugged"
        case .connecting: "connecting"
        case .connected: "connected"
        case .locking: "locking"
        case .auxPower: "aux-power"
        case .handshake: "handshake"
        case .insulationCheck: "insulation-check"
        case .identification: "identification"
        case .parameterExchange: "parameter-exchange"
        case .precharge: "precharge"
        case .charging: "charging"
        case .stopping: "stopping"
        case .statistics: "statistics"
        case .weldingCheck: "welding-check"
        case .unlocking: "unlocking"
        case .finished: "finished"
        case .faulted: "faulted"
        }
    }

    /// Phases in which the gun is part of a session with the plug latched (CC1 must stay in band).
    @inlinable public var plugMustStayConnected: Bool {
        switch self {
        case .auxPower, .handshake, .insulationCheck, .identification, .parameterExchange, .precharge,
             .charging, .stopping, .statistics: true
        default: false
        }
    }
}

/// Steps inside the insulation (cable) check.
public enum CableCheckStep: UInt8, Sendable { case precheck, closing, raising, measuring, discharging }

/// Why a session stopped.
public enum StopReason: UInt8, Sendable {
    case none, vehicleRequest, operatorRequest, pauseTooLong, fault, commTimeout
    /// Plug and charge: the car's VIN was refused, unknown, absent or not answered in time (no energy).
    case notAuthorized
    public var name: String {
        switch self {
        case .none: "none"
        case .vehicleRequest: "vehicle-bst"
        case .operatorRequest: "operator"
        case .pauseTooLong: "pause-timeout"
        case .fault: "fault"
        case .commTimeout: "vehicle-comm-timeout"
        case .notAuthorized: "not-authorized"
        }
    }
}

/// A fault the session itself detected (timeouts of its own sequence, a failed check).
public struct SessionFault: Sendable {
    public var code: FaultCode
    public var value: Double
    /// The limit the value crossed, in its unit (NaN: none stated), and what the value measures where it
    /// is not the code's own `measure`.
    public var limit: Double
    public var measure: FaultMeasure?
    /// False for a protocol event that is logged with the reconnect reaction but not latched.
    public var latch: Bool
    @inlinable public init(_ code: FaultCode, _ value: Double, limit: Double = .nan, measure: FaultMeasure? = nil, latch: Bool = true) {
        self.code = code; self.value = value; self.limit = limit; self.measure = measure; self.latch = latch
    }
}

/// State of one gun's session.
public struct GunSession: Sendable {
    public var phase: SessionPhase = .unplugged
    public var phaseSince: Instant = .zero
    public var cableStep: CableCheckStep = .precheck
    public var stepSince: Instant = .zero
    public var handshakeAttempt = 0
    /// The earth-fault detector's test passed in this locking phase (its relay's release is awaited).
    public var groundTestPassed = false
    public var carMaxVoltage: Volts? = nil
    public var bcp: BCP? = nil
    public var testVoltage: Volts = .zero
    public var insulationWarning = false
    public var insulationMeasured: OhmsPerVolt = .zero
    public var chargingSince: Instant = .never
    public var energyAtStart: WattHours = .zero
    public var pausedSince: Instant? = nil
    public var stopReason: StopReason = .none
    public var chargerInitiatedStop = false
    /// When the stop began (`beginStop`): the car's BSD counts from then.
    public var stoppedAt: Instant = .never
    /// The car message whose timeout ended the session (sent back in CEM).
    public var timedOut: VehicleMessageKind? = nil
    /// Car timeouts while charging without a clean minute of charging in between ("3 in a row").
    public var commTimeouts = 0
    /// Aux supply held off until this instant before a reconnection (the BMS restarts).
    public var reconnectAt: Instant? = nil
    /// Current command after ramping (what modules are asked for, before the arbiter).
    public var rampedCurrent: Amps = .zero
    /// The VIN was refused and the site falls back to another method: after the stop the gun waits in
    /// `connected` for it instead of ending in `finished`.
    public var fallBack = false
    public init() {}

    mutating func enter(_ p: SessionPhase, _ now: Instant) { phase = p; phaseSince = now }
    mutating func enterStep(_ s: CableCheckStep, _ now: Instant) { cableStep = s; stepSince = now }

    /// Negotiated maximum output voltage: the car's BCP maximum charge voltage within the gun's range.
    @inlinable public func negotiatedMaxVoltage(_ gun: GunSpec) -> Volts {
        guard let bcp else { return gun.maxVoltage }
        return min(bcp.maxChargeVoltage, gun.maxVoltage)
    }
}

/// What the session asks for this cycle (before limits and the arbiter).
public struct SessionDemand: Sendable {
    /// The gun needs modules (cable check, precharge, charging, stopping).
    public var needsPower = false
    public var voltage: Volts = .zero
    /// Target current before limits (the car's demand, the cable-check cap, or zero).
    public var current: Amps = .zero
    /// When true, the current drops to zero at once (charger-initiated stop: ≤ 5 A within 100 ms).
    public var dropAtOnce = false
    public init() {}
}

/// Insulation test voltage (standards.md "Insulation check before charging").
@inlinable public func insulationTestVoltage(carMax: Volts?, gun: GunSpec) -> Volts {
    switch gun.insulationRule {
    case .gbt:
        // "min(car's maximum allowed voltage from BHM, charger rated voltage); 500 V if the car sends no BHM"
        guard let carMax else { return min(Standard.insulationTestVoltageWithoutBHM, gun.maxVoltage) }
        return min(carMax, gun.maxVoltage)
    case .iec:
        // "car max ≤ 500 V → min(500, car max + 50, charger max); otherwise min(charger max, 1.1 × car max)"
        let car = carMax ?? gun.maxVoltage
        if car.value <= 500 { return min(min(Volts(500), car + Volts(50)), gun.maxVoltage) }
        return min(gun.maxVoltage, car * 1.1)
    }
}

/// True when `v` is within the standard's ±0.8 V of `nominal`.
func cc1Is(_ v: Volts, _ nominal: Volts) -> Bool {
    (v - nominal).magnitude <= Standard.cc1Tolerance
}

/// What a phase holds every cycle before its own logic: the lamp, the gun lock, the auxiliary supply
/// (K3/K4), the IMD and the output discharge. A phase's own step only adds what depends on its inputs.
struct PhaseBaseline {
    var lamp: Lamp
    var lock = false
    var auxSupply = false
    var imd = false
    var discharge = false
}

extension SessionPhase {
    /// The table of baselines, one row per phase (the session's steps below read as their differences).
    var baseline: PhaseBaseline {
        switch self {
        case .unplugged, .finished: PhaseBaseline(lamp: .available)
        case .connecting, .connected: PhaseBaseline(lamp: .busy)
        case .locking, .auxPower: PhaseBaseline(lamp: .busy, lock: true)
        case .handshake: PhaseBaseline(lamp: .busy, lock: true, auxSupply: true)
        case .insulationCheck, .identification, .parameterExchange, .precharge:
            PhaseBaseline(lamp: .busy, lock: true, auxSupply: true, imd: true)
        case .charging, .stopping: PhaseBaseline(lamp: .charging, lock: true, auxSupply: true, imd: true)
        case .statistics, .weldingCheck: PhaseBaseline(lamp: .busy, lock: true, auxSupply: true, discharge: true)
        case .unlocking: PhaseBaseline(lamp: .busy, discharge: true)
        case .faulted: PhaseBaseline(lamp: .fault, discharge: true)
        }
    }
}

extension GunSession {
    /// Advances the session by one cycle. Writes the gun's wanted outputs into `out` and its power
    /// demand into `demand`; returns a fault it detected itself, if any.
    /// `blocked` is true while a latched fault at or above `refuse` is active on this gun.
    /// `current` is the gun's current as far as it can still be confirmed (`shutdownCurrent`: a fresh meter,
    /// else the modules' fresh readings plus what silent modules still deliver), read when stopping.
    /// Order: the transitions that pre-empt any phase (a blocking fault, an operator's stop), then the
    /// phase's baseline outputs, then the phase's own step (one function per phase, below).
    /// `testing`: the technician's actuator test in `input` may run now (`actuatorTestRefusal` is nil).
    mutating func advance(now: Instant, input: GunInputs, gun: GunSpec, blocked: Bool, testing: Bool = false, current: Amps,
                          out: inout GunOutputs, demand: inout SessionDemand) -> SessionFault? {
        // Time in the phase as it was when the cycle began (a pre-empting transition does not reset it
        // for this cycle's step).
        let inPhase = now - phaseSince
        preempt(now: now, input: input, blocked: blocked)
        let base = phase.baseline
        out.lamp = base.lamp; out.lock = base.lock; out.closeK3K4 = base.auxSupply
        out.imdEnable = base.imd; out.discharge = base.discharge
        switch phase {
        case .unplugged: idle(now: now, input: input, blocked: blocked, testing: testing, out: &out); return nil
        case .connecting, .connected: plugging(now: now, inPhase: inPhase, input: input, blocked: blocked); return nil
        case .locking: return locking(now: now, inPhase: inPhase, input: input, gun: gun, out: &out)
        case .auxPower: return auxSupply(now: now, inPhase: inPhase, input: input, out: &out)
        case .handshake: handshake(now: now, inPhase: inPhase, input: input, gun: gun, out: &out); return nil
        case .insulationCheck:
            out.tx.chm = true
            return cableCheck(now: now, input: input, gun: gun, out: &out, demand: &demand)
        case .identification: return identification(now: now, inPhase: inPhase, input: input, out: &out)
        case .parameterExchange: return parameterExchange(now: now, inPhase: inPhase, input: input, gun: gun, out: &out)
        case .precharge: return precharge(now: now, inPhase: inPhase, input: input, out: &out, demand: &demand)
        case .charging: return charging(now: now, input: input, gun: gun, out: &out, demand: &demand)
        case .stopping: stopping(now: now, inPhase: inPhase, input: input, current: current, out: &out, demand: &demand); return nil
        case .statistics: statistics(now: now, inPhase: inPhase, input: input, out: &out); return nil
        case .weldingCheck: weldingCheck(now: now, inPhase: inPhase, input: input); return nil
        case .unlocking: return unlocking(now: now, inPhase: inPhase, input: input, gun: gun, out: &out)
        case .finished: if cc1Is(input.cc1, Standard.cc1Unplugged) { enter(.unplugged, now) }; return nil
        case .faulted: faulted(now: now, input: input, blocked: blocked, testing: testing, out: &out); return nil
        }
    }

    /// The transitions that pre-empt whatever phase the session is in.
    mutating func preempt(now: Instant, input: GunInputs, blocked: Bool) {
        // Any latched blocking fault sends the session to `faulted` (the arbiter has already made
        // the outputs safe; the session only sequences the aftermath).
        if blocked && phase != .faulted && phase != .unplugged && phase != .finished {
            stopReason = .fault
            enter(.faulted, now)
        }
        // An operator's stop (console, OCPP remote stop, out of service) ends a session that has not
        // reached the energy transfer too, in order. Before the car is talking (lock, aux supply) the
        // gun simply unlocks; from the handshake on it stops as a charger-initiated stop while charging
        // does: CST (manual stop), output to zero, K1/K2 open, discharge, statistics, welding check,
        // unlock. (Waiting in `connected` for authorization is not a session yet: nothing to stop.)
        // Charging itself sees the request in its own step.
        if input.stopRequest || input.outOfService {
            switch phase {
            case .locking, .auxPower:
                stopReason = .operatorRequest
                reconnectAt = nil
                enter(.unlocking, now)
            case .handshake, .insulationCheck, .identification, .parameterExchange, .precharge:
                energyAtStart = input.meterEnergy
                rampedCurrent = .zero
                beginStop(.operatorRequest, chargerInitiated: true, now)
            default: break
            }
        }
    }

    /// No car: the lamp says whether the gun is available; a technician's actuator test may hold one
    /// output; the plug's CC1 starts a session.
    mutating func idle(now: Instant, input: GunInputs, blocked: Bool, testing: Bool, out: inout GunOutputs) {
        out.lamp = blocked ? .fault : input.outOfService ? .off : .available
        if input.actuatorTest != .none && testing {
            // A technician's actuator test on an idle gun: the output only, no module is powered.
            switch input.actuatorTest {
            case .contactorsK1K2: out.closeK1K2 = true
            case .contactorsK3K4: out.closeK3K4 = true
            case .lock: out.lock = true
            case .lamp: out.lamp = (now.micros / 500_000) % 2 == 0 ? .charging : .fault
            case .imdSelfTest: out.imdEnable = true; out.imdSelfTest = true   // held: the result stays readable
            case .none: break
            }
            return
        }
        if input.outOfService { return }
        if cc1Is(input.cc1, Standard.cc1Connected) { enter(.connected, now) }
        else if cc1Is(input.cc1, Standard.cc1LatchPressed) { enter(.connecting, now) }
    }

    /// `connecting` (latch pressed) and `connected` (plugged, waiting for CC1 to settle and authorization).
    mutating func plugging(now: Instant, inPhase: TimeSpan, input: GunInputs, blocked: Bool) {
        if phase == .connecting {
            if cc1Is(input.cc1, Standard.cc1Connected) { enter(.connected, now) }
            else if cc1Is(input.cc1, Standard.cc1Unplugged) && inPhase > Standard.connectingAbandon { enter(.unplugged, now) }
            return
        }
        if !cc1Is(input.cc1, Standard.cc1Connected) { enter(.connecting, now) }
        // The lock closes only once the session is authorized (free vend, an idTag, a remote start).
        else if inPhase >= Standard.cc1ConnectDebounce && !blocked && input.authorized && !input.outOfService {
            groundTestPassed = false
            enter(.locking, now)
        }
    }

    mutating func locking(now: Instant, inPhase: TimeSpan, input: GunInputs, gun: GunSpec, out: inout GunOutputs) -> SessionFault? {
        guard input.lockConfirmed else {
            return inPhase > gun.lockTimeout ? SessionFault(.lockFailure, inPhase.seconds, limit: gun.lockTimeout.seconds) : nil
        }
        // The earth-fault detector tests itself before any voltage is applied (where it can): the test
        // passes on its relay's trip, and nothing goes on until the relay has released again (the safety's
        // ground_detector_release window latches E03 on a relay that stays tripped).
        if gun.groundDetectorSelfTest && !groundTestPassed && input.groundDetectorTest == .passed { groundTestPassed = true }
        guard gun.groundDetectorSelfTest && !groundTestPassed else {
            if !input.groundFaultTrip { enter(.auxPower, now) }
            return nil
        }
        out.groundDetectorTest = true
        if input.groundDetectorTest == .failed { return SessionFault(.groundDetectorSelfTestFailed, 0, measure: FaultMeasure.none) }
        if inPhase > gun.lockTimeout + Standard.groundDetectorSelfTestTimeout {
            return SessionFault(.groundDetectorSelfTestFailed, inPhase.seconds,
                                limit: (gun.lockTimeout + Standard.groundDetectorSelfTestTimeout).seconds)
        }
        return nil
    }

    mutating func auxSupply(now: Instant, inPhase: TimeSpan, input: GunInputs, out: inout GunOutputs) -> SessionFault? {
        if let r = reconnectAt, now < r {
            // Reconnecting after a car timeout: aux off first, so the BMS starts afresh.
            out.tx.cem = timedOut
            return nil
        }
        out.closeK3K4 = true
        if input.k3k4Closed {
            handshakeAttempt = 1
            // A fresh session (not a reconnection) starts with no timeout history.
            if reconnectAt == nil { commTimeouts = 0; timedOut = nil }
            reconnectAt = nil
            carMaxVoltage = nil; bcp = nil; insulationWarning = false; stopReason = .none
            chargerInitiatedStop = false; pausedSince = nil; chargingSince = .never
            enter(.handshake, now)
        } else if inPhase > Standard.defaultMessageTimeout {
            // K3/K4, the auxiliary supply's contactor: the time waited, not K1 or K2.
            return SessionFault(.contactorFailedToClose, inPhase.seconds, limit: Standard.defaultMessageTimeout.seconds, measure: .seconds)
        }
        return nil
    }

    mutating func handshake(now: Instant, inPhase: TimeSpan, input: GunInputs, gun: GunSpec, out: inout GunOutputs) {
        out.tx.chm = true
        if let bhm = input.vehicle.bhm, bhm.at >= phaseSince {
            carMaxVoltage = bhm.message.maxAllowedVoltage
            startCableCheck(now, gun)
        } else if inPhase > Standard.defaultMessageTimeout {
            // A car that sends no BHM (GB/T 27930-2011) is checked at 500 V (standards.md).
            carMaxVoltage = nil
            startCableCheck(now, gun)
        }
    }

    mutating func identification(now: Instant, inPhase: TimeSpan, input: GunInputs, out: inout GunOutputs) -> SessionFault? {
        out.tx.crm = .notRecognised
        if let brm = input.vehicle.brm, brm.at >= phaseSince {
            // Plug and charge: the VIN decides; recognition waits for the word on it, bounded.
            switch input.vinCheck {
            case .notUsed, .accepted:
                out.tx.crm = .recognised
                enter(.parameterExchange, now)
            case .pending, .pendingFallBack:
                if inPhase > Standard.vinAnswerWait { notAuthorized(fallBack: input.vinCheck == .pendingFallBack, input: input, now) }
            case .refused: notAuthorized(fallBack: false, input: input, now)
            case .refusedFallBack: notAuthorized(fallBack: true, input: input, now)
            }
        } else if inPhase > Standard.defaultMessageTimeout {
            return retryHandshake(now, .brm)
        }
        return nil
    }

    mutating func parameterExchange(now: Instant, inPhase: TimeSpan, input: GunInputs, gun: GunSpec,
                                    out: inout GunOutputs) -> SessionFault? {
        let car = input.vehicle
        guard let bcp else {
            // CRM 0xAA until the car's BCP is in; CTS and CML take over from it
            // (docs/standards.md "When each charger message starts and stops").
            out.tx.crm = .recognised
            if let m = car.bcp, m.at >= phaseSince { self.bcp = m.message; phaseSince = now }
            else if inPhase > Standard.defaultMessageTimeout { return retryHandshake(now, .bcp) }
            return nil
        }
        out.tx.cts = true
        out.tx.cml = CML(maxVoltage: gun.maxVoltage, minVoltage: gun.minVoltage,
                         maxCurrent: min(gun.maxCurrent, gun.connectorCurrent), minCurrent: .zero)
        if let bro = car.bro, bro.at >= phaseSince, bro.message.ready {
            // "Battery voltage measured outside K1/K2 must be within ±5 % of the value the car
            // reported (BCP), and within the charger's range; otherwise refuse." (standards.md)
            let v = input.vehicleSideVoltage
            let tol = bcp.batteryVoltage * Standard.prechargeBatteryVoltageTolerance
            if (v - bcp.batteryVoltage).magnitude > tol || v < gun.minVoltage || v > gun.maxVoltage {
                let low = max(bcp.batteryVoltage - tol, gun.minVoltage), high = min(bcp.batteryVoltage + tol, gun.maxVoltage)
                return SessionFault(.vehicleVoltageMismatch, v.value, limit: (v < low ? low : high).value)
            }
            enter(.precharge, now)
        } else if inPhase > Standard.vehicleReadyTimeout {
            return retryHandshake(now, .bro)
        }
        return nil
    }

    mutating func precharge(now: Instant, inPhase: TimeSpan, input: GunInputs, out: inout GunOutputs,
                            demand: inout SessionDemand) -> SessionFault? {
        out.tx.cro = false
        let vb = input.vehicleSideVoltage
        // "Raise the output to 1–10 V below that voltage, then close K1/K2."
        demand.needsPower = true
        demand.voltage = vb - Standard.prechargeOffsetTarget
        demand.current = Standard.cableCheckCurrentLimit
        let gap = vb - input.chargerSideVoltage
        let inWindow = gap >= Standard.prechargeOffsetMin && gap <= Standard.prechargeOffsetMax
        if inWindow || input.k1Closed || input.k2Closed { out.closeK1K2 = true }
        if input.k1Closed && input.k2Closed {
            out.tx.cro = true
            chargingSince = now
            energyAtStart = input.meterEnergy
            rampedCurrent = .zero
            enter(.charging, now)
        } else if inPhase > Standard.prechargeTimeout {
            return SessionFault(.prechargeTimeout, inPhase.seconds, limit: Standard.prechargeTimeout.seconds)
        }
        return nil
    }

    mutating func charging(now: Instant, input: GunInputs, gun: GunSpec, out: inout GunOutputs,
                           demand: inout SessionDemand) -> SessionFault? {
        let car = input.vehicle
        out.closeK1K2 = true
        demand.needsPower = true
        var allowed = true
        if let bsm = car.bsm, !bsm.message.chargingAllowed { allowed = false }
        if allowed { pausedSince = nil } else if pausedSince == nil { pausedSince = now }
        // CRO 0xAA until the car is heard in its charging stage (its first BCL or BCS since CRO 0xAA: either
        // shows it heard CRO), then CCS (docs/standards.md "When each charger message starts and stops").
        // The demand is a BCL of this charging stage only: one left from before a reconnection is not.
        let bcl = car.bcl.flatMap { $0.at >= chargingSince ? $0 : nil }
        if bcl != nil || (car.bcs.map { $0.at >= chargingSince } ?? false) {
            out.tx.ccs = CCS(voltage: input.meterVoltage, current: input.meterCurrent,
                             chargingMinutes: (now - chargingSince).seconds / 60, chargingAllowed: allowed)
        } else {
            out.tx.cro = true
        }
        if let bcl {
            let vmax = min(negotiatedMaxVoltage(gun), carMaxVoltage ?? gun.maxVoltage)
            demand.voltage = min(bcl.message.voltageDemand, vmax)
            demand.current = allowed ? bcl.message.currentDemand : .zero
            if let bcp, demand.current > bcp.maxChargeCurrent { demand.current = bcp.maxChargeCurrent }
        } else {
            demand.voltage = input.vehicleSideVoltage
            demand.current = .zero
        }
        // GB/T 27930: BCL within 1 s, BCS within 5 s while charging; a timeout stops charging and
        // the charger reconnects; the third in a row ends the session (standards.md).
        let bclAt = max(car.bcl?.at ?? chargingSince, chargingSince)
        let bcsAt = max(car.bcs?.at ?? chargingSince, chargingSince)
        if now - chargingSince > Standard.commTimeoutCleanCharging && now - bclAt < Standard.periodBCL * 2 { commTimeouts = 0 }
        if now - bclAt > Standard.bclTimeout || now - bcsAt > Standard.bcsTimeout {
            let kind: VehicleMessageKind = now - bclAt > Standard.bclTimeout ? .bcl : .bcs
            timedOut = kind
            commTimeouts += 1
            beginStop(.commTimeout, chargerInitiated: true, now)
            return SessionFault(.vehicleCommTimeout, Double(kind.rawValue), latch: commTimeouts >= Standard.commTimeoutsEndingSession)
        }
        if let bst = car.bst, bst.at >= chargingSince {
            beginStop(.vehicleRequest, chargerInitiated: false, now)
        } else if input.stopRequest || input.outOfService {
            beginStop(.operatorRequest, chargerInitiated: true, now)
        } else if let p = pausedSince, now - p > Standard.maxPause {
            beginStop(.pauseTooLong, chargerInitiated: true, now)
        }
        return nil
    }

    mutating func stopping(now: Instant, inPhase: TimeSpan, input: GunInputs, current: Amps, out: inout GunOutputs,
                           demand: inout SessionDemand) {
        let car = input.vehicle
        if chargerInitiatedStop {
            out.tx.cst = CST(reasons: stopReason == .operatorRequest ? .manualStop
                                    : stopReason == .commTimeout ? .fault : .conditionsReached)
            if stopReason == .commTimeout { out.tx.cem = timedOut }
        } else {
            out.tx.cst = CST(reasons: .vehicleStopped)
        }
        demand.needsPower = true
        demand.voltage = car.bcl?.message.voltageDemand ?? input.vehicleSideVoltage
        demand.current = .zero
        demand.dropAtOnce = chargerInitiatedStop
        // "Open K1/K2 only with current ≤ 5 A": the current that can still be confirmed, not a meter
        // reading that may be stale (a silent meter's last value; issue 16's sibling of the error shutdown).
        let open = current <= Standard.openCurrentLimit && rampedCurrent.magnitude <= Standard.openCurrentLimit
        out.closeK1K2 = !open
        // CST (10 ms period) goes out until the car answers with BST, or the default 5 s timeout
        // ("BST / CST | 10 ms"; "Default timeout 5 s"); a car that timed out is not waited for.
        let answered = !chargerInitiatedStop || (car.bst.map { $0.at >= phaseSince } ?? false)
            || inPhase > Standard.defaultMessageTimeout
        guard open else { return }
        demand.needsPower = false
        // Bleed the output only once the mirror contacts confirm the battery is disconnected.
        // (Discharging begins at once; the statistics wait for the car's answer.)
        guard !input.k1Closed && !input.k2Closed else { return }
        out.discharge = true
        if stopReason == .commTimeout {
            // "open K1/K2 (and aux)", then reconnect from the handshake.
            reconnectAt = now + Standard.reconnectAuxOff
            chargingSince = .never
            enter(.auxPower, now)
        } else if answered {
            enter(.statistics, now)
        }
    }

    mutating func statistics(now: Instant, inPhase: TimeSpan, input: GunInputs, out: inout GunOutputs) {
        // A session stopped before the energy transfer reports no charging time.
        let minutes = chargingSince == .never ? 0 : (now - chargingSince).seconds / 60
        out.tx.csd = CSD(chargingMinutes: minutes, energy: input.meterEnergy - energyAtStart)
        // The car's BSD counts from the stop on: a car may send it on CST, before the current is down and
        // this phase begins (GB/T 27930-2015's order, BSD then CSD), or on CSD. Either way CSD stays out
        // `csdHold` at the least, so the car hears it.
        if let bsd = input.vehicle.bsd, bsd.at >= stoppedAt, inPhase >= Standard.csdHold { enter(.weldingCheck, now) }
        else if inPhase > Standard.statisticsTimeout { enter(.weldingCheck, now) }
    }

    /// The supervisor watches the auxiliary contacts; here the session waits out the contactor open time
    /// and the discharge of both sides before the aux supply goes off.
    mutating func weldingCheck(now: Instant, inPhase: TimeSpan, input: GunInputs) {
        if inPhase > Standard.dischargeTime
            && input.chargerSideVoltage < Standard.dischargeTarget && input.vehicleSideVoltage < Standard.dischargeTarget {
            enter(.unlocking, now)
        }
    }

    mutating func unlocking(now: Instant, inPhase: TimeSpan, input: GunInputs, gun: GunSpec, out: inout GunOutputs) -> SessionFault? {
        // "unlock only when the output is below 60 V"
        out.lock = input.vehicleSideVoltage >= Standard.unlockMaxVoltage
        if !input.lockConfirmed {
            // A refused VIN with a fallback: the car stays, waiting (unlocked) for an idTag or a remote start.
            if fallBack && stopReason == .notAuthorized { fallBack = false; enter(.connected, now) } else { enter(.finished, now) }
        }
        else if inPhase > gun.lockTimeout { return SessionFault(.lockFailure, inPhase.seconds) }
        return nil
    }

    mutating func faulted(now: Instant, input: GunInputs, blocked: Bool, testing: Bool, out: inout GunOutputs) {
        if chargingSince != .never || handshakeAttempt > 0 {
            out.tx.cst = CST(reasons: .fault)
        }
        // CEM names the car message that timed out (GB/T 27930 "BEM / CEM").
        out.tx.cem = timedOut
        // Keep the gun locked while the output is live; release below 60 V.
        out.lock = input.lockConfirmed && input.vehicleSideVoltage >= Standard.unlockMaxVoltage
        // The BMS keeps its auxiliary supply until K1/K2 are open (an error shutdown ramps first).
        out.closeK3K4 = input.k1Closed || input.k2Closed
        // A K1/K2 test on the gun's own contactor fault, plug out (`contactorRepairTest`): the contacts
        // only, on a dead output; no auxiliary supply (there is no car).
        if testing && input.actuatorTest == .contactorsK1K2 {
            out.closeK1K2 = true
            out.closeK3K4 = false
            out.discharge = false
        }
        if !blocked {
            handshakeAttempt = 0
            // No automatic resume: a cleared fault waits for the plug to come out.
            enter(cc1Is(input.cc1, Standard.cc1Unplugged) ? .unplugged : .finished, now)
        }
    }

    mutating func startCableCheck(_ now: Instant, _ gun: GunSpec) {
        testVoltage = insulationTestVoltage(carMax: carMaxVoltage, gun: gun)
        enter(.insulationCheck, now)
        enterStep(.precheck, now)
    }

    /// The car's VIN did not authorize the session: a charger-initiated stop before any energy (CST
    /// "conditions reached"), then `finished`, or `connected` where the site falls back to another method.
    mutating func notAuthorized(fallBack: Bool, input: GunInputs, _ now: Instant) {
        energyAtStart = input.meterEnergy
        rampedCurrent = .zero
        self.fallBack = fallBack
        beginStop(.notAuthorized, chargerInitiated: true, now)
    }

    mutating func beginStop(_ reason: StopReason, chargerInitiated: Bool, _ now: Instant) {
        stopReason = reason
        chargerInitiatedStop = chargerInitiated
        stoppedAt = now
        enter(.stopping, now)
    }

    /// "handshake retried 3 times": a timeout in identification or parameter exchange starts the
    /// handshake again, up to three attempts, then the session ends with a communication fault.
    mutating func retryHandshake(_ now: Instant, _ kind: VehicleMessageKind) -> SessionFault? {
        if handshakeAttempt < Standard.handshakeAttempts {
            handshakeAttempt += 1
            bcp = nil
            enter(.handshake, now)
            return nil
        }
        timedOut = kind
        return SessionFault(.vehicleCommTimeout, Double(kind.rawValue))
    }

    /// The insulation (cable) check, standards.md "Insulation check before charging".
    mutating func cableCheck(now: Instant, input: GunInputs, gun: GunSpec,
                             out: inout GunOutputs, demand: inout SessionDemand) -> SessionFault? {
        let inStep = now - stepSince
        if now - phaseSince > Standard.cableCheckTimeout {
            return SessionFault(.insulationCheckTimeout, (now - phaseSince).seconds, limit: Standard.cableCheckTimeout.seconds)
        }
        switch cableStep {
        case .precheck:
            // "Before the check the voltage outside K1/K2 must be < 10 V, else refuse to charge."
            if input.vehicleSideVoltage >= Standard.insulationPreCheckMaxVoltage {
                return SessionFault(.outputVoltageBeforeCheck, input.vehicleSideVoltage.value, limit: Standard.insulationPreCheckMaxVoltage.value)
            }
            // Our own side too, or K1/K2 would close across the difference (a retried handshake finds
            // the output only below 60 V from the previous check): bleed it, within the discharge time.
            if input.chargerSideVoltage >= Standard.insulationPreCheckMaxVoltage {
                out.discharge = true
                if inStep > Standard.dischargeTime {
                    // Our own side not bled below 10 V in the discharge time: the voltage left, not a time.
                    return SessionFault(.insulationCheckTimeout, input.chargerSideVoltage.value,
                                        limit: Standard.insulationPreCheckMaxVoltage.value, measure: .volts)
                }
            } else {
                enterStep(.closing, now)
            }
        case .closing:
            out.closeK1K2 = true
            if input.k1Closed && input.k2Closed { enterStep(.raising, now) }
        case .raising:
            out.closeK1K2 = true
            demand.needsPower = true
            demand.voltage = testVoltage
            demand.current = Standard.cableCheckCurrentLimit
            // IEC 61851-23:2023 CC.4.1.3: self-test the IMD during the check.
            out.imdSelfTest = input.imdSelfTest != .passed
            if input.imdSelfTest == .failed { return SessionFault(.imdSelfTestFailed, inStep.seconds) }
            if inStep > Standard.imdSelfTestTimeout {
                return SessionFault(.imdSelfTestFailed, inStep.seconds, limit: Standard.imdSelfTestTimeout.seconds)
            }
            if now - input.imdSeenAt > Standard.imdNoAnswerTimeout && inStep > Standard.imdNoAnswerTimeout {
                return SessionFault(.insulationCheckTimeout, inStep.seconds, limit: Standard.imdNoAnswerTimeout.seconds)
            }
            if input.imdSelfTest == .passed && input.vehicleSideVoltage >= testVoltage * 0.95 {
                enterStep(.measuring, now)
            }
        case .measuring:
            out.closeK1K2 = true
            demand.needsPower = true
            demand.voltage = testVoltage
            demand.current = Standard.cableCheckCurrentLimit
            if inStep >= Standard.insulationSettleTime && input.imdSeenAt >= stepSince {
                let rpv = input.insulation / testVoltage
                insulationMeasured = rpv
                if rpv <= Standard.insulationFault || input.imdAlarm {
                    return SessionFault(.insulationFault, input.insulation.value, limit: Standard.insulationFault.value * testVoltage.value)
                }
                insulationWarning = gun.insulationRule == .gbt && rpv <= Standard.insulationWarning
                enterStep(.discharging, now)
            }
        case .discharging:
            // "After the check, discharge the output below 60 V within 1 s."
            out.closeK1K2 = true
            out.discharge = true
            if input.vehicleSideVoltage < Standard.dischargeTarget && input.chargerSideVoltage < Standard.dischargeTarget {
                out.closeK1K2 = false
                if !input.k1Closed && !input.k2Closed { enter(.identification, now) }
            } else if inStep > Standard.dischargeTime {
                // Not discharged below 60 V within 1 s after the check: the voltage left.
                return SessionFault(.insulationCheckTimeout, input.vehicleSideVoltage.value, limit: Standard.dischargeTarget.value,
                                    measure: .volts)
            }
        }
        return nil
    }
}
