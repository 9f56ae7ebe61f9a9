// The station's civil clock: the loop's Instant (time since start, virtual or real) mapped to UTC and
// to local time of day. Time-of-use periods are local; OCPP timestamps are UTC (RFC 3339).
import ChargerCore

public struct StationClock: Sendable, Equatable {
    /// Milliseconds since 1970-01-01T00:00:00Z at `Instant.zero`.
    public var epochMillisAtZero: Int64
    /// Local time = UTC + this (China: +08:00, no daylight saving).
    public var utcOffsetSeconds: Int

    public init(epochMillisAtZero: Int64, utcOffsetSeconds: Int) {
        self.epochMillisAtZero = epochMillisAtZero
        self.utcOffsetSeconds = utcOffsetSeconds
    }

    public func epochMillis(_ t: Instant) -> Int64 { epochMillisAtZero + t.micros / 1000 }
    public func instant(epochMillis ms: Int64) -> Instant { Instant(micros: (ms - epochMillisAtZero) * 1000) }

    /// Seconds since local midnight, 0..<86400.
    public func localSecondOfDay(epochMillis ms: Int64) -> Int {
        let local = ms / 1000 + Int64(utcOffsetSeconds)
        return Int(((local % 86_400) + 86_400) % 86_400)
    }
    public func localSecondOfDay(_ t: Instant) -> Int { localSecondOfDay(epochMillis: epochMillis(t)) }

    /// The next local midnight after `ms`, in epoch milliseconds.
    public func nextLocalMidnight(after ms: Int64) -> Int64 {
        (Timestamp.floorDiv(ms, 1000) + Int64(86_400 - localSecondOfDay(epochMillis: ms))) * 1000
    }
}

/// RFC 3339 / ISO 8601 timestamps as OCPP uses them ("2026-11-24T06:00:00.000Z", or with an offset).
public enum Timestamp {
    /// Formats epoch milliseconds as UTC with milliseconds.
    public static func format(_ ms: Int64) -> String {
        let secs = floorDiv(ms, 1000), millis = Int(ms - secs * 1000)
        let days = floorDiv(secs, 86_400)
        let sod = Int(secs - days * 86_400)
        let (y, m, d) = civil(fromDays: days)
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(sod / 3600, 2)):\(pad(sod / 60 % 60, 2)):\(pad(sod % 60, 2)).\(pad(millis, 3))Z"
    }

    /// Parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)" into epoch milliseconds; nil when malformed.
    public static func parse(_ text: String) -> Int64? {
        let c = Array(text.utf8)
        func num(_ from: Int, _ n: Int) -> Int? {
            guard from + n <= c.count else { return nil }
            var v = 0
            for i in from..<(from + n) {
                guard c[i] >= 48 && c[i] <= 57 else { return nil }
                v = v * 10 + Int(c[i] - 48)
            }
            return v
        }
        guard c.count >= 20, c[4] == 45, c[7] == 45, c[10] == 84 || c[10] == 116 || c[10] == 32, c[13] == 58, c[16] == 58,
              let y = num(0, 4), let mo = num(5, 2), let d = num(8, 2), let h = num(11, 2), let mi = num(14, 2), let s = num(17, 2),
              (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 61 else { return nil }
        var i = 19
        var millis = 0
        if i < c.count && c[i] == 46 {
            i += 1
            var digits = 0
            while i < c.count && c[i] >= 48 && c[i] <= 57 {
                if digits < 3 { millis = millis * 10 + Int(c[i] - 48) }
                digits += 1; i += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 3) { millis *= 10 }
        }
        var offset = 0
        guard i < c.count else { return nil }
        if c[i] == 90 || c[i] == 122 { i += 1 }
        else if c[i] == 43 || c[i] == 45 {
            guard let oh = num(i + 1, 2), c.count > i + 3, c[i + 3] == 58, let om = num(i + 4, 2), oh < 24, om < 60 else { return nil }
            offset = (oh * 3600 + om * 60) * (c[i] == 45 ? -1 : 1)
            i += 6
        } else { return nil }
        guard i == c.count else { return nil }
        let days = Self.days(fromCivil: y, mo, d)
        return ((days * 86_400) + Int64(h * 3600 + mi * 60 + min(s, 59)) - Int64(offset)) * 1000 + Int64(millis)
    }

    /// "+08:00" → 28800 seconds.
    public static func parseOffset(_ text: String) -> Int? {
        let c = Array(text.utf8)
        guard c.count == 6, c[0] == 43 || c[0] == 45, c[3] == 58 else { return nil }
        guard let h = Int(String(decoding: c[1...2], as: UTF8.self)), let m = Int(String(decoding: c[4...5], as: UTF8.self)),
              h <= 14, m < 60 else { return nil }
        return (h * 3600 + m * 60) * (c[0] == 45 ? -1 : 1)
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }
    static func pad(_ v: Int, _ n: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, n - s.count)) + s }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func days(fromCivil y0: Int, _ m: Int, _ d: Int) -> Int64 {
        let y = Int64(m <= 2 ? y0 - 1 : y0)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = Int64((m + 9) % 12)
        let doy = (153 * mp + 2) / 5 + Int64(d) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays z0: Int64) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = Int(doy - (153 * mp + 2) / 5 + 1)
        let m = Int(mp < 10 ? mp + 3 : mp - 9)
        return (Int(yoe + era * 400) + (m <= 2 ? 1 : 0), m, d)
    }
}
