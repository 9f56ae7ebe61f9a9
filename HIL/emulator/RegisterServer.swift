// The emulator's Modbus slaves: one register bank per device of the board file (its unit id and its
// register map), served over Modbus TCP (MBAP, one thread per client) and over Modbus RTU on a serial
// line or pseudo-terminal (CRC-16, frames told apart by their length and by silence). Written here rather
// than with libmodbus's server calls so that the emulator is an independent implementation of the
// protocol the controller's libmodbus speaks, serves many unit ids on one RTU line, and can misbehave on
// purpose (a silent device, exception replies, garbage bytes, slow replies).
import BoardFile
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How a device answers (set by --comm-fault or a `*-silent` injection).
enum CommBehaviour: Equatable, Sendable {
    case normal
    case silent                 // never answers
    case exception              // answers every request with exception 4 (server device failure)
    case garbage                // answers with bytes that are not a Modbus reply
    case slow(milliseconds: Int)  // answers correctly, this late

    init?(_ text: String) {
        switch text {
        case "normal": self = .normal
        case "silent": self = .silent
        case "exception": self = .exception
        case "garbage": self = .garbage
        default:
            var digits = text.dropFirst(5)
            if digits.hasSuffix("ms") { digits = digits.dropLast(2) }
            guard text.hasPrefix("slow="), let ms = Int(digits), ms > 0, ms <= 60_000 else { return nil }
            self = .slow(milliseconds: ms)
        }
    }
}

/// One device's registers. Readable: every register from the first to the last a table's fields use
/// (a read through a gap gets 0). Writable: the command fields' holding registers only.
final class RegisterBank: @unchecked Sendable {
    let spec: ModbusDeviceSpec
    let map: RegisterMap
    struct Tables {
        var holding: [Int: UInt16] = [:], input: [Int: UInt16] = [:]
        var writes: UInt64 = 0, requests: UInt64 = 0, refused: UInt64 = 0
        var behaviour = CommBehaviour.normal
        /// Why requests were refused, for the emulator's log (taken by the plant loop).
        var refusals: [String] = []
    }
    let tables = Mutex(Tables())
    let holdingRange: ClosedRange<Int>?
    let inputRange: ClosedRange<Int>?
    let writable: Set<Int>

    init(spec: ModbusDeviceSpec, map: RegisterMap) {
        self.spec = spec; self.map = map
        func span(_ t: RegisterTable) -> ClosedRange<Int>? {
            var ends = map.fields.values.filter { $0.table == t }.map { ($0.address, $0.address + $0.words - 1) }
            if let c = map.channels {
                if c.table == t { ends.append((c.address, c.address + c.count - 1)) }
                if c.statusTable == t, let a = c.statusAddress { ends.append((a, a + c.count - 1)) }
            }
            guard let lo = ends.map(\.0).min(), let hi = ends.map(\.1).max() else { return nil }
            return lo...hi
        }
        holdingRange = span(.holding); inputRange = span(.input)
        var w = Set<Int>()
        for (name, f) in map.fields where name.isCommand { for k in 0..<f.words { w.insert(f.address + k) } }
        writable = w
    }

    var behaviour: CommBehaviour {
        get { tables.withLock { $0.behaviour } }
        set { tables.withLock { $0.behaviour = newValue } }
    }

    /// The value of a field as the device holds it (commands as last written by the controller).
    func value(_ name: RegisterFieldName) -> Double? {
        guard let f = map.fields[name] else { return nil }
        return tables.withLock { t in
            let table = f.table == .holding ? t.holding : t.input
            return f.decode(table[f.address] ?? 0, table[f.address + 1] ?? 0)
        }
    }
    /// The number of accepted write requests so far (the modules' keep-alive watches it).
    var writeCount: UInt64 { tables.withLock { $0.writes } }

    /// Sets measurement fields (plant → registers) in one step, so a reader never sees half of them.
    /// A value the register cannot hold is clamped to the type's end (an IMD's "infinite" resistance).
    func publish(_ values: [(RegisterFieldName, Double)]) {
        tables.withLock { t in
            for (name, v) in values {
                guard let f = map.fields[name] else { continue }
                let (a, b) = f.encode(v) ?? f.encode(clamp(v, f)) ?? (0, 0)
                if f.table == .holding { t.holding[f.address] = a; if f.words == 2 { t.holding[f.address + 1] = b } }
                else { t.input[f.address] = a; if f.words == 2 { t.input[f.address + 1] = b } }
            }
        }
    }
    /// An analog input module's channels (plant → registers): each value as the module's raw step
    /// (clamped to the register's range, as a real module's converter saturates), and its status.
    func publishChannels(raw: [Double], status: [UInt16]) {
        guard let c = map.channels else { return }
        tables.withLock { t in
            for k in 0..<min(c.count, raw.count) {
                let lo = c.type == .i16 ? -32768.0 : 0, hi = c.type == .i16 ? 32767.0 : 65535
                let r = raw[k].isNaN ? 0 : min(max(raw[k].rounded(), lo), hi)
                let word = c.type == .i16 ? UInt16(bitPattern: Int16(r)) : UInt16(r)
                if c.table == .holding { t.holding[c.address + k] = word } else { t.input[c.address + k] = word }
                if let st = c.statusTable, let a = c.statusAddress {
                    let s = k < status.count ? status[k] : 0
                    if st == .holding { t.holding[a + k] = s } else { t.input[a + k] = s }
                }
            }
        }
    }

    private func clamp(_ v: Double, _ f: RegisterField) -> Double {
        let maxRaw: Double, minRaw: Double
        switch f.type {
        case .u16: (minRaw, maxRaw) = (0, 65535)
        case .i16: (minRaw, maxRaw) = (-32768, 32767)
        case .u32: (minRaw, maxRaw) = (0, 4_294_967_295)
        case .i32: (minRaw, maxRaw) = (-2_147_483_648, 2_147_483_647)
        case .f32: (minRaw, maxRaw) = (-3.4e38, 3.4e38)
        }
        let raw = v.isNaN ? 0 : (v - f.offset) / f.scale
        return min(max(raw, minRaw), maxRaw) * f.scale + f.offset
    }

    func takeRefusals() -> [String] { tables.withLock { t in defer { t.refusals.removeAll() }; return t.refusals } }

    /// The reply PDU to a request PDU (function code first), or an exception PDU.
    func answer(_ pdu: [UInt8]) -> [UInt8] {
        let reply = answer1(pdu)
        if reply.count == 2 && reply[0] & 0x80 != 0 {
            tables.withLock { t in
                t.refused += 1
                if t.refusals.count < 16 { t.refusals.append("refused \(pdu.map { String($0, radix: 16) }.joined(separator: " ")) with exception \(reply[1])") }
            }
        }
        return reply
    }

    private func answer1(_ pdu: [UInt8]) -> [UInt8] {
        guard let fc = pdu.first else { return [0x80, 1] }
        func ex(_ code: UInt8) -> [UInt8] { [fc | 0x80, code] }
        func word(_ i: Int) -> Int { Int(pdu[i]) << 8 | Int(pdu[i + 1]) }
        switch fc {
        case 3, 4:
            guard pdu.count == 5 else { return ex(3) }
            let start = word(1), count = word(3)
            guard count >= 1 && count <= 125 else { return ex(3) }
            guard let range = fc == 3 ? holdingRange : inputRange, start >= range.lowerBound, start + count - 1 <= range.upperBound else {
                return ex(2)
            }
            return tables.withLock { t in
                t.requests += 1
                var out: [UInt8] = [fc, UInt8(count * 2)]
                for a in start..<(start + count) {
                    let v = (fc == 3 ? t.holding[a] : t.input[a]) ?? 0
                    out.append(UInt8(v >> 8)); out.append(UInt8(v & 0xFF))
                }
                return out
            }
        case 6, 16:
            var start: Int, values: [UInt16] = []
            if fc == 6 {
                guard pdu.count == 5 else { return ex(3) }
                start = word(1); values = [UInt16(word(3))]
            } else {
                guard pdu.count >= 6 else { return ex(3) }
                start = word(1)
                let count = word(3), bytes = Int(pdu[5])
                guard count >= 1 && count <= 123, bytes == count * 2, pdu.count == 6 + bytes else { return ex(3) }
                for k in 0..<count { values.append(UInt16(word(6 + 2 * k))) }
            }
            guard (start..<(start + values.count)).allSatisfy({ writable.contains($0) }) else { return ex(2) }
            // The device's own range check: a setpoint it cannot produce is refused whole (exception 3).
            var staged = tables.withLock { $0.holding }
            for (k, v) in values.enumerated() { staged[start + k] = v }
            for (name, f) in map.fields where name.isCommand {
                let v = f.decode(staged[f.address] ?? 0, staged[f.address + 1] ?? 0)
                if !v.isFinite || v < 0 || (name != .enable && name != .selftest && v > limit(name)) { return ex(3) }
            }
            tables.withLock { t in
                for (k, v) in values.enumerated() { t.holding[start + k] = v }
                t.writes += 1; t.requests += 1
            }
            return fc == 6 ? pdu : [16] + pdu[1..<5]
        default:
            return ex(1)
        }
    }

    /// The largest setpoint the device accepts (set from the board's module envelope).
    var limits: [RegisterFieldName: Double] = [:]
    private func limit(_ n: RegisterFieldName) -> Double { limits[n] ?? .infinity }
}

/// The Modbus CRC-16 (polynomial 0xA001, initial 0xFFFF), sent low byte first.
func crc16(_ bytes: ArraySlice<UInt8>) -> UInt16 {
    var crc: UInt16 = 0xFFFF
    for b in bytes {
        crc ^= UInt16(b)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xA001 : crc >> 1 }
    }
    return crc
}

/// The devices of one bus, by unit id, and what the server does with a request.
final class BusServer: @unchecked Sendable {
    let name: String
    let banks: [Int: RegisterBank]
    let running = Atomic<Bool>(true)
    private var seed: UInt64 = 0x9E3779B97F4A7C15

    init(name: String, banks: [RegisterBank]) {
        self.name = name
        var b: [Int: RegisterBank] = [:]
        for bank in banks { b[bank.spec.unit] = bank }
        self.banks = b
    }

    enum Reply { case pdu([UInt8]), none, garbage([UInt8]) }

    /// What unit `unit` answers to `pdu`, after the device's delay when it is slow.
    func reply(unit: Int, pdu: [UInt8]) -> Reply? {
        guard let bank = banks[unit] else { return nil }
        switch bank.behaviour {
        case .silent: return Reply.none
        case .exception: return .pdu([(pdu.first ?? 0) | 0x80, 4])
        case .garbage:
            var g: [UInt8] = []
            for _ in 0..<(5 + Int(random() % 12)) { g.append(UInt8(truncatingIfNeeded: random())) }
            return .garbage(g)
        case .slow(let ms):
            var ts = timespec(tv_sec: ms / 1000, tv_nsec: (ms % 1000) * 1_000_000)
            nanosleep(&ts, nil)
            return .pdu(bank.answer(pdu))
        case .normal: return .pdu(bank.answer(pdu))
        }
    }
    private func random() -> UInt64 {
        seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17
        return seed
    }

    // MARK: Modbus TCP

    /// Listens on host:port; one thread per client. Returns the listening socket, or an error text.
    func serveTCP(host: String, port: Int) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return "socket: \(String(cString: strerror(errno)))" }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host, &addr.sin_addr) == 1 else { close(fd); return "'\(host)' is not an IPv4 address" }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { let e = String(cString: strerror(errno)); close(fd); return "bind \(host):\(port): \(e)" }
        guard listen(fd, 16) == 0 else { close(fd); return "listen: \(String(cString: strerror(errno)))" }
        spawn { [self] in
            while running.load(ordering: .relaxed) {
                let c = accept(fd, nil, nil)
                if c < 0 { if errno == EINTR { continue }; return }
                var one: Int32 = 1
                setsockopt(c, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                spawn { [self] in serveTCPClient(c) }
            }
        }
        return nil
    }

    private func serveTCPClient(_ fd: Int32) {
        defer { close(fd) }
        while running.load(ordering: .relaxed) {
            guard let header = readExactly(fd, 7) else { return }
            let length = Int(header[4]) << 8 | Int(header[5])
            // A frame that cannot be Modbus ends the connection, as real gateways do.
            guard header[2] == 0 && header[3] == 0, length >= 2, length <= 254, let body = readExactly(fd, length - 1) else { return }
            let unit = Int(header[6])
            var out: [UInt8]
            switch reply(unit: unit, pdu: body) {
            case nil: out = header[0..<2] + [0, 0, 0, 3, header[6], (body.first ?? 0) | 0x80, 0x0B]   // gateway target failed to respond
            case .some(.none): continue
            case .some(.garbage(let g)): out = header[0..<2] + [0, 0, 0, UInt8(g.count + 1), header[6]] + g
            case .some(.pdu(let p)): out = header[0..<2] + [0, 0, 0, UInt8(p.count + 1), header[6]] + p
            }
            guard writeAll(fd, out) else { return }
        }
    }

    // MARK: Modbus RTU

    /// Serves the serial line or pseudo-terminal at `path` (raw, 8 data bits). Returns an error text.
    func serveRTU(path: String, baud: Int) -> String? {
        let fd = open(path, O_RDWR | O_NOCTTY)
        guard fd >= 0 else { return "\(path): \(String(cString: strerror(errno)))" }
        var t = termios()
        if tcgetattr(fd, &t) == 0 {
            cfmakeraw(&t)
            t.c_cflag |= tcflag_t(CLOCAL | CREAD)
            tcsetattr(fd, TCSANOW, &t)
        }
        // Silence longer than 3.5 characters (at least 2 ms, as the spec allows above 19200 baud) ends a frame.
        // A pseudo-terminal has no line timing: its bytes arrive when the process relaying them (socat) is
        // scheduled, so a frame's rest may come later than 3.5 characters on a loaded machine (a
        // clean-clone run lost pymodbus's first write that way). On a pty a partial frame is kept for
        // 100 ms; a frame that never completes is still dropped, and noise still resynchronises by CRC.
        let onPty = realpath(path, nil).map { resolved in defer { free(resolved) }; return String(cString: resolved).hasPrefix("/dev/pts/") } ?? false
        let gapMs = onPty ? 100 : max(2, Int((3.5 * 11 / Double(baud) * 1000).rounded(.up)))
        spawn { [self] in
            var buffer: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 512)
            while running.load(ordering: .relaxed) {
                var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let ready = poll(&p, 1, Int32(buffer.isEmpty ? 200 : gapMs))
                if ready == 0 { buffer.removeAll(); continue }     // silence: a partial frame is dropped
                if ready < 0 { if errno == EINTR { continue }; return }
                let n = read(fd, &chunk, chunk.count)
                if n <= 0 {
                    if n < 0 && (errno == EAGAIN || errno == EINTR) { continue }
                    // The other end of a pty closed: wait for it to come back.
                    usleep(20_000); continue
                }
                buffer += chunk[0..<n]
                while let frame = takeRTUFrame(&buffer) {
                    guard let r = reply(unit: Int(frame[0]), pdu: Array(frame[1..<(frame.count - 2)])) else { continue }  // not ours: silence
                    switch r {
                    case .none: continue
                    case .garbage(let g): _ = writeAll(fd, g)
                    case .pdu(let p):
                        var out = [frame[0]] + p
                        let crc = crc16(out[...])
                        out.append(UInt8(crc & 0xFF)); out.append(UInt8(crc >> 8))
                        _ = writeAll(fd, out)
                    }
                }
            }
        }
        return nil
    }

    /// A complete request at the start of `buffer` (address, PDU, CRC), removed from it; bytes that
    /// cannot start a valid frame are dropped one at a time (resynchronisation after noise).
    private func takeRTUFrame(_ buffer: inout [UInt8]) -> [UInt8]? {
        while buffer.count >= 4 {
            let fc = buffer[1]
            let length: Int
            switch fc {
            case 3, 4, 6: length = 8
            case 16:
                guard buffer.count >= 7 else { return nil }
                length = 9 + Int(buffer[6])
            default: length = 4    // unknown function: address, function, CRC (exception 1 if the CRC matches)
            }
            guard buffer.count >= length else { return nil }
            let frame = Array(buffer[0..<length])
            let crc = crc16(frame[0..<(length - 2)])
            if UInt16(frame[length - 2]) | UInt16(frame[length - 1]) << 8 == crc {
                buffer.removeFirst(length)
                return frame
            }
            buffer.removeFirst()
        }
        return nil
    }
}

func readExactly(_ fd: Int32, _ n: Int) -> [UInt8]? {
    var out = [UInt8](repeating: 0, count: n)
    var got = 0
    while got < n {
        let r = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, n - got) }
        if r < 0 && errno == EINTR { continue }
        if r <= 0 { return nil }
        got += r
    }
    return out
}

func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
    var sent = 0
    while sent < bytes.count {
        let r = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + sent, bytes.count - sent) }
        if r < 0 && errno == EINTR { continue }
        if r <= 0 { return false }
        sent += r
    }
    return true
}

/// Runs `body` on a detached thread.
func spawn(_ body: @escaping @Sendable () -> Void) {
    final class Box { let body: @Sendable () -> Void; init(_ b: @escaping @Sendable () -> Void) { body = b } }
    let ctx = Unmanaged.passRetained(Box(body)).toOpaque()
    var t = pthread_t()
    pthread_create(&t, nil, { p in
        let box = Unmanaged<Box>.fromOpaque(p!).takeRetainedValue()
        box.body()
        return nil
    }, ctx)
    pthread_detach(t)
}
