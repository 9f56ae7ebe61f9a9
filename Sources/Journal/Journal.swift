// The fault and session log on the board's storage: append-only records with checksums, written and
// flushed to storage (fdatasync) before an append returns, so whatever was acknowledged survives a
// `kill -9` at any moment and a power cut after the acknowledgement. A power cut mid-write leaves a torn
// tail: on open it is detected (bad magic, length or CRC) and cut off, and the cut is itself recorded.
// Bounded: files rotate at `maxBytes`, the oldest beyond `files` are deleted.
//
// Record frame (little endian):  magic "CRL1" (u32) | payload length (u32) | CRC-32 of payload (u32) | payload
// The payload is one JSON object (`JournalEntry`, JournalEntry.swift). Files: DIR/journal-000001.log, -000002.log, ...
import Foundation
import Synchronization
import SystemErrors
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

public struct JournalError: Error, CustomStringConvertible {
    public var description: String
    /// The errno of the failed call, if one failed.
    public var errno: Errno?
    init(description: String) { self.description = description; errno = nil }
    init(_ what: String, path: String, errno e: Errno? = nil) {
        errno = e
        description = "journal \(path): \(what)" + (e.map { ": \($0) (\($0.cName))" } ?? "")
    }
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as zlib's crc32.
public enum CRC32 {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }
    public static func checksum<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var c: UInt32 = 0xFFFF_FFFF
        for b in bytes { c = table[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return c ^ 0xFFFF_FFFF
    }
}

/// Reading one journal file: the records that check out, and where (if anywhere) the good part ends.
public struct JournalScan {
    public var entries: [JournalEntry] = []
    /// Bytes of good records from the start of the file.
    public var goodBytes = 0
    /// Bytes after the last good record (a torn tail, or damage), 0 when the file is whole.
    public var badBytes = 0
    /// Why the scan stopped early, if it did.
    public var problem: String? = nil

    public static let magic: UInt32 = 0x314C_5243   // "CRL1"
    public static let maxPayload = 64 * 1024

    public init(bytes: [UInt8]) {
        var at = 0
        func u32(_ i: Int) -> UInt32 {
            UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
        }
        let decoder = JSONDecoder()
        while at < bytes.count {
            guard bytes.count - at >= 12 else { problem = "record header cut short"; break }
            guard u32(at) == Self.magic else { problem = "bad magic at byte \(at)"; break }
            let len = Int(u32(at + 4))
            guard len > 0, len <= Self.maxPayload else { problem = "bad length \(len) at byte \(at)"; break }
            guard bytes.count - at - 12 >= len else { problem = "record at byte \(at) cut short"; break }
            let payload = bytes[(at + 12)..<(at + 12 + len)]
            guard CRC32.checksum(payload) == u32(at + 8) else { problem = "checksum mismatch at byte \(at)"; break }
            guard let e = try? decoder.decode(JournalEntry.self, from: Data(payload)) else { problem = "undecodable record at byte \(at)"; break }
            entries.append(e)
            at += 12 + len
        }
        goodBytes = at
        badBytes = bytes.count - at
    }

    /// The frame of one entry as it is written.
    public static func frame(_ e: JournalEntry) -> [UInt8] { frame(payload: payload(e)) }

    /// One entry's JSON (sorted keys, as on storage).
    public static func payload(_ e: JournalEntry) -> [UInt8] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return Array((try? enc.encode(e)) ?? Data("{}".utf8))
    }

    static func frame(payload: [UInt8]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(payload.count + 12)
        for v in [magic, UInt32(payload.count), CRC32.checksum(payload)] {
            out.append(UInt8(v & 0xFF)); out.append(UInt8(v >> 8 & 0xFF)); out.append(UInt8(v >> 16 & 0xFF)); out.append(UInt8(v >> 24))
        }
        out += payload
        return out
    }
}

/// What a start restores from the journal, kept up to date record by record: the faults still latched
/// (every "fault" record of a stopping reaction that no "fault-cleared" record of the same boot matched,
/// one per gun and code, the newest) and the newest login records (the console's lockout). Written whole at
/// the head of every new file as a checkpoint record, so that rotation, however many records follow, never
/// drops what a start must know (issue 32: 60,000 DataTransfers rotated a latched E02 out of the journal).
public struct SafetyLedger: Sendable, Equatable {
    var open: [String: JournalEntry] = [:]
    var bySeq: [UInt64: String] = [:]          // the core's fault numbers restart at every boot
    var boot: UInt64? = nil
    /// Whether a record other than a checkpoint was seen: a checkpoint counts only before any (at the
    /// head of the oldest file kept, it stands for the files rotation deleted; later ones repeat what the
    /// files before them hold).
    var sawRecords = false
    public private(set) var logins: [JournalEntry] = []
    /// Login records kept (LoginGuard replays them).
    public static let loginLimit = 64
    static let loginKinds: Set<String> = ["login", "login-failed", "lockout"]

    public init() {}

    public mutating func note(_ e: JournalEntry) {
        if case .checkpoint(let carried) = e.event {
            if !sawRecords { for r in carried { take(r) } }
            return
        }
        sawRecords = true
        take(e)
    }

    mutating func take(_ e: JournalEntry) {
        if e.boot != boot { boot = e.boot; bySeq = [:] }
        switch e.event {
        case .fault(let f) where f.stops:
            let key = "\(f.gun ?? -1)|\(f.code)"
            open[key] = e
            if let n = f.faultSeq { bySeq[n] = key }
        case .faultCleared(let f):
            if let n = f.faultSeq, let k = bySeq[n] { open[k] = nil }
        default:
            if Self.loginKinds.contains(e.kind) {
                logins.append(e)
                if logins.count > Self.loginLimit { logins.removeFirst(logins.count - Self.loginLimit) }
            }
        }
    }

    /// The faults still latched, oldest first.
    public var outstanding: [JournalEntry] { open.values.sorted { $0.seq < $1.seq } }

    /// The records a checkpoint carries, in their order: what a start needs of everything before it.
    public var carried: [JournalEntry] { (outstanding + logins).sorted { $0.seq < $1.seq } }
}

/// The journal: a directory of rotating files (or, with no directory, memory only: the console still
/// has its recent events and faults, nothing survives a restart).
public final class Journal: Sendable {
    public let directory: String?
    public let maxBytes: Int
    public let files: Int
    /// What opening found: records read, torn tail cut (bytes), files deleted by rotation.
    public let openReport: String
    /// Faults latched in an earlier boot and never cleared (`Journal.outstandingFaults`), found on open: the
    /// controller latches them again before its first cycle, since a restart is not a reset.
    public let latchedAtStart: [JournalEntry]
    /// The console's login records (login, login-failed, lockout) found on open, the newest 64: a
    /// lockout outlives a restart (Console's LoginGuard replays them).
    public let loginRecordsAtStart: [JournalEntry]
    private let state: Mutex<State>

    struct State {
        var fd: Int32 = -1
        var fileNumber = 0
        var size = 0
        var nextSeq: UInt64 = 1
        var boot: UInt64 = 1
        var recent = RecentRing(limit: Journal.recentLimit, byteCapacity: Journal.recentBytes)
        var written: UInt64 = 0
        var writeErrors: UInt64 = 0
        var lastError: String? = nil
        var ledger = SafetyLedger()
        /// The controller time of the newest record (a checkpoint carries it).
        var lastT = 0.0
    }

    /// Records kept in memory for the console (`log`, `faults`), at most, in a ring of this many bytes
    /// allocated at open (records average ~150 bytes of JSON: 500 fit with room to spare).
    public static let recentLimit = 500
    public static let recentBytes = 256 * 1024

    /// Opens (creating if needed) the journal in `directory`: reads every file, cuts a torn tail off the
    /// newest, and continues its sequence. Throws when the directory cannot be made or written.
    public init(directory: String?, maxBytes: Int = 1 << 20, files: Int = 8) throws {
        self.directory = directory
        self.maxBytes = max(4096, maxBytes)
        self.files = max(2, files)
        var st = State()
        var report = "journal: memory only (no --journal directory)"
        if let dir = directory {
            if mkdir(dir, 0o750) != 0 && errno != EEXIST { throw JournalError("cannot create the directory", path: dir, errno: Errno(rawValue: errno)) }
            // Root writes here: a directory someone else owns or can write (or reaches through a link)
            // could point its files anywhere (issue 32 case 7).
            if let why = PathSafety.problem(dir, what: "journal", itself: true) { throw JournalError(description: why) }
            let numbers = Journal.fileNumbers(dir)
            var count = 0
            var torn = 0
            for (i, n) in numbers.enumerated() {
                let path = Journal.path(dir, n)
                let scan = JournalScan(bytes: Journal.readAll(path))
                count += scan.entries.count
                for e in scan.entries { st.ledger.note(e) }
                if let last = scan.entries.last { st.nextSeq = last.seq + 1; st.boot = last.boot + 1 }
                for e in scan.entries.suffix(Self.recentLimit) { st.recent.append(JournalScan.payload(e)) }
                if scan.badBytes > 0 && i == numbers.count - 1 {
                    // The torn tail of the file being written at the cut: drop it.
                    torn = scan.badBytes
                    let tfd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC)
                    defer { if tfd >= 0 { close(tfd) } }
                    guard tfd >= 0, ftruncate(tfd, off_t(scan.goodBytes)) == 0 else {
                        throw JournalError("cannot cut the torn tail", path: path, errno: Errno(rawValue: errno))
                    }
                }
            }
            latchedAtStart = st.ledger.outstanding
            loginRecordsAtStart = st.ledger.logins
            st.fileNumber = numbers.last ?? 1
            let path = Journal.path(dir, st.fileNumber)
            // Never through a link: a journal-NNNNNN.log that is a symlink would have root write elsewhere.
            st.fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o640)
            guard st.fd >= 0 else { throw JournalError("cannot open for appending", path: path, errno: Errno(rawValue: errno)) }
            var sb = stat()
            fstat(st.fd, &sb)
            st.size = Int(sb.st_size)
            Journal.syncDirectory(dir)
            report = "journal: \(dir): \(count) records in \(numbers.count) file(s)"
                + (torn > 0 ? ", torn tail of \(torn) bytes dropped" : "") + ", next #\(st.nextSeq), boot \(st.boot)"
            state = Mutex(st)
            openReport = report
            if torn > 0 {
                append(JournalEntry(.tornTail(text: "\(torn) bytes after record #\(st.nextSeq - 1) dropped on start (power cut mid-write)"), t: 0))
            }
            return
        }
        latchedAtStart = []
        loginRecordsAtStart = []
        state = Mutex(st)
        openReport = report
    }

    deinit { state.withLock { if $0.fd >= 0 { close($0.fd) } } }

    /// Writes `entry` (its seq, boot and wall time filled in) and flushes it to storage; returns it as
    /// recorded once it is durable. On a write error the entry stays in memory and the error is counted.
    @discardableResult
    public func append(_ entry: JournalEntry) -> JournalEntry {
        state.withLock { st in
            var e = entry
            e.seq = st.nextSeq
            e.boot = st.boot
            e.wall = Journal.wallNow()
            st.nextSeq += 1
            var payload = JournalScan.payload(e)
            if let dir = directory {
                var frame = JournalScan.frame(payload: payload)
                if st.size > 0 && st.size + frame.count > maxBytes {
                    // The new file's checkpoint comes first, and so takes the number before this record's.
                    st.nextSeq -= 1
                    rotate(&st, dir)
                    e.seq = st.nextSeq
                    st.nextSeq += 1
                    payload = JournalScan.payload(e)
                    frame = JournalScan.frame(payload: payload)
                }
                if st.fd >= 0 {
                    if Journal.writeAll(st.fd, frame) && fdatasync(st.fd) == 0 {
                        st.size += frame.count
                        st.written += 1
                    } else {
                        st.writeErrors += 1
                        st.lastError = "\(Errno(rawValue: errno)) (\(Errno(rawValue: errno).cName))"
                    }
                }
            }
            // After the rotation: a new file's checkpoint holds what came before this record, not this one.
            st.ledger.note(e)
            st.lastT = e.t
            st.recent.append(payload)
            return e
        }
    }

    /// The last `n` records (memory).
    /// (Decoded here, on the reader's thread, from the ring's copies.)
    public func recent(_ n: Int = Journal.recentLimit) -> [JournalEntry] {
        let payloads = state.withLock { $0.recent.last(n) }
        let decoder = JSONDecoder()
        return payloads.compactMap { try? decoder.decode(JournalEntry.self, from: Data($0)) }
    }

    /// The journal as it is now (the console's `version`): where it writes, how far it has got, its write
    /// errors, and what opening found. (`openReport` alone is the start: "0 records, next #1" after 56.)
    public var liveReport: String {
        state.withLock { st in
            let last = st.nextSeq > 1 ? "last record #\(st.nextSeq - 1)" : "no record yet"
            guard let dir = directory else { return "journal: memory only (no --journal directory): \(last), boot \(st.boot)" }
            var s = "journal: \(dir): \(last), boot \(st.boot), file \(st.fileNumber) at \(st.size) bytes; \(st.written) written this boot"
            if st.writeErrors > 0 { s += ", \(st.writeErrors) write error(s), the last \(st.lastError ?? "unknown")" }
            return s + "\n  at start: " + openReport.replacingOccurrences(of: "journal: \(dir): ", with: "")
        }
    }

    public var counters: (written: UInt64, errors: UInt64, lastError: String?) {
        state.withLock { ($0.written, $0.writeErrors, $0.lastError) }
    }

    /// Every record on storage, oldest first (for export and statistics), and the problems met.
    /// The faults still latched at the end of `entries` (oldest first): every "fault" record of a stopping
    /// reaction (refuse, error or emergency shutdown: the ones that block a gun) that no "fault-cleared"
    /// record of the same boot matched, across boots, one per gun and code (the newest record). Derate and
    /// reconnect records are left out: they stop nothing.
    /// A checkpoint at the head of the oldest file stands for the files rotation deleted before it.
    public static func outstandingFaults(_ entries: [JournalEntry]) -> [JournalEntry] {
        var ledger = SafetyLedger()
        for e in entries { ledger.note(e) }
        return ledger.outstanding
    }

    public static func readAll(directory dir: String) -> (entries: [JournalEntry], problems: [String]) {
        var entries: [JournalEntry] = []
        var problems: [String] = []
        for n in fileNumbers(dir) {
            let p = path(dir, n)
            let scan = JournalScan(bytes: readAll(p))
            entries += scan.entries
            if let why = scan.problem { problems.append("\(p): \(why), \(scan.badBytes) bytes skipped") }
        }
        return (entries, problems)
    }

    /// A new file, beginning with the checkpoint of the safety state (several records when it is over a
    /// record's size), written and flushed before the oldest file beyond `files` is deleted: at no moment
    /// does the storage hold less than a start needs.
    private func rotate(_ st: inout State, _ dir: String) {
        if st.fd >= 0 { close(st.fd) }
        st.fileNumber += 1
        // A new file is new: one already there under its name (planted, or a link) is not written into.
        st.fd = open(Journal.path(dir, st.fileNumber), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o640)
        st.size = 0
        var carried = st.ledger.carried[...]
        var checkpointed = st.fd >= 0
        repeat {
            // As many records as fit a record's payload (a fault record is ~250 bytes of JSON).
            var part: [JournalEntry] = []
            var bytes = 200
            while let r = carried.first {
                let n = JournalScan.payload(r).count + 16
                if !part.isEmpty && bytes + n > JournalScan.maxPayload { break }
                part.append(r); bytes += n; carried = carried.dropFirst()
            }
            var e = JournalEntry(.checkpoint(records: part), t: st.lastT)
            e.seq = st.nextSeq; e.boot = st.boot; e.wall = Journal.wallNow()
            st.nextSeq += 1
            let frame = JournalScan.frame(e)
            if st.fd >= 0 && Journal.writeAll(st.fd, frame) {
                st.size += frame.count
                st.written += 1
            } else {
                checkpointed = false
                st.writeErrors += 1
                st.lastError = "checkpoint: \(Errno(rawValue: errno)) (\(Errno(rawValue: errno).cName))"
            }
        } while !carried.isEmpty
        if st.fd >= 0 && fdatasync(st.fd) != 0 { checkpointed = false }
        Journal.syncDirectory(dir)
        // Without its checkpoint on storage, the new file does not stand for the old ones: keep them.
        guard checkpointed else { return }
        let numbers = Journal.fileNumbers(dir)
        for n in numbers.dropLast(files) { unlink(Journal.path(dir, n)) }
        Journal.syncDirectory(dir)
    }

    static func path(_ dir: String, _ n: Int) -> String { dir + "/journal-" + String(format: "%06d", n) + ".log" }

    static func fileNumbers(_ dir: String) -> [Int] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.compactMap { name -> Int? in
            guard name.hasPrefix("journal-"), name.hasSuffix(".log") else { return nil }
            return Int(name.dropFirst(8).dropLast(4))
        }.sorted()
    }

    static func readAll(_ path: String) -> [UInt8] {
        // Not through a link, and a regular file only (a FIFO planted under the name would block the start).
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return [] }
        var out: [UInt8] = []
        out.reserveCapacity(Int(st.st_size))
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            out += chunk[0..<n]
        }
        return out
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 { if errno == EINTR { continue }; return false }
            done += n
        }
        return true
    }

    static func syncDirectory(_ dir: String) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }

    /// Seconds since 1970 of a record's wall time ("2026-11-28T04:17:00.123Z"), nil if it does not read.
    public static func wallSeconds(_ s: String) -> Double? {
        let b = Array(s.utf8)
        guard b.count >= 20, b[4] == 0x2D, b[10] == 0x54 else { return nil }
        func n(_ from: Int, _ len: Int) -> Int? {
            var v = 0
            for i in from..<(from + len) { guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }; v = v * 10 + Int(b[i] - 0x30) }
            return v
        }
        guard let y = n(0, 4), let mo = n(5, 2), let d = n(8, 2), let h = n(11, 2), let mi = n(14, 2), let se = n(17, 2) else { return nil }
        var tmv = tm()
        tmv.tm_year = Int32(y - 1900); tmv.tm_mon = Int32(mo - 1); tmv.tm_mday = Int32(d)
        tmv.tm_hour = Int32(h); tmv.tm_min = Int32(mi); tmv.tm_sec = Int32(se)
        let ms = b.count >= 23 && b[19] == 0x2E ? Double(n(20, 3) ?? 0) / 1000 : 0
        return Double(timegm(&tmv)) + ms
    }

    static func wallNow() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return wallText(Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9)
    }

    /// A wall time as records carry it ("2026-11-28T04:17:00.123Z").
    public static func wallText(_ seconds: Double) -> String {
        let ts = timespec(tv_sec: Int(seconds.rounded(.down)), tv_nsec: Int((seconds - seconds.rounded(.down)) * 1e9))
        var t = ts.tv_sec
        var tmv = tm()
        gmtime_r(&t, &tmv)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tmv.tm_year + 1900, tmv.tm_mon + 1, tmv.tm_mday,
                      tmv.tm_hour, tmv.tm_min, tmv.tm_sec, Int(ts.tv_nsec / 1_000_000))
    }
}
