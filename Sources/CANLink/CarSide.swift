// The car's end of a gun's CAN link, for benches: the plant emulator's simulated car puts its BMS on the
// wire with it (charger-plant --bms-on-can). The same SocketCAN calls and codec as the charger's side,
// the other way round: it decodes the charger's messages, and sends the car's, multi-packet ones (BRM,
// BCP, BCS) with the J1939-21 sender (RTS, the packets each CTS asks for, EndOfMsgAck; T3 1250 ms).
// The bench's independent BMS is HIL/peers/gbt_bms.py; this one is the simulator's own.
import BoardFile
import CSocketCAN
import ChargerCore
import GBT27930
import RealTime
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The charger's messages as the car last received them, and when each was read (CLOCK_MONOTONIC µs, 0:
/// never), in ChargerMessages' order: CHM CRM CTS CML CRO CCS CST CSD.
struct ChargerHeard: Sendable {
    var messages = ChargerMessages()
    var at = InlineArray<8, Int64>(repeating: 0)
}

public final class SocketCANCar: @unchecked Sendable {
    public let spec: CANLinkSpec
    let fd: Int32
    let wake: Int32
    let outbox = TripleBufferStorage(initial: Received())
    let heard = Mutex(ChargerHeard())
    let thread = SideThread()
    // The plant's side.
    var published = Received()
    // The thread's side.
    var sentSerials = InlineArray<9, UInt32>(repeating: 0)
    var pending: [(pgn: UInt32, payload: GBTPayload)] = []
    var sending: (pgn: UInt32, payload: GBTPayload, packets: Int, deadline: Int64)? = nil
    public let counts = Mutex((sent: 0, received: 0, transfers: 0, aborted: 0, timedOut: 0, sendErrors: 0))

    public init(spec: CANLinkSpec) throws(CANLinkError) {
        self.spec = spec
        // The car hears frames from the charger to the BMS.
        let f = csc_open(spec.interface, UInt32(spec.bmsAddress) << 8 | UInt32(spec.chargerAddress), 0xFFFF)
        guard f >= 0 else { throw CANLinkError(interface: spec.interface, why: "cannot open a CAN_RAW socket: \(String(cString: strerror(-f)))") }
        let w = csc_eventfd()
        guard w >= 0 else { close(f); throw CANLinkError(interface: spec.interface, why: "cannot make an eventfd") }
        fd = f; wake = w
    }

    deinit { stop(); close(fd); close(wake) }

    public func start() throws(CANLinkError) {
        let rc = thread.start(stackBytes: 256 * 1024) { self.run() }
        guard rc == 0 else { throw CANLinkError(interface: spec.interface, why: "cannot start the car's link thread (errno \(rc))") }
    }

    public func stop() { thread.stop { csc_signal(wake) } }

    // MARK: The plant's side

    /// The car's messages after a plant tick: each one whose stamp moved is sent once.
    public func publish(_ m: VehicleMessages) {
        var changed = false
        func bump<T>(_ k: Int, _ new: Stamped<T>?, _ old: Stamped<T>?) {
            guard let n = new, n.at != old?.at else { return }
            published.serials[k] &+= 1; changed = true
        }
        bump(0, m.bhm, published.messages.bhm); bump(1, m.brm, published.messages.brm); bump(2, m.bcp, published.messages.bcp)
        bump(3, m.bro, published.messages.bro); bump(4, m.bcl, published.messages.bcl); bump(5, m.bcs, published.messages.bcs)
        bump(6, m.bsm, published.messages.bsm); bump(7, m.bst, published.messages.bst); bump(8, m.bsd, published.messages.bsd)
        guard changed else { return }
        published.messages = m
        outbox.buffer.write(published)
        csc_signal(wake)
    }

    /// The charger's broadcast as the car hears it now: a message counts as present for three of its
    /// periods after its last frame (a charger that stops sending one is heard to stop).
    public func chargerMessages() -> ChargerMessages {
        let h = heard.withLock { $0 }
        let now = monotonicNanos() / 1000
        func fresh(_ i: Int, _ period: TimeSpan) -> Bool { h.at[i] != 0 && now - h.at[i] <= 3 * period.micros }
        var m = h.messages
        m.chm = m.chm && fresh(0, Standard.periodCHM)
        if !fresh(1, Standard.periodCRM) { m.crm = nil }
        m.cts = m.cts && fresh(2, .ms(500))
        if !fresh(3, Standard.periodCML) { m.cml = nil }
        if !fresh(4, Standard.periodCRO) { m.cro = nil }
        if !fresh(5, Standard.periodCCS) { m.ccs = nil }
        if !fresh(6, .ms(100)) { m.cst = nil }
        if !fresh(7, Standard.periodCSD) { m.csd = nil }
        m.cem = nil
        return m
    }

    // MARK: The thread

    static let kinds: [GBTMessage] = ["BHM", "BRM", "BCP", "BRO", "BCL", "BCS", "BSM", "BST", "BSD"].map { GBT27930.message($0)! }

    func run() {
        let fds: [Int32] = [wake, fd]
        var ready: [UInt8] = [0, 0]
        var f = csc_frame()
        while !thread.stopAsked {
            let rc = fds.withUnsafeBufferPointer { p in ready.withUnsafeMutableBufferPointer { csc_poll(p.baseAddress, 2, 5, $0.baseAddress) } }
            if rc < 0 { usleep(1000); continue }
            if ready[0] != 0 { csc_drain(wake) }
            if ready[1] != 0 {
                for _ in 0..<256 {
                    guard csc_read(fd, &f) == 1 else { break }
                    if f.error == 0 && f.extended != 0 { frame(f) }
                }
            }
            sendNew()
            if let s = sending, monotonicNanos() > s.deadline {
                sending = nil
                counts.withLock { $0.timedOut += 1 }
            }
            if sending == nil, !pending.isEmpty { startTransfer(pending.removeFirst()) }
        }
    }

    func sendNew() {
        let r = outbox.buffer.read()
        for k in 0..<9 where r.serials[k] != sentSerials[k] {
            sentSerials[k] = r.serials[k]
            let p: GBTPayload
            switch k {
            case 0: guard let x = r.messages.bhm else { continue }; p = GBTCodec.encode(x.message)
            case 1: guard let x = r.messages.brm else { continue }; p = GBTCodec.encode(x.message)
            case 2: guard let x = r.messages.bcp else { continue }; p = GBTCodec.encode(x.message)
            case 3: guard let x = r.messages.bro else { continue }; p = GBTCodec.encode(x.message)
            case 4: guard let x = r.messages.bcl else { continue }; p = GBTCodec.encode(x.message)
            case 5: guard let x = r.messages.bcs else { continue }; p = GBTCodec.encode(x.message)
            case 6: guard let x = r.messages.bsm else { continue }; p = GBTCodec.encode(x.message)
            case 7: guard let x = r.messages.bst else { continue }; p = GBTCodec.encode(x.message)
            default: guard let x = r.messages.bsd else { continue }; p = GBTCodec.encode(x.message)
            }
            let msg = Self.kinds[k]
            if p.count <= 8 {
                send(pgn: msg.pgn, priority: msg.priority, p.bytes, count: p.count)
            } else {
                // The newest of each multi-packet message waits for the transport (an older one is replaced).
                pending.removeAll { $0.pgn == msg.pgn }
                pending.append((msg.pgn, p))
            }
        }
    }

    func startTransfer(_ t: (pgn: UInt32, payload: GBTPayload)) {
        let rts = TPSender.rts(pgn: t.pgn, size: t.payload.count)
        send(pgn: GBT27930.tpConnectionManagement, priority: 7, rts.b, count: 8)
        sending = (t.pgn, t.payload, (t.payload.count + 6) / 7, monotonicNanos() + 1_250_000_000)
    }

    func frame(_ f: csc_frame) {
        var raw = f.data
        let bytes = withUnsafeBytes(of: &raw) { Array($0.prefix(Int(f.len))) }
        let (_, pgn, _, _) = GBT27930.parse(identifier: f.id)
        let at = monotonicNanos() / 1000
        counts.withLock { $0.received += 1 }
        if pgn == GBT27930.tpConnectionManagement {
            guard bytes.count == 8, let s = sending else { return }
            let tpPGN = UInt32(bytes[5]) | UInt32(bytes[6]) << 8 | UInt32(bytes[7]) << 16
            guard tpPGN == s.pgn else { return }
            switch bytes[0] {
            case 17:   // CTS: how many, from which packet (0 packets: hold the connection, T4)
                let count = Int(bytes[1]), first = Int(bytes[2])
                if count == 0 { sending?.deadline = monotonicNanos() + 1_050_000_000; return }
                for seq in first..<min(s.packets + 1, first + count) where seq >= 1 {
                    let d = TPSender.packet(UInt8(seq), of: s.payload)
                    send(pgn: GBT27930.tpDataTransfer, priority: 7, d.b, count: 8)
                }
                sending?.deadline = monotonicNanos() + 1_250_000_000
            case 19: sending = nil; counts.withLock { $0.transfers += 1 }
            case 255: sending = nil; counts.withLock { $0.aborted += 1 }
            default: break
            }
            return
        }
        let p = GBTPayload(bytes)
        heard.withLock { h in
            let i: Int
            switch pgn {
            case 0x2600: h.messages.chm = true; i = 0
            case 0x0100: guard let r = p.count >= 1 ? Recognition(rawValue: p.bytes[0]) : nil else { return }; h.messages.crm = r; i = 1
            case 0x0700: h.messages.cts = true; i = 2
            case 0x0800: guard let c = try? GBTCodec.decodeCML(p) else { return }; h.messages.cml = c; i = 3
            case 0x0A00: guard p.count >= 1 else { return }; h.messages.cro = p.bytes[0] == 0xAA; i = 4
            case 0x1200: guard let c = try? GBTCodec.decodeCCS(p) else { return }; h.messages.ccs = c; i = 5
            case 0x1A00: guard let c = try? GBTCodec.decodeCST(p) else { return }; h.messages.cst = c; i = 6
            case 0x1D00: guard let c = try? GBTCodec.decodeCSD(p) else { return }; h.messages.csd = c; i = 7
            default: return          // CEM: the simulated car does not act on it
            }
            h.at[i] = at
        }
    }

    func send(pgn: UInt32, priority: UInt8, _ data: InlineArray<8, UInt8>, count n: Int) {
        let id = GBT27930.identifier(pgn: pgn, priority: priority, destination: spec.chargerAddress, source: spec.bmsAddress)
        var d = data
        let rc = withUnsafeBytes(of: &d) { csc_write(fd, id, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt8(n)) }
        counts.withLock { if rc == 0 { $0.sent += 1 } else { $0.sendErrors += 1 } }
    }
}

/// `send` takes the payload's first eight bytes.
extension SocketCANCar {
    func send(pgn: UInt32, priority: UInt8, _ bytes: InlineArray<64, UInt8>, count n: Int) {
        var d = InlineArray<8, UInt8>(repeating: 0xFF)
        for i in 0..<min(8, n) { d[i] = bytes[i] }
        send(pgn: pgn, priority: priority, d, count: min(8, n))
    }
}

