// Keeps a chatty peer from flooding the journal. An EMS that dispatches every second, a client that
// connects for each poll or one that keeps writing a bad value would otherwise add a record per request
// (86 400 a day) and rotate the faults and sessions out of a bounded journal within hours.
import ChargerCore

/// Per kind of grid event: a burst, then one record per interval (a token bucket). What is held back is
/// counted and said with the next record of its kind, or, once the kind falls quiet, in a summary that
/// carries the last record held back: the last setpoint written is always journalled.
public struct GridLogLimiter: Sendable {
    /// The kinds a peer can produce at its own rate (an EMS's writes and refusals, its connections, the
    /// central system's malformed or refused calls); the EMS fail-safe machine's events and OCPP's others
    /// are rare by construction and always pass.
    public static let limitedKinds: Set<String> = ["ems-write", "ems-refused", "ems-client", "ocpp-refused", "ocpp-datatransfer"]
    /// Records of one kind let through at once before the rate applies.
    public var burst: Int
    /// One more record of the kind after each interval.
    public var interval: TimeSpan

    struct Bucket: Sendable {
        var tokens: Double
        var at: Instant
        var held = 0
        var heldSince = Instant.zero
        var last: GridLogEntry? = nil
    }
    var buckets: [String: Bucket] = [:]

    public init(burst: Int = 10, interval: TimeSpan = .s(6)) {
        self.burst = max(1, burst)
        self.interval = interval > .zero ? interval : .s(1)
    }

    mutating func refill(_ b: inout Bucket, _ now: Instant) {
        let dt = max(0, (now - b.at).seconds)
        b.tokens = min(Double(burst), b.tokens + dt / interval.seconds)
        if now > b.at { b.at = now }
    }

    /// The entry to record for `e` now (with a note of what was held back before it), or nil: held back.
    public mutating func admit(_ e: GridLogEntry) -> GridLogEntry? {
        guard Self.limitedKinds.contains(e.kind) else { return e }
        var b = buckets[e.kind] ?? Bucket(tokens: Double(burst), at: e.at)
        refill(&b, e.at)
        defer { buckets[e.kind] = b }
        guard b.tokens >= 1 else {
            if b.held == 0 { b.heldSince = e.at }
            b.held += 1
            b.last = e
            return nil
        }
        b.tokens -= 1
        var out = e
        if b.held > 0 {
            out.text += " (\(b.held) earlier \(e.kind) event(s) since t=\(Int(b.heldSince.seconds)) s held back)"
            b.held = 0; b.last = nil
        }
        return out
    }

    /// For each kind fallen quiet with records held back, once its rate allows: a summary carrying the
    /// last one held back.
    public mutating func flush(at now: Instant) -> [GridLogEntry] {
        var out: [GridLogEntry] = []
        for k in buckets.keys.sorted() {
            guard var b = buckets[k], b.held > 0, let last = b.last else { continue }
            refill(&b, now)
            if b.tokens >= 1 {
                b.tokens -= 1
                out.append(GridLogEntry(at: now, kind: k, text: "\(b.held) \(k) event(s) since t=\(Int(b.heldSince.seconds)) s held back; the last, at t=\(Int(last.at.seconds)) s: \(last.text)"))
                b.held = 0; b.last = nil
            }
            buckets[k] = b
        }
        return out
    }
}
