// GB/T 27930-2015, the charger ⇄ BMS messages on CAN, as data: each message's PGN, priority, length,
// period, direction and byte layout (every field's start bit, width, resolution and offset, little
// endian as the standard's "data byte 1 first"). The codec (Codec.swift) reads and writes fields from
// this table and nothing else, and HIL/can/gbt27930-2015.dbc is this table written out (a test checks
// the two agree field by field). Sources: docs/standards.md "GB/T 27930-2015 charger ⇄ car messages".
//
// Conventions of the standard kept as they are on the wire:
// - currents: 0.1 A/bit, offset −400 A, and a charging current is negative (raw = (400 − I) × 10);
// - temperatures: 1 °C/bit, offset −50 °C; voltages 0.1 V/bit (cells 0.01 V/bit); SOC 1 % or 0.1 %/bit;
// - status pairs: 2 bits, 00 / 01 / 10 with 11 "not trusted".
// Where the 2023 revision differs (CHM version 1.2, BRM/BCP extensions, the new PGNs for ChaoJi-style
// high current), a charger sold today still speaks 2015 to 2015 cars: this table is 2015; see docs/can.md.
import ChargerCore

/// Who sends a message.
public enum GBTDirection: String, Sendable { case chargerToCar = "charger", carToCharger = "car" }

/// One field of a message: `bits` bits from bit `start` (bit 0 = least significant bit of data byte 1),
/// physical value = raw × factor + offset.
public struct GBTField: Sendable, Equatable {
    public var name: String
    public var start: Int
    public var bits: Int
    public var factor: Double
    public var offset: Double
    public var unit: String
    public init(_ name: String, _ start: Int, _ bits: Int, factor: Double = 1, offset: Double = 0, unit: String = "") {
        self.name = name; self.start = start; self.bits = bits; self.factor = factor; self.offset = offset; self.unit = unit
    }
    /// The largest raw value the field holds (all ones is "not available" on most fields).
    public var rawMax: UInt64 { bits >= 64 ? .max : (1 << UInt64(bits)) - 1 }
}

public struct GBTMessage: Sendable {
    public var name: String
    public var pgn: UInt32
    public var priority: UInt8
    /// Payload bytes; for BMV/BMT/BSP the length varies with the battery (`variable`).
    public var length: Int
    public var variable: Bool
    /// Sending period; nil for event messages.
    public var period: TimeSpan?
    public var direction: GBTDirection
    public var fields: [GBTField]
    /// More than 8 bytes: carried by the J1939-21 transport protocol.
    public var multiPacket: Bool { length > 8 || variable }
    public func field(_ name: String) -> GBTField? { fields.first { $0.name == name } }
}

/// The node addresses of GB/T 27930 (J1939 source addresses).
public enum GBTAddress {
    public static let charger: UInt8 = 0x56
    public static let bms: UInt8 = 0xF4
}

public enum GBT27930 {
    /// J1939-21 transport protocol PGNs (connection management and data transfer).
    public static let tpConnectionManagement: UInt32 = 0xEC00
    public static let tpDataTransfer: UInt32 = 0xEB00

    /// Every message of GB/T 27930-2015 (charging handshake, parameter configuration, charging, end of
    /// charging, errors), in the order of the session.
    public static let messages: [GBTMessage] = [
        GBTMessage(name: "CHM", pgn: 0x2600, priority: 6, length: 3, variable: false, period: .ms(250), direction: .chargerToCar, fields: [
            GBTField("VersionMinor", 0, 8), GBTField("VersionMajorLow", 8, 8), GBTField("VersionMajorHigh", 16, 8)]),
        GBTMessage(name: "BHM", pgn: 0x2700, priority: 6, length: 2, variable: false, period: .ms(250), direction: .carToCharger, fields: [
            GBTField("MaxAllowedVoltage", 0, 16, factor: 0.1, unit: "V")]),
        GBTMessage(name: "CRM", pgn: 0x0100, priority: 6, length: 8, variable: false, period: .ms(250), direction: .chargerToCar, fields: [
            GBTField("Recognition", 0, 8), GBTField("ChargerNumber", 8, 32), GBTField("RegionCode", 40, 24)]),
        GBTMessage(name: "BRM", pgn: 0x0200, priority: 7, length: 49, variable: false, period: .ms(250), direction: .carToCharger, fields: [
            GBTField("VersionMinor", 0, 8), GBTField("VersionMajorLow", 8, 8), GBTField("VersionMajorHigh", 16, 8),
            GBTField("BatteryType", 24, 8), GBTField("RatedCapacity", 32, 16, factor: 0.1, unit: "Ah"),
            GBTField("RatedVoltage", 48, 16, factor: 0.1, unit: "V"), GBTField("Manufacturer", 64, 32),
            GBTField("PackSerial", 96, 32), GBTField("ProductionYear", 128, 8, offset: 1985), GBTField("ProductionMonth", 136, 8),
            GBTField("ProductionDay", 144, 8), GBTField("ChargeCount", 152, 24), GBTField("PropertyRight", 176, 8),
            GBTField("Reserved", 184, 8)]
            + (0..<17).map { GBTField("VIN\($0 + 1)", 192 + 8 * $0, 8) }
            + (0..<8).map { GBTField("SoftwareVersion\($0 + 1)", 328 + 8 * $0, 8) }),
        GBTMessage(name: "BCP", pgn: 0x0600, priority: 7, length: 13, variable: false, period: .ms(500), direction: .carToCharger, fields: [
            GBTField("MaxCellVoltage", 0, 16, factor: 0.01, unit: "V"), GBTField("MaxChargeCurrent", 16, 16, factor: 0.1, offset: -400, unit: "A"),
            GBTField("NominalEnergy", 32, 16, factor: 0.1, unit: "kWh"), GBTField("MaxChargeVoltage", 48, 16, factor: 0.1, unit: "V"),
            GBTField("MaxTemperature", 64, 8, offset: -50, unit: "degC"), GBTField("SOC", 72, 16, factor: 0.1, unit: "%"),
            GBTField("BatteryVoltage", 88, 16, factor: 0.1, unit: "V")]),
        GBTMessage(name: "CTS", pgn: 0x0700, priority: 6, length: 7, variable: false, period: .ms(500), direction: .chargerToCar, fields: [
            GBTField("SecondBCD", 0, 8), GBTField("MinuteBCD", 8, 8), GBTField("HourBCD", 16, 8), GBTField("DayBCD", 24, 8),
            GBTField("MonthBCD", 32, 8), GBTField("YearBCD", 40, 16)]),
        GBTMessage(name: "CML", pgn: 0x0800, priority: 6, length: 8, variable: false, period: .ms(250), direction: .chargerToCar, fields: [
            GBTField("MaxVoltage", 0, 16, factor: 0.1, unit: "V"), GBTField("MinVoltage", 16, 16, factor: 0.1, unit: "V"),
            GBTField("MaxCurrent", 32, 16, factor: 0.1, offset: -400, unit: "A"), GBTField("MinCurrent", 48, 16, factor: 0.1, offset: -400, unit: "A")]),
        GBTMessage(name: "BRO", pgn: 0x0900, priority: 4, length: 1, variable: false, period: .ms(250), direction: .carToCharger, fields: [
            GBTField("Ready", 0, 8)]),
        GBTMessage(name: "CRO", pgn: 0x0A00, priority: 4, length: 1, variable: false, period: .ms(250), direction: .chargerToCar, fields: [
            GBTField("Ready", 0, 8)]),
        GBTMessage(name: "BCL", pgn: 0x1000, priority: 6, length: 5, variable: false, period: .ms(50), direction: .carToCharger, fields: [
            GBTField("VoltageDemand", 0, 16, factor: 0.1, unit: "V"), GBTField("CurrentDemand", 16, 16, factor: 0.1, offset: -400, unit: "A"),
            GBTField("Mode", 32, 8)]),
        GBTMessage(name: "BCS", pgn: 0x1100, priority: 7, length: 9, variable: false, period: .ms(250), direction: .carToCharger, fields: [
            GBTField("MeasuredVoltage", 0, 16, factor: 0.1, unit: "V"), GBTField("MeasuredCurrent", 16, 16, factor: 0.1, offset: -400, unit: "A"),
            GBTField("MaxCellVoltage", 32, 12, factor: 0.01, unit: "V"), GBTField("MaxCellGroup", 44, 4),
            GBTField("SOC", 48, 8, unit: "%"), GBTField("RemainingTime", 56, 16, unit: "min")]),
        GBTMessage(name: "CCS", pgn: 0x1200, priority: 6, length: 8, variable: false, period: .ms(50), direction: .chargerToCar, fields: [
            GBTField("OutputVoltage", 0, 16, factor: 0.1, unit: "V"), GBTField("OutputCurrent", 16, 16, factor: 0.1, offset: -400, unit: "A"),
            GBTField("ChargingTime", 32, 16, unit: "min"), GBTField("ChargingAllowed", 48, 2)]),
        GBTMessage(name: "BSM", pgn: 0x1300, priority: 6, length: 7, variable: false, period: .ms(250), direction: .carToCharger, fields: [
            GBTField("MaxCellVoltageNumber", 0, 8), GBTField("MaxTemperature", 8, 8, offset: -50, unit: "degC"),
            GBTField("MaxTemperatureNumber", 16, 8), GBTField("MinTemperature", 24, 8, offset: -50, unit: "degC"),
            GBTField("MinTemperatureNumber", 32, 8), GBTField("CellVoltageState", 40, 2), GBTField("SOCState", 42, 2),
            GBTField("OverCurrent", 44, 2), GBTField("OverTemperature", 46, 2), GBTField("Insulation", 48, 2),
            GBTField("OutputConnector", 50, 2), GBTField("ChargingAllowed", 52, 2)]),
        GBTMessage(name: "BMV", pgn: 0x1500, priority: 7, length: 2, variable: true, period: .s(10), direction: .carToCharger, fields: [
            GBTField("Cell1Voltage", 0, 12, factor: 0.01, unit: "V"), GBTField("Cell1Group", 12, 4)]),
        GBTMessage(name: "BMT", pgn: 0x1600, priority: 7, length: 1, variable: true, period: .s(10), direction: .carToCharger, fields: [
            GBTField("Sensor1Temperature", 0, 8, offset: -50, unit: "degC")]),
        GBTMessage(name: "BSP", pgn: 0x1700, priority: 7, length: 1, variable: true, period: .s(10), direction: .carToCharger, fields: [
            GBTField("Reserved1", 0, 8)]),
        GBTMessage(name: "BST", pgn: 0x1900, priority: 4, length: 4, variable: false, period: .ms(10), direction: .carToCharger, fields: [
            GBTField("SOCTargetReached", 0, 2), GBTField("TotalVoltageReached", 2, 2), GBTField("CellVoltageReached", 4, 2),
            GBTField("ChargerStopped", 6, 2), GBTField("InsulationFault", 8, 2), GBTField("ConnectorOverTemperature", 10, 2),
            GBTField("BMSOverTemperature", 12, 2), GBTField("ConnectorFault", 14, 2), GBTField("BatteryOverTemperature", 16, 2),
            GBTField("HighVoltageRelayFault", 18, 2), GBTField("CC2Fault", 20, 2), GBTField("OtherFault", 22, 2),
            GBTField("OverCurrent", 24, 2), GBTField("VoltageAbnormal", 26, 2)]),
        GBTMessage(name: "CST", pgn: 0x1A00, priority: 4, length: 4, variable: false, period: .ms(10), direction: .chargerToCar, fields: [
            GBTField("ConditionsReached", 0, 2), GBTField("ManualStop", 2, 2), GBTField("FaultStop", 4, 2), GBTField("BMSStopped", 6, 2),
            GBTField("OverTemperature", 8, 2), GBTField("ConnectorFault", 10, 2), GBTField("InternalOverTemperature", 12, 2),
            GBTField("EnergyNotDeliverable", 14, 2), GBTField("EmergencyStop", 16, 2), GBTField("OtherFault", 18, 2),
            GBTField("CurrentMismatch", 24, 2), GBTField("VoltageAbnormal", 26, 2)]),
        GBTMessage(name: "BSD", pgn: 0x1C00, priority: 6, length: 7, variable: false, period: .ms(250), direction: .carToCharger, fields: [
            GBTField("FinalSOC", 0, 8, unit: "%"), GBTField("MinCellVoltage", 8, 16, factor: 0.01, unit: "V"),
            GBTField("MaxCellVoltage", 24, 16, factor: 0.01, unit: "V"), GBTField("MinTemperature", 40, 8, offset: -50, unit: "degC"),
            GBTField("MaxTemperature", 48, 8, offset: -50, unit: "degC")]),
        GBTMessage(name: "CSD", pgn: 0x1D00, priority: 6, length: 8, variable: false, period: .ms(250), direction: .chargerToCar, fields: [
            GBTField("ChargingTime", 0, 16, unit: "min"), GBTField("Energy", 16, 16, factor: 0.1, unit: "kWh"),
            GBTField("ChargerNumber", 32, 32)]),
        GBTMessage(name: "BEM", pgn: 0x1E00, priority: 2, length: 4, variable: false, period: .ms(250), direction: .carToCharger, fields: [
            GBTField("CRM00Timeout", 0, 2), GBTField("CRMAATimeout", 2, 2), GBTField("CMLTimeout", 8, 2), GBTField("CROTimeout", 10, 2),
            GBTField("CCSTimeout", 16, 2), GBTField("CSTTimeout", 18, 2), GBTField("CSDTimeout", 24, 2)]),
        GBTMessage(name: "CEM", pgn: 0x1F00, priority: 2, length: 4, variable: false, period: .ms(250), direction: .chargerToCar, fields: [
            GBTField("BRMTimeout", 0, 2), GBTField("BCPTimeout", 8, 2), GBTField("BROTimeout", 10, 2),
            GBTField("BCSTimeout", 16, 2), GBTField("BCLTimeout", 18, 2), GBTField("BSTTimeout", 20, 2), GBTField("BSDTimeout", 24, 2)]),
    ]

    public static func message(_ name: String) -> GBTMessage? { messages.first { $0.name == name } }
    public static func message(pgn: UInt32) -> GBTMessage? { messages.first { $0.pgn == pgn } }

    /// The 29-bit identifier: priority (3 bits), reserved and data page 0, PDU format (the PGN's high
    /// byte: every GB/T 27930 PGN is PDU1, destination-specific), destination, source.
    public static func identifier(pgn: UInt32, priority: UInt8, destination: UInt8, source: UInt8) -> UInt32 {
        UInt32(priority & 7) << 26 | (pgn & 0x3FF00) << 8 | UInt32(destination) << 8 | UInt32(source)
    }

    /// The parts of a 29-bit identifier (PDU1: the PGN's low byte is the destination, so it reads 00).
    public static func parse(identifier id: UInt32) -> (priority: UInt8, pgn: UInt32, destination: UInt8, source: UInt8) {
        let pf = (id >> 16) & 0xFF
        let dp = (id >> 24) & 0x3
        let pgn = pf < 0xF0 ? (dp << 16 | pf << 8) : (dp << 16 | pf << 8 | (id >> 8) & 0xFF)
        return (UInt8((id >> 26) & 7), pgn, UInt8((id >> 8) & 0xFF), UInt8(id & 0xFF))
    }
}
