// The console's login lockout as plain values, per user name (issue 36, ask 6): a name's failures are
// its own, so a stranger guessing at one name does not lock the technician who uses another out. Names
// the credentials file does not hold share one account ("(unknown name)"): typing new names buys an
// attacker no fresh guesses, and the table stays as small as the credentials file. A lockout comes after
// `maxFailures` failures; each lockout of a name since its last good login is twice as long as the one
// before (up to 16 times the first); all of it is rebuilt from the journal at start, so that a restart
// or a power cycle gives an attacker at the UART no fresh guesses (issue 21 §3). Lockouts end by the wall
// clock, which survives a restart; a clock set far ahead cannot stretch one beyond its own length.
import Journal
#if canImport(Glibc)
import Glibc
#endif

public struct LoginGuard: Sendable, Equatable {
    public struct Account: Sendable, Equatable {
        /// Failed logins since the last lockout or good login.
        public var failures = 0
        /// Lockouts since the last good login.
        public var lockouts = 0
        /// When the running lockout ends, on the guard's clock (monotonic seconds), if one runs.
        public var lockedUntil: Double? = nil
    }

    /// The account that names outside the credentials file share.
    public static let unknownName = "(unknown name)"

    public let maxFailures: Int
    /// The first lockout's length, seconds.
    public let base: Double
    let known: Set<String>
    public private(set) var accounts: [String: Account] = [:]

    public init(known: Set<String>, maxFailures: Int = 5, base: Double = 300) {
        self.known = known; self.maxFailures = max(1, maxFailures); self.base = base
    }

    /// The account a typed name counts against.
    public func key(_ user: String) -> String { known.contains(user) ? user : Self.unknownName }

    public func account(_ user: String) -> Account { accounts[key(user)] ?? Account() }

    /// The length of lockout number `n` (1 = the first).
    public static func backoff(base: Double, lockout n: Int) -> Double { base * Double(1 << min(max(n, 1) - 1, 4)) }

    /// Seconds of `user`'s lockout left at `now` (0: none runs).
    public func remaining(_ user: String, now: Double) -> Double {
        guard let until = account(user).lockedUntil else { return 0 }
        return max(0, until - now)
    }

    /// A good login: the name's failures and back-off are cleared.
    public mutating func succeeded(_ user: String) { accounts[key(user)] = nil }

    /// A failed login at `now`: the name's failure count, and the lockout's length when this failure
    /// began one.
    public mutating func failed(_ user: String, now: Double) -> (failures: Int, lockedFor: Double?) {
        let k = key(user)
        var a = accounts[k] ?? Account()
        a.failures += 1
        let n = a.failures
        var locked: Double? = nil
        if a.failures >= maxFailures {
            a.lockouts += 1
            a.failures = 0
            let seconds = Self.backoff(base: base, lockout: a.lockouts)
            a.lockedUntil = now + seconds
            locked = seconds
        }
        accounts[k] = a
        return (n, locked)
    }

    /// Replays the journal's login records onto a new guard whose clock reads `now` while the wall clock
    /// reads `wallNow`: a good login clears its name; failures count against their name's account; a
    /// lockout runs until the time its text gives ("... locked for N s, until 2026-11-28T04:32:00.000Z"),
    /// or, in a record without it, for N s from the record's own wall time, held within the lockout's own
    /// length (a wall clock that jumped back after a power cut must not lock a technician out for hours).
    /// A lockout record with no user (written before lockouts were per name) locks every account.
    public static func fromJournal(_ records: [JournalEntry], known: Set<String>, maxFailures: Int = 5, base: Double,
                                   wallNow: Double, now: Double) -> LoginGuard {
        var g = LoginGuard(known: known, maxFailures: maxFailures, base: base)
        var untilWall: [String: Double] = [:]
        var everyone: (lockouts: Int, until: Double)? = nil
        for e in records {
            switch e.event {
            case .login(let u): if let u { g.accounts[g.key(u)] = nil; untilWall[g.key(u)] = nil }
            case .loginFailed(let u, _): g.accounts[g.key(u), default: Account()].failures += 1
            case .lockout(let u, let text):
                let seconds: Double
                let keys: [String]
                if let u {
                    let k = g.key(u)
                    g.accounts[k, default: Account()].lockouts += 1
                    g.accounts[k]!.failures = 0
                    seconds = lockedSeconds(text) ?? backoff(base: base, lockout: g.accounts[k]!.lockouts)
                    keys = [k]
                } else {
                    let n = (everyone?.lockouts ?? 0) + 1
                    seconds = lockedSeconds(text) ?? backoff(base: base, lockout: n)
                    keys = []
                    everyone = (n, 0)
                }
                var until: Double? = nil
                if let r = text.range(of: "until "), let w = Journal.wallSeconds(String(text[r.upperBound...])) { until = w }
                else if let at = Journal.wallSeconds(e.wall) { until = at + seconds }
                guard let until else { continue }
                let held = min(until, wallNow + seconds)
                for k in keys { untilWall[k] = held }
                if everyone != nil && keys.isEmpty { everyone!.until = held }
            default: break
            }
        }
        for (k, w) in untilWall where w > wallNow { g.accounts[k, default: Account()].lockedUntil = now + (w - wallNow) }
        if let everyone, everyone.until > wallNow {
            // An old whole-console lockout: every account, the unknown names' too, waits it out.
            for k in Set(known).union([unknownName]) {
                var a = g.accounts[k] ?? Account()
                a.lockouts = max(a.lockouts, everyone.lockouts)
                a.lockedUntil = max(a.lockedUntil ?? 0, now + (everyone.until - wallNow))
                g.accounts[k] = a
            }
        }
        return g
    }

    /// "5 failed logins: console locked for 600 s" → 600.
    static func lockedSeconds(_ text: String) -> Double? {
        guard let r = text.range(of: "locked for ") else { return nil }
        let digits = text[r.upperBound...].prefix { $0.isNumber }.prefix(9)
        return Double(digits)
    }
}

/// Seconds since 1970 (the console's default wall clock).
public func wallClockSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
