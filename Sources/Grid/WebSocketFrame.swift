// RFC 6455 §5.2 frames as pure values: the reader the OCPP client's WebSocket takes its bytes through,
// and the writer of its own frames. No I/O here, so the reader is fuzzed (Sources/ParserFuzzing) and
// tested with plain bytes.
//
// Bounded before anything is allocated: a frame whose header announces more than `maxPayload` bytes is
// refused on its header (a 64-bit length with its top bit set is not a length RFC 6455 allows at all),
// so a peer cannot make the reader buffer or compute with a length it chose.

/// What the reader makes of the bytes it has.
public enum WebSocketFrameRead: Equatable, Sendable {
    /// Not a whole frame yet (read more).
    case incomplete
    /// A whole frame and how many bytes it took.
    case frame(WebSocketFrame, used: Int)
    /// Not a frame this client takes: the connection ends with the reason (`tooBig`: over the limit,
    /// close code 1009; otherwise a protocol error, 1002).
    case refused(String, tooBig: Bool = false)
}

public struct WebSocketFrame: Equatable, Sendable {
    /// RFC 6455 §5.2 opcodes (the others are reserved).
    public enum Opcode: UInt8, Sendable {
        case continuation = 0x0, text = 0x1, binary = 0x2, close = 0x8, ping = 0x9, pong = 0xA
        /// Control frames (§5.5): at most 125 bytes of payload, never fragmented.
        public var isControl: Bool { rawValue & 0x8 != 0 }
    }
    public var fin: Bool
    public var opcode: Opcode
    public var payload: [UInt8]
    public init(fin: Bool = true, opcode: Opcode, payload: [UInt8]) { self.fin = fin; self.opcode = opcode; self.payload = payload }

    /// The largest message (and so frame) this client takes by default: 1 MiB (docs/security.md).
    public static let defaultMaxPayload = 1 << 20
    /// §5.5: a control frame's payload is at most 125 bytes.
    public static let maxControlPayload = 125

    /// Reads one frame from the front of `bytes`; refuses, from the header alone, a length above
    /// `maxPayload`, reserved bits set (no extension is negotiated), reserved opcodes and control frames
    /// that are fragmented or longer than 125 bytes (§5.5).
    public static func read(_ bytes: ArraySlice<UInt8>, maxPayload: Int = defaultMaxPayload) -> WebSocketFrameRead {
        let b = bytes.startIndex
        guard bytes.count >= 2 else { return .incomplete }
        let b0 = bytes[b], b1 = bytes[b + 1]
        guard b0 & 0x70 == 0 else { return .refused("reserved bits set (RSV 0x\(String(b0 & 0x70, radix: 16)))") }
        guard let opcode = Opcode(rawValue: b0 & 0x0F) else { return .refused("unknown opcode \(b0 & 0x0F)") }
        let fin = b0 & 0x80 != 0
        let masked = b1 & 0x80 != 0
        var length = UInt64(b1 & 0x7F)
        var header = 2
        if length == 126 {
            guard bytes.count >= 4 else { return .incomplete }
            length = UInt64(bytes[b + 2]) << 8 | UInt64(bytes[b + 3])
            header = 4
        } else if length == 127 {
            guard bytes.count >= 10 else { return .incomplete }
            length = 0
            for i in 2..<10 { length = length << 8 | UInt64(bytes[b + i]) }
            // §5.2: "the most significant bit MUST be 0".
            guard length >> 63 == 0 else { return .refused("a 64-bit length with its top bit set") }
            header = 10
        }
        if opcode.isControl {
            guard fin else { return .refused("a fragmented control frame (opcode \(opcode.rawValue))") }
            guard length <= UInt64(maxControlPayload) else { return .refused("a control frame of \(length) bytes (at most 125)") }
        }
        guard length <= UInt64(max(0, maxPayload)) else { return .refused("a frame of \(length) bytes (at most \(maxPayload))", tooBig: true) }
        let n = Int(length)   // exact: at most maxPayload
        if masked { header += 4 }
        guard bytes.count - header >= n else { return .incomplete }
        var payload = Array(bytes[(b + header)..<(b + header + n)])
        if masked {
            let m = b + header - 4
            for i in payload.indices { payload[i] ^= bytes[m + (i & 3)] }
        }
        return .frame(WebSocketFrame(fin: fin, opcode: opcode, payload: payload), used: header + n)
    }

    /// The frame's bytes; masked with `mask` when given (a client masks every frame it sends, §5.3).
    public func encoded(mask: (UInt8, UInt8, UInt8, UInt8)? = nil) -> [UInt8] {
        var f: [UInt8] = [(fin ? 0x80 : 0) | opcode.rawValue]
        let n = payload.count
        let m: UInt8 = mask == nil ? 0 : 0x80
        if n < 126 { f.append(m | UInt8(n)) }
        else if n < 65_536 { f += [m | 126, UInt8(n >> 8), UInt8(n & 0xFF)] }
        else { f.append(m | 127); for i in (0..<8).reversed() { f.append(UInt8((n >> (8 * i)) & 0xFF)) } }
        f.reserveCapacity(f.count + 4 + n)
        if let (a, b, c, d) = mask {
            let k = [a, b, c, d]
            f += k
            for (i, x) in payload.enumerated() { f.append(x ^ k[i & 3]) }
        } else {
            f += payload
        }
        return f
    }
}

/// A message put together from its frames (§5.4), bounded: a message whose fragments add up to more than
/// `maxBytes` is refused before its bytes are appended.
public struct WebSocketMessageAssembly: Sendable {
    public let maxBytes: Int
    public private(set) var bytes: [UInt8] = []
    private var inMessage = false
    public init(maxBytes: Int = WebSocketFrame.defaultMaxPayload) { self.maxBytes = maxBytes }

    public enum Step: Equatable, Sendable { case more, message([UInt8]), refused(String, tooBig: Bool = false) }

    /// Takes a data frame (text, binary or continuation); control frames are the caller's.
    public mutating func take(_ f: WebSocketFrame) -> Step {
        switch f.opcode {
        case .continuation:
            guard inMessage else { return .refused("a continuation frame with no message begun") }
        case .text, .binary:
            guard !inMessage else { return .refused("a new message inside a fragmented one") }
        default:
            return .refused("opcode \(f.opcode.rawValue) is not a data frame")
        }
        guard f.payload.count <= maxBytes - bytes.count else {
            return .refused("a message over \(maxBytes) bytes", tooBig: true)
        }
        bytes += f.payload
        inMessage = !f.fin
        if f.fin {
            defer { bytes.removeAll(keepingCapacity: false) }
            return .message(bytes)
        }
        return .more
    }
}
