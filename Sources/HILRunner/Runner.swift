// Runs a scenario on the simulated board in virtual time: the simulation's own invariants every cycle,
// the expectations against the plant's truth and the controller's log, a trace row every trace period.
import BoardFile
import Grid
import ChargerCore
import ChargerRuntime
import StationLoop
import LoopContract
import Foundation
import SimPlant

/// One expectation's verdict, with the time and the values that decided it.
public struct Verdict: Sendable {
    public var expectation: String
    public var passed: Bool
    public var detail: String
}

/// A row of the trace (one gun at one instant).
public struct TraceRow: Sendable {
    public var t: Double
    public var gun: Int
    public var phase: SessionPhase
    public var vehicleVoltage: Double, chargerVoltage: Double, current: Double, powerKW: Double
    public var limitKW: Double
    public var binding: LimitSource
    public var soc: Double
    public var gunTemperature: Double
    public var faults: String
}

/// The station at one trace time: the plant's delivered power and the limit the station is held to (the
/// board's grid connection, or a lower station setpoint from the grid).
public struct StationRow: Sendable {
    public var t: Double
    public var powerKW: Double
    public var limitKW: Double
}

public struct ScenarioResult: Sendable {
    public var scenario: String
    public var file: String
    public var board: String = ""
    public var station: [StationRow] = []
    public var verdicts: [Verdict]
    public var violations: [String]
    public var trace: [TraceRow]
    /// Faults as latched (time, gun, code) and state changes, for the plot.
    public var faultMarks: [(t: Double, gun: Int, code: String)]
    public var phaseMarks: [(t: Double, gun: Int, phase: String)]
    public var endTime: Double
    public var wallSeconds: Double
    /// FNV-1a of the trace: equal for a bit-for-bit equal run.
    public var traceHash: UInt64
    public var passed: Bool { verdicts.allSatisfy(\.passed) && violations.isEmpty }
}

/// Holds the observer the simulation calls every cycle. The observer is a value: its record runs on
/// `self` in place, so the per-cycle reads and writes of its arrays need no dynamic exclusivity check
/// (as a class, these were about a tenth of a campaign's time, perf); the box costs one per cycle.
final class ObserverBox {
    var value: ScenarioObserver
    init(_ v: ScenarioObserver) { value = v }
}

/// What the observer records cycle by cycle.
struct ScenarioObserver {
    let gunCount: Int
    var trace: [TraceRow] = []
    var nextTrace = Instant.zero
    let tracePeriod: TimeSpan
    var wasClosed: [Bool]
    var lastCurrent: [Amps]
    /// Non-emergency openings: (time, current just before).
    var openings: [[(Double, Double)]]
    var maxPower: [Watts]
    /// power-never-above windows (gun nil: station) with the peak seen in each, and energy-share windows
    /// with the energy (Wh) inside and in all.
    var powerWindows: [(gun: Int?, from: Instant?, until: Instant?, peak: Watts)] = []
    var energyWindows: [(gun: Int?, from: Instant, until: Instant, inside: Double, total: Double)] = []
    var periodHours = 0.001 / 3600
    var maxStation = Watts.zero
    var bindingAt: [Int: [(Instant, LimitSource)]] = [:]
    /// Each gun's last binding source recorded (nil: none yet), so that a cycle without a change costs no
    /// dictionary lookup (the campaign's per-cycle budget, charger-bench section 7).
    var lastBinding: [LimitSource?]
    var phaseAt: [Int: [(Instant, SessionPhase)]] = [:]
    var lastPhase: [SessionPhase]
    var phaseMarks: [(Double, Int, String)] = []
    /// Per gun: (t, current) samples while some current-below window applies.
    /// "≤ max within `within` after `after`, and below from then until `until`": when it first got there,
    /// and the worst value seen after that.
    var currentWatch: [(gun: Int, after: Instant, until: Instant?, max: Amps, reachedAt: Instant?, worst: Double, worstAt: Double)] = []
    var voltageWatch: [(gun: Int, after: Instant, until: Instant?, max: Volts, reachedAt: Instant?, worst: Double, worstAt: Double)] = []
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    var stationTrace: [StationRow] = []
    /// V2G: per gun with a driver's plan, its departure (run time) and target, and when the car's state of
    /// charge first reached the target at or before the departure.
    var departures: [(gun: Int, at: Instant, target: Double, reachedAt: Instant?, socAtDeparture: Double?)] = []

    init(gunCount: Int, tracePeriod: TimeSpan) {
        self.gunCount = gunCount
        self.tracePeriod = tracePeriod
        wasClosed = Array(repeating: false, count: gunCount)
        lastCurrent = Array(repeating: .zero, count: gunCount)
        openings = Array(repeating: [], count: gunCount)
        maxPower = Array(repeating: .zero, count: gunCount)
        lastPhase = Array(repeating: .unplugged, count: gunCount)
        lastBinding = Array(repeating: nil, count: gunCount)
    }

    mutating func mix(_ v: UInt64) { hash = (hash ^ v) &* 0x100_0000_01b3 }

    mutating func record(_ s: Simulation) {
        let now = s.now
        var station = Watts.zero
        // The watch lists are empty in most runs (the campaign has none): a loop that writes into an
        // array makes it unique before its first pass, which allocated a copy of each empty list every
        // cycle (a third of the observer, 5 % of the campaign's instructions, measured with callgrind).
        let windows = !powerWindows.isEmpty || !energyWindows.isEmpty
        let watches = !currentWatch.isEmpty || !voltageWatch.isEmpty || !departures.isEmpty
        for g in 0..<gunCount {
            // The plant's gun read in place (a copy of it carries the car and both message sets).
            var pg = (k1: false, k2: false, vehicleSide: Volts.zero, chargerSide: Volts.zero, current: Amps.zero)
            s.plant.withGun(g) { pg = ($0.k1.closed, $0.k2.closed, $0.vehicleSide, $0.chargerSide, $0.current) }
            let closed = pg.k1 || pg.k2
            let power = pg.vehicleSide * pg.current
            station += power
            if power > maxPower[g] { maxPower[g] = power }
            if windows { recordWindows(gun: g, power: power, now: now) }
            // Only an opening asks whether an emergency caused it.
            if wasClosed[g] && !closed && (s.faultsInForce(gun: g).strongestReaction ?? .derate) != .emergency {
                openings[g].append((now.seconds, lastCurrent[g].value))
            }
            wasClosed[g] = closed
            lastCurrent[g] = pg.current
            let phase = s.phase(g)
            if phase != lastPhase[g] {
                lastPhase[g] = phase
                phaseMarks.append((now.seconds, g, phase.name))
                phaseAt[g, default: []].append((now, phase))
            }
            if watches { recordWatches(s, gun: g, current: pg.current, chargerSide: pg.chargerSide, now: now) }
            let b = s.binding(gun: g)
            if lastBinding[g] != b { lastBinding[g] = b; bindingAt[g, default: []].append((now, b)) }
            mix(UInt64(bitPattern: Int64(pg.current.value * 1000))); mix(UInt64(phase.rawValue))
        }
        if station > maxStation { maxStation = station }
        if windows { recordWindows(gun: nil, power: station, now: now) }
        if now >= nextTrace { recordTrace(s, station: station, now: now) }
    }

    /// The power and energy windows of one gun (nil: the station) this cycle.
    mutating func recordWindows(gun g: Int?, power: Watts, now: Instant) {
        for i in powerWindows.indices
        where powerWindows[i].gun == g && (powerWindows[i].from.map { now >= $0 } ?? true) && (powerWindows[i].until.map { now < $0 } ?? true) {
            if power > powerWindows[i].peak { powerWindows[i].peak = power }
        }
        for i in energyWindows.indices where energyWindows[i].gun == g {
            let wh = power.value * periodHours
            energyWindows[i].total += wh
            if now >= energyWindows[i].from && now < energyWindows[i].until { energyWindows[i].inside += wh }
        }
    }

    /// The current and voltage watches and the V2G departures of gun `g` this cycle.
    mutating func recordWatches(_ s: Simulation, gun g: Int, current: Amps, chargerSide: Volts, now: Instant) {
        for i in currentWatch.indices
        where currentWatch[i].gun == g && now >= currentWatch[i].after && (currentWatch[i].until.map { now <= $0 } ?? true) {
            if currentWatch[i].reachedAt == nil {
                if current <= currentWatch[i].max { currentWatch[i].reachedAt = now }
            } else if current.value > currentWatch[i].worst { currentWatch[i].worst = current.value; currentWatch[i].worstAt = now.seconds }
        }
        for i in voltageWatch.indices
        where voltageWatch[i].gun == g && now >= voltageWatch[i].after && (voltageWatch[i].until.map { now <= $0 } ?? true) {
            if voltageWatch[i].reachedAt == nil {
                if chargerSide <= voltageWatch[i].max { voltageWatch[i].reachedAt = now }
            } else if chargerSide.value > voltageWatch[i].worst { voltageWatch[i].worst = chargerSide.value; voltageWatch[i].worstAt = now.seconds }
        }
        for i in departures.indices where departures[i].gun == g && departures[i].reachedAt == nil {
            var soc: Double? = nil
            s.plant.withGun(g) { soc = $0.car?.soc }
            if let soc {
                if now <= departures[i].at && soc >= departures[i].target { departures[i].reachedAt = now }
                if now <= departures[i].at { departures[i].socAtDeparture = soc }
            }
        }
    }

    /// One row of the trace per gun and one of the station, every trace period.
    mutating func recordTrace(_ s: Simulation, station: Watts, now: Instant) {
        nextTrace = nextTrace + tracePeriod
        var limit = s.spec.gridLimit
        if let sp = s.stationSetpoint, sp < limit { limit = max(sp, .zero) }
        stationTrace.append(StationRow(t: now.seconds, powerKW: station.kilowatts, limitKW: limit.kilowatts))
        for g in 0..<gunCount {
            let pg = s.plant.guns[g]
            let o = s.outputs.guns[g]
            let st = s.status(gun: g)
            trace.append(
                TraceRow(
                    t: now.seconds, gun: g, phase: s.phase(g), vehicleVoltage: pg.vehicleSide.value, chargerVoltage: pg.chargerSide.value,
                                  current: pg.current.value, powerKW: (pg.vehicleSide * pg.current).kilowatts, limitKW: o.powerLimit.kilowatts,
                                  binding: o.binding, soc: st.soc, gunTemperature: st.gunTemperature.value,
                                  faults: st.faults.codes.map(\.name).joined(separator: "|")))
        }
    }

    func value<T>(_ series: [(Instant, T)]?, at t: Instant) -> T? {
        guard let series else { return nil }
        var v: T? = nil
        for (at, x) in series { if at <= t { v = x } else { break } }
        return v
    }
}

public enum ScenarioRunner {
    /// Runs `scenario` to its end and judges every expectation.
    public static func run(_ scenario: Scenario) -> ScenarioResult {
        let wall0 = Date()
        let sim = Simulation(board: scenario.board, cars: scenario.cars, injections: scenario.events)
        var rec = ScenarioObserver(gunCount: scenario.board.spec.gunCount, tracePeriod: scenario.tracePeriod)
        for e in scenario.expectations {
            if case .currentBelow(let g, let max, let after, _, let until) = e {
                rec.currentWatch.append((g, after, until, max, nil, 0, 0))
            }
            if case .voltageBelow(let g, let max, let after, _, let until) = e {
                rec.voltageWatch.append((g, after, until, max, nil, 0, 0))
            }
            if case .powerNever(let g, _, let from, let until) = e { rec.powerWindows.append((g, from, until, .zero)) }
            if case .energyShare(let g, let from, let until, _, _) = e { rec.energyWindows.append((g, from, until, 0, 0)) }
        }
        rec.periodHours = scenario.board.spec.period.seconds / 3600
        if let grid = scenario.grid {
            for (g, plan) in grid.plans.enumerated() {
                guard let plan else { continue }
                rec.departures.append((g, grid.clock.instant(epochMillis: plan.departure), plan.targetSoc, nil, nil))
            }
        }
        let box = ObserverBox(rec)
        sim.observer = { box.value.record($0) }
        let end = Instant.zero + scenario.duration
        // Not before the last instant an expectation names (a state at 130 s needs the run at 130 s).
        var lastNamed = Instant.zero + .seconds(1)
        for e in scenario.expectations {
            switch e {
            case .state(_, let at, _), .binding(_, let at, _): if at > lastNamed { lastNamed = at }
            case .currentBelow(_, _, let after, let within, let until), .voltageBelow(_, _, let after, let within, let until):
                let t = until ?? (after + within)
                if t > lastNamed { lastNamed = t }
            default: break
            }
        }
        // The grid's composite limit (time of use) every 100 ms of virtual time, as chargerd feeds it.
        let gridEvery = TimeSpan.ms(100)
        var nextGrid = Instant.zero
        var authorization = scenario.authorization
        while sim.now < end {
            if scenario.grid != nil || authorization != nil, sim.now >= nextGrid {
                nextGrid = nextGrid + gridEvery
                var feed = scenario.grid?.feed(at: sim.now, guns: observations(sim)) ?? GridFeed()
                authorization?.apply(&feed, sim: sim)
                sim.setGridFeed(feed)
            }
            sim.cycle()
            if scenario.endWhenCarsGone && sim.allCarsGone && sim.now > lastNamed && pendingEvents(sim) == 0 { break }
        }
        var verdicts: [Verdict] = []
        rec = box.value
        for e in scenario.expectations { verdicts.append(judge(e, sim: sim, rec: rec)) }
        return ScenarioResult(scenario: scenario.name, file: scenario.file, board: scenario.board.name, station: rec.stationTrace,
                              verdicts: verdicts, violations: sim.violations.map(\.description),
                              trace: rec.trace, faultMarks: sim.faults.map { (t: $0.raisedAt.seconds, gun: Int($0.gun), code: $0.code.name) },
                              phaseMarks: rec.phaseMarks.map { (t: $0.0, gun: $0.1, phase: $0.2) },
                              endTime: sim.now.seconds, wallSeconds: Date().timeIntervalSince(wall0), traceHash: rec.hash)
    }

    static func pendingEvents(_ sim: Simulation) -> Int { sim.pendingTimedInjections }

    /// What the grid layer observes of each gun: chargerd's grid desk's mapping, from the view the loop
    /// would publish now.
    static func observations(_ sim: Simulation) -> [GunObservation] {
        StationObservation(view: sim.stationView(), refuseOnMetering: sim.spec.metering.refuseSessions).guns
    }

    static func judge(_ e: Expectation, sim: Simulation, rec: ScenarioObserver) -> Verdict {
        func v(_ ok: Bool, _ detail: String) -> Verdict { Verdict(expectation: e.text, passed: ok, detail: detail) }
        switch e {
        case .state(let g, let at, let phase):
            guard sim.now >= at else { return v(false, "the run ended at \(fmt(sim.now.seconds, 3)) s, before \(fmt(at.seconds, 3)) s") }
            let p = rec.value(rec.phaseAt[g], at: at) ?? .unplugged
            return v(p == phase, "gun\(g) was \(p.name) at \(fmt(at.seconds, 3)) s")
        case .fault(let code, let gun, let after, let within):
            let hits = sim.faults.filter { $0.code == code && (gun == nil || Int($0.gun) == gun || $0.gun < 0) && $0.raisedAt >= after }
            guard let first = hits.first else {
                let seen = sim.faults.map { "\($0.code.name)@\(fmt($0.raisedAt.seconds, 3))s" }
                return v(false, "not raised after \(fmt(after.seconds, 3)) s (faults: \(seen.isEmpty ? "none" : seen.joined(separator: ", ")))")
            }
            let dt = first.raisedAt - after
            return v(dt <= within, "raised at \(fmt(first.raisedAt.seconds, 3)) s (\(fmt(dt.seconds * 1000, 1)) ms after), \(first.reaction.name), value \(fmt(first.value, 3))")
        case .noFault:
            let latched = sim.faults.filter { $0.reaction != .derate && $0.reaction != .reconnect }
            return v(latched.isEmpty, latched.isEmpty ? "none" : latched.map { "\($0.code.name)@\(fmt($0.raisedAt.seconds, 3))s" }.joined(separator: ", "))
        case .notFault(let code):
            let hit = sim.faults.first { $0.code == code }
            return v(hit == nil, hit.map { "raised at \(fmt($0.raisedAt.seconds, 3)) s" } ?? "never raised")
        case .openingCurrent(let g, let max, let n):
            let o = rec.openings[g]
            let worst = o.max { $0.1 < $1.1 }
            let ok = o.count >= n && o.allSatisfy { $0.1 <= max.value }
            return v(ok, "\(o.count) non-emergency opening(s)" + (worst.map { ", worst \(fmt($0.1, 2)) A at \(fmt($0.0, 3)) s" } ?? ""))
        case .currentBelow(let g, let max, let after, let within, _):
            guard let w = rec.currentWatch.first(where: { $0.gun == g && $0.max == max && $0.after == after }) else { return v(false, "no window") }
            guard let at = w.reachedAt else { return v(false, "never at or below \(fmt(max.value, 1)) A after \(fmt(after.seconds, 3)) s") }
            let dt = at - after
            return v(dt <= within && w.worst <= max.value, "≤ \(fmt(max.value, 1)) A at \(fmt(at.seconds, 3)) s (\(fmt(dt.seconds * 1000, 1)) ms after), highest since \(fmt(w.worst, 2)) A" + (w.worst > 0 ? " at \(fmt(w.worstAt, 3)) s" : ""))
        case .voltageBelow(let g, let max, let after, let within, _):
            guard let w = rec.voltageWatch.first(where: { $0.gun == g && $0.max == max && $0.after == after }) else { return v(false, "no window") }
            guard let at = w.reachedAt else { return v(false, "never at or below \(fmt(max.value, 1)) V after \(fmt(after.seconds, 3)) s") }
            let dt = at - after
            return v(dt <= within && w.worst <= max.value, "≤ \(fmt(max.value, 1)) V at \(fmt(at.seconds, 3)) s (\(fmt(dt.seconds * 1000, 1)) ms after), highest since \(fmt(w.worst, 1)) V")
        case .energy(let g, let lo, let hi):
            let en = sim.frame.inputs.guns[g].meterEnergy
            var ok = true
            if let lo, en < lo { ok = false }
            if let hi, en > hi { ok = false }
            return v(ok, "\(fmt(en.kilowattHours, 3)) kWh by the meter")
        case .powerNever(let g, let max, let from, let until):
            let peak = rec.powerWindows.first { $0.gun == g && $0.from == from && $0.until == until }?.peak ?? .zero
            return v(peak <= max, "peak \(fmt(peak.kilowatts, 2)) kW")
        case .energyShare(let g, let from, let until, let lo, let hi):
            guard let w = rec.energyWindows.first(where: { $0.gun == g && $0.from == from && $0.until == until }), w.total > 0 else {
                return v(false, "no energy delivered")
            }
            let share = w.inside / w.total
            var ok = true
            if let lo, share < lo { ok = false }
            if let hi, share > hi { ok = false }
            return v(ok, "\(fmt(share * 100, 1)) % (\(fmt(w.inside / 1000, 2)) of \(fmt(w.total / 1000, 2)) kWh)")
        case .binding(let g, let at, let source):
            guard sim.now >= at else { return v(false, "the run ended at \(fmt(sim.now.seconds, 3)) s") }
            let b = rec.value(rec.bindingAt[g], at: at) ?? .none
            return v(b == source, "\(b.name) at \(fmt(at.seconds, 3)) s")
        case .endState(let want):
            let summary = sim.summary(timedOut: !sim.allCarsGone)
            let got = summary.endState.rawValue
            return v(got == want, "ended \(got) at \(fmt(sim.now.seconds, 3)) s")
        case .exported(let g, let lo, let hi):
            var en = WattHours.zero
            for i in 0..<sim.spec.gunCount where g == nil || g == i { en += sim.frame.inputs.guns[i].meterExportEnergy }
            var ok = true
            if let lo, en < lo { ok = false }
            if let hi, en > hi { ok = false }
            return v(ok, "\(fmt(en.kilowattHours, 3)) kWh by the meters' export registers")
        case .departureSoc(let g):
            guard let d = rec.departures.first(where: { $0.gun == g }) else { return v(false, "no driver's plan") }
            if let r = d.reachedAt {
                return v(true, "\(fmt(d.target, 0)) % reached at \(fmt(r.seconds, 0)) s, \(fmt((d.at - r).seconds / 3600, 2)) h before the departure")
            }
            return v(false, "\(d.socAtDeparture.map { fmt($0, 1) } ?? "?") % at the departure (\(fmt(d.at.seconds, 0)) s), target \(fmt(d.target, 0)) %")
        }
    }
}
