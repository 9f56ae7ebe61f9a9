// chargerd's operator side: the journal (loop events, acting commands) and the technician's console,
// set up from the board file and the command line. Everything here runs off the control loop.
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

/// What the command line says of the journal and the console (chargerd run's options).
package struct DeskOptions {
    package var journal: String? = nil
    package var journalMaxKb: Int? = nil
    package var journalFiles: Int? = nil
    package var journalAcks = false
    package var console: String? = nil
    package var credentials: String? = nil
    package var consoleIdle: Double = 600
    package var consoleLockout: Double = 300
    package var signingKey: String? = nil
    package init() {}
}

package final class OperatorDesk {
    package let journal: Journal

    /// The faults the journal says stood when the controller last stopped, as the core's codes; printed,
    /// so the technician sees why a gun starts faulted.
    package var latchedAtStart: [StandingFault] {
        let out = Recorder.standing(journal.latchedAtStart)
        if !out.isEmpty {
            print("journal: \(out.count) fault(s) latched before this start, latched again until a reset: "
                  + out.map { "\($0.code.name)\($0.gun >= 0 ? " gun\($0.gun)" : "")" }.joined(separator: ", "))
            fflush(nil)
        }
        return out
    }
    package let acks: Bool
    package let board: Board
    package var console: ConsoleServer? = nil
    /// V2G, set by the grid desk when there is a site file: the console's `v2g` command, and the judge of
    /// a session's end against its driver's plan (the journal's departure figure).
    package var v2gPlan: ((Int, (minSoc: Double, departureMinute: Int, targetSoc: Double)?) -> String)? = nil
    package var departureMet: ((Int, Double?, Instant) -> Bool?)? = nil
    /// Plug and charge: the console shows the whole VIN (the site's `show_vin`).
    package var showVIN = false
    package let consoleChoice: String?
    package let credentials: Credentials?
    package let idle: Double
    package let lockout: Double
    /// Signs each session-end record (`--signing-key`, else the charge point's key from the OCPP
    /// certificate store, set by the grid desk); nil: records unsigned.
    package var signer: RecordSigner? = nil {
        didSet { if let k = signer { print("journal: session records signed with key \(k.keyId) (\(k.path))"); fflush(nil) } }
    }
    /// The meter's register at each running session's start, for the end record.
    package var sessionStartKWh: [Int: Double] = [:]
    /// Who authorized the session on a gun now (set by the grid desk: the OCPP client's word), and what
    /// it was at each running session's start, for the end record (which is signed).
    package var identity: ((Int) -> SessionIdentity?)? = nil
    package var sessionIdentity: [Int: SessionIdentity] = [:]

    /// The firmware's version, as the boot record, the console and the OCPP client give it.
    package let version: String

    package init(options run: DeskOptions, board: Board, version: String) throws {
        self.board = board
        self.version = version
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
        ack(journal.append(JournalEntry(.boot(text: "\(version), board \(board.name) (\(board.path), checksum \(board.checksum)), \(board.spec.gunCount) gun\(board.spec.gunCount == 1 ? "" : "s")"), t: 0)))
    }

    /// Starts the console (if one was asked for) on the loop's view and command queue.
    package func attach(
        view: TripleBuffer<StationView>, commands: SPSCQueue<OperatorCommand>, rt: @escaping () -> String, comm: @escaping () -> String,
                moduleComm: ((Int) -> String)? = nil, grid: (() -> String)? = nil, can: (() -> String)? = nil) {
        guard let choice = consoleChoice else { return }
        let port: ConsolePort
        do {
            switch choice {
            case "pty": port = try ConsolePort.pseudoTerminal()
            case "stdin": port = ConsolePort.standardIO()
            case "board":
                guard let c = board.console else { fail("--console board: board '\(board.name)' has no [console] section (use pty, stdin or a device path)") }
                port = try ConsolePort.uart(
                    path: c.device, baud: c.baud, parity: SerialParity(rawValue: c.parity) ?? .none, stopBits: c.stopBits, rtsCts: c.rtsCts)
            default:
                let c = board.console
                port = try ConsolePort.uart(
                    path: choice, baud: c?.baud ?? 115_200, parity: SerialParity(rawValue: c?.parity ?? "N") ?? .none, stopBits: c?.stopBits ?? 1,
                    rtsCts: c?.rtsCts ?? false)
            }
        } catch { fail("\(error)") }
        var ctx = ConsoleContext(view: { view.read() }, send: { commands.push($0) }, journal: journal, credentials: credentials,
                                 version: version, board: "\(board.name), checksum \(board.checksum)\nfile \(board.path)",
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
    package func record(_ e: LoopEvent) {
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

    package func ack(_ e: JournalEntry) {
        guard acks else { return }
        print("journal: #\(e.seq) \(e.kind) acknowledged")
        fflush(nil)
    }

    package func shutdown(at t: Instant) {
        console?.stop()
        ack(journal.append(JournalEntry(.shutdown(text: resetRequested.map { "\($0): restart" } ?? (stopRequested ? "signal" : "run ended")), t: t.seconds)))
    }
}

package func rtText(_ s: LoopStatistics) -> String {
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

