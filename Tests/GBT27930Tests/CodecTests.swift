// GB/T 27930-2015 as data: identifiers, the table's layout, the codec's round trips and known frames,
// refusals of malformed payloads, and the shipped DBC agreeing with the table field by field.
import ChargerCore
import Foundation
import GBT27930
import Testing

let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

@Suite struct Identifiers {
    /// The identifiers every GB/T 27930 trace shows: CHM 0x1826F456, BHM 0x182756F4, BCL 0x181056F4,
    /// CCS 0x1812F456, BST 0x101956F4, CEM 0x081FF456.
    @Test func knownIdentifiers() throws {
        func id(_ n: String) -> UInt32 { GBT27930.dbcIdentifier(GBT27930.message(n)!) & 0x1FFF_FFFF }
        #expect(id("CHM") == 0x1826F456)
        #expect(id("BHM") == 0x182756F4)
        #expect(id("BRM") == 0x1C0256F4)
        #expect(id("BCL") == 0x181056F4)
        #expect(id("CCS") == 0x1812F456)
        #expect(id("BST") == 0x101956F4)
        #expect(id("CEM") == 0x081FF456)
        let p = GBT27930.parse(identifier: 0x1CEC56F4)     // TP.CM from the BMS to the charger
        #expect(p.priority == 7 && p.pgn == GBT27930.tpConnectionManagement && p.destination == 0x56 && p.source == 0xF4)
    }

    @Test func theTableIsConsistent() {
        #expect(GBT27930.messages.count == 22)
        #expect(Set(GBT27930.messages.map(\.pgn)).count == 22)
        for m in GBT27930.messages {
            for f in m.fields {
                #expect(f.start + f.bits <= m.length * 8, "\(m.name).\(f.name) beyond \(m.length) bytes")
            }
            // No two fields share a bit.
            var used = Set<Int>()
            for f in m.fields { for b in f.start..<(f.start + f.bits) { #expect(used.insert(b).inserted, "\(m.name).\(f.name) bit \(b)") } }
        }
        let multi = GBT27930.messages.filter(\.multiPacket).map(\.name)
        #expect(multi == ["BRM", "BCP", "BCS", "BMV", "BMT", "BSP"])
    }
}

@Suite struct Codec {
    /// Frames as the standard's worked values give them: raw = (400 − I) × 10 for a charging current.
    @Test func knownFrames() throws {
        #expect(GBTCodec.chm().array == [0x01, 0x01, 0x00])
        #expect(GBTCodec.encode(BHM(maxAllowedVoltage: Volts(750))).array == [0x4C, 0x1D])           // 7500
        // BCL 400.0 V, 120 A, constant current: 4000 = 0x0FA0, (400 − 120) × 10 = 2800 = 0x0AF0.
        #expect(
            GBTCodec.encode(BCL(voltageDemand: Volts(400), currentDemand: Amps(120), mode: .constantCurrent)).array == [0xA0, 0x0F, 0xF0, 0x0A, 0x02])
        // CML 750 V / 200 V, 250 A / 0 A.
        #expect(GBTCodec.encode(CML(maxVoltage: Volts(750), minVoltage: Volts(200), maxCurrent: Amps(250), minCurrent: .zero)).array
                == [0x4C, 0x1D, 0xD0, 0x07, 0xDC, 0x05, 0xA0, 0x0F])
        #expect(GBTCodec.cro(ready: true).array == [0xAA])
        #expect(GBTCodec.crm(.recognised).array[0] == 0xAA)
        #expect(GBTCodec.cts(year: 2026, month: 11, day: 28, hour: 14, minute: 5, second: 9).array == [0x09, 0x05, 0x14, 0x28, 0x11, 0x26, 0x20])
        // Bits the standard leaves undefined are sent as ones (J1939's "not available").
        // CEM, BCL timed out: byte 3 bits 3-4 = 01, its other pairs 00; byte 1 and 4 hold one pair each.
        #expect(GBTCodec.cem(.bcl).array == [0xFC, 0xF0, 0xC4, 0xFC])
        // CST: a fault stop with the emergency stop pressed: byte 1 bits 5-6 = 01, byte 3 bits 1-2 = 01.
        #expect(GBTCodec.encode(CST(reasons: [.fault, .emergencyStop])).array == [0x10, 0x00, 0xF1, 0xF0])
    }

    @Test func roundTrips() throws {
        let bcl = BCL(voltageDemand: Volts(612.3), currentDemand: Amps(187.4), mode: .constantVoltage)
        let l = try GBTCodec.decodeBCL(GBTCodec.encode(bcl))
        #expect(abs(l.voltageDemand.value - 612.3) < 1e-9 && abs(l.currentDemand.value - 187.4) < 1e-9 && l.mode == .constantVoltage)
        let bcp = BCP(maxCellVoltage: Volts(4.25), maxChargeCurrent: Amps(250), nominalEnergy: WattHours(75_000), maxChargeVoltage: Volts(820),
                      maxTemperature: Celsius(55), soc: 23.4, batteryVoltage: Volts(702.5))
        let b = try GBTCodec.decodeBCP(GBTCodec.encode(bcp))
        #expect(abs(b.maxCellVoltage.value - 4.25) < 1e-9 && b.maxChargeCurrent == Amps(250) && b.nominalEnergy == WattHours(75_000))
        #expect(
            b.maxChargeVoltage == Volts(820) && b.maxTemperature == Celsius(55) && abs(b.soc - 23.4) < 1e-9
                && abs(b.batteryVoltage.value - 702.5) < 1e-9)
        let bcs = BCS(measuredVoltage: Volts(650), measuredCurrent: Amps(150), soc: 57, remainingMinutes: 23)
        #expect(try GBTCodec.decodeBCS(GBTCodec.encode(bcs)) == bcs)
        let ccs = CCS(voltage: Volts(651.2), current: Amps(149.9), chargingMinutes: 17, chargingAllowed: true)
        let c = try GBTCodec.decodeCCS(GBTCodec.encode(ccs))
        #expect(abs(c.voltage.value - 651.2) < 1e-9 && abs(c.current.value - 149.9) < 1e-9 && c.chargingMinutes == 17 && c.chargingAllowed)
        for reasons: BST.Reasons in [[.socTargetReached], [.insulationFault, .overTemperature], [.batteryFault, .otherFault, .chargerStopped]] {
            #expect(try GBTCodec.decodeBST(GBTCodec.encode(BST(reasons: reasons))).reasons == reasons)
        }
        for reasons: CST.Reasons in [
            [.conditionsReached], [.fault, .emergencyStop], [.vehicleStopped], [.fault, .currentMismatch, .voltageAbnormal],
        ] {
            #expect(try GBTCodec.decodeCST(GBTCodec.encode(CST(reasons: reasons))).reasons == reasons)
        }
        var vin = InlineArray<17, UInt8>(repeating: 0)
        for (i, c) in "LSVAU2180N2183294".utf8.enumerated() { vin[i] = c }
        let brm = BRM(batteryType: .nmc, ratedCapacityAh: 150.5, ratedVoltage: Volts(650), vin: vin)
        let encoded = GBTCodec.encode(brm)
        #expect(encoded.count == 49)
        #expect(try GBTCodec.decodeBRM(encoded) == brm)
        let bsm = BSM(chargingAllowed: false, maxCellTemperature: Celsius(41), faultFlags: 0b10_0001)
        #expect(try GBTCodec.decodeBSM(GBTCodec.encode(bsm)) == bsm)
        #expect(try GBTCodec.decodeBRO(GBTCodec.encode(BRO(ready: true))) == BRO(ready: true))
        // CSD as the car reads it: whole minutes (truncated), energy rounded to 0.1 kWh.
        let csd = try GBTCodec.decodeCSD(GBTCodec.encode(CSD(chargingMinutes: 41.7, energy: WattHours(33_360))))
        #expect(csd.chargingMinutes == 41 && abs(csd.energy.value - 33_400) < 1e-6)
        #expect(throws: GBTDecodeError.tooShort(message: "CSD", got: 2, needs: 4)) { try GBTCodec.decodeCSD(GBTPayload([1, 2])) }
    }

    /// Values beyond a field's range are held at its ends, never wrapped (a 900 A command on the 2015
    /// wire, which tops out at 400 A, is sent as 400 A).
    @Test func valuesAreHeldInsideTheirFields() throws {
        let cml = GBTCodec.encode(CML(maxVoltage: Volts(7000), minVoltage: Volts(-5), maxCurrent: Amps(900), minCurrent: .zero))
        let back = try GBTCodec.decodeCML(cml)
        #expect(abs(back.maxVoltage.value - 6553.4) < 1e-6 && back.minVoltage == .zero && back.maxCurrent == Amps(400))
    }

    /// What a careless or hostile BMS sends: short payloads, values the standard does not define, all ones.
    @Test func malformedPayloadsAreRefusedWithTheirReason() {
        #expect(throws: GBTDecodeError.tooShort(message: "BCL", got: 3, needs: 5)) { try GBTCodec.decodeBCL(GBTPayload([0xA0, 0x0F, 0xF0])) }
        #expect(throws: GBTDecodeError.badValue(message: "BCL", field: "Mode", raw: 7)) {
            try GBTCodec.decodeBCL(GBTPayload([0xA0, 0x0F, 0xF0, 0x0A, 0x07]))
        }
        #expect(throws: GBTDecodeError.badValue(message: "BRO", field: "Ready", raw: 0x55)) { try GBTCodec.decodeBRO(GBTPayload([0x55])) }
        #expect(throws: GBTDecodeError.tooShort(message: "BCP", got: 8, needs: 13)) {
            try GBTCodec.decodeBCP(GBTPayload([UInt8](repeating: 0, count: 8)))
        }
        #expect(throws: GBTDecodeError.badValue(message: "BRM", field: "BatteryType", raw: 0x42)) {
            try GBTCodec.decodeBRM(GBTPayload([1, 1, 0, 0x42, 0, 0, 0, 0]))
        }
        #expect(throws: GBTDecodeError.badValue(message: "BCL", field: "demand", raw: 0xFFFF)) {
            try GBTCodec.decodeBCL(GBTPayload([0xFF, 0xFF, 0xFF, 0xFF, 0x02]))
        }
        // A BRM of 8 bytes (no VIN) is taken.
        #expect((try? GBTCodec.decodeBRM(GBTPayload([1, 1, 0, 0x03, 0xE8, 0x03, 0x64, 0x19]))) != nil)
    }
}

/// HIL/can/gbt27930-2015.dbc read back: every message's identifier, length and sender, and every
/// signal's start, width, factor, offset and unit, equal to the table.
@Suite struct ShippedDBC {
    @Test func theDBCIsTheTable() throws {
        let text = try String(contentsOfFile: repoRoot + "/HIL/can/gbt27930-2015.dbc", encoding: .utf8)
        var messages: [String: (id: UInt32, length: Int, tx: String, signals: [GBTField])] = [:]
        var current: String? = nil
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.hasPrefix("BO_ ") {
                let p = t.split(separator: " ")
                let name = String(p[2].dropLast())
                messages[name] = (UInt32(p[1])!, Int(p[3])!, String(p[4]), [])
                current = name
            } else if t.hasPrefix("SG_ "), let c = current {
                // SG_ Name : start|bits@1+ (factor,offset) [min|max] "unit" receiver
                let name = String(t.split(separator: " ")[1])
                let layout = t.components(separatedBy: " : ")[1]
                let sb = layout.split(separator: "@")[0].split(separator: "|")
                #expect(layout.contains("@1+"), "\(c).\(name): little endian, unsigned")
                let fo = layout.split(separator: "(")[1].split(separator: ")")[0].split(separator: ",")
                let unit = layout.components(separatedBy: "\"")[1]
                messages[c]!.signals.append(GBTField(name, Int(sb[0])!, Int(sb[1])!, factor: Double(fo[0])!, offset: Double(fo[1])!, unit: unit))
            } else if t.isEmpty { current = nil }
        }
        #expect(messages.count == GBT27930.messages.count)
        for m in GBT27930.messages {
            let d = try #require(messages[m.name], "\(m.name) missing from the DBC")
            #expect(d.id == GBT27930.dbcIdentifier(m), "\(m.name) identifier")
            #expect(d.length == m.length, "\(m.name) length")
            #expect(d.tx == (m.direction == .chargerToCar ? "Charger" : "BMS"), "\(m.name) sender")
            #expect(d.signals == m.fields, "\(m.name) signals differ")
        }
        // And the file is what the table writes (no hand edit drifted from it).
        #expect(text == GBT27930.dbc)
    }
}
