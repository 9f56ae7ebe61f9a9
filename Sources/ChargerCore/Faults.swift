// Fault codes, their reaction class, the latch and the bounded fault log.

/// How the controller reacts to a fault (standards.md "Fault reactions", last paragraph).
public enum Reaction: UInt8, Sendable, Comparable {
    /// No stop: the gun continues at reduced capability (a module lost, re-allocated).
    case derate
    /// Controlled stop, then the protocol's own reconnection (GB/T 27930: a car timeout while charging is
    /// retried; the third in a row ends the session). Logged, not latched.
    case reconnect
    /// The session may not start / go on, nothing is energised (refusal before energy flows).
    case refuse
    /// Ramp to ≤ 5 A, then open K1/K2; escalate to emergency after 2.5 s.
    case errorShutdown
    /// Modules off and K1/K2 open in the same control cycle.
    case emergency
    public static func < (a: Reaction, b: Reaction) -> Bool { a.rawValue < b.rawValue }
    public var name: String {
        switch self {
        case .derate: "derate"
        case .reconnect: "stop-and-reconnect"
        case .refuse: "refuse"
        case .errorShutdown: "error-shutdown"
        case .emergency: "emergency-shutdown"
        }
    }
}

public enum FaultCode: UInt8, Sendable, CaseIterable {
    case emergencyStop = 0
    case doorOpen
    case groundFault
    case protectiveEarthLost
    case insulationFault
    case insulationCheckTimeout
    case imdSelfTestFailed
    case outputVoltageBeforeCheck
    case overVoltageTable103
    case overVoltageVehicleMax
    case overVoltageNegotiated
    case overCurrent
    case gunOverTemperature
    case contactorWelded
    case contactorFailedToClose
    case cc1OutOfBand
    case vehicleCommTimeout
    case vehicleVoltageMismatch
    case prechargeTimeout
    case inrushOverCurrent
    case lockFailure
    case moduleFault
    case moduleCommLost
    case noModulesAvailable
    case meterCommLost
    case imdCommLost
    case mainsLost
    case escalatedToEmergency
    case controlLoopOverrun
    case groundDetectorSelfTestFailed
    /// The step's own output contract broken after the arbiter (StepContract.swift): the gun is cut.
    case stepContractBroken
    /// A read or write of the board's GPIO lines failed in the loop: its outputs were forced safe.
    case boardIOFailed
    /// The 12 V auxiliary supply to the car left 12 V ± 0.6 V with K3/K4 closed.
    case auxSupplyOutOfRange
    /// The meter's energy over a session deviated from the charger's own beyond the metering budget, for
    /// longer than the board allows (Metering.swift). A record: the session finishes.
    case meteringDeviation
    /// The meter's energy register went back, fell to almost nothing, or rose by more than the gun could
    /// deliver since the last reading (a tamper, a replacement, a rollover).
    case meterRegister
    /// A gun's analog values (CC1, K1/K2 voltages, temperature, auxiliary supply) older than the board's
    /// `analog_max_age`: the sampler stalled or its channels stopped reading.
    case analogStale

    /// Reaction class, from standards.md "Fault reactions" (row named on each line).
    public var reaction: Reaction {
        switch self {
        case .emergencyStop: .emergency            // "emergency stop button | modules off and contactors open at once"
        case .doorOpen: .errorShutdown             // "other fault preventing charge | CST and K1/K2 open within 100 ms"
        case .groundFault: .emergency              // "Residual current / earth": trip opens the contactor in hardware too
        case .protectiveEarthLost: .emergency      // "protective earth continuity lost | cut power within 100 ms"
        case .insulationFault: .errorShutdown      // "insulation / cable-check fault | error shutdown"
        case .insulationCheckTimeout: .errorShutdown
        case .imdSelfTestFailed: .errorShutdown
        case .outputVoltageBeforeCheck: .refuse    // "voltage outside K1/K2 must be < 10 V, else refuse to charge"
        case .overVoltageTable103: .emergency      // "over-voltage above IEC Table 103 limit for 9 ms | emergency shutdown"
        case .overVoltageVehicleMax: .errorShutdown // "output above car's maximum voltage | stop, open K1–K4 within 1 s"
        case .overVoltageNegotiated: .errorShutdown // "output above negotiated maximum > 400 ms | error shutdown"
        case .overCurrent: .emergency              // "over-current | emergency shutdown"
        case .gunOverTemperature: .errorShutdown   // "other fault preventing charge"
        case .contactorWelded: .emergency          // "a welded contactor is a latched fault that blocks the gun"
        case .contactorFailedToClose: .errorShutdown
        case .cc1OutOfBand: .errorShutdown         // "CC1 broken / point 1 leaves 4 V band | CST, open within 100 ms (50 ms to ≤ 5 A)"
        case .analogStale: .errorShutdown          // a frozen CC1 is a broken one: its row (docs/standards.md "Analog inputs that stop")
        case .vehicleCommTimeout: .errorShutdown   // "car communication timeout while charging | open K1/K2 within 10 s"
        case .vehicleVoltageMismatch: .refuse      // "within ±5 % of the value the car reported (BCP) ... otherwise refuse"
        case .prechargeTimeout: .refuse            // "Precharge times out at 60 s"
        case .inrushOverCurrent: .emergency        // "Inrush peak ≤ 20 A"
        case .lockFailure: .refuse                 // "gun must be locked ... before any test voltage is applied"
        case .moduleFault: .derate                 // "survive a module failing mid-session (re-allocate, derate, log)"
        case .moduleCommLost: .derate
        case .noModulesAvailable: .errorShutdown
        case .meterCommLost: .errorShutdown        // "other fault preventing charge"
        case .imdCommLost: .errorShutdown
        case .mainsLost: .emergency                // "AC mains lost | output below 60 V within 1 s, no automatic resume"
        case .escalatedToEmergency: .emergency     // a shutdown, error or normal stop, that could not meet its row's time
        case .controlLoopOverrun: .emergency
        case .groundDetectorSelfTestFailed: .refuse   // no session without a working earth-fault detector
        case .stepContractBroken: .emergency       // the controller's own outputs cannot be trusted: cut at once
        case .boardIOFailed: .emergency            // the contactors' own lines cannot be trusted: cut at once
        case .auxSupplyOutOfRange: .errorShutdown  // "other fault preventing charge": the car's BMS runs on it
        case .meteringDeviation, .meterRegister: .derate   // metering, not safety: recorded, nothing stops
        }
    }

    /// The time from the latch by which K1/K2 must be open, whatever the devices do: the fault's row of
    /// standards.md "Fault reactions". An error shutdown that cannot confirm ≤ 5 A by then (less the
    /// contactor's opening time, `StationSpec.contactorOpeningTime`) opens under load as an emergency (E28,
    /// journalled with the current broken: the contactor-wear record). Zero for emergencies (same cycle);
    /// nil where the reaction stops nothing (derate) or the session stops in order (reconnect).
    public var openWithin: TimeSpan? {
        switch reaction {
        case .derate, .reconnect: return nil
        case .emergency: return .zero
        case .refuse, .errorShutdown:
            switch self {
            case .cc1OutOfBand, .analogStale: return Standard.cc1OpenWithin    // "CC1 broken ... open K1/K2 within 100 ms"
            case .overVoltageVehicleMax: return Standard.vehicleMaxOvOpenWithin // "stop, open K1–K4 within 1 s"
            case .overVoltageNegotiated: return Standard.errorShutdownEscalation // "not done after 2.5 s → emergency"
            // The supervisor latches E17 at the row's own 10 s bound ("open K1/K2 (and aux) within 10 s"):
            // nothing of it is left, so it opens like any other fault preventing charge.
            default: return Standard.errorShutdownOpenWithin                  // "other fault preventing charge | ... within 100 ms"
            }
        }
    }

    /// Stable code for logs and the JSON summary.
    public var name: String {
        switch self {
        case .emergencyStop: "E01-estop"
        case .doorOpen: "E02-door-open"
        case .groundFault: "E03-ground-fault"
        case .protectiveEarthLost: "E04-pe-lost"
        case .insulationFault: "E05-insulation"
        case .insulationCheckTimeout: "E06-cable-check-timeout"
        case .imdSelfTestFailed: "E07-imd-selftest"
        case .outputVoltageBeforeCheck: "E08-voltage-before-check"
        case .overVoltageTable103: "E09-ov-table103"
        case .overVoltageVehicleMax: "E10-ov-vehicle-max"
        case .overVoltageNegotiated: "E11-ov-negotiated"
        case .overCurrent: "E12-over-current"
        case .gunOverTemperature: "E13-gun-over-temperature"
        case .contactorWelded: "E14-contactor-welded"
        case .contactorFailedToClose: "E15-contactor-not-closed"
        case .cc1OutOfBand: "E16-cc1-out-of-band"
        case .vehicleCommTimeout: "E17-vehicle-comm-timeout"
        case .vehicleVoltageMismatch: "E18-battery-voltage-mismatch"
        case .prechargeTimeout: "E19-precharge-timeout"
        case .inrushOverCurrent: "E20-inrush"
        case .lockFailure: "E21-lock-failure"
        case .moduleFault: "E22-module-fault"
        case .moduleCommLost: "E23-module-comm-lost"
        case .noModulesAvailable: "E24-no-modules"
        case .meterCommLost: "E25-meter-comm-lost"
        case .imdCommLost: "E26-imd-comm-lost"
        case .mainsLost: "E27-mains-lost"
        case .escalatedToEmergency: "E28-shutdown-escalated"
        case .controlLoopOverrun: "E29-loop-overrun"
        case .groundDetectorSelfTestFailed: "E30-rcd-selftest"
        case .stepContractBroken: "E31-step-contract"
        case .boardIOFailed: "E32-board-io"
        case .auxSupplyOutOfRange: "E33-aux-supply"
        case .meteringDeviation: "E34-metering-deviation"
        case .meterRegister: "E35-meter-register"
        case .analogStale: "E36-analog-stale"
        }
    }

    /// What the value of a record of this code measures where the raise does not say otherwise (E06
    /// says: its timeouts are seconds, its discharges volts).
    public var measure: FaultMeasure {
        switch self {
        case .emergencyStop, .doorOpen, .groundFault, .protectiveEarthLost, .mainsLost, .boardIOFailed, .noModulesAvailable: .none
        case .insulationFault: .ohms
        case .insulationCheckTimeout, .imdSelfTestFailed, .prechargeTimeout, .lockFailure, .moduleCommLost, .meterCommLost,
             .imdCommLost, .groundDetectorSelfTestFailed, .analogStale: .seconds
        case .outputVoltageBeforeCheck, .overVoltageTable103, .overVoltageVehicleMax, .overVoltageNegotiated,
             .vehicleVoltageMismatch, .cc1OutOfBand, .auxSupplyOutOfRange: .volts
        case .overCurrent, .inrushOverCurrent, .escalatedToEmergency: .amps
        case .gunOverTemperature, .moduleFault: .celsius
        case .contactorWelded, .contactorFailedToClose: .contactor
        case .vehicleCommTimeout: .message
        case .controlLoopOverrun: .count
        case .stepContractBroken: .rule
        case .meteringDeviation: .percent
        case .meterRegister: .kilowattHours
        }
    }

    /// Station-wide faults apply to every gun.
    public var isStationWide: Bool {
        switch self {
        case .emergencyStop, .doorOpen, .mainsLost, .controlLoopOverrun, .boardIOFailed: true
        default: false
        }
    }
}

/// What a fault record's value measures, so that a reader can give it its unit and read its limit in the
/// same unit (issue 36: "E05 40000.000" told a technician nothing).
public enum FaultMeasure: UInt8, Sendable, CaseIterable, BitwiseCopyable {
    /// A switch or a state: the value is 1 (on) or 0, or there is none.
    case none
    case volts, amps, ohms, celsius, seconds
    /// A GB/T 27930 message kind (`VehicleMessageKind` raw value): the message that timed out.
    case message
    /// A rule of the step's contract (`StepRule` raw value).
    case rule
    /// A contactor: 1 is K1, 2 is K2.
    case contactor
    /// A count (missed deadlines in a row).
    case count
    /// A share in percent (a metering deviation and its budget).
    case percent
    /// Energy, kWh (a meter register reading; the limit is the reading before it).
    case kilowattHours

    /// Its name in the journal and the JSON summary (stable); `FaultGuide.reading` writes the value
    /// with its unit for a person.
    public var name: String {
        switch self {
        case .none: "none"
        case .volts: "V"
        case .amps: "A"
        case .ohms: "ohm"
        case .celsius: "degC"
        case .seconds: "s"
        case .message: "message"
        case .rule: "rule"
        case .contactor: "contactor"
        case .count: "count"
        case .percent: "percent"
        case .kilowattHours: "kWh"
        }
    }

    public init?(name: String) {
        guard let m = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = m
    }
}

/// A fault that stood when the controller last stopped, as the journal kept it: latched again at start
/// with the reading that tripped it (`StationState.restoreLatched`).
public struct StandingFault: Sendable, Equatable {
    public var code: FaultCode
    /// The gun, -1 for the station.
    public var gun: Int
    public var value: Double
    public var limit: Double
    public var measure: FaultMeasure?
    public init(code: FaultCode, gun: Int, value: Double = .nan, limit: Double = .nan, measure: FaultMeasure? = nil) {
        self.code = code; self.gun = gun; self.value = value; self.limit = limit; self.measure = measure
    }
}

/// A set of fault codes (bit per code).
public struct FaultSet: Sendable, Equatable {
    public var bits: UInt64
    @inlinable public init(bits: UInt64 = 0) { self.bits = bits }
    @inlinable public static var empty: FaultSet { FaultSet() }
    @inlinable public func contains(_ c: FaultCode) -> Bool { bits & (1 << UInt64(c.rawValue)) != 0 }
    @inlinable public mutating func insert(_ c: FaultCode) { bits |= 1 << UInt64(c.rawValue) }
    @inlinable public mutating func remove(_ c: FaultCode) { bits &= ~(1 << UInt64(c.rawValue)) }
    @inlinable public var isEmpty: Bool { bits == 0 }
    @inlinable public static func | (a: FaultSet, b: FaultSet) -> FaultSet { FaultSet(bits: a.bits | b.bits) }
    @inlinable public static func & (a: FaultSet, b: FaultSet) -> FaultSet { FaultSet(bits: a.bits & b.bits) }
    @inlinable public func subtracting(_ b: FaultSet) -> FaultSet { FaultSet(bits: bits & ~b.bits) }
    /// The strongest reaction any member asks for.
    public var strongestReaction: Reaction? {
        var best: Reaction? = nil
        var b = bits
        while b != 0 {
            let i = b.trailingZeroBitCount
            b &= b - 1
            if let c = FaultCode(rawValue: UInt8(i)) {
                let r = c.reaction
                if best == nil || best! < r { best = r }
            }
        }
        return best
    }
    public var codes: [FaultCode] { FaultCode.allCases.filter { contains($0) } }
}

/// One latched fault, as logged.
public struct FaultRecord: Sendable, Equatable {
    /// Monotonic sequence number (1-based) of this record.
    public var sequence: UInt64
    public var code: FaultCode
    /// Gun index, or -1 for the station.
    public var gun: Int8
    /// Module index for module faults, else -1.
    public var module: Int8
    public var raisedAt: Instant
    public var reaction: Reaction
    /// The measured value that tripped it, in the unit `measure` says, or NaN.
    public var value: Double
    /// What `value` measures (its unit), and the limit it crossed in the same unit (NaN: none stated).
    public var measure: FaultMeasure
    public var limit: Double
    public var clearedAt: Instant?
    /// Latched again at start from the journal: the fault stood when the controller last stopped.
    public var restored = false
    public init(sequence: UInt64, code: FaultCode, gun: Int8, module: Int8, raisedAt: Instant, reaction: Reaction, value: Double,
                measure: FaultMeasure? = nil, limit: Double = .nan) {
        self.sequence = sequence; self.code = code; self.gun = gun; self.module = module
        self.raisedAt = raisedAt; self.reaction = reaction; self.value = value; self.clearedAt = nil
        self.measure = measure ?? code.measure; self.limit = limit
    }
    public static let empty = FaultRecord(sequence: 0, code: .emergencyStop, gun: -1, module: -1, raisedAt: .zero, reaction: .derate, value: 0)
}

/// A bounded ring of fault records. When full, the oldest record is overwritten and counted in
/// `overwritten`; the runtime drains records by sequence number into the durable log every cycle.
public struct FaultLog: Sendable {
    public var records = InlineArray<128, FaultRecord>(repeating: .empty)
    /// Sequence number of the newest record (0 = none yet).
    public private(set) var lastSequence: UInt64 = 0
    public private(set) var overwritten: UInt64 = 0
    /// Counts records marked cleared, so a reader knows when to refresh what it copied.
    public private(set) var clearings: UInt64 = 0
    public init() {}

    @inlinable public var count: Int { lastSequence < 128 ? Int(lastSequence) : 128 }

    public mutating func append(code: FaultCode, gun: Int8, module: Int8, at: Instant, value: Double,
                                reaction: Reaction? = nil, measure: FaultMeasure? = nil, limit: Double = .nan) {
        lastSequence &+= 1
        if lastSequence > 128 { overwritten &+= 1 }
        let slot = Int((lastSequence &- 1) % 128)
        records[slot] = FaultRecord(sequence: lastSequence, code: code, gun: gun, module: module, raisedAt: at,
                                    reaction: reaction ?? code.reaction, value: value, measure: measure, limit: limit)
    }

    /// Marks the newest record restored (see `StationState.restoreLatched`).
    public mutating func markNewestRestored() {
        guard lastSequence >= 1 else { return }
        records[Int((lastSequence - 1) % 128)].restored = true
    }

    /// Record with this sequence number, if still in the ring.
    public func record(sequence: UInt64) -> FaultRecord? {
        guard sequence >= 1, sequence <= lastSequence, lastSequence - sequence < 128 else { return nil }
        return records[Int((sequence - 1) % 128)]
    }

    /// Marks the newest uncleared record of (code, gun, module) cleared.
    public mutating func markCleared(code: FaultCode, gun: Int8, module: Int8, at: Instant) {
        var s = lastSequence
        var n = 0
        while s >= 1 && n < 128 {
            let slot = Int((s - 1) % 128)
            let r = records[slot]
            let same = module >= 0 ? (r.code == code && r.module == module) : (r.code == code && r.gun == gun && r.module < 0)
            if same {
                if records[slot].clearedAt == nil { records[slot].clearedAt = at; clearings &+= 1 }
                return
            }
            s -= 1; n += 1
        }
    }
}
