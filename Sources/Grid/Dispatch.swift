// The composite grid limit: the EMS, OCPP's charging profiles, the time-of-use schedule and the guns'
// own ratings, computed in one place, off the loop. The loop gets the result (`GridFeed`) whole; OCPP's
// GetCompositeSchedule answers from the same function, so it says what the controller applies.
import ChargerCore

/// The site's electrical facts the conversions need.
public struct SiteElectrical: Sendable, Equatable {
    /// Phase-to-neutral voltage of the station's AC supply: an OCPP limit in A on connector 0 is AC
    /// input current per phase (P = A × this × phases).
    public var acPhaseVoltage = Volts(230)
    public var acPhases = 3
    public init() {}
}

/// One gun's OCPP transaction, as the dispatcher needs it.
public struct TransactionInfo: Sendable, Equatable, Codable {
    public var id: Int
    public var startedAt: Int64
    public init(id: Int, startedAt: Int64) { self.id = id; self.startedAt = startedAt }
}

/// A limit from one source: power, or current (OCPP in A on a gun).
public struct SourcedLimit: Sendable, Equatable {
    public var power: Watts?
    public var current: Amps?
    public var source: GridSource
    /// The limit in watts at `volts` (current limits scale with the output voltage).
    public func watts(at volts: Volts) -> Watts { power ?? Watts((current?.value ?? .infinity) * volts.value) }
}

/// What a driver set at the plug for V2G (docs/grid.md "V2G"): the lowest state of charge the car may be
/// discharged to (above the car's own minimum, which the controller holds whatever this says), the
/// departure time, and the state of charge the car must have again by then.
public struct DriverPlan: Sendable, Equatable {
    public var minSoc: Double
    /// Epoch ms.
    public var departure: Int64
    public var targetSoc: Double
    public init(minSoc: Double, departure: Int64, targetSoc: Double) {
        self.minSoc = minSoc; self.departure = departure; self.targetSoc = targetSoc
    }
    /// Why the plan is refused, nil when it is valid at epoch ms `now`.
    public func problem(now: Int64) -> String? {
        guard minSoc.isFinite, (0...100).contains(minSoc) else { return "min-soc \(minSoc) % outside 0...100" }
        guard targetSoc.isFinite, targetSoc > minSoc, targetSoc <= 100 else { return "target \(targetSoc) % must be above min-soc (\(minSoc) %) and at most 100" }
        guard departure > now else { return "the departure is not in the future" }
        guard departure - now <= 7 * 86_400_000 else { return "the departure is more than 7 days away" }
        return nil
    }
}

/// Everything the grid interfaces have said, as a plain value.
public struct GridState: Sendable, Equatable {
    public var clock: StationClock
    public var electrical = SiteElectrical()
    /// nil: no EMS configured (the site's time-of-use schedule applies).
    public var ems: EMSState?
    /// The site file's schedule (the EMS's own copy replaces it while an EMS is configured).
    public var siteTOU: TimeOfUse
    public var profiles = ProfileStore()
    /// Per gun: the OCPP transaction running, if any.
    public var transactions: [TransactionInfo?]
    /// Per gun: a session may start (free vend where no OCPP is configured).
    public var authorized: [Bool]
    /// Per gun: the word on the car's VIN (plug and charge), and the identity that authorized the session
    /// in force (for the journal's session records; the VIN as the site shows it).
    public var vinChecks: [VINCheck]
    public var identities: [SessionIdentity?]
    public var stopCount: [UInt32]
    /// Per gun: made Inoperative by the central system (OCPP ChangeAvailability).
    public var unavailable: [Bool]
    public var gridConnection: Watts
    public var ratings: [Watts]
    /// Per gun: the V2G plan the driver set at the plug, if any (cleared when the car leaves).
    public var plans: [DriverPlan?]

    public init(clock: StationClock, ems: EMSSettings?, tou: TimeOfUse, gridConnection: Watts, ratings: [Watts], freeVend: Bool) {
        self.clock = clock
        let n = ratings.count
        self.ems = ems.map { EMSState(settings: $0, gunCount: n, tou: tou) }
        siteTOU = tou
        transactions = Array(repeating: nil, count: n)
        authorized = Array(repeating: freeVend, count: n)
        vinChecks = Array(repeating: .notUsed, count: n)
        identities = Array(repeating: nil, count: n)
        stopCount = Array(repeating: 0, count: n)
        unavailable = Array(repeating: false, count: n)
        plans = Array(repeating: nil, count: n)
        self.gridConnection = gridConnection
        self.ratings = ratings
    }

    public var gunCount: Int { ratings.count }
    public var tou: TimeOfUse { ems?.tou ?? siteTOU }

    /// The station's grid limits at `t` (epoch ms): each source that sets one.
    /// `now` (epoch ms) is when the state was last advanced; a later `t` projects the EMS fail-safe's end.
    public func stationLimits(at t: Int64, now: Int64? = nil) -> [SourcedLimit] {
        var out: [SourcedLimit] = []
        let e = now.map { ems?.projectedStationLimit(at: clock.instant(epochMillis: t), now: clock.instant(epochMillis: $0)) } ?? ems?.stationLimit
        if let e { out.append(SourcedLimit(power: e.0, source: e.1)) }
        if let (w, src) = tou.limit(atSecondOfDay: clock.localSecondOfDay(epochMillis: t)) { out.append(SourcedLimit(power: w, source: src)) }
        if let l = profiles.limit(purpose: .ChargePointMaxProfile, connectorId: 0, at: t, txStart: nil) {
            let w = l.unit == .W ? l.value : l.value * electrical.acPhaseVoltage.value * Double(l.phases ?? electrical.acPhases)
            out.append(SourcedLimit(power: Watts(w), source: .ocppChargePointMax))
        }
        return out
    }

    /// A gun's own grid limits at `t` (EMS per-gun setpoint, OCPP TxProfile or else TxDefaultProfile).
    public func gunLimits(_ g: Int, at t: Int64) -> [SourcedLimit] {
        var out: [SourcedLimit] = []
        if let w = ems?.gunLimit(g) { out.append(SourcedLimit(power: w, source: .ems)) }
        let tx = transactions[g]
        let c = g + 1
        var ocpp: (RateLimit, GridSource)? = nil
        if tx != nil, let l = profiles.limit(purpose: .TxProfile, connectorId: c, at: t, txStart: tx?.startedAt) { ocpp = (l, .ocppTx) }
        else if let l = profiles.limit(purpose: .TxDefaultProfile, connectorId: c, at: t, txStart: tx?.startedAt) { ocpp = (l, .ocppTxDefault) }
        if let (l, src) = ocpp {
            out.append(l.unit == .W ? SourcedLimit(power: Watts(l.value), source: src) : SourcedLimit(current: Amps(l.value), source: src))
        }
        return out
    }

    /// The lowest of `limits` at `volts`, with its source.
    static func lowest(_ limits: [SourcedLimit], at volts: Volts) -> (Watts, GridSource)? {
        var best: (Watts, GridSource)? = nil
        for l in limits {
            let w = l.watts(at: volts)
            if best == nil || w < best!.0 { best = (w, l.source) }
        }
        return best
    }

    /// `feed(at:guns:)` with only the guns' output voltages known (no V2G rule can apply).
    public func feed(at now: Instant, volts: [Volts]) -> GridFeed {
        feed(at: now, guns: volts.map { v in var o = GunObservation(); o.voltage = v; return o })
    }

    /// V2G's discharge-at-peak rule for gun `g` at epoch ms `t` (docs/grid.md "V2G"): in a peak period, a gun
    /// whose car offers discharge and whose driver set a plan exports `TimeOfUse.peakDischarge` while its
    /// state of charge is above the plan's minimum (and the car's) and the hours between the peak's end and
    /// the departure can still put back, at 80 % of the gun's share of the connection, 1.25 times what the
    /// car will then need (what it lacks now plus the rest of the peak's export); otherwise it holds at
    /// zero until the peak ends. Nil: the rule does not apply. The returned value is a signed setpoint.
    public func peakDischargeSetpoint(_ g: Int, at t: Int64, observation o: GunObservation) -> Watts? {
        guard let w = tou.peakDischarge, w > .zero, g < plans.count, let plan = plans[g], o.offersDischarge,
              o.soc.isFinite, o.batteryEnergy > .zero else { return nil }
        let second = clock.localSecondOfDay(epochMillis: t)
        guard let toEnd = tou.secondsToPeakEnd(atSecondOfDay: second) else { return nil }
        let floor = max(plan.minSoc, o.carMinSoc)
        let lacking = max(0, plan.targetSoc - o.soc) / 100 * o.batteryEnergy.value
        var rate = min(ratings[g].value, gridConnection.value / Double(max(1, gunCount)))
        if let valley = tou.valleyLimit { rate = min(rate, valley.value / Double(max(1, gunCount))) }
        let afterPeakHours = Double(plan.departure - (t + Int64(toEnd) * 1000)) / 3_600_000
        let restOfPeak = w.value * Double(toEnd) / 3600
        let feasible = afterPeakHours > 0 && afterPeakHours * rate * 0.8 >= 1.25 * (lacking + restOfPeak)
        return o.soc > floor + 0.5 && feasible ? -w : .zero
    }

    /// What the loop gets at `now`: the station cap, each gun's cap (power and/or current; negative asks
    /// for export), the authorizations and the remote stops. `guns` are the loop's observations (a gun
    /// they do not cover yet counts as at 0 V, with no car).
    public func feed(at now: Instant, guns: [GunObservation]) -> GridFeed {
        let t = clock.epochMillis(now)
        var f = GridFeed()
        if let (w, src) = Self.lowest(stationLimits(at: t), at: .zero) { f.station = w; f.stationSource = src }
        for g in 0..<gunCount {
            let limits = gunLimits(g, at: t)
            for l in limits {
                if let p = l.power { f.guns[g] = min(f.guns[g] ?? p, p) }
                if let a = l.current { f.gunCurrents[g] = min(f.gunCurrents[g] ?? a, a) }
            }
            let volts = g < guns.count ? guns[g].voltage : .zero
            if let (_, src) = Self.lowest(limits, at: max(volts, Volts(1))) { f.gunSources[g] = src }
            if g < guns.count, let sp = peakDischargeSetpoint(g, at: t, observation: guns[g]), sp < (f.guns[g] ?? Watts(.infinity)) {
                f.guns[g] = sp
                f.gunSources[g] = .touPeak
            }
            f.authorized[g] = authorized[g]
            f.vinChecks[g] = vinChecks[g]
            f.stopCount[g] = stopCount[g]
            f.unavailable[g] = unavailable[g]
        }
        return f
    }

    /// A connector's composite limit at `t` in watts, all sources and the gun's rating (connector 0:
    /// the station, bounded by its grid connection), with the binding source (nil: a rating binds).
    public func composite(connectorId c: Int, at t: Int64, volts: Volts, now: Int64? = nil) -> (Watts, GridSource?) {
        var best: (Watts, GridSource?) = (gridConnection, nil)
        if let (w, src) = Self.lowest(stationLimits(at: t, now: now), at: volts), w < best.0 { best = (w, src) }
        guard c > 0 else { return best }
        if ratings[c - 1] < best.0 { best = (ratings[c - 1], nil) }
        if let (w, src) = Self.lowest(gunLimits(c - 1, at: t), at: volts), w < best.0 { best = (w, src) }
        return best
    }

    /// GetCompositeSchedule: the composite limit from `from` for `duration` seconds as periods (start
    /// offset in s, limit in `unit`), equal neighbours merged. A is output current at `volts` for a gun,
    /// AC input current per phase for connector 0.
    public func compositeSchedule(connectorId c: Int, from: Int64, duration: Int, unit: RateUnit, volts: Volts) -> [SchedulePeriod] {
        let to = from + Int64(min(max(duration, 0), GetCompositeScheduleReq.maxDuration)) * 1000
        var times: Set<Int64> = [from]
        let txStart = c > 0 ? transactions[c - 1]?.startedAt : nil
        for x in profiles.changes(connectorId: c, from: from, to: to, txStart: txStart) { times.insert(x) }
        // Time-of-use boundaries: every period start on each local day the window touches.
        if !tou.periods.isEmpty {
            var midnight = clock.nextLocalMidnight(after: from) - 86_400_000
            while midnight < to {
                for p in tou.periods {
                    let x = midnight + Int64(p.startMinute) * 60_000
                    if x > from && x < to { times.insert(x) }
                }
                midnight += 86_400_000
            }
        }
        if let e = ems, e.mode == .failsafe {
            let end = from + Int64(e.failsafeRemaining(at: clock.instant(epochMillis: from)).seconds * 1000)
            if end > from && end < to { times.insert(end) }
        }
        var periods: [SchedulePeriod] = []
        for x in times.sorted() {
            let (w, _) = composite(connectorId: c, at: x, volts: volts, now: from)
            var value: Double
            if unit == .W { value = w.value }
            else if c == 0 { value = w.value / (electrical.acPhaseVoltage.value * Double(electrical.acPhases)) }
            else { value = w.value / max(volts.value, 1) }
            value = (value * 10).rounded(.down) / 10   // OCPP: limits in 0.1 steps
            if periods.last?.limit == value { continue }
            periods.append(SchedulePeriod(startPeriod: Int((x - from) / 1000), limit: value))
        }
        return periods
    }
}
