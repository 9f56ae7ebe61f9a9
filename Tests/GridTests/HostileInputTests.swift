// What the probe of issue 32 sent the charge point, as plain bytes through the readers it reached: each
// one trapped, overflowed the stack or buffered without bound before.
import Grid
import Testing

@Suite struct WebSocketFrames {
    func header(_ b0: UInt8, len64 v: UInt64) -> [UInt8] {
        [b0, 127] + (0..<8).reversed().map { UInt8((v >> (8 * UInt64($0))) & 0xFF) }
    }

    /// The probe's case 2: a 64-bit length of 0x7FFF… or 0x8000… trapped in the frame parser; case 5: a
    /// 48 MB frame was buffered whole. Both are refused on their ten header bytes now.
    @Test func hostileLengthsAreRefusedOnTheHeader() {
        for v: UInt64 in [
            0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFFF, 48_000_000, UInt64(WebSocketFrame.defaultMaxPayload) + 1,
        ] {
            guard case .refused(let why, _) = WebSocketFrame.read(header(0x81, len64: v)[...]) else {
                Issue.record("length \(v) not refused on its header"); continue
            }
            #expect(!why.isEmpty)
        }
        // At the limit: a header that announces exactly the limit waits for its bytes.
        #expect(WebSocketFrame.read(header(0x81, len64: UInt64(WebSocketFrame.defaultMaxPayload))[...]) == .incomplete)
        // A smaller limit (the site's) is the one applied.
        #expect(WebSocketFrame.read(([0x81, 126, 0x10, 0x00] as [UInt8])[...], maxPayload: 1000) == .refused("a frame of 4096 bytes (at most 1000)", tooBig: true))
    }

    @Test func reservedBitsOpcodesAndBadControlFramesAreRefused() {
        #expect(WebSocketFrame.read(([0xC1, 0] as [UInt8])[...]) == .refused("reserved bits set (RSV 0x40)"))
        #expect(WebSocketFrame.read(([0x83, 0] as [UInt8])[...]) == .refused("unknown opcode 3"))
        #expect(WebSocketFrame.read(([0x09, 0] as [UInt8])[...]) == .refused("a fragmented control frame (opcode 9)"))
        #expect(WebSocketFrame.read(([0x89, 126, 0, 126] as [UInt8])[...]) == .refused("a control frame of 126 bytes (at most 125)"))
    }

    @Test func framesReadBackAsTheyWereWrittenMaskedOrNot() {
        for n in [0, 1, 125, 126, 65_535, 65_536, 70_000] {
            let payload = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let f = WebSocketFrame(fin: n % 2 == 0, opcode: .binary, payload: payload)
            for mask in [nil, (UInt8(1), UInt8(2), UInt8(3), UInt8(250))] as [(UInt8, UInt8, UInt8, UInt8)?] {
                let bytes = f.encoded(mask: mask) + [0x81]          // and the first byte of the next frame
                #expect(WebSocketFrame.read(bytes[...]) == .frame(f, used: bytes.count - 1), "\(n) bytes")
                #expect(WebSocketFrame.read(bytes.dropLast(2)) == .incomplete)
            }
        }
    }

    @Test func aMessageIsBoundedAcrossItsFragments() {
        var a = WebSocketMessageAssembly(maxBytes: 10)
        #expect(a.take(WebSocketFrame(fin: false, opcode: .text, payload: Array("hello".utf8))) == .more)
        #expect(a.take(WebSocketFrame(fin: false, opcode: .continuation, payload: Array("world".utf8))) == .more)
        #expect(a.take(WebSocketFrame(fin: true, opcode: .continuation, payload: [0x21])) == .refused("a message over 10 bytes", tooBig: true))
        var b = WebSocketMessageAssembly(maxBytes: 10)
        #expect(b.take(WebSocketFrame(fin: true, opcode: .continuation, payload: [])) == .refused("a continuation frame with no message begun"))
        #expect(b.take(WebSocketFrame(fin: false, opcode: .text, payload: [0x61])) == .more)
        #expect(b.take(WebSocketFrame(fin: true, opcode: .text, payload: [0x62])) == .refused("a new message inside a fragmented one"))
        var c = WebSocketMessageAssembly(maxBytes: 10)
        #expect(c.take(WebSocketFrame(fin: false, opcode: .text, payload: Array("[2,".utf8))) == .more)
        #expect(c.take(WebSocketFrame(fin: true, opcode: .continuation, payload: Array("1]".utf8))) == .message(Array("[2,1]".utf8)))
        #expect(c.take(WebSocketFrame(fin: true, opcode: .text, payload: Array("{}".utf8))) == .message(Array("{}".utf8)))
    }
}

@Suite struct JSONDepth {
    /// The probe's case 2: a 2 kB CALL nested 350 deep overflowed the stack (SIGSEGV); 250 deep was fine.
    @Test func deepNestingIsRefusedBeforeDecoding() throws {
        let deep = #"[2,"1","DataTransfer",{"vendorId":"x","data":"#
            + String(repeating: "[", count: 350) + String(repeating: "]", count: 350) + "}]"
        guard case .failure(let m) = OCPPFrame.parse(deep) else { Issue.record("a 350-deep CALL parsed"); return }
        #expect(m.why == "JSON nested more than 32 deep")
        #expect(throws: JSONTooDeep.self) { try JSONValue(json: String(repeating: "{\"a\":", count: 100_000)) }
        // Brackets inside strings (escaped quotes included) do not count.
        let quoted = #"[2,"1","DataTransfer",{"vendorId":"x","data":"\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}]"#
        guard case .success(.call(_, "DataTransfer", _)) = OCPPFrame.parse(quoted) else { Issue.record("brackets in a string counted"); return }
        // At the limit it decodes.
        let ok = String(repeating: "[", count: JSONValue.maxDepth) + String(repeating: "]", count: JSONValue.maxDepth)
        #expect(throws: Never.self) { try JSONValue(json: ok) }
        #expect(JSONValue.nesting(Array((ok + "[").utf8), above: JSONValue.maxDepth) == nil)
        #expect(JSONValue.nesting(Array(("[" + ok).utf8), above: JSONValue.maxDepth) == JSONValue.maxDepth + 1)
    }
}

@Suite struct JSONNumbers {
    /// The ocpp fuzz target's long run: 92233720368547758.008 is a double that JSONEncoder writes as
    /// 92233720368547760, which reads back as an integer. JSON has one number type: the values are equal,
    /// and a payload passed on through a round trip is the payload received.
    @Test func aNumberIsTheSameWrittenEitherWay() throws {
        let v = try JSONValue(json: #"{"a":92233720368547758.008,"b":60.0,"c":[9223372036854775808],"d":92233720368575487.008}"#)
        let again = try JSONValue(json: v.text)
        #expect(again == v)
        #expect(JSONValue.int(60) == .double(60))
        #expect(JSONValue.double(60.5) != .int(60))
        #expect(JSONValue.int(92233720368575490) == .double(92233720368575487.008))   // the same double
        #expect(JSONValue.int(9_007_199_254_740_993) != .int(9_007_199_254_740_992))  // integers: exact
        #expect(JSONValue.double(.nan) != .double(.nan))
        #expect(JSONValue.string("60") != .int(60))
    }
}

@Suite struct EMSRequests {
    /// The probe's case 6: a function 6 request cut short (MBAP length 4: unit, function, address) to
    /// holding register 0 was answered with exception 03, yet the register went from 7 to 0xFFFF. Now the
    /// PDU is refused whole before any field is read, and a refused write changes nothing.
    @Test func aRequestCutShortOrPaddedIsRefusedWhole() {
        #expect(EMSRequest.parse(pdu: ([0x06, 0x00, 0x00] as [UInt8])[...]) == .failure(EMSRefusal(code: .illegalDataValue, why: "function 6 of 3 bytes (5 expected)")))
        #expect(EMSRequest.parse(pdu: ([0x06, 0x00, 0x00, 0x00, 0x07, 0x00] as [UInt8])[...]).isRefusal)
        #expect(EMSRequest.parse(pdu: ([0x06, 0x00, 0x00, 0x00, 0x07] as [UInt8])[...]) == .success(.write(address: 0, values: [7])))
        #expect(EMSRequest.parse(pdu: ([0x03, 0x00, 0x00, 0x00] as [UInt8])[...]).isRefusal)
        #expect(EMSRequest.parse(pdu: ([0x03, 0x00, 0x10, 0x00, 0x7E] as [UInt8])[...]).isRefusal)   // 126 registers
        #expect(EMSRequest.parse(pdu: ([0x04, 0xFF, 0xFF, 0x00, 0x01] as [UInt8])[...]) == .success(.read(input: true, address: 65_535, count: 1)))
        // Function 16: count and byte count agree, and the values are all there, no more.
        #expect(EMSRequest.parse(pdu: ([0x10, 0x00, 0x06, 0x00, 0x02, 0x04, 0x00, 0x00, 0xC3] as [UInt8])[...]).isRefusal)
        #expect(
            EMSRequest.parse(pdu: ([0x10, 0x00, 0x06, 0x00, 0x02, 0x04, 0x00, 0x00, 0xC3, 0x50] as [UInt8])[...])
                == .success(.write(address: 6, values: [0, 50_000])))
        #expect(EMSRequest.parse(pdu: ([0x10, 0x00, 0x06, 0x00, 0x02, 0x03, 0x00, 0x00, 0xC3] as [UInt8])[...]).isRefusal)
        #expect(EMSRequest.parse(pdu: ([0x2B, 0x0E, 0x01] as [UInt8])[...]) == .failure(EMSRefusal(code: .illegalFunction, why: "function 43 is not served (3, 4, 6 and 16 are)")))
        #expect(EMSRequest.parse(pdu: ([] as [UInt8])[...]).isRefusal)
    }
}

extension Result where Failure == EMSRefusal {
    var isRefusal: Bool { if case .failure = self { return true }; return false }
}
