// chargerd's commands on the journal, the technicians' passwords and firmware packages: the command line
// only (the journal, the console's credentials and the firmware store are libraries').
import ArgumentParser
import BoardFile
import ChargerCore
import Console
import Foundation
import Grid
import GridInterfaces
import Journal
import Station
#if canImport(Glibc)
import Glibc
#endif

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
