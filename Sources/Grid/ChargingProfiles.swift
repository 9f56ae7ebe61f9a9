// OCPP 1.6 smart charging (OCPP 1.6 edition 2 §3.13, §5.16, §7.13): charging profiles as the central
// system sends them, the charge point's store of them, and the limit each purpose sets at an instant.
// Field names are OCPP's JSON names, so a profile decodes straight from SetChargingProfile.
import ChargerCore

public enum ProfilePurpose: String, Codable, Sendable { case ChargePointMaxProfile, TxDefaultProfile, TxProfile }
public enum ProfileKind: String, Codable, Sendable { case Absolute, Recurring, Relative }
public enum RecurrencyKind: String, Codable, Sendable { case Daily, Weekly }
public enum RateUnit: String, Codable, Sendable { case A, W }

public struct SchedulePeriod: Codable, Sendable, Equatable {
    public var startPeriod: Int
    public var limit: Double
    public var numberPhases: Int?
    public init(startPeriod: Int, limit: Double, numberPhases: Int? = nil) {
        self.startPeriod = startPeriod; self.limit = limit; self.numberPhases = numberPhases
    }
}

public struct ChargingSchedule: Codable, Sendable, Equatable {
    public var duration: Int?
    public var startSchedule: String?
    public var chargingRateUnit: RateUnit
    public var chargingSchedulePeriod: [SchedulePeriod]
    public var minChargingRate: Double?
    public init(
        duration: Int? = nil, startSchedule: String? = nil, chargingRateUnit: RateUnit, chargingSchedulePeriod: [SchedulePeriod],
        minChargingRate: Double? = nil
    ) {
        self.duration = duration; self.startSchedule = startSchedule; self.chargingRateUnit = chargingRateUnit
        self.chargingSchedulePeriod = chargingSchedulePeriod; self.minChargingRate = minChargingRate
    }
}

public struct ChargingProfile: Codable, Sendable, Equatable {
    public var chargingProfileId: Int
    public var transactionId: Int?
    public var stackLevel: Int
    public var chargingProfilePurpose: ProfilePurpose
    public var chargingProfileKind: ProfileKind
    public var recurrencyKind: RecurrencyKind?
    public var validFrom: String?
    public var validTo: String?
    public var chargingSchedule: ChargingSchedule
    public init(chargingProfileId: Int, transactionId: Int? = nil, stackLevel: Int, chargingProfilePurpose: ProfilePurpose,
                chargingProfileKind: ProfileKind, recurrencyKind: RecurrencyKind? = nil, validFrom: String? = nil, validTo: String? = nil,
                chargingSchedule: ChargingSchedule) {
        self.chargingProfileId = chargingProfileId; self.transactionId = transactionId; self.stackLevel = stackLevel
        self.chargingProfilePurpose = chargingProfilePurpose; self.chargingProfileKind = chargingProfileKind
        self.recurrencyKind = recurrencyKind; self.validFrom = validFrom; self.validTo = validTo; self.chargingSchedule = chargingSchedule
    }
}

/// A profile as stored: its connector and when it arrived (an Absolute profile without a
/// startSchedule starts then).
public struct InstalledProfile: Codable, Sendable, Equatable {
    public var connectorId: Int
    public var profile: ChargingProfile
    public var receivedAt: Int64
    public init(connectorId: Int, profile: ChargingProfile, receivedAt: Int64) {
        self.connectorId = connectorId; self.profile = profile; self.receivedAt = receivedAt
    }
}

/// A limit in the profile's own unit.
public struct RateLimit: Sendable, Equatable {
    public var value: Double
    public var unit: RateUnit
    public var phases: Int?
    public init(value: Double, unit: RateUnit, phases: Int? = nil) { self.value = value; self.unit = unit; self.phases = phases }
}

public struct ProfileError: Error, Sendable, Equatable, CustomStringConvertible {
    public var why: String
    public var description: String { why }
}

extension InstalledProfile {
    /// The limit this profile sets at `t` (epoch ms), nil when it sets none then. `txStart` is the
    /// connector's transaction start (Relative profiles count from it).
    public func limit(at t: Int64, txStart: Int64?) -> RateLimit? {
        let p = profile, s = p.chargingSchedule
        if let f = p.validFrom.flatMap(Timestamp.parse), t < f { return nil }
        if let to = p.validTo.flatMap(Timestamp.parse), t >= to { return nil }
        guard let start = scheduleStart(at: t, txStart: txStart) else { return nil }
        let elapsed = (t - start) / 1000
        guard elapsed >= 0 else { return nil }
        if let d = s.duration, elapsed >= Int64(d) { return nil }
        var found: SchedulePeriod? = nil
        for period in s.chargingSchedulePeriod where Int64(period.startPeriod) <= elapsed { found = period }
        return found.map { RateLimit(value: $0.limit, unit: s.chargingRateUnit, phases: $0.numberPhases) }
    }

    /// When the schedule's current run began (the recurrence in effect at `t` for Recurring).
    public func scheduleStart(at t: Int64, txStart: Int64?) -> Int64? {
        let s = profile.chargingSchedule
        switch profile.chargingProfileKind {
        case .Absolute:
            return s.startSchedule.flatMap(Timestamp.parse) ?? receivedAt
        case .Relative:
            return txStart
        case .Recurring:
            guard let anchor = s.startSchedule.flatMap(Timestamp.parse) else { return nil }
            let length: Int64 = profile.recurrencyKind == .Weekly ? 7 * 86_400_000 : 86_400_000
            return anchor + Timestamp.floorDiv(t - anchor, length) * length
        }
    }

    /// Instants in [from, to) where this profile's limit may change (period starts, ends, validity).
    public func changes(from: Int64, to: Int64, txStart: Int64?) -> [Int64] {
        var out: [Int64] = []
        for v in [profile.validFrom, profile.validTo] { if let x = v.flatMap(Timestamp.parse) { out.append(x) } }
        let s = profile.chargingSchedule
        var runStart: Int64? = scheduleStart(at: from, txStart: txStart)
        let length: Int64? = profile.chargingProfileKind == .Recurring ? (profile.recurrencyKind == .Weekly ? 7 * 86_400_000 : 86_400_000) : nil
        var guardCount = 0
        // Seconds from outside, as milliseconds after `r`: nil where that would overflow (install refuses
        // such schedules; this holds for a profile restored from a file too).
        func after(_ r: Int64, _ seconds: Int) -> Int64? {
            let (ms, o1) = Int64(seconds).multipliedReportingOverflow(by: 1000)
            let (t, o2) = r.addingReportingOverflow(ms)
            return o1 || o2 ? nil : t
        }
        while let r = runStart, r < to, guardCount < 400 {
            guardCount += 1
            for p in s.chargingSchedulePeriod { if let t = after(r, p.startPeriod) { out.append(t) } }
            if let d = s.duration, let t = after(r, d) { out.append(t) }
            runStart = length.flatMap { r.addingReportingOverflow($0).overflow ? nil : r + $0 }
        }
        return out.filter { $0 > from && $0 < to }
    }
}

/// The charge point's profiles, with OCPP's replacement and clearing rules.
public struct ProfileStore: Codable, Sendable, Equatable {
    public private(set) var profiles: [InstalledProfile] = []
    public init() {}

    /// What the charge point accepts, told to the central system as configuration keys
    /// (ChargeProfileMaxStackLevel, ChargingScheduleMaxPeriods, MaxChargingProfilesInstalled): the store,
    /// its file and the composite's work stay bounded whatever a central system sends.
    public static let maxStackLevel = 99
    public static let maxPeriods = 48
    public static let maxProfiles = 64
    /// A period's start and a schedule's duration, seconds, at most: ten years, far beyond any grid use,
    /// and small enough that a start plus any of them stays in an Int64 of milliseconds (a probe's
    /// startPeriod of 6.6e16 s overflowed the composite's arithmetic and stopped the controller).
    public static let maxScheduleSeconds = 10 * 366 * 86_400

    /// The schedule's own rules, whatever connector it is for: installing checks them, and so does a
    /// start that restores the store from its file.
    public static func check(_ p: ChargingProfile) throws(ProfileError) {
        guard (0...Self.maxStackLevel).contains(p.stackLevel) else { throw ProfileError(why: "stackLevel \(p.stackLevel) outside 0...\(Self.maxStackLevel)") }
        let s = p.chargingSchedule
        guard !s.chargingSchedulePeriod.isEmpty else { throw ProfileError(why: "the schedule has no periods") }
        guard s.chargingSchedulePeriod.count <= Self.maxPeriods else { throw ProfileError(why: "\(s.chargingSchedulePeriod.count) periods (at most \(Self.maxPeriods))") }
        guard s.chargingSchedulePeriod.first!.startPeriod == 0 else { throw ProfileError(why: "the first period must start at 0") }
        var last = -1
        for x in s.chargingSchedulePeriod {
            guard x.startPeriod > last else { throw ProfileError(why: "startPeriod \(x.startPeriod) does not increase") }
            guard x.startPeriod <= Self.maxScheduleSeconds else { throw ProfileError(why: "startPeriod \(x.startPeriod) s is beyond \(Self.maxScheduleSeconds) s (ten years)") }
            guard x.limit >= 0, x.limit.isFinite else { throw ProfileError(why: "limit \(x.limit) is negative") }
            if let n = x.numberPhases, !(1...3).contains(n) { throw ProfileError(why: "numberPhases \(n) outside 1...3") }
            last = x.startPeriod
        }
        if let d = s.duration, d <= 0 || d > Self.maxScheduleSeconds { throw ProfileError(why: "duration \(d) is not within 1...\(Self.maxScheduleSeconds) s") }
        for v in [p.validFrom, p.validTo, s.startSchedule] { if let v, Timestamp.parse(v) == nil { throw ProfileError(why: "'\(v)' is not an RFC 3339 timestamp") } }
        switch p.chargingProfileKind {
        case .Recurring:
            guard p.recurrencyKind != nil, s.startSchedule != nil else { throw ProfileError(why: "a Recurring profile needs recurrencyKind and startSchedule") }
        case .Relative:
            guard s.startSchedule == nil else { throw ProfileError(why: "a Relative profile has no startSchedule") }
        case .Absolute: break
        }
    }

    /// Every stored profile keeps the rules (a file restored at start).
    public var isValid: Bool {
        profiles.count <= Self.maxProfiles && profiles.allSatisfy { (try? Self.check($0.profile)) != nil }
    }

    /// Installs a profile (SetChargingProfile). `activeTransaction` is the connector's transaction, if any.
    public mutating func install(_ p: ChargingProfile, connectorId: Int, connectors: Int, activeTransaction: Int?,
                                 at now: Int64) throws(ProfileError) {
        guard (0...connectors).contains(connectorId) else { throw ProfileError(why: "connector \(connectorId) does not exist (0...\(connectors))") }
        try Self.check(p)
        switch p.chargingProfilePurpose {
        case .ChargePointMaxProfile:
            guard connectorId == 0 else { throw ProfileError(why: "ChargePointMaxProfile is set on connector 0 only") }
        case .TxProfile:
            guard connectorId > 0 else { throw ProfileError(why: "TxProfile is set on a connector > 0") }
            guard let tx = activeTransaction else { throw ProfileError(why: "no transaction on connector \(connectorId)") }
            if let want = p.transactionId, want != tx { throw ProfileError(why: "transactionId \(want) is not the connector's transaction \(tx)") }
        case .TxDefaultProfile: break
        }
        var stored = p
        if p.chargingProfilePurpose == .TxProfile && stored.transactionId == nil { stored.transactionId = activeTransaction }
        // Same id, or same stack level and purpose on the same connector: the new one replaces it.
        let replaced: (InstalledProfile) -> Bool = {
            $0.profile.chargingProfileId == p.chargingProfileId
                || ($0.connectorId == connectorId && $0.profile.stackLevel == p.stackLevel
                    && $0.profile.chargingProfilePurpose == p.chargingProfilePurpose)
        }
        guard profiles.count(where: { !replaced($0) }) < Self.maxProfiles else {
            throw ProfileError(why: "\(Self.maxProfiles) profiles are installed already (clear some first)")
        }
        profiles.removeAll(where: replaced)
        profiles.append(InstalledProfile(connectorId: connectorId, profile: stored, receivedAt: now))
    }

    /// ClearChargingProfile: removes what matches every given criterion; returns how many.
    public mutating func clear(id: Int?, connectorId: Int?, purpose: ProfilePurpose?, stackLevel: Int?) -> Int {
        let before = profiles.count
        profiles.removeAll { x in
            if let id { return x.profile.chargingProfileId == id }
            if let connectorId, x.connectorId != connectorId { return false }
            if let purpose, x.profile.chargingProfilePurpose != purpose { return false }
            if let stackLevel, x.profile.stackLevel != stackLevel { return false }
            return true
        }
        return before - profiles.count
    }

    /// A transaction ended: its TxProfiles go (OCPP 1.6 §3.13.1).
    public mutating func transactionEnded(connectorId: Int) {
        profiles.removeAll { $0.connectorId == connectorId && $0.profile.chargingProfilePurpose == .TxProfile }
    }

    /// The limit of one purpose on a connector at `t`: the highest stack level that sets one.
    public func limit(purpose: ProfilePurpose, connectorId: Int, at t: Int64, txStart: Int64?) -> RateLimit? {
        var best: (level: Int, specific: Bool, limit: RateLimit)? = nil
        for x in profiles where x.profile.chargingProfilePurpose == purpose {
            let applies = purpose == .ChargePointMaxProfile ? x.connectorId == 0
                : purpose == .TxDefaultProfile ? (x.connectorId == 0 || x.connectorId == connectorId)
                : x.connectorId == connectorId
            guard applies, let l = x.limit(at: t, txStart: txStart) else { continue }
            let specific = x.connectorId == connectorId
            if best == nil || x.profile.stackLevel > best!.level || (x.profile.stackLevel == best!.level && specific && !best!.specific) {
                best = (x.profile.stackLevel, specific, l)
            }
        }
        return best?.limit
    }

    /// Every instant in (from, to) where some profile on the connector (or the station) may change.
    public func changes(connectorId: Int, from: Int64, to: Int64, txStart: Int64?) -> [Int64] {
        profiles.filter { $0.connectorId == 0 || $0.connectorId == connectorId || connectorId == 0 }
            .flatMap { $0.changes(from: from, to: to, txStart: txStart) }
    }
}
