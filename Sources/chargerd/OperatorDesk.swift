// chargerd's operator side: the journal (loop events, acting commands) and the technician's console,
// set up from the board file and the command line. Everything here runs off the control loop.
import ArgumentParser
import BoardFile
import ChargerCore
import LoopContract
import Console
import Foundation
import Grid
import GridInterfaces
import Journal
import RealTime
#if canImport(Glibc)
import Glibc
#endif

final class OperatorDesk {
    let journal: Journal

    /// The faults the journal says stood when the controller last stopped, as the core's codes; printed,
    /// so the technician sees why a gun starts faulted.
    var latchedAtStart: [StandingFault] {
        let out = Recorder.standing(journal.latchedAtStart)
        if !out.isEmpty {
            print("journal: \(out.count) fault(s) latched before this start, latched again until a reset: "
                  + out.map { "\($0.code.name)\($0.gun >= 0 ? " gun\($0.gun)" : "")" }.joined(separator: ", "))
            fflush(nil)
        }
        return out
    }
    let acks: Bool
    let board: Board
    var console: ConsoleServer? = nil
    /// V2G, set by the grid desk when there is a site file: the console's `v2g` command, and the judge of
    /// a session's end against its driver's plan (the journal's departure figure).
    var v2gPlan: ((Int, (minSoc: Double, departureMinute: Int, targetSoc: Double)?) -> String)? = nil
    var departureMet: ((Int, Double?, Instant) -> Bool?)? = nil
    /// Plug and charge: the console shows the whole VIN (the site's `show_vin`).
    var showVIN = false
    let consoleChoice: String?
    let credentials: Credentials?
    let idle: Double
    let lockout: Double
    /// Signs each session-end record (`--signing-key`, else the charge point's key from the OCPP
    /// certificate store, set by the grid desk); nil: records unsigned.
    var signer: RecordSigner? = nil {
        didSet { if let k = signer { print("journal: session records signed with key \(k.keyId) (\(k.path))"); fflush(nil) } }
    }
    /// The meter's register at each running session's start, for the end record.
    var sessionStartKWh: [Int: Double] = [:]
    /// Who authorized the session on a gun now (set by the grid desk: the OCPP client's word), and what
    /// it was at each running session's start, for the end record (which is signed).
    var identity: ((Int) -> SessionIdentity?)? = nil
    var sessionIdentity: [Int: SessionIdentity] = [:]

    init(run: Run, board: Board) throws {
        self.board = board
        acks = run.journalAcks
        let dir = run.journal ?? board.storage?.journal
        let maxKB = run.journalMaxKb ?? board.storage?.journalMaxKB ?? 1024
        let files = run.journalFiles ?? board.storage?.journalFiles ?? 8
        guard (4...1_048_576).contains(maxKB), (2...1000).contains(files) else { fail("--journal-max-kb must be 4...1048576 and --journal-files 2...1000") }
        do { journal = try Journal(directory: dir, maxBytes: maxKB * 1024, files: files) } catch { fail("\(error)") }
        print(journal.openReport)
        consoleChoice = run.console
        if let c = run.credentials {
            do { credentials = try Credentials(path: c) } catch { fail("\(error)") }
            if let w = credentials?.warning { writeStderr("chargerd: warning: \(w)\n") }
        } else { credentials = nil }
        guard run.consoleIdle > 0, run.consoleLockout > 0 else { fail("--console-idle and --console-lockout must be positive") }
        idle = run.consoleIdle
        lockout = run.consoleLockout
        if let k = run.signingKey {
            do { signer = try RecordSigner(keyFile: k) } catch { fail("--signing-key: \(error)") }
            if let k = signer { print("journal: session records signed with key \(k.keyId) (\(k.path))") }
            var st = stat()
            if stat(k, &st) == 0 && st.st_mode & 0o077 != 0 {
                writeStderr("chargerd: warning: --signing-key \(k) can be read by others than its owner: chmod 600 it (a key others read signs for them too)\n")
            }
        }
        ack(journal.append(JournalEntry(.boot(text: "\(firmwareVersion), board \(board.name) (\(board.path), checksum \(board.checksum)), \(board.spec.gunCount) gun\(board.spec.gunCount == 1 ? "" : "s")"), t: 0)))
    }

    /// Starts the console (if one was asked for) on the loop's view and command queue.
    func attach(view: TripleBuffer<StationView>, commands: SPSCQueue<OperatorCommand>, rt: @escaping () -> String, comm: @escaping () -> String,
                moduleComm: ((Int) -> String)? = nil, grid: (() -> String)? = nil, can: (() -> String)? = nil) {
        guard let choice = consoleChoice else { return }
        let port: ConsolePort
        do {
            switch choice {
            case "pty": port = try ConsolePort.pseudoTerminal()
            case "stdin": port = ConsolePort.standardIO()
            case "board":
                guard let c = board.console else { fail("--console board: board '\(board.name)' has no [console] section (use pty, stdin or a device path)") }
                port = try ConsolePort.uart(path: c.device, baud: c.baud, parity: SerialParity(rawValue: c.parity) ?? .none, stopBits: c.stopBits, rtsCts: c.rtsCts)
            default:
                let c = board.console
                port = try ConsolePort.uart(path: choice, baud: c?.baud ?? 115_200, parity: SerialParity(rawValue: c?.parity ?? "N") ?? .none, stopBits: c?.stopBits ?? 1, rtsCts: c?.rtsCts ?? false)
            }
        } catch { fail("\(error)") }
        var ctx = ConsoleContext(view: { view.read() }, send: { commands.push($0) }, journal: journal, credentials: credentials,
                                 version: firmwareVersion, board: "\(board.name), checksum \(board.checksum)\nfile \(board.path)",
                                 rt: rt, comm: comm, clock: { monotonicSeconds() }, sleep: { usleep(useconds_t($0 * 1e6)) })
        if let moduleComm { ctx.moduleComm = moduleComm }
        ctx.grid = grid
        ctx.v2gPlan = v2gPlan
        ctx.showVIN = showVIN
        ctx.can = can
        ctx.idleLogout = idle
        ctx.lockoutTime = lockout
        ctx.loginHistory = journal.loginRecordsAtStart
        let server = ConsoleServer(port: port, session: ConsoleSession(ctx: ctx))
        print("console: \(port.name)\(port.isPseudoTerminal ? " (open it with: picocom -b 115200 \(port.name))" : "")")
        fflush(nil)
        server.start()
        console = server
    }

    /// A loop event into the journal (faults, sessions, overruns).
    func record(_ e: LoopEvent) {
        guard var entry = Recorder.entry(for: e) else { return }
        if case .sessionStart(var note) = entry.event {
            sessionStartKWh[note.gun] = note.energyKWh
            if let who = identity?(note.gun) {
                sessionIdentity[note.gun] = who
                note.method = who.method.rawValue; note.identity = who.identity
                entry.event = .sessionStart(note)
            }
        }
        if case .session(let s) = e, !s.started, case .sessionEnd(var note) = entry.event {
            if let judge = departureMet { note.departureMet = judge(Int(s.gun), s.soc.isNaN ? nil : s.soc, s.at) }
            note.startKWh = sessionStartKWh.removeValue(forKey: note.gun)
            if let who = sessionIdentity.removeValue(forKey: note.gun) { note.method = who.method.rawValue; note.identity = who.identity }
            entry.event = .sessionEnd(note)
        }
        let recorded = journal.append(entry)
        ack(recorded)
        // The record as stored, signed, and the signature journaled right after it.
        if case .sessionEnd = recorded.event, let signer {
            if let sig = signer.sign(JournalScan.payload(recorded)) {
                ack(journal.append(JournalEntry(.signature(of: recorded.seq, key: signer.keyId, signature: sig), t: recorded.t)))
            } else {
                writeStderr("chargerd: journal: record #\(recorded.seq) could not be signed with key \(signer.keyId) (OpenSSL refused): it stays unsigned\n")
            }
        }
    }

    func ack(_ e: JournalEntry) {
        guard acks else { return }
        print("journal: #\(e.seq) \(e.kind) acknowledged")
        fflush(nil)
    }

    func shutdown(at t: Instant) {
        console?.stop()
        ack(journal.append(JournalEntry(.shutdown(text: resetRequested.map { "\($0): restart" } ?? (stopRequested ? "signal" : "run ended")), t: t.seconds)))
    }
}

func rtText(_ s: LoopStatistics) -> String {
    var out = "loop: " + s.line
    let w = s.wakeLatency
    out += "\nwake-up latency histogram (µs): "
    var parts: [String] = []
    for edge in [10, 20, 50, 100, 200, 500, 1000] {
        parts.append("≥\(edge): \(w.countAtOrAbove(micros: edge))")
    }
    out += parts.joined(separator: "  ")
    out += "\noverrun faults \(s.overrunFaults), allocations in the cycle \(s.allocations)"
    return out
}

struct JournalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal",
        abstract: "Read the fault and session journal: export it (text or JSON lines), print the operator figures or the service report, or verify the signed session records.")

    @Argument(help: "export | stats | report (the dates covered, availability with out-of-service time apart, faults by code, the sessions) | verify (the session records against their signatures, --key)")
    var action: String

    @Option(name: .long, help: "verify: the public key (PEM), the charge point's certificate or its key, to check the signatures with.")
    var key: String?

    @Option(name: .long, help: "verify: also write record SEQ's signed bytes and its signature (DER) into --out, for openssl dgst -sha256 -verify.")
    var extract: UInt64?

    @Option(name: .long, help: "verify --extract: the directory the two files go to.")
    var out: String?

    @Option(name: .long, help: "Journal directory.")
    var dir: String

    @Flag(name: .long, help: "export: one JSON object per line; stats, report: one JSON object.")
    var json = false

    @Option(name: .long, help: "stats, report: number of guns of the station (default: as the journal's boot records state it).")
    var guns: Int?

    func run() throws {
        guard FileManager.default.fileExists(atPath: dir) else { fail("journal \(dir): no such directory") }
        let (entries, problems) = Journal.readAll(directory: dir)
        for p in problems { writeStderr("chargerd: journal: \(p)\n") }
        switch action {
        case "export":
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            for e in entries {
                print(json ? String(decoding: try enc.encode(e), as: UTF8.self) : e.line)
            }
        case "stats", "report":
            let guns: Int
            switch OperatorStats.gunsFor(entries: entries, asked: self.guns, capacity: Capacity.guns) {
            case .success(let r):
                guns = r.count
                if let note = r.note { writeStderr("chargerd: journal \(action): \(note)\n") }
            case .failure(let why): fail("journal \(action): \(why.message)")
            }
            if action == "report" {
                let r = ServiceReport(entries: entries, guns: guns)
                print(json ? r.json : r.text())
            } else {
                let s = OperatorStats(entries: entries, guns: guns)
                print(json ? s.json : s.text, terminator: json ? "\n" : "")
            }
        case "verify":
            guard let key else { fail("journal verify: --key PUBLIC.pem (or the charge point's certificate) is needed") }
            let verifier: RecordVerifier
            do { verifier = try RecordVerifier(file: key) } catch { fail("journal verify: \(error)") }
            let r = SignedRecords(entries: entries, keyId: verifier.keyId) { verifier.verify($0, signature: $1) }
            print("journal verify: key \(verifier.keyId) (\(key)), \(entries.count) record(s) in \(dir)")
            print(r.text)
            if let seq = extract { try extractSigned(seq, entries) }
            // Exit 1 when a record is proven changed or removed, or a signed one cannot be checked with this key.
            if !r.problems.isEmpty || !r.otherKeys.isEmpty { throw ExitCode(1) }
        default:
            fail("journal: unknown action '\(action)': expected export, stats, report or verify")
        }
    }
}

extension JournalCommand {
    /// Record `seq` as it was signed and its signature, DER, as two files: `openssl dgst -sha256 -verify
    /// KEY.pem -signature record-SEQ.sig record-SEQ.json` checks them without chargerd.
    func extractSigned(_ seq: UInt64, _ entries: [JournalEntry]) throws {
        guard let out else { fail("journal verify --extract: --out DIRECTORY is needed") }
        guard let record = entries.first(where: { $0.seq == seq }) else { fail("journal verify --extract: no record #\(seq)") }
        let sig = entries.lazy.compactMap { e -> String? in
            if case .signature(let of, _, let s) = e.event, of == seq { return s } else { return nil }
        }.first
        guard let sig, let der = Data(base64Encoded: sig) else { fail("journal verify --extract: record #\(seq) has no signature") }
        try? FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let json = "\(out)/record-\(seq).json", sigPath = "\(out)/record-\(seq).sig"
        guard FileManager.default.createFile(atPath: json, contents: Data(JournalScan.payload(record))),
              FileManager.default.createFile(atPath: sigPath, contents: der) else { fail("journal verify --extract: cannot write into \(out)") }
        print("journal verify: record #\(seq) in \(json), its signature in \(sigPath): openssl dgst -sha256 -verify KEY.pem -signature \(sigPath) \(json)")
    }
}

struct Passwd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passwd",
        abstract: "Add or change a technician's password in a credentials file (read from standard input; stored as a yescrypt hash).")

    @Option(name: .long, help: "Credentials file (created 0600 if missing).")
    var file: String

    @Argument(help: "Technician's user name.")
    var user: String

    func run() throws {
        if isatty(0) != 0 { print("password for \(user): ", terminator: ""); fflush(nil) }
        var t = termios()
        let tty = isatty(0) != 0 && tcgetattr(0, &t) == 0
        if tty { var n = t; n.c_lflag &= ~tcflag_t(ECHO); tcsetattr(0, TCSANOW, &n) }
        let line = readLine(strippingNewline: true) ?? ""
        if tty { tcsetattr(0, TCSANOW, &t); print("") }
        do { try Credentials.setPassword(path: file, user: user, password: line) } catch { fail("\(error)") }
        print("chargerd: \(user) set in \(file)")
    }
}

/// `chargerd firmware-pack`: wraps an executable into the package UpdateFirmware installs
/// (Grid/FirmwarePackage.swift), checked the way the charge point will check it.
struct FirmwarePack: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "firmware-pack",
        abstract: "Make an UpdateFirmware package of a chargerd executable (head with version, size and SHA-256).")

    @Option(name: .long, help: "The version the package installs (letters, digits, . - _ +).")
    var version: String

    @Option(name: .long, help: "The chargerd executable to ship.")
    var binary: String

    @Option(name: .long, help: "The package file to write.")
    var out: String

    func run() throws {
        guard let d = FileManager.default.contents(atPath: binary) else { fail("firmware-pack: cannot read --binary \(binary)") }
        let payload = [UInt8](d)
        let package = FirmwarePackage.pack(version: version, payload: payload, sha256: sha256Hex(payload))
        if case .failure(let why) = FirmwarePackage.read(package, digest: sha256Hex) { fail("firmware-pack: \(why)") }
        guard FileManager.default.createFile(atPath: out, contents: Data(package)) else { fail("firmware-pack: cannot write --out \(out)") }
        print("firmware-pack: \(out): version \(version), \(payload.count) bytes, sha256 \(sha256Hex(payload))")
    }
}
