// The car link on the CAN wire: GB/T 27930-2015 over a SocketCAN CAN_RAW socket per gun, on a thread of
// its own. The loop never touches a socket: each cycle it publishes what the charger broadcasts
// (ChargerMessages) into a triple buffer and reads the newest decoded car messages from another; the
// link's thread does the framing (the codec, J1939-21 transport), the periods and the counters.
//
// Time: a received message is stamped by the loop with the cycle that first sees it (as a fresh Modbus
// reading is), so the core's timeouts run on the loop's own clock whatever the board (monotonic on a real
// board, the plant's ticks on a bench). The kernel's receive time (SO_TIMESTAMP) goes to the candump log
// and to the link's delay figure. The charger's messages are sent on the link thread's CLOCK_MONOTONIC at
// their GB/T 27930 periods (docs/standards.md "GB/T 27930 on CAN"), and at once when what one says
// changes (CRM 00 → AA, CRO, a CST or CEM appearing): the loop wakes the thread through an eventfd then.
import BoardFile
import CSocketCAN
import ChargerCore
import ChargerHAL
import GBT27930
import RealTime
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public struct CANLinkError: Error, CustomStringConvertible, Equatable {
    public var interface: String
    public var why: String
    public var description: String { "CAN \(interface): \(why)" }
}

/// The car messages one gun's link has decoded, each with a count of its receptions (the loop stamps a
/// message when its count moves). Stamps hold the kernel's receive time (µs, CLOCK_REALTIME).
struct Received: BitwiseCopyable {
    var messages = VehicleMessages()
    var serials = InlineArray<9, UInt32>(repeating: 0)
}

/// The charger's broadcast as the loop last published it.
struct Broadcast: BitwiseCopyable {
    var messages = ChargerMessages()
}

/// One line of the link's recent-frame ring (the console's `can`).
public struct CANFrameNote: Sendable {
    public var realtimeMicros: Int64
    public var sent: Bool
    public var id: UInt32
    public var data: [UInt8]
    public var error: Bool
    public var candump: String { hex(id | (error ? 0x2000_0000 : 0), digits: 8) + "#" + hexBytes(data) }
}

/// What one gun's link has seen, for the console, the journal and the tests.
public struct CANLinkCounters: Sendable {
    public var interface: String
    public var gun: Int
    public var rxFrames = 0, txFrames = 0
    /// Frames taken whole into a car message (single frames and transfers).
    public var messages = 0
    /// A frame or transfer whose payload the codec refused (wrong length, a value the standard does not define).
    public var malformed = 0
    /// A PGN that is not a GB/T 27930 car message.
    public var unknownPGN = 0
    /// Frames that are not J1939 data frames (standard format, remote).
    public var notJ1939 = 0
    public var errorFrames = 0, busOff = 0, restarts = 0
    /// Controller state from the latest error frame: error-active, warning, passive, bus-off.
    public var controllerState = "error-active"
    public var txFailures = 0
    public var lastTxError = ""
    /// Frames the kernel dropped because the socket's queue was full (SO_RXQ_OVFL).
    public var rxOverflow: UInt32 = 0
    public var tpCompleted = 0, tpAborts = 0, tpTimeouts = 0, tpDuplicates = 0
    /// BEM frames: the car says one of the charger's messages timed out.
    public var bem = 0
    public var lastBEM = ""
    public var lastMalformed = ""
    /// Kernel receive to published for the loop, the largest seen (µs).
    public var maxDelayMicros: Int64 = 0
    /// Each car message's last arrival (kernel time, µs; 0 never), in VehicleMessageKind order.
    public var lastArrival: [Int64] = Array(repeating: 0, count: 9)
    public var recent: [CANFrameNote] = []
}

public final class SocketCANLink: VehicleLink, @unchecked Sendable {
    /// One gun's link: its socket and buffers (the loop side and the thread side each touch their own part).
    final class Gun: @unchecked Sendable {
        let spec: CANLinkSpec
        let fd: Int32
        let rx = TripleBufferStorage(initial: Received())
        let tx = TripleBufferStorage(initial: Broadcast())
        // Loop side.
        var seen = InlineArray<9, UInt32>(repeating: 0)
        var current = VehicleMessages()
        /// What each message of the broadcast said when the loop last published it (`says`; .max: absent).
        var lastSaid = InlineArray<9, UInt64>(repeating: .max)
        // Thread side.
        var decoded = Received()
        var tp = TPReceiver()
        var lastSent = InlineArray<9, Int64>(repeating: Int64.min / 2)
        var sentKey = InlineArray<9, UInt64>(repeating: UInt64.max)
        let counters: Mutex<CANLinkCounters>
        init(spec: CANLinkSpec, fd: Int32) {
            self.spec = spec; self.fd = fd
            counters = Mutex(CANLinkCounters(interface: spec.interface, gun: spec.gun))
        }
    }

    let guns: [Gun?]
    let clock: LoopClock
    let wake: Int32
    let thread = SideThread()
    let log: CANDumpLog?
    /// Called on the link's thread for what belongs in the journal (bus-off, restarts, the first
    /// malformed frame of a burst); rate-limited by the link.
    public var onEvent: (@Sendable (_ gun: Int, _ text: String) -> Void)? = nil
    var lastEventAt = InlineArray<16, Int64>(repeating: Int64.min / 2)

    /// Opens one socket per `[[can]]` link (refusing an interface that does not exist or is not CAN; one
    /// that is down is listed in `interfacesDown`) and, with `logPath`, the candump log. The thread starts
    /// with `start()`.
    public init(links: [CANLinkSpec], guns gunCount: Int, clock: LoopClock, logPath: String? = nil) throws(CANLinkError) {
        var out = [Gun?](repeating: nil, count: max(gunCount, 1))
        var opened: [Int32] = []
        var down: [String] = []
        func closeAll() { for f in opened { close(f) } }
        for l in links {
            let filterID = UInt32(l.chargerAddress) << 8 | UInt32(l.bmsAddress)
            let fd = csc_open(l.interface, filterID, 0xFFFF)
            guard fd >= 0 else {
                closeAll()
                let e = -fd
                let why: String
                switch e {
                case ENODEV: why = "no such network interface (ip link add dev \(l.interface) type vcan, or the board's CAN controller is not probed)"
                case EAFNOSUPPORT: why = "the kernel has no SocketCAN (modprobe can-raw)"
                default: why = "cannot open a CAN_RAW socket: \(String(cString: strerror(e)))"
                }
                throw CANLinkError(interface: l.interface, why: why)
            }
            opened.append(fd)
            let type = csc_interface_type(fd, l.interface)
            guard type == 280 else {   // ARPHRD_CAN
                closeAll()
                throw CANLinkError(interface: l.interface, why: type < 0 ? "cannot read its type: \(String(cString: strerror(-type)))" : "not a CAN interface (hardware type \(type))")
            }
            // Down is not fatal: the system may bring it up later (networkd, a bus-off restart); until then
            // nothing is received and every send fails (counted, journalled), and a car times out.
            if csc_interface_up(fd, l.interface) != 1 { down.append(l.interface) }
            guard l.gun < out.count else { closeAll(); throw CANLinkError(interface: l.interface, why: "gun \(l.gun) is not on this board") }
            out[l.gun] = Gun(spec: l, fd: fd)
        }
        let w = csc_eventfd()
        guard w >= 0 else { closeAll(); throw CANLinkError(interface: links.first?.interface ?? "-", why: "cannot make an eventfd: \(String(cString: strerror(-w)))") }
        wake = w
        if let logPath {
            do { log = try CANDumpLog(path: logPath) } catch { closeAll(); close(w); throw CANLinkError(interface: "log", why: "\(error)") }
        } else { log = nil }
        guns = out
        self.clock = clock
        interfacesDown = down
    }

    /// Interfaces that were down when the link opened (the caller warns; the link works once they are up).
    public let interfacesDown: [String]

    deinit {
        stop()
        for g in guns { if let g { close(g.fd) } }
        close(wake)
    }

    public var links: [CANLinkSpec] { guns.compactMap { $0?.spec } }

    // MARK: The loop's side (no system call but the rare wake; no allocation)

    public func receive(gun g: Int, into m: inout VehicleMessages) {
        guard g < guns.count, let s = guns[g] else { return }
        let r = s.rx.buffer.read()
        let now = clock.now
        if r.serials[0] != s.seen[0], let x = r.messages.bhm { s.current.bhm = Stamped(x.message, at: now) }
        if r.serials[1] != s.seen[1], let x = r.messages.brm { s.current.brm = Stamped(x.message, at: now) }
        if r.serials[2] != s.seen[2], let x = r.messages.bcp { s.current.bcp = Stamped(x.message, at: now) }
        if r.serials[3] != s.seen[3], let x = r.messages.bro { s.current.bro = Stamped(x.message, at: now) }
        if r.serials[4] != s.seen[4], let x = r.messages.bcl { s.current.bcl = Stamped(x.message, at: now) }
        if r.serials[5] != s.seen[5], let x = r.messages.bcs { s.current.bcs = Stamped(x.message, at: now) }
        if r.serials[6] != s.seen[6], let x = r.messages.bsm { s.current.bsm = Stamped(x.message, at: now) }
        if r.serials[7] != s.seen[7], let x = r.messages.bst { s.current.bst = Stamped(x.message, at: now) }
        if r.serials[8] != s.seen[8], let x = r.messages.bsd { s.current.bsd = Stamped(x.message, at: now) }
        s.seen = r.serials
        m = s.current
    }

    public func transmit(gun g: Int, _ messages: ChargerMessages) {
        guard g < guns.count, let s = guns[g] else { return }
        s.tx.buffer.write(Broadcast(messages: messages))
        var changed = false
        for k in 0..<9 {
            let said = Self.says(k, messages) ?? .max
            if said != s.lastSaid[k] { s.lastSaid[k] = said; changed = true }
        }
        if changed { csc_signal(wake) }
    }

    /// What message `k` of the broadcast (CHM CRM CTS CML CRO CCS CST CSD CEM) says, in one word; nil when
    /// it is not in the broadcast. A message that appears or whose word changes is sent at once (the loop
    /// wakes the thread, the thread sends it out of its period): which messages are present, CRM's and
    /// CRO's value, CCS's charging-allowed, CST's reasons and CEM's message.
    static func says(_ k: Int, _ m: ChargerMessages) -> UInt64? {
        switch k {
        case 0: m.chm ? 1 : nil
        case 1: m.crm.map { UInt64($0.rawValue) }
        case 2: m.cts ? 1 : nil
        case 3: m.cml != nil ? 1 : nil
        case 4: m.cro.map { $0 ? 2 : 1 }
        case 5: m.ccs.map { $0.chargingAllowed ? 2 : 1 }
        case 6: m.cst.map { UInt64($0.reasons.rawValue) }
        case 7: m.csd != nil ? 1 : nil
        default: m.cem.map { UInt64($0.rawValue) }
        }
    }

    // MARK: The thread

    /// Starts the link's thread (normal scheduling: it is never on the loop's path).
    public func start() throws(CANLinkError) {
        let rc = thread.start(stackBytes: 256 * 1024) { self.run() }
        guard rc == 0 else { throw CANLinkError(interface: links.first?.interface ?? "-", why: "cannot start the link's thread (errno \(rc))") }
    }

    /// Stops the thread; the charger's messages stop with it (a car that loses them times out, GB/T 27930).
    public func stop() {
        guard thread.running else { return }
        thread.stop { csc_signal(wake) }
        log?.flush()
    }

    /// The counters of every link (a copy).
    public func counters() -> [CANLinkCounters] { guns.compactMap { $0?.counters.withLock { $0 } } }

    static let carPGNs: [UInt32: Int] = {
        var m: [UInt32: Int] = [:]
        for (i, n) in ["BHM", "BRM", "BCP", "BRO", "BCL", "BCS", "BSM", "BST", "BSD"].enumerated() { m[GBT27930.message(n)!.pgn] = i }
        return m
    }()
    static let otherCarPGNs: Set<UInt32> = Set(["BMV", "BMT", "BSP"].map { GBT27930.message($0)!.pgn })
    static let bemPGN = GBT27930.message("BEM")!.pgn
    /// The charger's messages in VehicleMessageKind-like order: CHM CRM CTS CML CRO CCS CST CSD CEM.
    static let chargerTable: [GBTMessage] = ["CHM", "CRM", "CTS", "CML", "CRO", "CCS", "CST", "CSD", "CEM"].map { GBT27930.message($0)! }

    func run() {
        var fds: [Int32] = [wake]
        var byIndex: [Gun] = []
        for g in guns { if let g { fds.append(g.fd); byIndex.append(g) } }
        var ready = [UInt8](repeating: 0, count: fds.count)
        while !thread.stopAsked {
            let now = monotonicNanos()
            var next = now + 100_000_000
            for g in byIndex { next = min(next, sendDue(g, now: now)) }
            let waitMs = Int32(max(0, min(100, (next - monotonicNanos() + 999_999) / 1_000_000)))
            let rc = fds.withUnsafeBufferPointer { f in
                ready.withUnsafeMutableBufferPointer { csc_poll(f.baseAddress, Int32(f.count), waitMs, $0.baseAddress) }
            }
            if rc < 0 { usleep(1000); continue }
            if ready[0] != 0 { csc_drain(wake) }
            for (i, g) in byIndex.enumerated() where ready[i + 1] != 0 { receiveAll(g) }
            let t = Instant(micros: monotonicNanos() / 1000)
            for g in byIndex where g.tp.busy {
                let o = g.tp.poll(at: t)
                handle(o, g, realtime: csc_realtime_us())
            }
        }
        // The last word: nothing more is sent; the car sees the charger's messages stop.
        log?.flush()
    }

    /// Sends what is due on `g` now; returns when the next message falls due (ns, CLOCK_MONOTONIC). A
    /// message is encoded only when it goes out.
    func sendDue(_ g: Gun, now: Int64) -> Int64 {
        let m = g.tx.buffer.read().messages
        var next = Int64.max
        for k in 0..<9 {
            guard let key = Self.says(k, m) else { g.sentKey[k] = .max; continue }
            let msg = Self.chargerTable[k]
            let period = (msg.period ?? .ms(250)).micros * 1000
            var due = g.lastSent[k] + period
            if key != g.sentKey[k] { due = now }          // new, or what it says changed: at once
            if due <= now {
                send(g, pgn: msg.pgn, priority: msg.priority, payload: Self.payload(k, m))
                g.sentKey[k] = key
                // Keep the phase (no drift) unless the thread was late by more than half a period.
                g.lastSent[k] = (due == now || now - due > period / 2) ? now : due
                due = g.lastSent[k] + period
            }
            next = min(next, due)
        }
        return next
    }

    /// The wire payload of the broadcast's message `k` (CHM CRM CTS CML CRO CCS CST CSD CEM), present.
    static func payload(_ k: Int, _ m: ChargerMessages) -> GBTPayload {
        switch k {
        case 0: return GBTCodec.chm()
        case 1: return GBTCodec.crm(m.crm!)
        case 2:
            var t = time(nil); var tmv = tm(); localtime_r(&t, &tmv)
            return GBTCodec.cts(year: Int(tmv.tm_year) + 1900, month: Int(tmv.tm_mon) + 1, day: Int(tmv.tm_mday),
                                hour: Int(tmv.tm_hour), minute: Int(tmv.tm_min), second: Int(tmv.tm_sec))
        case 3: return GBTCodec.encode(m.cml!)
        case 4: return GBTCodec.cro(ready: m.cro!)
        case 5: return GBTCodec.encode(m.ccs!)
        case 6: return GBTCodec.encode(m.cst!)
        case 7: return GBTCodec.encode(m.csd!)
        default: return GBTCodec.cem(m.cem!)
        }
    }

    func send(_ g: Gun, pgn: UInt32, priority: UInt8, payload: GBTPayload) {
        let id = GBT27930.identifier(pgn: pgn, priority: priority, destination: g.spec.bmsAddress, source: g.spec.chargerAddress)
        var data = InlineArray<8, UInt8>(repeating: 0xFF)
        let n = min(8, payload.count)
        for i in 0..<n { data[i] = payload.bytes[i] }
        write(g, id: id, data: data, count: n)
    }

    func write(_ g: Gun, id: UInt32, data: InlineArray<8, UInt8>, count n: Int) {
        var d = data
        let rc = withUnsafeBytes(of: &d) { csc_write(g.fd, id, $0.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt8(n)) }
        let t = csc_realtime_us()
        if rc == 0 {
            let bytes = (0..<n).map { d[$0] }
            log?.write(t, interface: g.spec.interface, id: id, extended: true, data: bytes)
            g.counters.withLock { c in
                c.txFrames += 1
                Self.remember(&c, CANFrameNote(realtimeMicros: t, sent: true, id: id, data: bytes, error: false))
            }
        } else {
            let e = -rc
            let text = "\(String(cString: strerror(e)))" + (e == ENOBUFS ? " (transmit queue full: no ACK on the bus, or bus-off)" : "")
            let first = g.counters.withLock { c in
                c.txFailures += 1
                let was = c.lastTxError
                c.lastTxError = text
                return was != text
            }
            if first { event(g, "cannot send: \(text)") }
        }
    }

    static func remember(_ c: inout CANLinkCounters, _ n: CANFrameNote) {
        if c.recent.count >= 16 { c.recent.removeFirst(c.recent.count - 15) }
        c.recent.append(n)
    }

    /// Reads what the socket holds (at most 256 frames a wake, so a flood cannot hold the sending back).
    func receiveAll(_ g: Gun) {
        var f = csc_frame()
        for _ in 0..<256 {
            let rc = csc_read(g.fd, &f)
            if rc <= 0 {
                if rc < 0 { event(g, "receive failed: \(String(cString: strerror(-rc)))") }
                return
            }
            frame(g, f)
        }
    }

    func frame(_ g: Gun, _ f: csc_frame) {
        var raw = f.data
        let bytes = withUnsafeBytes(of: &raw) { Array($0.prefix(Int(f.len))) }
        let ts = f.realtime_us != 0 ? f.realtime_us : csc_realtime_us()
        log?.write(ts, interface: g.spec.interface, id: f.id, extended: f.extended != 0, data: bytes, error: f.error != 0)
        g.counters.withLock { c in
            c.rxFrames += 1
            c.rxOverflow = f.dropped
            Self.remember(&c, CANFrameNote(realtimeMicros: ts, sent: false, id: f.id, data: bytes, error: f.error != 0))
        }
        if f.error != 0 { errorFrame(g, f, bytes); return }
        guard f.extended != 0, f.rtr == 0 else { g.counters.withLock { $0.notJ1939 += 1 }; return }
        let (_, pgn, _, _) = GBT27930.parse(identifier: f.id)
        var d = CANData()
        d.count = Int(f.len)
        for i in 0..<Int(f.len) { d.b[i] = bytes[i] }
        let now = Instant(micros: monotonicNanos() / 1000)
        switch pgn {
        case GBT27930.tpConnectionManagement:
            handle(g.tp.connectionManagement(d, at: now), g, realtime: ts)
        case GBT27930.tpDataTransfer:
            handle(g.tp.dataTransfer(d, at: now), g, realtime: ts)
        default:
            message(g, pgn: pgn, payload: GBTPayload(bytes), realtime: ts)
        }
    }

    func handle(_ o: TPOutput, _ g: Gun, realtime ts: Int64) {
        if let r = o.reply {
            let id = GBT27930.identifier(
                pgn: GBT27930.tpConnectionManagement, priority: 7, destination: g.spec.bmsAddress, source: g.spec.chargerAddress)
            write(g, id: id, data: r.b, count: r.count)
        }
        g.counters.withLock { c in
            c.tpCompleted = g.tp.completed; c.tpAborts = g.tp.aborts; c.tpTimeouts = g.tp.timeouts; c.tpDuplicates = g.tp.duplicates
        }
        if let m = o.message { message(g, pgn: m.pgn, payload: m.payload, realtime: ts) }
    }

    func message(_ g: Gun, pgn: UInt32, payload p: GBTPayload, realtime ts: Int64) {
        guard let k = Self.carPGNs[pgn] else {
            if pgn == Self.bemPGN {
                let text = hexBytes(p.array)
                let first = g.counters.withLock { c in c.bem += 1; let was = c.lastBEM; c.lastBEM = text; return was != text }
                if first { event(g, "BEM from the car: \(text) (a charger message timed out on its side)") }
            } else if Self.otherCarPGNs.contains(pgn) {
                g.counters.withLock { $0.messages += 1 }
            } else {
                g.counters.withLock { $0.unknownPGN += 1 }
            }
            return
        }
        let at = Instant(micros: ts)
        do {
            switch k {
            case 0: g.decoded.messages.bhm = Stamped(try GBTCodec.decodeBHM(p), at: at)
            case 1: g.decoded.messages.brm = Stamped(try GBTCodec.decodeBRM(p), at: at)
            case 2: g.decoded.messages.bcp = Stamped(try GBTCodec.decodeBCP(p), at: at)
            case 3: g.decoded.messages.bro = Stamped(try GBTCodec.decodeBRO(p), at: at)
            case 4: g.decoded.messages.bcl = Stamped(try GBTCodec.decodeBCL(p), at: at)
            case 5: g.decoded.messages.bcs = Stamped(try GBTCodec.decodeBCS(p), at: at)
            case 6: g.decoded.messages.bsm = Stamped(try GBTCodec.decodeBSM(p), at: at)
            case 7: g.decoded.messages.bst = Stamped(try GBTCodec.decodeBST(p), at: at)
            default: g.decoded.messages.bsd = Stamped(try GBTCodec.decodeBSD(p), at: at)
            }
        } catch {
            let text = error.description
            let first = g.counters.withLock { c in c.malformed += 1; let was = c.lastMalformed; c.lastMalformed = text; return was != text }
            if first { event(g, "malformed frame dropped: \(text)") }
            return
        }
        g.decoded.serials[k] &+= 1
        g.rx.buffer.write(g.decoded)
        let delay = csc_realtime_us() - ts
        g.counters.withLock { c in
            c.messages += 1
            c.lastArrival[k] = ts
            if delay > c.maxDelayMicros { c.maxDelayMicros = delay }
        }
    }

    func errorFrame(_ g: Gun, _ f: csc_frame, _ d: [UInt8]) {
        let cls = f.id
        var state: String? = nil
        if cls & UInt32(CSC_ERR_BUSOFF) != 0 { state = "bus-off" }
        else if cls & UInt32(CSC_ERR_RESTARTED) != 0 { state = "error-active" }
        else if cls & UInt32(CSC_ERR_CRTL) != 0, d.count > 1 {
            let s = UInt32(d[1])
            if s & UInt32(CSC_CTRL_TX_PASSIVE | CSC_CTRL_RX_PASSIVE) != 0 { state = "error-passive" }
            else if s & UInt32(CSC_CTRL_TX_WARNING | CSC_CTRL_RX_WARNING) != 0 { state = "error-warning" }
            else if s & UInt32(CSC_CTRL_ACTIVE) != 0 { state = "error-active" }
        }
        let changed = g.counters.withLock { c in
            c.errorFrames += 1
            if cls & UInt32(CSC_ERR_BUSOFF) != 0 { c.busOff += 1 }
            if cls & UInt32(CSC_ERR_RESTARTED) != 0 { c.restarts += 1 }
            guard let state, state != c.controllerState else { return nil as String? }
            c.controllerState = state
            return state
        }
        if let changed { event(g, "controller \(changed) (error frame class 0x\(String(cls, radix: 16)))", force: true) }
    }

    /// A journal line from the link, at most one a second per gun unless `force` (state changes).
    func event(_ g: Gun, _ text: String, force: Bool = false) {
        let now = monotonicNanos()
        let i = min(g.spec.gun, 15)
        guard force || now - lastEventAt[i] >= 1_000_000_000 else { return }
        lastEventAt[i] = now
        onEvent?(g.spec.gun, "\(g.spec.interface): \(text)")
    }
}

/// `--can-log FILE`: every frame sent and received, in candump's log format (`candump -L`, replayable
/// with canplayer): `(seconds.micros) interface ID#DATA`, kernel receive times for received frames.
final class CANDumpLog: @unchecked Sendable {
    let file: UnsafeMutablePointer<FILE>
    let lock = Mutex<Int64>(0)
    init(path: String) throws(CANLinkError) {
        guard let f = fopen(path, "w") else { throw CANLinkError(interface: "log", why: "cannot write \(path): \(String(cString: strerror(errno)))") }
        file = f
    }
    deinit { fclose(file) }
    func write(_ us: Int64, interface: String, id: UInt32, extended: Bool, data: [UInt8], error: Bool = false) {
        let idText = error ? hex(id | 0x2000_0000, digits: 8) : (extended ? hex(id, digits: 8) : hex(id, digits: 3))
        let frac = String(us % 1_000_000)
        let line = "(\(us / 1_000_000).\(String(repeating: "0", count: 6 - frac.count))\(frac)) \(interface) \(idText)#\(hexBytes(data))\n"
        lock.withLock { last in
            fputs(line, file)
            // Flushed at most every 200 ms: a crash loses less than that, the thread never waits on the disk per frame.
            if us - last >= 200_000 { fflush(file); last = us }
        }
    }
    func flush() { _ = lock.withLock { _ in fflush(file) } }
}

/// Upper-case hexadecimal, zero-padded to `digits` (candump's spelling).
func hex(_ v: UInt32, digits: Int) -> String {
    let t = String(v, radix: 16, uppercase: true)
    return t.count >= digits ? t : String(repeating: "0", count: digits - t.count) + t
}
func hexBytes(_ b: [UInt8]) -> String { b.map { hex(UInt32($0), digits: 2) }.joined() }
