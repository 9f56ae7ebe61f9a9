// Where the grid interfaces meet: the EMS server and the OCPP client change the grid state under a
// lock (their own threads); the thread that feeds the loop ticks it (advances the EMS fail-safe, reads
// the station's observation) and takes the composite feed. Never touched by the real-time thread.
import ChargerCore
import Synchronization

/// A grid event for the journal and the console (`limits`).
public struct GridLogEntry: Sendable, Equatable {
    public var at: Instant
    public var kind: String
    public var text: String
    /// An authorization decision (kind `authorization`): journalled as its own record.
    public var authorization: AuthorizationRecord? = nil
    public init(at: Instant, kind: String, text: String) { self.at = at; self.kind = kind; self.text = text }
}

/// Why the grid refused a request (for the console).
public struct GridRefusal: Error, Sendable, CustomStringConvertible {
    public var why: String
    public var description: String { why }
}

func fmtPercent(_ p: Double) -> String {
    let tenths = Int((p * 10).rounded())
    return "\(tenths / 10)\(tenths % 10 == 0 ? "" : ".\(abs(tenths % 10))") %"
}

public final class GridHub: Sendable {
    struct Shared {
        var state: GridState
        var observation = StationObservation()
        var feed = GridFeed()
        var log: [GridLogEntry] = []
        /// Entries not yet taken for the journal.
        var pending: [GridLogEntry] = []
        /// Last EMS mode change, shown by the console.
        var emsLast: GridLogEntry? = nil
        /// Holds back what a chatty peer would flood the journal with.
        var limiter = GridLogLimiter()

        /// An event for the journal (pending) and the console's recent log (the last 64).
        mutating func record(_ e: GridLogEntry) {
            log.append(e)
            if log.count > 64 { log.removeFirst(log.count - 64) }
            pending.append(e)
        }
    }
    let shared: Mutex<Shared>

    public init(state: GridState) {
        shared = Mutex(Shared(state: state))
    }

    /// Reads or changes the grid state under the lock.
    public func with<R>(_ body: (inout GridState) throws -> R) rethrows -> R {
        try shared.withLock { try body(&$0.state) }
    }

    public var state: GridState { shared.withLock { $0.state } }
    public var observation: StationObservation { shared.withLock { $0.observation } }
    public var lastFeed: GridFeed { shared.withLock { $0.feed } }

    /// V2G: the driver's plan for gun `g` (docs/grid.md "V2G"): the lowest SOC to discharge to, the departure
    /// as a local time (the first such time from now), and the SOC wanted by then. The answer for the
    /// console, or why the plan was refused.
    public func setPlan(gun g: Int, minSoc: Double, departureMinute: Int, targetSoc: Double) -> Result<String, GridRefusal> {
        shared.withLock { s in
            guard g >= 0 && g < s.state.gunCount else { return .failure(GridRefusal(why: "gun \(g) does not exist (0...\(s.state.gunCount - 1))")) }
            guard (0...1439).contains(departureMinute) else { return .failure(GridRefusal(why: "departure minute \(departureMinute) outside 0...1439")) }
            let now = s.state.clock.epochMillis(s.observation.at)
            var ahead = Int64(departureMinute * 60 - s.state.clock.localSecondOfDay(epochMillis: now)) * 1000
            if ahead <= 0 { ahead += 86_400_000 }
            let plan = DriverPlan(minSoc: minSoc, departure: now + ahead, targetSoc: targetSoc)
            if let why = plan.problem(now: now) { return .failure(GridRefusal(why: why)) }
            s.state.plans[g] = plan
            let text = "gun \(g): V2G plan: discharge no lower than \(fmtPercent(minSoc)), \(fmtPercent(targetSoc)) by \(TimeOfUse.clock(departureMinute)) (\(Timestamp.format(plan.departure)))"
            s.record(GridLogEntry(at: s.observation.at, kind: "v2g", text: text))
            return .success(text)
        }
    }

    /// Clears gun `g`'s plan (the driver, or the session's end).
    public func clearPlan(gun g: Int) {
        shared.withLock { s in
            guard g >= 0 && g < s.state.plans.count, s.state.plans[g] != nil else { return }
            s.state.plans[g] = nil
            s.record(GridLogEntry(at: s.observation.at, kind: "v2g", text: "gun \(g): V2G plan cleared"))
        }
    }

    /// A session on gun `g` ended at `at` with the car at `soc` (nil: unknown): whether it met its plan's
    /// departure target (nil: no plan). The plan ends with the session.
    public func sessionEnded(gun g: Int, soc: Double?, at: Instant) -> Bool? {
        shared.withLock { s in
            guard g >= 0 && g < s.state.plans.count, let plan = s.state.plans[g] else { return nil }
            s.state.plans[g] = nil
            let met = (soc ?? -1) >= plan.targetSoc - 0.5 && s.state.clock.epochMillis(at) <= plan.departure
            s.record(GridLogEntry(at: at, kind: "v2g", text: "gun \(g): session ended at \(soc.map(fmtPercent) ?? "unknown SOC"): the departure target \(fmtPercent(plan.targetSoc)) \(met ? "met" : "NOT met")"))
            return met
        }
    }

    /// Records an event (journal and console).
    public func log(_ kind: String, _ text: String, at: Instant? = nil) {
        shared.withLock { s in
            if let e = s.limiter.admit(GridLogEntry(at: at ?? s.observation.at, kind: kind, text: text)) { s.record(e) }
        }
    }

    /// An authorization decision (journal and console), never held back by the limiter: each is a
    /// session's and a driver waits on it.
    public func authorization(_ a: AuthorizationRecord, text: String) {
        shared.withLock { s in
            var e = GridLogEntry(at: s.observation.at, kind: "authorization", text: text)
            e.authorization = a
            s.record(e)
        }
    }

    /// The feeding thread, every tick: the station as the loop last showed it, the EMS state machine
    /// moved on, and the feed for the loop.
    public func tick(observation o: StationObservation) -> GridFeed {
        shared.withLock { s in
            s.observation = o
            if s.state.ems != nil {
                for e in s.state.ems!.advance(to: o.at) {
                    let entry = GridLogEntry(at: e.at, kind: "ems", text: e.text)
                    s.record(entry); s.emsLast = entry
                }
            }
            for e in s.limiter.flush(at: o.at) { s.record(e) }
            s.feed = s.state.feed(at: o.at, guns: o.guns)
            return s.feed
        }
    }

    /// Events not yet journalled.
    public func takePending() -> [GridLogEntry] {
        shared.withLock { s in defer { s.pending.removeAll() }; return s.pending }
    }

    /// The console's `limits` addendum: the EMS link, the time-of-use period, OCPP's limits and the
    /// composite per gun.
    public func consoleText() -> String {
        shared.withLock { s in
            let st = s.state, o = s.observation
            let t = st.clock.epochMillis(o.at)
            var lines: [String] = []
            lines.append("grid       station clock \(Timestamp.format(t)) (UTC), local \(TimeOfUse.clock(st.clock.localSecondOfDay(epochMillis: t) / 60))")
            if let e = st.ems {
                var l = "  EMS      \(e.mode.name)"
                if let b = e.lastBeatAt { l += ", last heartbeat \(Int((o.at - b).seconds)) s ago" } else { l += ", no heartbeat yet" }
                l += "; timeout \(fmtSeconds(e.settings.heartbeatTimeout)), fail-safe \(fmtKW(e.settings.failsafeLimit)) for ≥ \(fmtSeconds(e.settings.failsafeMinimum))"
                if e.mode == .failsafe { l += " (\(Int(e.failsafeRemaining(at: o.at).seconds)) s left)" }
                lines.append(l)
                lines.append("  EMS set  station " + (e.stationSetpoint.map(fmtKW) ?? "none") + "; " +
                             e.gunSetpoints.enumerated().map { "gun \($0.offset) " + ($0.element.map(fmtKW) ?? "none") }.joined(separator: ", "))
                if let last = s.emsLast { lines.append("  EMS last change at t=\(Int(last.at.seconds)) s: \(last.text)") }
            } else { lines.append("  EMS      not configured") }
            let k = st.tou.kind(atSecondOfDay: st.clock.localSecondOfDay(epochMillis: t))
            lines.append("  TOU      now \(k?.name ?? "none"); \(st.tou.text)")
            lines.append("  OCPP     \(st.profiles.profiles.count) charging profile(s)" + st.profiles.profiles.map { " [#\($0.profile.chargingProfileId) \($0.profile.chargingProfilePurpose.rawValue) c\($0.connectorId) L\($0.profile.stackLevel)]" }.joined())
            lines.append("  station  " + (s.feed.station.map { "\(fmtKW($0)) from \(s.feed.stationSource.name)" } ?? "no grid limit"))
            for g in 0..<st.gunCount {
                var l = "  gun \(g)    "
                let w = s.feed.guns[g].map(fmtKW), a = s.feed.gunCurrents[g].map { "\(Int($0.value)) A" }
                l += [w, a].compactMap { $0 }.joined(separator: " and ")
                l += s.feed.gunSources[g] == .none ? "no gun grid limit" : " from \(s.feed.gunSources[g].name)"
                if let tx = st.transactions[g] { l += "; OCPP transaction \(tx.id)" }
                if !st.authorized[g] { l += "; waiting for authorization" }
                if st.unavailable[g] { l += "; Inoperative (OCPP ChangeAvailability): out of service" }
                lines.append(l)
            }
            return lines.joined(separator: "\n")
        }
    }
}
