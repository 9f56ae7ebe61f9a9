// Encoding and decoding of the core's GB/T 27930 message values through the message table: pure
// functions on a fixed-size payload (no allocation: the loop's side of the link calls them).
import ChargerCore

/// One message's payload, up to the longest GB/T 27930 message (BRM, 49 bytes), in place.
public struct GBTPayload: Sendable, BitwiseCopyable {
    public var bytes: InlineArray<64, UInt8> = InlineArray(repeating: 0xFF)
    public var count: Int = 0
    public init() {}
    public init(count: Int) { self.count = count; for i in 0..<min(count, 64) { bytes[i] = 0xFF } }
    public init(_ b: [UInt8]) { count = min(b.count, 64); for i in 0..<count { bytes[i] = b[i] } }
    public var array: [UInt8] { (0..<count).map { bytes[$0] } }

    /// The raw bits of `f` (little endian from bit `start`); nil when the payload is too short.
    @inlinable public func raw(_ f: GBTField) -> UInt64? {
        guard (f.start + f.bits + 7) / 8 <= count else { return nil }
        var v: UInt64 = 0
        for k in 0..<f.bits {
            let bit = f.start + k
            if bytes[bit / 8] >> UInt8(bit % 8) & 1 == 1 { v |= 1 << UInt64(k) }
        }
        return v
    }
    @inlinable public mutating func setRaw(_ f: GBTField, _ v: UInt64) {
        for k in 0..<f.bits {
            let bit = f.start + k
            let mask = UInt8(1) << UInt8(bit % 8)
            if v >> UInt64(k) & 1 == 1 { bytes[bit / 8] |= mask } else { bytes[bit / 8] &= ~mask }
        }
    }
    /// The physical value; nil when short, or when the raw value is all ones ("not available").
    @inlinable public func value(_ f: GBTField) -> Double? {
        guard let r = raw(f), f.bits < 8 || r != f.rawMax else { return nil }
        return Double(r) * f.factor + f.offset
    }
    /// Writes a physical value, rounded to the field's resolution and held inside its range.
    @inlinable public mutating func set(_ f: GBTField, _ value: Double) {
        let r = ((value - f.offset) / f.factor).rounded()
        let top = Double(f.rawMax - (f.bits >= 8 ? 1 : 0))
        setRaw(f, UInt64(r.isNaN ? 0 : min(max(r, 0), top)))
    }
}

/// Why a received payload was not taken.
public enum GBTDecodeError: Error, Equatable, Sendable, CustomStringConvertible {
    case tooShort(message: String, got: Int, needs: Int)
    case badValue(message: String, field: String, raw: UInt64)
    public var description: String {
        switch self {
        case .tooShort(let m, let got, let needs): "\(m): \(got) bytes, at least \(needs) needed"
        case .badValue(let m, let f, let raw): "\(m).\(f): raw value \(raw) is not one the standard defines"
        }
    }
}

/// The table's messages by name, looked up once (the codec never searches the table per call).
enum M {
    static let CHM = GBT27930.message("CHM")!, BHM = GBT27930.message("BHM")!, CRM = GBT27930.message("CRM")!
    static let BRM = GBT27930.message("BRM")!, BCP = GBT27930.message("BCP")!, CTS = GBT27930.message("CTS")!
    static let CML = GBT27930.message("CML")!, BRO = GBT27930.message("BRO")!, CRO = GBT27930.message("CRO")!
    static let BCL = GBT27930.message("BCL")!, BCS = GBT27930.message("BCS")!, CCS = GBT27930.message("CCS")!
    static let BSM = GBT27930.message("BSM")!, BST = GBT27930.message("BST")!, CST = GBT27930.message("CST")!
    static let BSD = GBT27930.message("BSD")!, CSD = GBT27930.message("CSD")!, CEM = GBT27930.message("CEM")!
    static let BEM = GBT27930.message("BEM")!
}

extension GBTMessage {
    /// A payload of this message's length, every byte 0xFF (unused bits and "not available").
    public func blank() -> GBTPayload { GBTPayload(count: length) }
    func f(_ name: String) -> GBTField { field(name)! }
}

/// The 2-bit status pairs: 00 no, 01 yes, 10 / 11 not trusted.
@inlinable func pair(_ p: GBTPayload, _ f: GBTField) -> Bool { p.raw(f) == 1 }

public enum GBTCodec {
    // MARK: charger → car (the charger encodes; a BMS, or the tests, decode)

    /// CHM: protocol version 1.1 (V1.1 is 0x01 0x01 0x00: minor, then the major number little endian).
    public static func chm() -> GBTPayload {
        var p = M.CHM.blank()
        p.setRaw(M.CHM.f("VersionMinor"), 1); p.setRaw(M.CHM.f("VersionMajorLow"), 1); p.setRaw(M.CHM.f("VersionMajorHigh"), 0)
        return p
    }
    public static func crm(_ r: Recognition, chargerNumber: UInt32 = 1, region: UInt32 = 0x00_43_4E) -> GBTPayload {
        var p = M.CRM.blank()
        p.setRaw(M.CRM.f("Recognition"), UInt64(r.rawValue))
        p.setRaw(M.CRM.f("ChargerNumber"), UInt64(chargerNumber)); p.setRaw(M.CRM.f("RegionCode"), UInt64(region))
        return p
    }
    /// CTS from the station's civil time (BCD).
    public static func cts(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) -> GBTPayload {
        func bcd(_ v: Int) -> UInt64 { UInt64((v / 10 % 10) << 4 | v % 10) }
        var p = M.CTS.blank()
        p.setRaw(M.CTS.f("SecondBCD"), bcd(second)); p.setRaw(M.CTS.f("MinuteBCD"), bcd(minute)); p.setRaw(M.CTS.f("HourBCD"), bcd(hour))
        p.setRaw(M.CTS.f("DayBCD"), bcd(day)); p.setRaw(M.CTS.f("MonthBCD"), bcd(month))
        p.setRaw(M.CTS.f("YearBCD"), bcd(year / 100) << 8 | bcd(year % 100))
        return p
    }
    /// CML: the charger's limits; currents are charging currents, negative on the wire.
    public static func encode(_ m: CML) -> GBTPayload {
        var p = M.CML.blank()
        p.set(M.CML.f("MaxVoltage"), m.maxVoltage.value); p.set(M.CML.f("MinVoltage"), m.minVoltage.value)
        p.set(M.CML.f("MaxCurrent"), -m.maxCurrent.value); p.set(M.CML.f("MinCurrent"), -m.minCurrent.value)
        return p
    }
    public static func cro(ready: Bool) -> GBTPayload { var p = M.CRO.blank(); p.setRaw(M.CRO.f("Ready"), ready ? 0xAA : 0x00); return p }
    public static func encode(_ m: CCS) -> GBTPayload {
        var p = M.CCS.blank()
        p.set(M.CCS.f("OutputVoltage"), m.voltage.value); p.set(M.CCS.f("OutputCurrent"), -m.current.value)
        p.set(M.CCS.f("ChargingTime"), m.chargingMinutes.rounded(.down)); p.setRaw(M.CCS.f("ChargingAllowed"), m.chargingAllowed ? 1 : 0)
        return p
    }
    /// CST: each of the core's reasons on its field of the wire (every other field 00).
    public static func encode(_ m: CST) -> GBTPayload {
        var p = M.CST.blank()
        for f in M.CST.fields { p.setRaw(f, 0) }
        let map: [(CST.Reasons, String)] = [(.conditionsReached, "ConditionsReached"), (.manualStop, "ManualStop"), (.fault, "FaultStop"),
            (.vehicleStopped, "BMSStopped"), (.overTemperature, "OverTemperature"), (.connectorFault, "ConnectorFault"),
            (.emergencyStop, "EmergencyStop"), (.currentMismatch, "CurrentMismatch"), (.voltageAbnormal, "VoltageAbnormal")]
        for (r, name) in map where m.reasons.contains(r) { p.setRaw(M.CST.f(name), 1) }
        return p
    }
    public static func encode(_ m: CSD, chargerNumber: UInt32 = 1) -> GBTPayload {
        var p = M.CSD.blank()
        p.set(M.CSD.f("ChargingTime"), m.chargingMinutes.rounded(.down)); p.set(M.CSD.f("Energy"), m.energy.value / 1000)
        p.setRaw(M.CSD.f("ChargerNumber"), UInt64(chargerNumber))
        return p
    }
    /// CEM: the car's message that timed out, 01 on its field.
    public static func cem(_ k: VehicleMessageKind) -> GBTPayload {
        var p = M.CEM.blank()
        for f in M.CEM.fields { p.setRaw(f, 0) }
        let name: String
        switch k {
        case .bhm, .brm: name = "BRMTimeout"
        case .bcp: name = "BCPTimeout"
        case .bro: name = "BROTimeout"
        case .bcs: name = "BCSTimeout"
        case .bcl: name = "BCLTimeout"
        case .bst: name = "BSTTimeout"
        case .bsd: name = "BSDTimeout"
        }
        p.setRaw(M.CEM.f(name), 1)
        return p
    }

    // MARK: car → charger (the charger decodes)

    public static func decodeBHM(_ p: GBTPayload) throws(GBTDecodeError) -> BHM {
        guard let v = p.value(M.BHM.f("MaxAllowedVoltage")) else { throw .tooShort(message: "BHM", got: p.count, needs: 2) }
        return BHM(maxAllowedVoltage: Volts(v))
    }
    /// BRM: 8 bytes at least (version, type, capacity, voltage); the VIN when the car sends 41 or more.
    public static func decodeBRM(_ p: GBTPayload) throws(GBTDecodeError) -> BRM {
        guard p.count >= 8 else { throw .tooShort(message: "BRM", got: p.count, needs: 8) }
        let t = p.raw(M.BRM.f("BatteryType"))!
        guard let type = BatteryType(rawValue: UInt8(t)) else { throw .badValue(message: "BRM", field: "BatteryType", raw: t) }
        var vin = InlineArray<17, UInt8>(repeating: 0)
        if p.count >= 41 { for i in 0..<17 { vin[i] = p.bytes[24 + i] } }
        return BRM(batteryType: type, ratedCapacityAh: p.value(M.BRM.f("RatedCapacity")) ?? 0,
                   ratedVoltage: Volts(p.value(M.BRM.f("RatedVoltage")) ?? 0), vin: vin)
    }
    public static func decodeBCP(_ p: GBTPayload) throws(GBTDecodeError) -> BCP {
        guard p.count >= 13 else { throw .tooShort(message: "BCP", got: p.count, needs: 13) }
        func v(_ n: String) throws(GBTDecodeError) -> Double {
            guard let x = p.value(M.BCP.f(n)) else { throw .badValue(message: "BCP", field: n, raw: p.raw(M.BCP.f(n)) ?? 0) }
            return x
        }
        return BCP(maxCellVoltage: Volts(try v("MaxCellVoltage")), maxChargeCurrent: Amps(-(try v("MaxChargeCurrent"))),
                   nominalEnergy: WattHours(try v("NominalEnergy") * 1000), maxChargeVoltage: Volts(try v("MaxChargeVoltage")),
                   maxTemperature: Celsius(try v("MaxTemperature")), soc: try v("SOC"), batteryVoltage: Volts(try v("BatteryVoltage")))
    }
    public static func decodeBRO(_ p: GBTPayload) throws(GBTDecodeError) -> BRO {
        guard let r = p.raw(M.BRO.f("Ready")) else { throw .tooShort(message: "BRO", got: p.count, needs: 1) }
        guard r == 0x00 || r == 0xAA else { throw .badValue(message: "BRO", field: "Ready", raw: r) }
        return BRO(ready: r == 0xAA)
    }
    public static func decodeBCL(_ p: GBTPayload) throws(GBTDecodeError) -> BCL {
        guard p.count >= 5 else { throw .tooShort(message: "BCL", got: p.count, needs: 5) }
        let m = p.raw(M.BCL.f("Mode"))!
        guard let mode = ChargeMode(rawValue: UInt8(m)) else { throw .badValue(message: "BCL", field: "Mode", raw: m) }
        guard let v = p.value(M.BCL.f("VoltageDemand")), let i = p.value(M.BCL.f("CurrentDemand")) else {
            throw .badValue(message: "BCL", field: "demand", raw: 0xFFFF)
        }
        return BCL(voltageDemand: Volts(v), currentDemand: Amps(max(0, -i)), mode: mode)
    }
    public static func decodeBCS(_ p: GBTPayload) throws(GBTDecodeError) -> BCS {
        guard p.count >= 9 else { throw .tooShort(message: "BCS", got: p.count, needs: 9) }
        return BCS(measuredVoltage: Volts(p.value(M.BCS.f("MeasuredVoltage")) ?? .nan),
                   measuredCurrent: Amps(-(p.value(M.BCS.f("MeasuredCurrent")) ?? .nan)),
                   soc: p.value(M.BCS.f("SOC")) ?? .nan, remainingMinutes: p.value(M.BCS.f("RemainingTime")) ?? .nan)
    }
    public static func decodeBSM(_ p: GBTPayload) throws(GBTDecodeError) -> BSM {
        guard p.count >= 7 else { throw .tooShort(message: "BSM", got: p.count, needs: 7) }
        var flags: UInt16 = 0
        for (k, n) in ["CellVoltageState", "SOCState", "OverCurrent", "OverTemperature", "Insulation", "OutputConnector"].enumerated() {
            if let r = p.raw(M.BSM.f(n)), r != 0 { flags |= 1 << UInt16(k) }
        }
        return BSM(chargingAllowed: pair(p, M.BSM.f("ChargingAllowed")), maxCellTemperature: Celsius(p.value(M.BSM.f("MaxTemperature")) ?? .nan),
                   faultFlags: flags)
    }
    /// BST: every field of the wire into the core's reasons (several faults share one reason).
    public static func decodeBST(_ p: GBTPayload) throws(GBTDecodeError) -> BST {
        guard p.count >= 4 else { throw .tooShort(message: "BST", got: p.count, needs: 4) }
        let map: [(String, BST.Reasons)] = [("SOCTargetReached", .socTargetReached), ("TotalVoltageReached", .totalVoltageReached),
            ("CellVoltageReached", .cellVoltageReached), ("ChargerStopped", .chargerStopped), ("InsulationFault", .insulationFault),
            ("ConnectorOverTemperature", .overTemperature), ("BMSOverTemperature", .overTemperature), ("ConnectorFault", .otherFault),
            ("BatteryOverTemperature", .overTemperature), ("HighVoltageRelayFault", .batteryFault), ("CC2Fault", .otherFault),
            ("OtherFault", .otherFault), ("OverCurrent", .batteryFault), ("VoltageAbnormal", .batteryFault)]
        var r: BST.Reasons = []
        for (name, reason) in map where pair(p, M.BST.f(name)) { r.insert(reason) }
        return BST(reasons: r)
    }
    public static func decodeBSD(_ p: GBTPayload) throws(GBTDecodeError) -> BSD {
        guard p.count >= 7 else { throw .tooShort(message: "BSD", got: p.count, needs: 7) }
        return BSD(finalSoc: p.value(M.BSD.f("FinalSOC")) ?? .nan, minCellVoltage: Volts(p.value(M.BSD.f("MinCellVoltage")) ?? .nan),
                   maxCellVoltage: Volts(p.value(M.BSD.f("MaxCellVoltage")) ?? .nan))
    }

    // MARK: the car's side (a BMS on the bench, and the tests)

    public static func encode(_ m: BHM) -> GBTPayload { var p = M.BHM.blank(); p.set(M.BHM.f("MaxAllowedVoltage"), m.maxAllowedVoltage.value); return p }
    public static func encode(_ m: BRM) -> GBTPayload {
        var p = M.BRM.blank()
        p.setRaw(M.BRM.f("VersionMinor"), 1); p.setRaw(M.BRM.f("VersionMajorLow"), 1); p.setRaw(M.BRM.f("VersionMajorHigh"), 0)
        p.setRaw(M.BRM.f("BatteryType"), UInt64(m.batteryType.rawValue))
        p.set(M.BRM.f("RatedCapacity"), m.ratedCapacityAh); p.set(M.BRM.f("RatedVoltage"), m.ratedVoltage.value)
        for i in 0..<17 { p.bytes[24 + i] = m.vin[i] }
        return p
    }
    public static func encode(_ m: BCP) -> GBTPayload {
        var p = M.BCP.blank()
        p.set(M.BCP.f("MaxCellVoltage"), m.maxCellVoltage.value); p.set(M.BCP.f("MaxChargeCurrent"), -m.maxChargeCurrent.value)
        p.set(M.BCP.f("NominalEnergy"), m.nominalEnergy.value / 1000); p.set(M.BCP.f("MaxChargeVoltage"), m.maxChargeVoltage.value)
        p.set(M.BCP.f("MaxTemperature"), m.maxTemperature.value); p.set(M.BCP.f("SOC"), m.soc); p.set(M.BCP.f("BatteryVoltage"), m.batteryVoltage.value)
        return p
    }
    public static func encode(_ m: BRO) -> GBTPayload { var p = M.BRO.blank(); p.setRaw(M.BRO.f("Ready"), m.ready ? 0xAA : 0x00); return p }
    public static func encode(_ m: BCL) -> GBTPayload {
        var p = M.BCL.blank()
        p.set(M.BCL.f("VoltageDemand"), m.voltageDemand.value); p.set(M.BCL.f("CurrentDemand"), -m.currentDemand.value)
        p.setRaw(M.BCL.f("Mode"), UInt64(m.mode.rawValue))
        return p
    }
    public static func encode(_ m: BCS) -> GBTPayload {
        var p = M.BCS.blank()
        p.set(M.BCS.f("MeasuredVoltage"), m.measuredVoltage.value); p.set(M.BCS.f("MeasuredCurrent"), -m.measuredCurrent.value)
        p.set(M.BCS.f("SOC"), m.soc); p.set(M.BCS.f("RemainingTime"), m.remainingMinutes)
        return p
    }
    public static func encode(_ m: BSM) -> GBTPayload {
        var p = M.BSM.blank()
        p.set(M.BSM.f("MaxTemperature"), m.maxCellTemperature.value)
        for (k, n) in ["CellVoltageState", "SOCState", "OverCurrent", "OverTemperature", "Insulation", "OutputConnector"].enumerated() {
            p.setRaw(M.BSM.f(n), m.faultFlags >> UInt16(k) & 1 == 1 ? 1 : 0)
        }
        p.setRaw(M.BSM.f("ChargingAllowed"), m.chargingAllowed ? 1 : 0)
        return p
    }
    public static func encode(_ m: BST) -> GBTPayload {
        var p = M.BST.blank()
        for f in M.BST.fields { p.setRaw(f, 0) }
        let map: [(BST.Reasons, String)] = [(.socTargetReached, "SOCTargetReached"), (.totalVoltageReached, "TotalVoltageReached"),
            (.cellVoltageReached, "CellVoltageReached"), (.chargerStopped, "ChargerStopped"), (.insulationFault, "InsulationFault"),
            (.overTemperature, "BatteryOverTemperature"), (.batteryFault, "HighVoltageRelayFault"), (.otherFault, "OtherFault")]
        for (r, name) in map where m.reasons.contains(r) { p.setRaw(M.BST.f(name), 1) }
        return p
    }
    public static func encode(_ m: BSD) -> GBTPayload {
        var p = M.BSD.blank()
        p.set(M.BSD.f("FinalSOC"), m.finalSoc); p.set(M.BSD.f("MinCellVoltage"), m.minCellVoltage.value)
        p.set(M.BSD.f("MaxCellVoltage"), m.maxCellVoltage.value)
        return p
    }
    /// The charger's messages as a BMS reads them.
    public static func decodeCML(_ p: GBTPayload) throws(GBTDecodeError) -> CML {
        guard p.count >= 8 else { throw .tooShort(message: "CML", got: p.count, needs: 8) }
        return CML(maxVoltage: Volts(p.value(M.CML.f("MaxVoltage")) ?? .nan), minVoltage: Volts(p.value(M.CML.f("MinVoltage")) ?? .nan),
                   maxCurrent: Amps(-(p.value(M.CML.f("MaxCurrent")) ?? .nan)), minCurrent: Amps(-(p.value(M.CML.f("MinCurrent")) ?? .nan)))
    }
    public static func decodeCCS(_ p: GBTPayload) throws(GBTDecodeError) -> CCS {
        guard p.count >= 7 else { throw .tooShort(message: "CCS", got: p.count, needs: 7) }
        return CCS(voltage: Volts(p.value(M.CCS.f("OutputVoltage")) ?? .nan), current: Amps(-(p.value(M.CCS.f("OutputCurrent")) ?? .nan)),
                   chargingMinutes: p.value(M.CCS.f("ChargingTime")) ?? .nan, chargingAllowed: pair(p, M.CCS.f("ChargingAllowed")))
    }
    public static func decodeCST(_ p: GBTPayload) throws(GBTDecodeError) -> CST {
        guard p.count >= 4 else { throw .tooShort(message: "CST", got: p.count, needs: 4) }
        let map: [(String, CST.Reasons)] = [("ConditionsReached", .conditionsReached), ("ManualStop", .manualStop), ("FaultStop", .fault),
            ("BMSStopped", .vehicleStopped), ("OverTemperature", .overTemperature), ("InternalOverTemperature", .overTemperature),
            ("ConnectorFault", .connectorFault), ("EnergyNotDeliverable", .fault), ("EmergencyStop", .emergencyStop), ("OtherFault", .fault),
            ("CurrentMismatch", .currentMismatch), ("VoltageAbnormal", .voltageAbnormal)]
        var r: CST.Reasons = []
        for (name, reason) in map where pair(p, M.CST.f(name)) { r.insert(reason) }
        return CST(reasons: r)
    }
    public static func decodeCSD(_ p: GBTPayload) throws(GBTDecodeError) -> CSD {
        guard p.count >= 4 else { throw .tooShort(message: "CSD", got: p.count, needs: 4) }
        return CSD(chargingMinutes: p.value(M.CSD.f("ChargingTime")) ?? .nan, energy: WattHours((p.value(M.CSD.f("Energy")) ?? .nan) * 1000))
    }
}
