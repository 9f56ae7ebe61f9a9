// The car's bytes: CAN frames from the BMS through the J1939-21 transport receiver and the GB/T 27930
// codec, as the CAN link's thread takes them (CANLink.swift).
import ChargerCore
import GBT27930
import Grid

extension FuzzTargets {
    /// Records of [kind, dlc, data..., time step]: kind 0 a TP.CM frame, 1 a TP.DT frame, others a
    /// single-frame car message. Every message that comes whole is decoded, and a decoded message
    /// re-encodes to one that decodes the same.
    static func j1939(_ data: [UInt8]) {
        var rx = TPReceiver()
        var now = Instant(micros: 0)
        var rest = data[...]
        let carMessages = GBT27930.messages.filter { $0.direction == .carToCharger }
        while rest.count >= 2 {
            let kind = rest[rest.startIndex], dlc = Int(rest[rest.startIndex + 1] % 9)
            rest = rest.dropFirst(2)
            let bytes = Array(rest.prefix(dlc))
            rest = rest.dropFirst(bytes.count)
            let step = rest.first ?? 0
            rest = rest.dropFirst()
            now = Instant(micros: now.micros + Int64(step) * 10_000)
            let frame = CANData(bytes)
            var out = TPOutput()
            switch kind % 4 {
            case 0: out = rx.connectionManagement(frame, at: now)
            case 1: out = rx.dataTransfer(frame, at: now)
            case 2: out = rx.poll(at: now)
            default:
                let m = carMessages[Int(kind / 4) % carMessages.count]
                decodeCarMessage(pgn: m.pgn, GBTPayload(bytes))
            }
            if let reply = out.reply { require(reply.count == 8, "a TP.CM reply is 8 bytes") }
            if let (pgn, payload) = out.message {
                require(payload.count <= 64, "a reassembled message within the payload's room")
                decodeCarMessage(pgn: pgn, payload)
            }
        }
    }

    /// Plug and charge reads the car's VIN bytes (VINReading): a VIN is 17 VIN characters whose idTag fits
    /// OCPP's CiString20 and whose masked form keeps 7 of them; anything else is absent or malformed with a
    /// printable reason (the bytes as hexadecimal, never as text).
    static func checkVIN(_ vin: InlineArray<17, UInt8>) {
        switch VINReading(vin) {
        case .absent: require((0..<17).allSatisfy { vin[$0] == 0 } || (0..<17).allSatisfy { vin[$0] == 0xFF }, "absent only for all 0 or all 0xFF")
        case .malformed(let why):
            require(why.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }, "a malformed VIN's reason is printable ASCII")
            require(!(0..<17).allSatisfy { BRM.isVINByte(vin[$0]) }, "a VIN of VIN characters is not malformed")
        case .valid(let text):
            require(text.utf8.count == 17 && text.utf8.allSatisfy(BRM.isVINByte), "a valid VIN is 17 VIN characters")
            require(VINIdentity.idTag(text).utf8.count == 20, "a VIN's idTag is CiString20")
            require(VINIdentity.masked(text).filter { $0 != "*" }.count == 7, "the mask keeps 3 + 4 characters")
        }
    }

    static func decodeCarMessage(pgn: UInt32, _ p: GBTPayload) {
        // Compared as bytes: a field the car marks "not available" decodes to NaN, which is equal to nothing.
        func roundTrip<T>(_ decode: (GBTPayload) throws(GBTDecodeError) -> T, _ encode: (T) -> GBTPayload, _ name: String) {
            guard let v = try? decode(p) else { return }
            let once = encode(v)
            guard let again = try? decode(once) else { return require(false, "\(name) re-encoded does not decode") }
            require(encode(again).array == once.array, "\(name) decodes the same after re-encoding")
        }
        switch pgn {
        case 0x2700: roundTrip(GBTCodec.decodeBHM, GBTCodec.encode, "BHM")
        case 0x0200:
            roundTrip(GBTCodec.decodeBRM, GBTCodec.encode, "BRM")
            if let brm = try? GBTCodec.decodeBRM(p) { checkVIN(brm.vin) }
        case 0x0600: roundTrip(GBTCodec.decodeBCP, GBTCodec.encode, "BCP")
        case 0x0900: roundTrip(GBTCodec.decodeBRO, GBTCodec.encode, "BRO")
        case 0x1000: roundTrip(GBTCodec.decodeBCL, GBTCodec.encode, "BCL")
        case 0x1100: roundTrip(GBTCodec.decodeBCS, GBTCodec.encode, "BCS")
        case 0x1300: roundTrip(GBTCodec.decodeBSM, GBTCodec.encode, "BSM")
        case 0x1900: roundTrip(GBTCodec.decodeBST, GBTCodec.encode, "BST")
        case 0x1C00: roundTrip(GBTCodec.decodeBSD, GBTCodec.encode, "BSD")
        default: break
        }
    }
}
