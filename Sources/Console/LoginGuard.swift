// The console's login lockout as plain values: failures counted, a lockout after `maxFailures`, each
// lockout since the last good login twice as long as the one before (up to 16 times the first), and all
// of it rebuilt from the journal at start, so that a restart or a power cycle gives an attacker at the
// UART no fresh guesses (issue 21 §3). Lockouts end by the wall clock, which survives a restart; a
// clock set far ahead cannot stretch one beyond its own length.
import Journal
#if canImport(Glibc)
import Glibc
#endif

public struct LoginGuard: Sendable, Equatable {
    /// Failed logins since the last lockout or good login.
    public var failures = 0
    /// Lockouts since the last good login.
    public var lockouts = 0
    /// When the running lockout ends (seconds since 1970), if one runs.
    public var lockedUntilWall: Double? = nil

    public init() {}

    /// The length of lockout number `n` (1 = the first).
    public static func backoff(base: Double, lockout n: Int) -> Double { base * Double(1 << min(max(n, 1) - 1, 4)) }

    /// Replays the journal's login records: a good login clears everything; failures count; a lockout
    /// runs until the time its text gives ("... locked for N s, until 2026-11-28T04:32:00.000Z"), or, in a
    /// record without it, for N s from the record's own wall time.
    public static func fromJournal(_ records: [JournalEntry], base: Double) -> LoginGuard {
        var g = LoginGuard()
        for e in records {
            switch e.event {
            case .login: g = LoginGuard()
            case .loginFailed: g.failures += 1
            case .lockout(let text):
                g.lockouts += 1
                g.failures = 0
                let seconds = lockedSeconds(text) ?? backoff(base: base, lockout: g.lockouts)
                if let r = text.range(of: "until "), let until = Journal.wallSeconds(String(text[r.upperBound...])) { g.lockedUntilWall = until }
                else if let at = Journal.wallSeconds(e.wall) { g.lockedUntilWall = at + seconds }
            default: break
            }
        }
        return g
    }

    /// "5 failed logins: console locked for 600 s" → 600.
    static func lockedSeconds(_ text: String) -> Double? {
        guard let r = text.range(of: "locked for ") else { return nil }
        let digits = text[r.upperBound...].prefix { $0.isNumber }
        return Double(digits)
    }

    /// Seconds of lockout left at wall time `now`, held within the lockout's own length (a wall clock
    /// that jumped back after a power cut must not lock a technician out for hours).
    public func remaining(wallNow now: Double, base: Double) -> Double {
        guard let until = lockedUntilWall else { return 0 }
        return min(max(0, until - now), LoginGuard.backoff(base: base, lockout: lockouts))
    }
}

/// Seconds since 1970 (the console's default wall clock).
public func wallClockSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
