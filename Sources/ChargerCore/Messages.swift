// GB/T 27930-2015 messages as typed values (standards.md "GB/T 27930-2015 charger ⇄ car messages").
// The CAN wire format (29-bit ids, J1939-21 transport) is not modelled here: a vehicle-link driver
// decodes frames into these values and stamps them with the instant they arrived.

/// A received message and the instant it arrived.
public struct Stamped<M: Sendable>: Sendable {
    public var message: M
    public var at: Instant
    @inlinable public init(_ message: M, at: Instant) { self.message = message; self.at = at }
}

// MARK: Car → charger

/// BHM: handshake, carries the car's maximum allowed charging voltage.
public struct BHM: Sendable, Equatable {
    public var maxAllowedVoltage: Volts
    public init(maxAllowedVoltage: Volts) { self.maxAllowedVoltage = maxAllowedVoltage }
}

public enum BatteryType: UInt8, Sendable { case leadAcid = 1, nimh, lfp, lmo, lco, nmc, polymer, lto, other = 0xFF }

/// BRM: battery/vehicle identification (multi-frame on the wire).
public struct BRM: Sendable, Equatable {
    public var batteryType: BatteryType
    public var ratedCapacityAh: Double
    public var ratedVoltage: Volts
    /// A byte a VIN may hold (ISO 3779: 0-9 and A-Z without I, O and Q).
    @inlinable public static func isVINByte(_ b: UInt8) -> Bool {
        switch b {
        case 0x30...0x39: true
        case 0x41...0x5A: b != 0x49 && b != 0x4F && b != 0x51
        default: false
        }
    }
    /// A VIN as the journal and the console show it unless the site allows the whole: the maker (WMI, 3
    /// characters) and the serial's last 4, the rest starred ("LSV**********1234"). Off the loop only.
    public static func maskedVIN(_ vin: String) -> String {
        let c = Array(vin)
        guard c.count == 17 else { return String(repeating: "*", count: c.count) }
        return String(c[0..<3]) + String(repeating: "*", count: 10) + String(c[13..<17])
    }
    /// VIN, 17 ASCII bytes (no String in core values: they are copied every cycle).
    public var vin: InlineArray<17, UInt8>
    public init(batteryType: BatteryType, ratedCapacityAh: Double, ratedVoltage: Volts, vin: InlineArray<17, UInt8>) {
        self.batteryType = batteryType; self.ratedCapacityAh = ratedCapacityAh; self.ratedVoltage = ratedVoltage; self.vin = vin
    }
    public static func == (a: BRM, b: BRM) -> Bool {
        guard a.batteryType == b.batteryType, a.ratedCapacityAh == b.ratedCapacityAh, a.ratedVoltage == b.ratedVoltage else { return false }
        for i in 0..<17 where a.vin[i] != b.vin[i] { return false }
        return true
    }
}

/// BCP: battery charging parameters.
public struct BCP: Sendable, Equatable {
    public var maxCellVoltage: Volts
    public var maxChargeCurrent: Amps
    public var nominalEnergy: WattHours
    public var maxChargeVoltage: Volts
    public var maxTemperature: Celsius
    public var soc: Double          // 0...100 %
    public var batteryVoltage: Volts
    public init(maxCellVoltage: Volts, maxChargeCurrent: Amps, nominalEnergy: WattHours, maxChargeVoltage: Volts,
                maxTemperature: Celsius, soc: Double, batteryVoltage: Volts) {
        self.maxCellVoltage = maxCellVoltage; self.maxChargeCurrent = maxChargeCurrent; self.nominalEnergy = nominalEnergy
        self.maxChargeVoltage = maxChargeVoltage; self.maxTemperature = maxTemperature; self.soc = soc; self.batteryVoltage = batteryVoltage
    }
}

/// BRO: battery ready for charging (0x00 not ready, 0xAA ready).
public struct BRO: Sendable, Equatable { public var ready: Bool; public init(ready: Bool) { self.ready = ready } }

public enum ChargeMode: UInt8, Sendable { case constantVoltage = 1, constantCurrent = 2 }

/// BCL: battery charging demand.
public struct BCL: Sendable, Equatable {
    public var voltageDemand: Volts
    public var currentDemand: Amps
    public var mode: ChargeMode
    public init(voltageDemand: Volts, currentDemand: Amps, mode: ChargeMode) {
        self.voltageDemand = voltageDemand; self.currentDemand = currentDemand; self.mode = mode
    }
}

/// BCS: battery charging status.
public struct BCS: Sendable, Equatable {
    public var measuredVoltage: Volts
    public var measuredCurrent: Amps
    public var soc: Double
    public var remainingMinutes: Double
    public init(measuredVoltage: Volts, measuredCurrent: Amps, soc: Double, remainingMinutes: Double) {
        self.measuredVoltage = measuredVoltage; self.measuredCurrent = measuredCurrent; self.soc = soc; self.remainingMinutes = remainingMinutes
    }
}

/// BSM: battery status bits; "charging allowed" 00 pauses output, 01 resumes.
public struct BSM: Sendable, Equatable {
    public var chargingAllowed: Bool
    public var maxCellTemperature: Celsius
    public var faultFlags: UInt16
    public init(chargingAllowed: Bool, maxCellTemperature: Celsius, faultFlags: UInt16) {
        self.chargingAllowed = chargingAllowed; self.maxCellTemperature = maxCellTemperature; self.faultFlags = faultFlags
    }
}

/// BST: the car stops charging, with reasons.
public struct BST: Sendable, Equatable {
    public struct Reasons: OptionSet, Sendable, Equatable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let socTargetReached = Reasons(rawValue: 1 << 0)
        public static let totalVoltageReached = Reasons(rawValue: 1 << 2)
        public static let cellVoltageReached = Reasons(rawValue: 1 << 4)
        public static let chargerStopped = Reasons(rawValue: 1 << 6)
        public static let insulationFault = Reasons(rawValue: 1 << 8)
        public static let overTemperature = Reasons(rawValue: 1 << 10)
        public static let batteryFault = Reasons(rawValue: 1 << 12)
        public static let otherFault = Reasons(rawValue: 1 << 14)
    }
    public var reasons: Reasons
    public init(reasons: Reasons) { self.reasons = reasons }
}

/// BSD: battery statistics at the end of charging.
public struct BSD: Sendable, Equatable {
    public var finalSoc: Double
    public var minCellVoltage: Volts
    public var maxCellVoltage: Volts
    public init(finalSoc: Double, minCellVoltage: Volts, maxCellVoltage: Volts) {
        self.finalSoc = finalSoc; self.minCellVoltage = minCellVoltage; self.maxCellVoltage = maxCellVoltage
    }
}

/// BDP: the car's offer to be discharged (V2G), as its BMS states it while the session runs. Not a GB/T
/// 27930-2015 message (that edition only charges): this controller's own, carrying what ISO 15118-20's
/// bidirectional power transfer gives a charger (EVMaximumDischargeCurrent, EVMaximumDischargePower and
/// a lower bound of the battery's state of charge) and what GB/T 18487.4-2025 asks a discharging car to
/// state (docs/standards.md "V2G"). A car that never sends it, or sends `allowed` false, is never
/// discharged; one that falls silent for `Standard.v2gOfferTimeout` has withdrawn it.
public struct BDP: Sendable, Equatable {
    /// The car allows discharge now (false: consent withdrawn).
    public var allowed: Bool
    /// The lowest state of charge, in %, the car may be discharged to.
    public var minSoc: Double
    /// The most the car may be discharged at, current (a magnitude) and power.
    public var maxDischargeCurrent: Amps
    public var maxDischargePower: Watts
    public init(allowed: Bool, minSoc: Double, maxDischargeCurrent: Amps, maxDischargePower: Watts) {
        self.allowed = allowed; self.minSoc = minSoc
        self.maxDischargeCurrent = maxDischargeCurrent; self.maxDischargePower = maxDischargePower
    }
}

/// The latest of each car message seen on one gun's link, with arrival instants.
public struct VehicleMessages: Sendable {
    public var bhm: Stamped<BHM>?
    public var brm: Stamped<BRM>?
    public var bcp: Stamped<BCP>?
    public var bro: Stamped<BRO>?
    public var bcl: Stamped<BCL>?
    public var bcs: Stamped<BCS>?
    public var bsm: Stamped<BSM>?
    public var bst: Stamped<BST>?
    public var bsd: Stamped<BSD>?
    /// The car's discharge offer (V2G), if it makes one.
    public var bdp: Stamped<BDP>?
    public init() {}
}

// MARK: Charger → car

/// CRM recognition result: 0x00 before identification, 0xAA after.
public enum Recognition: UInt8, Sendable { case notRecognised = 0x00, recognised = 0xAA }

/// CML: charger's output capability.
public struct CML: Sendable, Equatable {
    public var maxVoltage: Volts
    public var minVoltage: Volts
    public var maxCurrent: Amps
    public var minCurrent: Amps
    public init(maxVoltage: Volts, minVoltage: Volts, maxCurrent: Amps, minCurrent: Amps) {
        self.maxVoltage = maxVoltage; self.minVoltage = minVoltage; self.maxCurrent = maxCurrent; self.minCurrent = minCurrent
    }
}

/// CCS: charger output status.
public struct CCS: Sendable, Equatable {
    public var voltage: Volts
    public var current: Amps
    public var chargingMinutes: Double
    public var chargingAllowed: Bool
    public init(voltage: Volts, current: Amps, chargingMinutes: Double, chargingAllowed: Bool) {
        self.voltage = voltage; self.current = current; self.chargingMinutes = chargingMinutes; self.chargingAllowed = chargingAllowed
    }
}

/// CST: charger stops, with reasons.
public struct CST: Sendable, Equatable {
    public struct Reasons: OptionSet, Sendable, Equatable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let conditionsReached = Reasons(rawValue: 1 << 0)
        public static let manualStop = Reasons(rawValue: 1 << 2)
        public static let fault = Reasons(rawValue: 1 << 4)
        public static let vehicleStopped = Reasons(rawValue: 1 << 6)
        public static let overTemperature = Reasons(rawValue: 1 << 8)
        public static let connectorFault = Reasons(rawValue: 1 << 10)
        public static let currentMismatch = Reasons(rawValue: 1 << 12)
        public static let voltageAbnormal = Reasons(rawValue: 1 << 14)
        public static let emergencyStop = Reasons(rawValue: 1 << 16)
    }
    public var reasons: Reasons
    public init(reasons: Reasons) { self.reasons = reasons }
}

/// CSD: charger statistics.
public struct CSD: Sendable, Equatable {
    public var chargingMinutes: Double
    public var energy: WattHours
    public init(chargingMinutes: Double, energy: WattHours) { self.chargingMinutes = chargingMinutes; self.energy = energy }
}

/// Which car message timed out (CEM/BEM payload).
public enum VehicleMessageKind: UInt8, Sendable { case bhm, brm, bcp, bro, bcl, bcs, bst, bsd }

/// What the charger currently broadcasts on one gun's link. The link driver repeats each present
/// message at its GB/T 27930 period; `nil` means "not being sent".
public struct ChargerMessages: Sendable, Equatable {
    public var chm: Bool = false                  // CHM (protocol version is fixed: 1.1)
    public var crm: Recognition? = nil
    public var cts: Bool = false
    public var cml: CML? = nil
    public var cro: Bool? = nil                   // CRO: false = 0x00, true = 0xAA
    public var ccs: CCS? = nil
    public var cst: CST? = nil
    public var csd: CSD? = nil
    public var cem: VehicleMessageKind? = nil
    public init() {}
}

// Plain values all through: the car link hands them between threads in triple buffers.
extension Stamped: BitwiseCopyable where M: BitwiseCopyable {}
extension BHM: BitwiseCopyable {}
extension BatteryType: BitwiseCopyable {}
extension BRM: BitwiseCopyable {}
extension BCP: BitwiseCopyable {}
extension BRO: BitwiseCopyable {}
extension ChargeMode: BitwiseCopyable {}
extension BCL: BitwiseCopyable {}
extension BCS: BitwiseCopyable {}
extension BSM: BitwiseCopyable {}
extension BST.Reasons: BitwiseCopyable {}
extension BST: BitwiseCopyable {}
extension BSD: BitwiseCopyable {}
extension BDP: BitwiseCopyable {}
extension VehicleMessages: BitwiseCopyable {}
extension Recognition: BitwiseCopyable {}
extension CML: BitwiseCopyable {}
extension CCS: BitwiseCopyable {}
extension CST.Reasons: BitwiseCopyable {}
extension CST: BitwiseCopyable {}
extension CSD: BitwiseCopyable {}
extension VehicleMessageKind: BitwiseCopyable {}
extension ChargerMessages: BitwiseCopyable {}
