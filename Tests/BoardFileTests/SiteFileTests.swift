// Site files (orderly charging): the shipped sites load; bad ones are refused naming the file, the key
// and why, never half-read.
import BoardFile
import SiteFile
import Grid
import Glibc
import ChargerCore
import Testing

let siteBase = """
[site]
name = "t"
utc_offset = "+08:00"

[ems]
listen = "127.0.0.1"
port = 15020
heartbeat_timeout = "10 s"
failsafe_limit = "20 kW"
failsafe_minimum = "30 s"

[tou]
peak = "40 kW"
periods = [{ start = "00:00", kind = "valley" }, { start = "15:00", kind = "peak" }, { start = "22:00", kind = "valley" }]

[ocpp]
url = "ws://127.0.0.1:9000/CP001"
connection_timeout = "90 s"
"""

@Suite struct SiteFiles {
    let board: Board
    init() throws { board = try BoardLoader.load(path: "\(repoRoot)/Boards/sim-60kw.toml") }

    func refusal(_ text: String) -> BoardFileError? {
        do { _ = try SiteLoader.parse(text, file: "site.toml", board: board); return nil } catch { return error }
    }

    @Test(arguments: ["ems-loopback", "depot-peak-cap"])
    func shippedSitesLoad(name: String) throws {
        let s = try SiteLoader.load(path: "\(repoRoot)/HIL/sites/\(name).toml", board: board)
        #expect(s.utcOffsetSeconds == 8 * 3600)
        #expect(s.tou.problem == nil)
    }

    @Test func figuresAndDefaults() throws {
        let s = try SiteLoader.parse(siteBase, file: "site.toml", board: board)
        #expect(s.ems?.port == 15020 && s.ems?.settings.failsafeLimit == .kW(20) && s.ems?.settings.failsafeMinimum == .s(30))
        #expect(s.tou.peakLimit == .kW(40) && s.tou.periods.count == 3)
        let o = try #require(s.ocpp)
        #expect(o.chargePointId == "CP001" && o.connectionTimeout == .s(90))
        #expect(o.meterInterval == .s(60) && o.heartbeatInterval == .s(300) && !o.freeVend)
    }

    /// Each line is (replace this, with that) in the base, the key named and a fragment of why.
    @Test(arguments: [
        ("utc_offset = \"+08:00\"", "utc_offset = \"8 hours\"", "site.utc_offset", "not an offset"),
        ("name = \"t\"\n", "", "site.name", "missing"),
        ("port = 15020", "port = 70000", "ems.port", "70000"),
        ("listen = \"127.0.0.1\"", "listen = \"localhost\"", "ems.listen", "not an IPv4 address"),
        ("failsafe_limit = \"20 kW\"", "failsafe_limit = \"200 kW\"", "ems.failsafe_limit", ""),
        ("failsafe_limit = \"20 kW\"", "failsafe_limit = \"20 A\"", "ems.failsafe_limit", "not a unit of power"),
        ("heartbeat_timeout = \"10 s\"", "heartbeat_timeout = \"0 s\"", "ems.heartbeat_timeout", ""),
        ("kind = \"peak\"", "kind = \"summer\"", "tou.periods[1].kind", "not peak, flat or valley"),
        ("start = \"15:00\"", "start = \"25:00\"", "tou.periods[1].start", "not a time of day"),
        ("start = \"15:00\"", "start = \"23:00\"", "tou.periods", ""),
        ("url = \"ws://127.0.0.1:9000/CP001\"", "url = \"http://127.0.0.1/CP001\"", "ocpp.url", "not a ws:// or wss:// URL"),
        ("connection_timeout = \"90 s\"", "connection_timeout = \"2 h\"", "ocpp.connection_timeout", ""),
        ("connection_timeout = \"90 s\"", "connection_timeout = \"90 s\"\nconnection_timout = \"1 s\"", "ocpp.connection_timout", "unknown key"),
        ("connection_timeout = \"90 s\"", "cert = \"/etc/cp.pem\"", "ocpp.url", "ws://"),
        ("connection_timeout = \"90 s\"", "authorize = []", "ocpp.authorize", "a list of 1 to 3 methods from vin, idtag, remote"),
        ("connection_timeout = \"90 s\"", "authorize = \"vin\"", "ocpp.authorize", "a list of"),
        ("connection_timeout = \"90 s\"", "authorize = [\"vin\", \"card\"]", "ocpp.authorize[1]", "one of vin, idtag, remote"),
        ("connection_timeout = \"90 s\"", "authorize = [\"vin\", 3]", "ocpp.authorize[1]", "one of"),
        ("connection_timeout = \"90 s\"", "authorize = [\"vin\", \"idtag\", \"vin\"]", "ocpp.authorize[2]", "listed twice"),
        ("connection_timeout = \"90 s\"", "authorize = [\"vin\", \"idtag\", \"remote\", \"vin\"]", "ocpp.authorize", "1 to 3"),
        ("connection_timeout = \"90 s\"", "free_vend = true\nauthorize = [\"vin\"]", "ocpp.authorize", "free_vend"),
        ("connection_timeout = \"90 s\"", "show_vin = \"yes\"", "ocpp.show_vin", ""),
    ])
    func badSitesAreRefused(_ from: String, _ to: String, _ key: String, _ why: String) throws {
        #expect(siteBase.contains(from), "the base has no '\(from)'")
        let e = try #require(refusal(siteBase.replacingFirst(from, to)), "accepted: \(to)")
        #expect(e.file == "site.toml")
        #expect(e.key == key, "\(e)")
        #expect(why.isEmpty || e.why.contains(why), "\(e)")
    }

    /// Plug and charge: `authorize` in order of preference, today's default without it; `show_vin` off.
    @Test func authorizationMethods() throws {
        let plain = try #require(try SiteLoader.parse(siteBase, file: "site.toml", board: board).ocpp)
        #expect(plain.authorize == [.idtag, .remote] && !plain.showVIN)
        let text = siteBase.replacingFirst("connection_timeout = \"90 s\"", "authorize = [\"vin\", \"remote\"]\nshow_vin = true")
        let vin = try #require(try SiteLoader.parse(text, file: "site.toml", board: board).ocpp)
        #expect(vin.authorize == [.vin, .remote] && vin.showVIN)
    }

    /// Security profiles 1 and 2: the AuthorizationKey's file must be the owner's only and hold a key;
    /// the profile must fit the URL and the files.
    @Test func securityProfilesAndTheAuthorizationKeyFile() throws {
        let dir = "/tmp/site-key-\(getpid())"
        mkdir(dir, 0o700)
        defer { for f in ["good", "open", "short"] { unlink("\(dir)/\(f)") }; rmdir(dir) }
        func write(_ name: String, _ text: String, mode: mode_t) {
            let fd = open("\(dir)/\(name)", O_WRONLY | O_CREAT | O_TRUNC, mode)
            _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
            close(fd); chmod("\(dir)/\(name)", mode)
        }
        write("good", "00112233445566778899aabbccddeeff\n", mode: 0o600)
        write("open", "00112233445566778899aabbccddeeff", mode: 0o644)
        write("short", "0011", mode: 0o600)
        func site(_ extra: String, url: String = "ws://127.0.0.1:9000/CP001") -> String {
            siteBase.replacingFirst("url = \"ws://127.0.0.1:9000/CP001\"", "url = \"\(url)\"\n\(extra)")
        }
        let ok = try SiteLoader.parse(site("authorization_key_file = \"\(dir)/good\""), file: "site.toml", board: board)
        #expect(ok.ocpp?.securityProfile == 1)
        let two = try SiteLoader.parse(site("authorization_key_file = \"\(dir)/good\"", url: "wss://127.0.0.1:9000/CP001"), file: "site.toml", board: board)
        #expect(two.ocpp?.securityProfile == 2)
        #expect(try AuthorizationKey.bytes("00112233445566778899aabbccddeeff\n").get().count == 16)
        let cases: [(String, String, String, String)] = [
            ("authorization_key_file = \"\(dir)/open\"", "ws://127.0.0.1:9000/CP001", "ocpp.authorization_key_file", "readable by others (mode 644)"),
            ("authorization_key_file = \"\(dir)/short\"", "ws://127.0.0.1:9000/CP001", "ocpp.authorization_key_file", "32 to 40 hexadecimal digits"),
            ("authorization_key_file = \"\(dir)/none\"", "ws://127.0.0.1:9000/CP001", "ocpp.authorization_key_file", "cannot read"),
            ("security_profile = 1", "ws://127.0.0.1:9000/CP001", "ocpp.authorization_key_file", "needs the AuthorizationKey"),
            ("security_profile = 2\nauthorization_key_file = \"\(dir)/good\"", "ws://127.0.0.1:9000/CP001", "ocpp.url", "wss://"),
            ("security_profile = 1\nauthorization_key_file = \"\(dir)/good\"", "wss://127.0.0.1:9000/CP001", "ocpp.url", "ws://"),
            ("security_profile = 3", "wss://127.0.0.1:9000/CP001", "ocpp.cert", "client certificate"),
            ("security_profile = 4", "ws://127.0.0.1:9000/CP001", "ocpp.security_profile", "not 0, 1, 2 or 3"),
            ("security_profile = 0\nauthorization_key_file = \"\(dir)/good\"", "ws://127.0.0.1:9000/CP001", "ocpp.security_profile", "sends no credentials"),
        ]
        for (extra, url, key, why) in cases {
            let e = try #require(refusal(site(extra, url: url)), "accepted: \(extra) \(url)")
            #expect(e.key == key, "\(e)")
            #expect(e.why.contains(why), "\(e)")
        }
    }

    @Test func missingAndGarbage() throws {
        do { _ = try SiteLoader.load(path: "/nonexistent/site.toml", board: board); Issue.record("loaded a missing file") }
        catch { #expect(error.description.contains("/nonexistent/site.toml") && error.why.contains("cannot read")) }
        let e = try #require(refusal("[site\nname = 1"))
        #expect(e.why.contains("TOML syntax error at line 1"))
        let n = try #require(refusal(siteBase.replacingFirst("[tou]", "[tariff]")))
        #expect(n.why.contains("unknown"), "\(n)")
    }
}

/// Issue 32 case 8: an AuthorizationKey of 16 zero bytes was accepted.
@Test func weakAuthorizationKeysAreRefused() throws {
    for weak in ["00000000000000000000000000000000", String(repeating: "ab", count: 20), String(repeating: "0102", count: 8)] {
        guard case .failure(let why) = AuthorizationKey.bytes(weak) else { Issue.record("\(weak) taken"); continue }
        #expect(why.description.contains("too weak"))
    }
    #expect(try AuthorizationKey.bytes("f0e1d2c3b4a5968778695a4b3c2d1e0f01234567").get().count == 20)
}
