// The locations GetDiagnostics (and a firmware download) are given, read as the transfers use them.
import Grid
import GridInterfaces
import Testing

@Suite struct TransferLocationTests {
    @Test func readsSchemesPortsCredentialsAndPaths() throws {
        let a = try #require(TransferLocation("https://csms.example.com/diag/CP001/"))
        #expect(a.scheme == .https && a.host == "csms.example.com" && a.port == 443 && a.path == "/diag/CP001/" && a.user == nil)
        let b = try #require(TransferLocation("FTP://diag:p%40ss@10.0.0.5:2121/up"))
        #expect(b.scheme == .ftp && b.host == "10.0.0.5" && b.port == 2121 && b.path == "/up" && b.user == "diag" && b.password == "p@ss")
        #expect(b.display == "ftp://diag@10.0.0.5:2121/up", "the password is never shown")
        let c = try #require(TransferLocation("http://[::1]:8080"))
        #expect(c.host == "::1" && c.port == 8080 && c.path == "/")
        #expect(TransferLocation("http://h/")?.port == 80 && TransferLocation("ftp://h/")?.port == 21)
    }

    @Test func refusesWhatIsNotATransferURL() {
        for bad in ["gopher://h/", "h/path", "http:///nohost", "http://h:0/", "http://h:99999/", "http://h:port/", "ftp://a b/"] {
            #expect(TransferLocation(bad) == nil, "\(bad)")
        }
    }

    /// The probe's case 4: CR LF in a location was sent on (extra HTTP header lines, FTP DELE/RNFR/RNTO).
    @Test func refusesControlCharactersAndSpacesThatWouldInjectHeadersOrCommands() {
        for bad in ["http://h/up\r\nX-Injected: 1", "ftp://h/up\r\nDELE important", "http://h/a b", "http://h/\u{7F}",
                    "ftp://u%0D%0ADELE%20x:pw@h/", "ftp://u:pw%0ARNFR%20a@h/", "http://h\t/", "https://h/\0"] {
            #expect(TransferLocation(bad) == nil, "\(bad.debugDescription)")
        }
        // A space encoded in a password is a character of the password, not a line break.
        #expect(TransferLocation("ftp://u:p%20w@h/")?.password == "p w")
    }
}

/// The probe's case 2 (first part): retries 9223372036854775807 trapped on `1 + retries`.
@Suite struct TransferRetriesTests {
    @Test func boundsWhatTheCentralSystemSends() throws {
        let huge = try #require(TransferRetries(retries: Int.max, retryInterval: Int.max))
        #expect(huge.retries == TransferRetries.maxRetries && huge.interval == TransferRetries.maxInterval)
        #expect(huge.attempts == 11)
        #expect(TransferRetries(retries: -1, retryInterval: 0) == nil && TransferRetries(retries: 0, retryInterval: Int.min) == nil)
        let none = try #require(TransferRetries(retries: nil, retryInterval: nil))
        #expect(none.attempts == 1 && none.interval == 0)
        #expect(TransferRetries.clampNote(retries: Int.max, retryInterval: 5) == "retries 9223372036854775807 taken as 10")
        #expect(TransferRetries.clampNote(retries: 3, retryInterval: 60).isEmpty)
    }
}

/// The firmware package UpdateFirmware installs: what is damaged (download again) and what is unsuitable
/// (never install) are told apart, and a sound one reads back.
@Suite struct FirmwarePackageTests {
    /// A stand-in digest for the tests (the charge point uses OpenSSL's SHA-256): a checksum in 64 hex digits.
    static func digest(_ b: [UInt8]) -> String {
        var h: UInt64 = 1469598103934665603
        for x in b { h = (h ^ UInt64(x)) &* 1099511628211 }
        let s = String(h, radix: 16)
        return String(repeating: "0", count: 64 - s.count) + s
    }
    static func elf(machine: Int) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 128)
        b[0] = 0x7F; b[1] = 0x45; b[2] = 0x4C; b[3] = 0x46
        b[18] = UInt8(machine & 0xFF); b[19] = UInt8(machine >> 8)
        return b
    }

    @Test func aSoundPackageReadsBack() throws {
        let payload = Self.elf(machine: FirmwarePackage.thisMachine)
        let bytes = FirmwarePackage.pack(version: "1.4.0-rc1", payload: payload, sha256: Self.digest(payload))
        let p = try FirmwarePackage.read(bytes, digest: Self.digest).get()
        #expect(p.version == "1.4.0-rc1" && p.payload == payload)
    }

    @Test func damagedAndUnsuitablePackagesAreToldApart() {
        let payload = Self.elf(machine: FirmwarePackage.thisMachine)
        let good = FirmwarePackage.pack(version: "2.0", payload: payload, sha256: Self.digest(payload))
        func problem(_ b: [UInt8]) -> FirmwarePackage.Problem? {
            if case .failure(let p) = FirmwarePackage.read(b, digest: Self.digest) { return p }
            return nil
        }
        var flipped = good; flipped[flipped.count - 1] ^= 1
        let cases: [([UInt8], String)] = [
            (Array(good.prefix(good.count - 10)), "bytes of payload, the head says"),
            (flipped, "SHA-256"),
            (Array("hello".utf8), "no head"),
            (Array("ZIP 1\nversion: 1\n\n".utf8) + payload, "does not begin with"),
            (FirmwarePackage.pack(version: "../../etc", payload: payload, sha256: Self.digest(payload)), "no version"),
        ]
        for (b, why) in cases {
            guard case .damaged(let text)? = problem(b) else { Issue.record("not damaged: \(why)"); continue }
            #expect(text.contains(why), "\(text)")
        }
        let other = Self.elf(machine: FirmwarePackage.thisMachine == 62 ? 183 : 62)
        guard case .unsuitable(let t)? = problem(FirmwarePackage.pack(version: "2.0", payload: other, sha256: Self.digest(other))) else {
            Issue.record("another machine's executable accepted"); return
        }
        #expect(t.contains("ELF machine"))
        let text = Array(repeating: UInt8(65), count: 100)
        guard case .unsuitable? = problem(FirmwarePackage.pack(version: "2.0", payload: text, sha256: Self.digest(text))) else {
            Issue.record("a text file accepted as an executable"); return
        }
    }
}

@Suite struct ChunkedBodyTests {
    @Test func chunksAreJoinedAndBadOnesRefused() throws {
        let raw = Array("4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n".utf8)
        #expect(String(decoding: try FileTransfer.dechunk(raw, maxBytes: 100, what: "t"), as: UTF8.self) == "Wikipedia in\r\n\r\nchunks.")
        #expect(throws: TransferError.self) { try FileTransfer.dechunk(Array("4\r\nWi".utf8), maxBytes: 100, what: "t") }
        #expect(throws: TransferError.self) { try FileTransfer.dechunk(Array("zz\r\nWiki\r\n0\r\n\r\n".utf8), maxBytes: 100, what: "t") }
        #expect(throws: TransferError.self) { try FileTransfer.dechunk(raw, maxBytes: 8, what: "t") }
        // A large body in many chunks (the search does not copy what is left at each chunk).
        var big: [UInt8] = []
        for _ in 0..<20_000 { big += Array("400\r\n".utf8) + [UInt8](repeating: 65, count: 1024) + [13, 10] }
        big += Array("0\r\n\r\n".utf8)
        #expect(try FileTransfer.dechunk(big, maxBytes: 64 << 20, what: "t").count == 20_000 * 1024)
    }
}
