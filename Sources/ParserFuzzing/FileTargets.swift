// Bytes from servers the charger fetches from, files it reads, and the technician's terminal.
import BoardFile
import ChargerCore
import Console
import Foundation
import Grid
import GridInterfaces
import Journal
import LoopContract
import SiteFile

extension FuzzTargets {
    /// The first byte picks the reader: an HTTP answer's head, a chunked body, FTP replies (fed in
    /// pieces, as a server would send them), a PASV answer.
    static func httpFTP(_ data: [UInt8]) {
        let (sel, rest) = split(data)
        let what = "fuzz://peer"
        switch sel % 4 {
        case 0:
            guard let head = try? FileTransfer.HTTPHead.read(rest, maxBody: 1 << 20, what: what) else { return }
            require((100...999).contains(head.code), "status code \(head.code)")
            if case .length(let n) = head.body { require((0...(1 << 20)).contains(n), "Content-Length \(n) within the bound") }
        case 1:
            guard let body = try? FileTransfer.dechunk(Array(rest), maxBytes: 4096, what: what) else { return }
            require(body.count <= 4096, "a chunked body of \(body.count) over the bound")
        case 2:
            var reader = FTPReplyReader()
            var inbox: [UInt8] = []
            var input = rest
            while !input.isEmpty {
                let piece = input.prefix(Int(input.first! % 64) + 1)
                input = input.dropFirst(piece.count)
                inbox += piece
                do {
                    while case .reply(let code, _) = try reader.take(&inbox, what: what) {
                        require((0...999).contains(code), "reply code \(code)")
                    }
                } catch { return }
                require(inbox.count <= FTPReplyReader.maxLine + 64, "the inbox stays bounded (\(inbox.count))")
            }
        default:
            if let port = FTPReplyReader.passivePort(Substring(String(decoding: rest, as: UTF8.self))) {
                require((1...65_535).contains(port), "PASV port \(port)")
            }
        }
    }

    /// The OCPP client's state files (the first byte picks which) and the credentials file.
    static func stateFiles(_ data: [UInt8]) {
        let (sel, rest) = split(data)
        let names = StateFiles.names
        if Int(sel) % (names.count + 1) == names.count {
            if let users = try? Credentials.parse(Array(rest), path: "fuzz") {
                require(users.values.allSatisfy { $0.hasPrefix("$") }, "only hashes are taken")
            }
            return
        }
        _ = StateFiles.check(names[Int(sel) % (names.count + 1)], Data(rest), guns: 2)
    }

    /// A board file: refused with its file named, or a board whose numbers hold the loader's promises.
    static func boardFile(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        do {
            let b = try BoardLoader.parse(text, file: "fuzz.toml")
            require(b.spec.gunCount >= 1, "a board has a gun")
        } catch {
            require(error.file == "fuzz.toml", "the error names the file")
        }
    }

    static let defaultBoard: Board? = {
        guard let text = try? String(contentsOfFile: "Boards/sim-60kw.toml", encoding: .utf8) else { return nil }
        return try? BoardLoader.parse(text, file: "sim-60kw.toml")
    }()

    /// A site file over sim-60kw (when the fuzzer runs from the repository's top, as make does).
    static func siteFile(_ data: [UInt8]) {
        guard let board = defaultBoard else { return }
        do { _ = try SiteLoader.parse(String(decoding: data, as: UTF8.self), file: "fuzz-site.toml", board: board) }
        catch { require(error.file == "fuzz-site.toml", "the error names the file") }
    }

    /// A journal file as start reads it: the records that check out, where the good part ends, the
    /// faults still latched and the operator's figures and the service report; the good records framed again read back the same.
    static func journal(_ data: [UInt8]) {
        let scan = JournalScan(bytes: data)
        require(scan.goodBytes + scan.badBytes == data.count, "every byte is good or bad")
        require((scan.badBytes == 0) == (scan.problem == nil), "a problem is named exactly when bytes are bad")
        _ = Journal.outstandingFaults(scan.entries)
        _ = OperatorStats(entries: scan.entries, guns: 2)
        let report = ServiceReport(entries: scan.entries, guns: 2)
        require(report.text().split(separator: "\n").allSatisfy { $0.count <= 80 }, "the service report fits 80 columns")
        _ = report.json
        let again = JournalScan(bytes: scan.entries.flatMap { JournalScan.frame($0) })
        require(again.entries == scan.entries && again.badBytes == 0, "records framed again read back the same")
    }

    /// A firmware package: read, and when it is taken, packed again to the same bytes.
    static func firmwarePackage(_ data: [UInt8]) {
        guard case .success(let p) = FirmwarePackage.read(data, digest: sha256Hex) else { return }
        require(p.sha256 == sha256Hex(p.payload), "the digest is the payload's")
        require(
            FirmwarePackage.read(FirmwarePackage.pack(version: p.version, payload: p.payload, sha256: p.sha256), digest: sha256Hex) == .success(p),
                "a package read packs again to one that reads the same")
    }

    /// Bytes typed on the console by a technician who is not logged in: whatever they are, the session
    /// answers a plain command afterwards (garbage never wedges it).
    static func console(_ data: [UInt8]) {
        guard let journal = try? Journal(directory: nil) else { return }
        var view = StationView()
        view.cycles = 1; view.gunCount = 1; view.moduleCount = 2
        view.guns[0].ratedPower = .kW(60)
        var now = 1000.0
        let ctx = ConsoleContext(view: { view }, send: { _ in true }, journal: journal, credentials: nil, version: "chargerd fuzz",
                                 board: "sim-fuzz", rt: { "rt" }, comm: { "comm" }, clock: { now }, sleep: { now += $0 })
        let session = ConsoleSession(ctx: ctx)
        _ = session.banner()
        var rest = data[...]
        while !rest.isEmpty {
            let piece = rest.prefix(Int(rest.first! % 32) + 1)
            rest = rest.dropFirst(piece.count)
            _ = session.input(piece)
            now += 0.01
        }
        // Ctrl-C ends whatever was going on (a watch, a half line, a password prompt), then a command.
        _ = session.input(ArraySlice([0x03, 0x0D]))
        let answer = String(decoding: session.input(ArraySlice(Array("version\r".utf8))), as: UTF8.self)
        require(answer.contains("chargerd fuzz"), "the console still answers after the input: \(answer.prefix(200).debugDescription)")
    }
}
