// One record of the journal: a header (sequence, controller time, wall time, boot) and what happened, as
// an enum with each kind's own fields. On storage a record is the flat JSON object it always was
// ({"kind": "fault", "code": ..., "gun": ...}, keys sorted); `Fields` is that object, and the enum is
// read from it and written back to it, so journals written before the enum read the same, and a record
// of a kind this version does not know (or one missing a field its kind needs) is kept as it was read.
import Foundation

/// What a journal record says happened.
public enum JournalEvent: Sendable, Equatable {
    /// The controller started (firmware, board and its checksum).
    case boot(text: String)
    /// The controller stopped (a signal, or the run ended).
    case shutdown(text: String)
    /// The core latched a fault.
    case fault(FaultNote)
    /// The core cleared a fault (the note names the record it clears by `faultSeq`).
    case faultCleared(FaultNote)
    case sessionStart(SessionNote)
    case sessionEnd(SessionNote)
    /// The real-time loop missed deadlines (`count` overruns since the last record).
    case loopOverrun(count: Double)
    /// An acting console command: who, what, and what came of it (`gun` for the controller's own, such as
    /// a temporary cap expiring).
    case command(user: String?, command: String, result: String, gun: Int?)
    case login(user: String?)
    case logout(user: String?, why: String)
    case loginFailed(user: String, text: String)
    /// A name locked out after its failures (no user: a record from before lockouts were per name).
    case lockout(user: String?, text: String)
    /// A login tried while its name was locked out: refused without a password prompt.
    case loginRefused(user: String, text: String)
    /// A gun taken out of service (`out`) or back, by the console or the central system (`text` says
    /// which it now is): the time between is planned, not counted against availability.
    case service(gun: Int, out: Bool)
    /// A torn tail cut off on open (a power cut mid-write).
    case tornTail(text: String)
    /// An event of the grid interfaces (`source`: ems, ems-refused, ocpp, ocpp-offline, ...).
    case grid(source: String, text: String)
    /// An event of a gun's car link on CAN (bus-off, error-state changes, malformed frames, send failures).
    case carLink(gun: Int, text: String)
    /// The live safety state, written at the head of every new journal file (Journal.swift): the records
    /// that start restores (latched faults, login records), so that no rotation drops them.
    case checkpoint(records: [JournalEntry])
    /// The signature of record `of` (a session's end) with the charge point's key (`key`: the key's id,
    /// the first 16 hex digits of the SHA-256 of its public key, DER): `signature` is base64 DER, ECDSA
    /// or RSA over SHA-256 of the record's stored JSON (`JournalScan.payload`).
    case signature(of: UInt64, key: String, signature: String)
    /// A session's authorization decided (plug and charge by VIN: accepted, refused, refused with a fallback).
    case authorization(AuthorizationNote)
    /// A record this version cannot read as one of the above, kept and written back as it was read.
    case unreadable(JournalEntry.Fields)

    /// The record's kind on storage.
    public var kind: String {
        switch self {
        case .boot: "boot"
        case .shutdown: "shutdown"
        case .fault: "fault"
        case .faultCleared: "fault-cleared"
        case .sessionStart: "session-start"
        case .sessionEnd: "session-end"
        case .loopOverrun: "loop-overrun"
        case .command: "command"
        case .login: "login"
        case .logout: "logout"
        case .loginFailed: "login-failed"
        case .lockout: "lockout"
        case .loginRefused: "login-refused"
        case .service: "service"
        case .tornTail: "torn-tail"
        case .grid: "grid"
        case .carLink: "can"
        case .checkpoint: "checkpoint"
        case .signature: "signature"
        case .authorization: "authorization"
        case .unreadable(let f): f.kind
        }
    }
}

/// A fault as the journal keeps it (the core's names: code `E05-insulation`, reaction `error-shutdown`).
public struct FaultNote: Sendable, Equatable {
    /// The gun, nil for the station.
    public var gun: Int?
    public var code: String
    public var reaction: String
    /// The measured value that tripped it, when there is one; what it measures (`FaultMeasure.name`:
    /// "V", "A", "ohm", "degC", "s", "message", "rule", "contactor", "count", "none") and the limit it
    /// crossed, in the same unit. Records written before these were kept have neither.
    public var value: Double?
    public var unit: String? = nil
    public var limit: Double? = nil
    /// The core's fault sequence number (restarts at every boot).
    public var faultSeq: UInt64?
    /// More about it (the module, or that it was latched again at start).
    public var text: String?
    public init(gun: Int?, code: String, reaction: String, value: Double? = nil, faultSeq: UInt64? = nil, text: String? = nil) {
        self.gun = gun; self.code = code; self.reaction = reaction; self.value = value; self.faultSeq = faultSeq; self.text = text
    }
    /// A fault of a reaction that blocks its gun (refuse, error or emergency shutdown); derate and
    /// reconnect faults stop nothing.
    public var stops: Bool { ["refuse", "error-shutdown", "emergency-shutdown"].contains(reaction) }
}

/// A session's start or end as the journal keeps it.
public struct SessionNote: Sendable, Equatable {
    public var gun: Int
    /// The meter's energy register then, kWh.
    public var energyKWh: Double?
    public var soc: Double?
    /// At the end: why it ended (the core's name, e.g. `vehicle-bst`, `fault`).
    public var stopReason: String?
    /// V2G: the meter's export register then, kWh; at the end, whether the driver's departure target was
    /// met (nil: no plan).
    public var exportKWh: Double?
    public var departureMet: Bool?
    /// At the end: the charger's own energy (kWh) and the meter's deviation from it (percent; nil: not judged).
    public var chargerKWh: Double? = nil
    public var deviationPercent: Double? = nil
    /// At the end: the meter's energy register at the session's start, kWh (the end record alone holds
    /// both readings, for its signature).
    public var startKWh: Double? = nil
    /// Who authorized the session: the method and the identity as shown (a VIN masked unless the site
    /// allows the whole); nil: free vend or not known.
    public var method: String? = nil
    public var identity: String? = nil
    public init(gun: Int, energyKWh: Double?, soc: Double?, stopReason: String? = nil, exportKWh: Double? = nil, departureMet: Bool? = nil) {
        self.gun = gun; self.energyKWh = energyKWh; self.soc = soc; self.stopReason = stopReason
        self.exportKWh = exportKWh; self.departureMet = departureMet
    }
}

/// An authorization decision: the method (`vin`, `idtag`, `remote`), the identity as shown (a VIN masked
/// unless the site allows the whole), the verdict (`accepted`, `refused`, `refused-fallback`) and why.
public struct AuthorizationNote: Sendable, Equatable {
    public var gun: Int
    public var method: String
    public var identity: String
    public var verdict: String
    public var text: String
    public init(gun: Int, method: String, identity: String, verdict: String, text: String) {
        self.gun = gun; self.method = method; self.identity = identity; self.verdict = verdict; self.text = text
    }
}

/// One record of the journal.
public struct JournalEntry: Codable, Sendable, Equatable {
    /// Sequence number, increasing across files and restarts.
    public var seq: UInt64 = 0
    /// Controller time (seconds since this boot: the loop's clock; virtual time on a sim board).
    public var t: Double
    /// Wall-clock time of the write, UTC (ISO 8601).
    public var wall: String = ""
    /// Which boot of the controller wrote it (increases at each start).
    public var boot: UInt64 = 0
    public var event: JournalEvent

    public init(_ event: JournalEvent, t: Double) { self.event = event; self.t = t }

    public var kind: String { event.kind }

    /// The record as stored: one flat object whose fields beyond the header depend on `kind`.
    public struct Fields: Codable, Sendable, Equatable {
        public var seq: UInt64 = 0
        public var kind: String
        public var t: Double
        public var wall: String = ""
        public var boot: UInt64 = 0
        public var gun: Int? = nil
        public var code: String? = nil
        public var reaction: String? = nil
        public var value: Double? = nil
        public var unit: String? = nil
        public var limit: Double? = nil
        public var faultSeq: UInt64? = nil
        public var user: String? = nil
        public var command: String? = nil
        public var result: String? = nil
        public var energyKWh: Double? = nil
        public var soc: Double? = nil
        public var stopReason: String? = nil
        public var exportKWh: Double? = nil
        public var departureMet: Bool? = nil
        /// At a session's end: the charger's own energy and the meter's deviation from it, percent.
        public var chargerKWh: Double? = nil
        public var deviationPercent: Double? = nil
        /// At a session's end: the meter's register at its start.
        public var startKWh: Double? = nil
        /// Sessions and authorization records: how and by whom the session was authorized, and the verdict.
        public var method: String? = nil
        public var identity: String? = nil
        public var verdict: String? = nil
        /// A signature record: the record it signs, the key's id and the signature (base64 DER).
        public var signs: UInt64? = nil
        public var key: String? = nil
        public var signature: String? = nil
        public var text: String? = nil
        /// A checkpoint's records (one level deep: a checkpoint inside one is not read as one).
        public var records: [Fields]? = nil
        public init(kind: String, t: Double) { self.kind = kind; self.t = t }
    }

    public init(from decoder: any Decoder) throws { self.init(try Fields(from: decoder)) }
    public func encode(to encoder: any Encoder) throws { try fields.encode(to: encoder) }

    /// The entry read from its stored fields.
    public init(_ f: Fields) {
        t = f.t; seq = f.seq; wall = f.wall; boot = f.boot
        event = Self.event(f) ?? .unreadable(f)
    }

    static func event(_ f: Fields) -> JournalEvent? {
        func fault() -> FaultNote? {
            guard let code = f.code, let reaction = f.reaction else { return nil }
            var n = FaultNote(gun: f.gun, code: code, reaction: reaction, value: f.value, faultSeq: f.faultSeq, text: f.text)
            n.unit = f.unit; n.limit = f.limit
            return n
        }
        func session() -> SessionNote? {
            f.gun.map {
                var n = SessionNote(
                    gun: $0, energyKWh: f.energyKWh, soc: f.soc, stopReason: f.stopReason, exportKWh: f.exportKWh, departureMet: f.departureMet)
                n.chargerKWh = f.chargerKWh; n.deviationPercent = f.deviationPercent; n.startKWh = f.startKWh
                n.method = f.method; n.identity = f.identity
                return n
            }
        }
        switch f.kind {
        case "boot": return f.text.map { .boot(text: $0) }
        case "shutdown": return f.text.map { .shutdown(text: $0) }
        case "fault": return fault().map { .fault($0) }
        case "fault-cleared": return fault().map { .faultCleared($0) }
        case "session-start": return session().map { .sessionStart($0) }
        case "session-end": return session().map { .sessionEnd($0) }
        case "loop-overrun": return f.value.map { .loopOverrun(count: $0) }
        case "command":
            guard let c = f.command, let r = f.result else { return nil }
            return .command(user: f.user, command: c, result: r, gun: f.gun)
        case "login": return .login(user: f.user)
        case "logout": return f.text.map { .logout(user: f.user, why: $0) }
        case "login-failed":
            guard let u = f.user, let x = f.text else { return nil }
            return .loginFailed(user: u, text: x)
        case "lockout": return f.text.map { .lockout(user: f.user, text: $0) }
        case "login-refused":
            guard let u = f.user, let x = f.text else { return nil }
            return .loginRefused(user: u, text: x)
        case "service":
            guard let g = f.gun, let x = f.text, x == "out of service" || x == "in service" else { return nil }
            return .service(gun: g, out: x == "out of service")
        case "torn-tail": return f.text.map { .tornTail(text: $0) }
        case "grid":
            guard let source = f.command, let x = f.text else { return nil }
            return .grid(source: source, text: x)
        case "can":
            guard let g = f.gun, let x = f.text else { return nil }
            return .carLink(gun: g, text: x)
        case "signature":
            guard let of = f.signs, let k = f.key, let sig = f.signature else { return nil }
            return .signature(of: of, key: k, signature: sig)
        case "authorization":
            guard let g = f.gun, let m = f.method, let id = f.identity, let v = f.verdict else { return nil }
            return .authorization(AuthorizationNote(gun: g, method: m, identity: id, verdict: v, text: f.text ?? ""))
        case "checkpoint":
            guard let r = f.records else { return nil }
            return .checkpoint(records: r.filter { $0.kind != "checkpoint" }.map(JournalEntry.init))
        default: return nil
        }
    }

    /// The stored fields of this entry.
    public var fields: Fields {
        var f: Fields
        if case .unreadable(let kept) = event { f = kept } else { f = Fields(kind: kind, t: t) }
        f.seq = seq; f.t = t; f.wall = wall; f.boot = boot
        switch event {
        case .boot(let x), .shutdown(let x), .tornTail(let x): f.text = x
        case .lockout(let u, let x): f.user = u; f.text = x
        case .loginRefused(let u, let x): f.user = u; f.text = x
        case .service(let g, let out): f.gun = g; f.text = out ? "out of service" : "in service"
        case .fault(let n), .faultCleared(let n):
            f.gun = n.gun; f.code = n.code; f.reaction = n.reaction; f.value = n.value; f.faultSeq = n.faultSeq; f.text = n.text
            f.unit = n.unit; f.limit = n.limit
        case .sessionStart(let n), .sessionEnd(let n):
            f.gun = n.gun; f.energyKWh = n.energyKWh; f.soc = n.soc; f.stopReason = n.stopReason
            f.exportKWh = n.exportKWh; f.departureMet = n.departureMet
            f.chargerKWh = n.chargerKWh; f.deviationPercent = n.deviationPercent; f.startKWh = n.startKWh
            f.method = n.method; f.identity = n.identity
        case .signature(let of, let k, let sig): f.signs = of; f.key = k; f.signature = sig
        case .authorization(let n): f.gun = n.gun; f.method = n.method; f.identity = n.identity; f.verdict = n.verdict; f.text = n.text
        case .loopOverrun(let n): f.value = n
        case .command(let u, let c, let r, let g): f.user = u; f.command = c; f.result = r; f.gun = g
        case .login(let u): f.user = u
        case .logout(let u, let why): f.user = u; f.text = why
        case .loginFailed(let u, let x): f.user = u; f.text = x
        case .grid(let source, let x): f.command = source; f.text = x
        case .carLink(let g, let x): f.gun = g; f.text = x
        case .checkpoint(let r):
            f.records = r.map(\.fields)
            f.text = "\(r.count) record(s) of the safety state carried into this file"
        case .unreadable: break
        }
        return f
    }

    /// One line for a terminal.
    public var line: String {
        let f = fields
        var s = "#\(seq) \(wall) t=\(String(format: "%.3f", t)) s \(kind)"
        if let gun = f.gun { s += " gun\(gun)" }
        if let code = f.code { s += " \(code)" }
        if let reaction = f.reaction { s += " (\(reaction))" }
        if let value = f.value, value.isFinite {
            s += " value \(String(format: "%g", value))"
            if let unit = f.unit, unit != "none" { s += " \(unit)" }
            if let limit = f.limit, limit.isFinite { s += " limit \(String(format: "%g", limit))" }
        }
        if let faultSeq = f.faultSeq { s += " fault#\(faultSeq)" }
        if let user = f.user { s += " user \(user)" }
        if let command = f.command { s += " \"\(command)\"" }
        if let result = f.result { s += " -> \(result)" }
        if let energyKWh = f.energyKWh {
            let from = f.startKWh.map { "\(String(format: "%.3f", $0)) -> " } ?? ""
            s += " meter \(from)\(String(format: "%.3f", energyKWh)) kWh"
        }
        if let soc = f.soc, soc.isFinite { s += " SOC \(String(format: "%.1f", soc))%" }
        if let stopReason = f.stopReason { s += " stop \(stopReason)" }
        if let c = f.chargerKWh, c.isFinite { s += " charger \(String(format: "%.3f", c)) kWh" }
        if let d = f.deviationPercent, d.isFinite { s += " deviation \(String(format: "%+.2f", d)) %" }
        if let m = f.method { s += " by \(m)" + (f.identity.map { " \($0)" } ?? "") }
        if let v = f.verdict { s += " \(v)" }
        if let of = f.signs { s += " of #\(of) key \(f.key ?? "?")" }
        if let text = f.text { s += " \(text)" }
        return s
    }
}
