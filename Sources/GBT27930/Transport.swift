// J1939-21 transport protocol, the receiving side a charger needs: every GB/T 27930 message the charger
// sends fits one frame, while the BMS sends BRM (49 bytes), BCP (13), BCS (9) and BMV/BMT/BSP through
// connection mode (TP.CM RTS → CTS → TP.DT … → EndOfMsgAck, or Abort) or a broadcast (BAM). A pure
// state machine on fixed-size values: a frame or the time in, the frame to answer and the completed
// message out. It runs where the frames are received (the CAN link's thread), never in the loop.
// Timeouts and abort reasons: docs/standards.md "J1939-21 transport".
import ChargerCore

/// One CAN data field (8 bytes; unused bytes 0xFF).
public struct CANData: Sendable, Equatable, BitwiseCopyable {
    public var b: InlineArray<8, UInt8> = InlineArray(repeating: 0xFF)
    public var count = 8
    public init() {}
    public init(_ bytes: [UInt8]) { count = min(8, bytes.count); for i in 0..<count { b[i] = bytes[i] } }
    public var array: [UInt8] { (0..<count).map { b[$0] } }
    public static func == (x: CANData, y: CANData) -> Bool { x.array == y.array }
}

public enum TPAbortReason: UInt8, Sendable {
    case alreadyInSession = 1, noResources = 2, timeout = 3, ctsWhileSending = 4, retransmitLimit = 5
    case unexpectedData = 6, badSequence = 7, duplicateSequence = 8
}

/// What one step of the receiver produced.
public struct TPOutput: Sendable {
    /// A TP.CM frame to send back to the BMS (CTS, EndOfMsgAck or Abort), if any.
    public var reply: CANData? = nil
    /// A message reassembled whole: its PGN and payload.
    public var message: (pgn: UInt32, payload: GBTPayload)? = nil
    /// The open transfer ended without a message (abort sent or received, timeout, superseded).
    public var dropped: TPAbortReason? = nil
    public init() {}
}

public struct TPReceiver: Sendable {
    /// J1939-21 timeouts: T1 between two data packets, T2 from a CTS to its first data packet, Th the
    /// hold time a receiver may take before its CTS (here: none, it answers in the same step).
    public static let t1 = TimeSpan.ms(750)
    public static let t2 = TimeSpan.ms(1250)
    /// Packets asked for in one CTS (the whole of BRM's 7 at once; the RTS may ask for fewer).
    public static let window: UInt8 = 16
    /// Retransmissions asked for (a CTS from the missing packet) before a transfer is aborted.
    public static let retries = 2

    enum Mode: UInt8 { case idle, connection, broadcast }
    var mode: Mode = .idle
    var pgn: UInt32 = 0
    var size = 0
    var packets: UInt8 = 0
    var maxPerCTS: UInt8 = 0xFF
    var nextSequence: UInt8 = 1
    /// Last packet of the window the latest CTS asked for.
    var windowEnd: UInt8 = 0
    var retriesLeft = 0
    var deadline: Instant = .never
    var buffer = GBTPayload()

    /// Counters for the console and the journal.
    public private(set) var completed = 0
    public private(set) var aborts = 0
    public private(set) var duplicates = 0
    public private(set) var timeouts = 0

    public init() {}
    public var busy: Bool { mode != .idle }

    /// A TP.CM frame (PGN 0xEC00) from the BMS.
    public mutating func connectionManagement(_ d: CANData, at now: Instant) -> TPOutput {
        var out = TPOutput()
        guard d.count == 8 else { return out }                   // wrong DLC: not a TP.CM frame
        let control = d.b[0]
        let size = Int(d.b[1]) | Int(d.b[2]) << 8
        let pgn = UInt32(d.b[5]) | UInt32(d.b[6]) << 8 | UInt32(d.b[7]) << 16
        switch control {
        case 16, 32:                                             // RTS, BAM
            let count = d.b[3]
            let broadcast = control == 32
            // A message this receiver cannot hold, or whose packet count does not match its size.
            guard size >= 9, size <= 64, Int(count) == (size + 6) / 7 else {
                if !broadcast { out.reply = Self.abort(.noResources, pgn: pgn) }
                return out
            }
            if mode != .idle {
                if mode == .connection && pgn == self.pgn || broadcast {
                    out.dropped = .alreadyInSession              // the sender started over: the old transfer goes
                } else {
                    out.reply = Self.abort(.alreadyInSession, pgn: pgn)
                    return out
                }
            }
            mode = broadcast ? .broadcast : .connection
            self.pgn = pgn; self.size = size; packets = count; nextSequence = 1
            maxPerCTS = broadcast ? count : (d.b[4] == 0 ? 0xFF : d.b[4])
            retriesLeft = Self.retries
            buffer = GBTPayload(count: size)
            if broadcast { deadline = now + Self.t1 } else { out.reply = cts(from: 1, at: now) }
        case 255:                                                // Abort from the sender
            if mode == .connection && pgn == self.pgn { mode = .idle; aborts += 1; out.dropped = TPAbortReason(rawValue: d.b[1]) ?? .timeout }
        default:
            break                                                // CTS/EndOfMsgAck are the sender's to receive
        }
        return out
    }

    /// A TP.DT frame (PGN 0xEB00) from the BMS.
    public mutating func dataTransfer(_ d: CANData, at now: Instant) -> TPOutput {
        var out = TPOutput()
        guard mode != .idle, d.count == 8 else { return out }
        let seq = d.b[0]
        if seq < nextSequence { duplicates += 1; return out }      // a packet sent again: already have it
        if seq > nextSequence || seq > packets {
            // A packet missing: ask again from it (connection mode), then give up.
            if mode == .connection && retriesLeft > 0 && seq <= packets {
                retriesLeft -= 1
                out.reply = cts(from: nextSequence, at: now)
            } else {
                out.reply = mode == .connection ? Self.abort(.badSequence, pgn: pgn) : nil
                out.dropped = .badSequence
                mode = .idle; aborts += 1
            }
            return out
        }
        let base = Int(seq - 1) * 7
        for k in 0..<7 where base + k < size { buffer.bytes[base + k] = d.b[1 + k] }
        nextSequence = seq + 1
        deadline = now + Self.t1
        if seq == packets {
            if mode == .connection {
                var ack = CANData([19, UInt8(size & 0xFF), UInt8(size >> 8), packets, 0xFF, 0, 0, 0])
                Self.put(pgn, &ack)
                out.reply = ack
            }
            out.message = (pgn, buffer)
            completed += 1
            mode = .idle
        } else if mode == .connection && seq == windowEnd {
            out.reply = cts(from: nextSequence, at: now)
        }
        return out
    }

    /// Time passing: a transfer whose next packet is late is dropped (an Abort tells a connection's sender).
    public mutating func poll(at now: Instant) -> TPOutput {
        var out = TPOutput()
        guard mode != .idle, now >= deadline else { return out }
        if mode == .connection { out.reply = Self.abort(.timeout, pgn: pgn) }
        out.dropped = .timeout
        mode = .idle; timeouts += 1
        return out
    }

    private mutating func cts(from first: UInt8, at now: Instant) -> CANData {
        let n = min(Self.window, maxPerCTS, packets - first + 1)
        windowEnd = first + n - 1
        deadline = now + Self.t2
        var d = CANData([17, n, first, 0xFF, 0xFF, 0, 0, 0])
        Self.put(pgn, &d)
        return d
    }

    static func abort(_ r: TPAbortReason, pgn: UInt32) -> CANData {
        var d = CANData([255, r.rawValue, 0xFF, 0xFF, 0xFF, 0, 0, 0])
        put(pgn, &d)
        return d
    }
    static func put(_ pgn: UInt32, _ d: inout CANData) {
        d.b[5] = UInt8(pgn & 0xFF); d.b[6] = UInt8(pgn >> 8 & 0xFF); d.b[7] = UInt8(pgn >> 16 & 0xFF)
    }
}

/// The sending side, for a BMS (the bench's simulated car and the tests): the frames of one message.
public enum TPSender {
    /// RTS for `payload` of `pgn` (9 to 64 bytes), at most `maxPerCTS` packets per CTS.
    public static func rts(pgn: UInt32, size: Int, maxPerCTS: UInt8 = 0xFF) -> CANData {
        var d = CANData([16, UInt8(size & 0xFF), UInt8(size >> 8), UInt8((size + 6) / 7), maxPerCTS, 0, 0, 0])
        TPReceiver.put(pgn, &d)
        return d
    }
    public static func bam(pgn: UInt32, size: Int) -> CANData {
        var d = CANData([32, UInt8(size & 0xFF), UInt8(size >> 8), UInt8((size + 6) / 7), 0xFF, 0, 0, 0])
        TPReceiver.put(pgn, &d)
        return d
    }
    /// Data packet `seq` (1-based) of `payload`: 7 bytes each, the last padded with 0xFF.
    public static func packet(_ seq: UInt8, of payload: GBTPayload) -> CANData {
        var d = CANData([seq, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        let base = Int(seq - 1) * 7
        for k in 0..<7 where base + k < payload.count { d.b[1 + k] = payload.bytes[base + k] }
        return d
    }
}
