// The message table written as a DBC file (Vector's CAN database format), the form CAN tools read:
// cantools and python-can on the bench, CANalyzer and SavvyCAN in the field. HIL/can/gbt27930-2015.dbc
// is this text; a test reads it back and compares it with the table field by field.
import ChargerCore

extension GBT27930 {
    /// The extended identifier of `m` as sent (charger → BMS or BMS → charger), flagged as DBC marks a
    /// 29-bit identifier (bit 31).
    public static func dbcIdentifier(_ m: GBTMessage) -> UInt32 {
        let (src, dst) = m.direction == .chargerToCar ? (GBTAddress.charger, GBTAddress.bms) : (GBTAddress.bms, GBTAddress.charger)
        return identifier(pgn: m.pgn, priority: m.priority, destination: dst, source: src) | 0x8000_0000
    }

    public static var dbc: String {
        func num(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v) }
        var out = """
            VERSION "GB/T 27930-2015"

            NS_ :
            \tCM_
            \tBA_DEF_
            \tBA_

            BS_:

            BU_: Charger BMS


            """
        for m in messages {
            let (tx, rx) = m.direction == .chargerToCar ? ("Charger", "BMS") : ("BMS", "Charger")
            out += "BO_ \(dbcIdentifier(m)) \(m.name): \(m.length) \(tx)\n"
            for f in m.fields {
                let lo = f.offset, hi = Double(f.rawMax) * f.factor + f.offset
                out += " SG_ \(f.name) : \(f.start)|\(f.bits)@1+ (\(num(f.factor)),\(num(f.offset))) [\(num(lo))|\(num(hi))] \"\(f.unit)\" \(rx)\n"
            }
            out += "\n"
        }
        out += "BA_DEF_ BO_ \"GenMsgCycleTime\" INT 0 65535;\nBA_DEF_DEF_ \"GenMsgCycleTime\" 0;\n"
        for m in messages {
            if let p = m.period { out += "BA_ \"GenMsgCycleTime\" BO_ \(dbcIdentifier(m)) \(p.micros / 1000);\n" }
        }
        for m in messages {
            out += "CM_ BO_ \(dbcIdentifier(m)) \"PGN 0x\(String(m.pgn, radix: 16, uppercase: true)), priority \(m.priority)\(m.multiPacket ? ", J1939-21 transport (multi-packet)" : "")\(m.variable ? ", length varies with the battery" : "")\";\n"
        }
        return out
    }
}
