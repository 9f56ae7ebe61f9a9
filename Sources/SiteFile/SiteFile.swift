// Site files: what an installation adds to a board (the board is the hardware, the site is where it
// stands): its clock's UTC offset, the station EMS's Modbus TCP server, the time-of-use schedule and the
// OCPP central system. Same TOML conventions and errors as board files; checked against the board.
import BoardFile
import ChargerCore
import Grid
import TOMLKit
#if canImport(Glibc)
import Glibc
#endif

/// `[ems]`: the Modbus TCP server the station EMS writes its setpoints to.
public struct EMSServerConfig: Sendable, Equatable {
    public var address = "127.0.0.1"
    public var port = 1502
    public var unit = 1
    /// Client addresses allowed to write (empty: any); others may read.
    public var allow: [String] = []
    /// Client addresses allowed to read (empty: any).
    public var readAllow: [String] = []
    /// Connections served at once; a newcomer beyond them takes the slot of the longest idle client
    /// (never an allow-listed one's for a host that is not), or is closed.
    public var maxClients = 8
    /// A request must arrive whole this long after its first byte (a client that trickles it is closed).
    public var requestDeadline: TimeSpan = .s(1)
    /// A client that sends nothing this long is closed.
    public var idleTimeout: TimeSpan = .s(120)
    public var settings = EMSSettings()
}

/// `[ocpp]`: the central system this charge point connects to (OCPP 1.6J).
public struct OCPPConfig: Sendable, Equatable {
    public var url: String
    public var chargePointId: String
    /// wss: CA bundle to verify the central system with, and the charge point's own certificate and key.
    public var caFile: String? = nil
    public var certFile: String? = nil
    public var keyFile: String? = nil
    public var vendor = "OpenDC"
    public var model = "chargerd"
    /// Profiles and the offline queue live here (nil: memory only).
    public var stateDirectory: String? = nil
    public var meterInterval: TimeSpan = .s(60)
    public var heartbeatInterval: TimeSpan = .s(300)
    public var reconnectInterval: TimeSpan = .s(5)
    public var callTimeout: TimeSpan = .s(30)
    /// Sessions start without an idTag (no Authorize/RemoteStart needed).
    public var freeVend = false
    /// OCPP ConnectionTimeOut: an authorization (RemoteStart) given before the car is plugged lapses if
    /// no car comes within it.
    public var connectionTimeout: TimeSpan = .s(60)
    /// The OCPP 1.6 security profile (security whitepaper): 0 none, 1 HTTP Basic over ws://, 2 HTTP Basic
    /// over wss://, 3 a client certificate over wss://.
    public var securityProfile = 0
    /// Profiles 1 and 2: the file holding the AuthorizationKey (hexadecimal, 16-20 bytes), readable by its
    /// owner only. A key the central system sets later (ChangeConfiguration) is kept in state_dir.
    public var authorizationKeyFile: String? = nil
    /// UpdateFirmware installs into this directory (each version a file, `current` the link to the one
    /// to run); nil: UpdateFirmware is not supported.
    public var firmwareDirectory: String? = nil
    /// The manufacturer's roots for SignedUpdateFirmware (a PEM file installed with the package, read-only,
    /// outside state_dir): a signing certificate must chain to one of them (docs/security.md).
    public var manufacturerRootsFile: String? = nil
    /// Whether the central system may add ManufacturerRootCertificates (InstallCertificate) and firmware
    /// signed under them is taken: off unless the site says so (a central system that can add a root can
    /// sign anything).
    public var centralSystemManufacturerRoots = false
    /// Whether plain (unsigned) UpdateFirmware is taken: off unless the site says so.
    public var unsignedFirmware = false
    /// How sessions are authorized, in order of preference (`authorize`): the default is today's, an idTag
    /// at the plug or a remote start. With `vin` the car's VIN from BRM is the session's identity
    /// (docs/grid.md "Authorization by VIN"); a method after it is the fallback when the VIN is refused.
    public var authorize: [AuthorizationMethod] = [.idtag, .remote]
    /// The whole VIN in the journal and on the console (`show_vin`); masked by default (personal data).
    public var showVIN = false

    /// A central system and this charge point's id there; the rest as the site file's defaults.
    package init(url: String, chargePointId: String) { self.url = url; self.chargePointId = chargePointId }
}

/// The AuthorizationKey of OCPP 1.6's security profiles 1 and 2 (security whitepaper ed. 2, A00.FR.205):
/// 16 to 20 bytes written as 32 to 40 hexadecimal digits; the bytes are the HTTP Basic password.
public enum AuthorizationKey {
    public struct Invalid: Error, CustomStringConvertible, Sendable { public var description: String }
    /// The fewest distinct byte values a key may have (issue 32: 16 zero bytes were accepted).
    public static let minDistinctBytes = 8
    /// The key's bytes, or why the text is not a key.
    public static func bytes(_ text: String) -> Result<[UInt8], Invalid> {
        let hex = Array(text.utf8).filter { $0 != 10 && $0 != 13 && $0 != 32 }
        guard hex.count % 2 == 0, (32...40).contains(hex.count) else {
            return .failure(Invalid(description: "an AuthorizationKey is 16 to 20 bytes written as 32 to 40 hexadecimal digits (\(hex.count) characters given)"))
        }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: c - 48
            case 65...70: c - 55
            case 97...102: c - 87
            default: nil
            }
        }
        var out: [UInt8] = []
        var i = 0
        while i < hex.count {
            guard let hi = nibble(hex[i]), let lo = nibble(hex[i + 1]) else { return .failure(Invalid(description: "an AuthorizationKey is hexadecimal digits only")) }
            out.append(hi << 4 | lo)
            i += 2
        }
        // A key someone typed (all zero, one byte repeated, a short pattern) is a password anyone can
        // guess: the whitepaper asks for a random key. Fewer than 8 distinct byte values in 16 random
        // bytes happens with a probability below 1e-10.
        guard Set(out).count >= Self.minDistinctBytes else {
            return .failure(Invalid(description: "an AuthorizationKey of \(Set(out).count) distinct byte value(s) is too weak (at least \(Self.minDistinctBytes); make one with `openssl rand -hex 20`)"))
        }
        return .success(out)
    }
}

public struct SiteConfig: Sendable, Equatable {
    public var name: String
    public var path: String
    public var utcOffsetSeconds: Int
    public var electrical = SiteElectrical()
    public var ems: EMSServerConfig? = nil
    public var tou = TimeOfUse()
    public var ocpp: OCPPConfig? = nil
}

public enum SiteLoader {
    public static func load(path: String, board: Board) throws(BoardFileError) -> SiteConfig {
        try parse(try BoardLoader.readText(path).0, file: path, board: board)
    }

    // Long: a site file's tables read in file order, each key's error naming file and key; the cross-checks
    // between tables need them all in scope
    public static func parse(_ text: String, file: String, board: Board) throws(BoardFileError) -> SiteConfig {
        let r = Reader(file: file)
        let top = try BoardLoader.topSection(text, file: file)
        try r.onlyKeys(top, ["site", "ems", "tou", "ocpp"])
        let s = try r.table(top, "site")
        try r.onlyKeys(s, ["name", "utc_offset", "ac_phase_voltage", "ac_phases"])
        let offsetText = try r.optionalString(s, "utc_offset") ?? "+08:00"
        guard let offset = Timestamp.parseOffset(offsetText) else { throw r.error(s, "utc_offset", "'\(offsetText)' is not an offset like \"+08:00\"") }
        var site = SiteConfig(name: try r.string(s, "name"), path: file, utcOffsetSeconds: offset)
        if s.table["ac_phase_voltage"] != nil { site.electrical.acPhaseVoltage = try r.voltage(s, "ac_phase_voltage", range: Volts(100)...Volts(400)) }
        if s.table["ac_phases"] != nil { site.electrical.acPhases = try r.integer(s, "ac_phases", range: 1...3) }
        let grid = board.spec.gridLimit
        let gridRange = Watts.zero...grid

        if let t = try r.optionalTable(top, "tou") {
            try r.onlyKeys(t, ["peak", "flat", "valley", "periods", "discharge_at_peak"])
            var tou = TimeOfUse()
            if t.table["peak"] != nil { tou.peakLimit = try r.power(t, "peak", range: gridRange) }
            if t.table["flat"] != nil { tou.flatLimit = try r.power(t, "flat", range: gridRange) }
            if t.table["valley"] != nil { tou.valleyLimit = try r.power(t, "valley", range: gridRange) }
            // V2G: the export asked of each gun at peak (docs/grid.md "V2G"), within the grid connection.
            if t.table["discharge_at_peak"] != nil { tou.peakDischarge = try r.power(t, "discharge_at_peak", range: Watts(1_000)...grid) }
            guard let arr = t.table["periods"]?.array else { throw r.error(t, "periods", "missing: a list like [{ start = \"15:00\", kind = \"peak\" }, ...]") }
            for (i, e) in arr.enumerated() {
                guard let et = e.table else { throw r.error(t, "periods[\(i)]", "must be a table { start = \"HH:MM\", kind = \"peak|flat|valley\" }") }
                let p = Section(table: et, path: t.key("periods[\(i)]"))
                try r.onlyKeys(p, ["start", "kind"])
                let st = try r.string(p, "start")
                guard let m = TimeOfUse.minute(of: st) else { throw r.error(p, "start", "'\(st)' is not a time of day like \"15:00\"") }
                let k = try r.string(p, "kind")
                guard let kind = TariffKind.allCases.first(where: { $0.name == k }) else { throw r.error(p, "kind", "'\(k)' is not peak, flat or valley") }
                tou.periods.append(.init(startMinute: m, kind: kind))
            }
            if let why = tou.problem { throw r.error(t, "periods", why) }
            site.tou = tou
        }

        if let e = try r.optionalTable(top, "ems") {
            try r.onlyKeys(e, ["listen", "port", "unit", "allow", "read_allow", "max_clients", "request_deadline", "idle_timeout",
                               "heartbeat_timeout", "failsafe_limit", "failsafe_minimum"])
            var c = EMSServerConfig()
            c.address = try r.optionalString(e, "listen") ?? c.address
            guard isIPv4(c.address) else { throw r.error(e, "listen", "'\(c.address)' is not an IPv4 address") }
            if e.table["port"] != nil { c.port = try r.integer(e, "port", range: 1...65535) }
            if e.table["unit"] != nil { c.unit = try r.integer(e, "unit", range: 1...247) }
            if let a = e.table["allow"] {
                guard let arr = a.array else { throw r.error(e, "allow", "must be a list of IPv4 addresses") }
                for (i, x) in arr.enumerated() {
                    guard let str = x.string, isIPv4(str) else { throw r.error(e, "allow[\(i)]", "must be an IPv4 address string") }
                    c.allow.append(str)
                }
            }
            if let a = e.table["read_allow"] {
                guard let arr = a.array else { throw r.error(e, "read_allow", "must be a list of IPv4 addresses") }
                for (i, x) in arr.enumerated() {
                    guard let str = x.string, isIPv4(str) else { throw r.error(e, "read_allow[\(i)]", "must be an IPv4 address string") }
                    c.readAllow.append(str)
                }
            }
            if e.table["max_clients"] != nil { c.maxClients = try r.integer(e, "max_clients", range: 1...64) }
            c.requestDeadline = try r.duration(e, "request_deadline", default: .s(1), range: .ms(50)...(.s(10)))
            c.idleTimeout = try r.duration(e, "idle_timeout", default: .s(120), range: .s(5)...(.s(3600)))
            c.settings.heartbeatTimeout = try r.duration(e, "heartbeat_timeout", default: .s(60), range: .s(1)...(.s(3600)))
            c.settings.failsafeLimit = try r.power(e, "failsafe_limit", range: gridRange)
            c.settings.failsafeMinimum = try r.duration(e, "failsafe_minimum", default: .s(7200), range: .zero...(.s(86_400)))
            site.ems = c
        }

        if let o = try r.optionalTable(top, "ocpp") {
            try r.onlyKeys(o, ["url", "charge_point_id", "ca", "cert", "key", "vendor", "model", "state_dir", "meter_interval",
                               "heartbeat_interval", "reconnect_interval", "call_timeout", "free_vend", "connection_timeout",
                               "security_profile", "authorization_key_file", "firmware_dir", "manufacturer_roots",
                               "central_system_manufacturer_roots", "unsigned_firmware", "authorize", "show_vin"])
            let url = try r.string(o, "url")
            guard let parsed = WebSocketURL(url) else { throw r.error(o, "url", "'\(url)' is not a ws:// or wss:// URL") }
            let id = try r.optionalString(o, "charge_point_id") ?? parsed.lastPathComponent
            guard !id.isEmpty, id.count <= 20 else { throw r.error(o, "charge_point_id", "'\(id)' must be 1...20 characters (OCPP CiString20; give charge_point_id or end the URL with it)") }
            var c = OCPPConfig(url: url, chargePointId: id)
            c.caFile = try r.optionalString(o, "ca")
            c.certFile = try r.optionalString(o, "cert")
            c.keyFile = try r.optionalString(o, "key")
            if parsed.secure == false, c.caFile != nil || c.certFile != nil { throw r.error(o, "url", "certificates are given but the URL is ws:// (use wss://)") }
            if (c.certFile == nil) != (c.keyFile == nil) { throw r.error(o, c.certFile == nil ? "cert" : "key", "cert and key go together") }
            for (k, v) in [("ca", c.caFile), ("cert", c.certFile), ("key", c.keyFile)] {
                if let v, access(v, R_OK) != 0 { throw r.error(o, k, "cannot read '\(v)' (\(String(cString: strerror(errno))))") }
            }
            c.vendor = try r.optionalString(o, "vendor") ?? c.vendor
            c.model = try r.optionalString(o, "model") ?? c.model
            c.stateDirectory = try r.optionalString(o, "state_dir")
            c.meterInterval = try r.duration(o, "meter_interval", default: .s(60), range: .s(1)...(.s(3600)))
            c.heartbeatInterval = try r.duration(o, "heartbeat_interval", default: .s(300), range: .s(1)...(.s(86_400)))
            c.connectionTimeout = try r.duration(o, "connection_timeout", default: .s(60), range: .s(1)...(.s(3600)))
            c.reconnectInterval = try r.duration(o, "reconnect_interval", default: .s(5), range: .ms(100)...(.s(3600)))
            c.callTimeout = try r.duration(o, "call_timeout", default: .s(30), range: .s(1)...(.s(600)))
            c.freeVend = try r.optionalBool(o, "free_vend") ?? false
            c.firmwareDirectory = try r.optionalString(o, "firmware_dir")
            c.manufacturerRootsFile = try r.optionalString(o, "manufacturer_roots")
            if let m = c.manufacturerRootsFile, access(m, R_OK) != 0 { throw r.error(o, "manufacturer_roots", "cannot read '\(m)' (\(String(cString: strerror(errno))))") }
            c.centralSystemManufacturerRoots = try r.optionalBool(o, "central_system_manufacturer_roots") ?? false
            c.unsignedFirmware = try r.optionalBool(o, "unsigned_firmware") ?? false
            if let a = o.table["authorize"] {
                let names = AuthorizationMethod.allCases.map(\.rawValue).joined(separator: ", ")
                guard let arr = a.array, !arr.isEmpty, arr.count <= AuthorizationMethod.allCases.count else {
                    throw r.error(o, "authorize", "must be a list of 1 to \(AuthorizationMethod.allCases.count) methods from \(names), in order of preference")
                }
                var methods: [AuthorizationMethod] = []
                for (i, x) in arr.enumerated() {
                    guard let str = x.string, let m = AuthorizationMethod(rawValue: str) else {
                        throw r.error(o, "authorize[\(i)]", "must be one of \(names)")
                    }
                    guard !methods.contains(m) else { throw r.error(o, "authorize[\(i)]", "'\(str)' is listed twice") }
                    methods.append(m)
                }
                if c.freeVend && methods.contains(.vin) { throw r.error(o, "authorize", "lists vin, but free_vend charges every car without authorization") }
                c.authorize = methods
            }
            c.showVIN = try r.optionalBool(o, "show_vin") ?? false
            // The security profile: said, or what the URL and the files make it.
            c.authorizationKeyFile = try r.optionalString(o, "authorization_key_file")
            let implied = c.certFile != nil ? 3 : c.authorizationKeyFile != nil ? (parsed.secure ? 2 : 1) : 0
            if let p = try r.optionalNumber(o, "security_profile") {
                guard p == p.rounded(), (0...3).contains(p) else { throw r.error(o, "security_profile", "\(p) is not 0, 1, 2 or 3") }
                c.securityProfile = Int(p)
            } else { c.securityProfile = implied }
            switch c.securityProfile {
            case 0: if let k = c.authorizationKeyFile { throw r.error(o, "security_profile", "0 sends no credentials, but authorization_key_file '\(k)' is given") }
            case 1, 2:
                guard c.authorizationKeyFile != nil else { throw r.error(o, "authorization_key_file", "security profile \(c.securityProfile) needs the AuthorizationKey's file") }
                guard parsed.secure == (c.securityProfile == 2) else {
                    throw r.error(o, "url", "security profile \(c.securityProfile) is HTTP Basic over \(c.securityProfile == 2 ? "wss://" : "ws://")")
                }
            case 3:
                guard parsed.secure, c.certFile != nil else { throw r.error(o, "cert", "security profile 3 is a client certificate over wss://") }
            default: throw r.error(o, "security_profile", "\(c.securityProfile) is not 0, 1, 2 or 3")
            }
            if let k = c.authorizationKeyFile {
                // The key is a password: a file others can read is refused, as ssh refuses such a key.
                var st = stat()
                guard stat(k, &st) == 0 else { throw r.error(o, "authorization_key_file", "cannot read '\(k)' (\(String(cString: strerror(errno))))") }
                guard st.st_mode & 0o077 == 0 else {
                    throw r.error(o, "authorization_key_file", "'\(k)' is readable by others (mode \(String(st.st_mode & 0o777, radix: 8))): chmod 600 it")
                }
                let text: String
                do { text = try BoardLoader.readText(k).0 } catch { throw r.error(o, "authorization_key_file", "cannot read '\(k)'") }
                if case .failure(let why) = AuthorizationKey.bytes(text) {
                    throw r.error(o, "authorization_key_file", "'\(k)': \(why)")
                }
            }
            site.ocpp = c
        }
        return site
    }

    static func isIPv4(_ s: String) -> Bool {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { p in p.count <= 3 && Int(p).map { (0...255).contains($0) } ?? false }
    }
}
