// HIL scenario files (HIL/scenarios/*.toml): the board, the cars, a timeline of events and the
// expectations. Events use chargerd's injection grammar (WHAT[:GUN][=VALUE]), so a scenario line and a
// `chargerd --inject` say the same thing. Format documented in HIL/README.md.
import BoardFile
import SiteFile
import Grid
import ChargerCore
import ChargerRuntime
import LoopContract
import Foundation
import SimPlant
import TOMLKit

public struct ScenarioError: Error, CustomStringConvertible {
    public var file: String
    public var key: String
    public var why: String
    public var description: String { key.isEmpty ? "\(file): \(why)" : "\(file): \(key): \(why)" }
}

/// What a scenario expects, each checked against the plant's truth or the controller's log.
public enum Expectation: Sendable {
    /// The gun's session phase at a time.
    case state(gun: Int, at: Instant, phase: SessionPhase)
    /// A fault with this code raised (on `gun`, or station-wide when nil matches any) within `within`
    /// after `after`.
    case fault(code: FaultCode, gun: Int?, after: Instant, within: TimeSpan)
    /// No fault latched during the whole run.
    case noFault
    /// No fault with this code during the whole run.
    case notFault(code: FaultCode)
    /// Plant current ≤ `max` before every non-emergency opening of K1/K2 on the gun (at least `minOpenings`).
    case openingCurrent(gun: Int, max: Amps, minOpenings: Int)
    /// Plant current ≤ `max` from `after + within` on, until `until` (or the end).
    case currentBelow(gun: Int, max: Amps, after: Instant, within: TimeSpan, until: Instant?)
    /// The charger's output voltage (charger side of K1/K2) ≤ `max` from `after + within` on, until `until`.
    case voltageBelow(gun: Int, max: Volts, after: Instant, within: TimeSpan, until: Instant?)
    /// Energy at the gun's meter over the run.
    case energy(gun: Int, atLeast: WattHours?, atMost: WattHours?)
    /// Power (plant truth) never above `max`, on a gun or the whole station (gun nil), within [from, until).
    case powerNever(gun: Int?, above: Watts, from: Instant?, until: Instant?)
    /// The share of the run's energy (plant truth, a gun or the station) delivered within [from, until).
    case energyShare(gun: Int?, from: Instant, until: Instant, atLeast: Double?, atMost: Double?)
    /// The limit source binding on a gun at a time.
    case binding(gun: Int, at: Instant, source: LimitSource)
    /// How the run ends: "completed" (every session ended normally), "faulted".
    case endState(String)
    /// V2G: energy exported over the run (the meters' export registers), on a gun or the whole station.
    case exported(gun: Int?, atLeast: WattHours?, atMost: WattHours?)
    /// V2G: the car on the gun had its driver's target state of charge again by the plan's departure.
    case departureSoc(gun: Int)

    public var text: String {
        switch self {
        case .state(let g, let at, let p): "gun\(g) is \(p.name) at \(fmt(at.seconds, 3)) s"
        case .fault(let c, let g, let after, let within):
            "\(c.name)\(g.map { " on gun\($0)" } ?? "") within \(fmt(within.seconds * 1000, 0)) ms after \(fmt(after.seconds, 3)) s"
        case .noFault: "no fault"
        case .notFault(let c): "never \(c.name)"
        case .openingCurrent(let g, let a, let n): "gun\(g): current ≤ \(fmt(a.value, 1)) A before every non-emergency K1/K2 opening (≥ \(n))"
        case .currentBelow(let g, let a, let after, let within, let until):
            "gun\(g): current ≤ \(fmt(a.value, 1)) A within \(fmt(within.seconds * 1000, 0)) ms after \(fmt(after.seconds, 3)) s" + (until.map { " until \(fmt($0.seconds, 3)) s" } ?? "")
        case .voltageBelow(let g, let v, let after, let within, let until):
            "gun\(g): output ≤ \(fmt(v.value, 1)) V within \(fmt(within.seconds * 1000, 0)) ms after \(fmt(after.seconds, 3)) s" + (until.map { " until \(fmt($0.seconds, 3)) s" } ?? "")
        case .energy(let g, let lo, let hi):
            "gun\(g): energy" + (lo.map { " ≥ \(fmt($0.kilowattHours, 3)) kWh" } ?? "") + (hi.map { " ≤ \(fmt($0.kilowattHours, 3)) kWh" } ?? "")
        case .powerNever(let g, let p, let from, let until):
            "\(g.map { "gun\($0)" } ?? "station"): power never above \(fmt(p.kilowatts, 1)) kW"
                + (from.map { " from \(fmt($0.seconds, 0)) s" } ?? "") + (until.map { " until \(fmt($0.seconds, 0)) s" } ?? "")
        case .energyShare(let g, let from, let until, let lo, let hi):
            "\(g.map { "gun\($0)" } ?? "station"): share of the energy between \(fmt(from.seconds, 0)) s and \(fmt(until.seconds, 0)) s"
                + (lo.map { " ≥ \(fmt($0 * 100, 0)) %" } ?? "") + (hi.map { " ≤ \(fmt($0 * 100, 0)) %" } ?? "")
        case .binding(let g, let at, let s): "gun\(g): limit source \(s.name) at \(fmt(at.seconds, 3)) s"
        case .endState(let s): "run ends \(s)"
        case .exported(let g, let lo, let hi):
            "\(g.map { "gun\($0)" } ?? "station"): exported" + (lo.map { " ≥ \(fmt($0.kilowattHours, 3)) kWh" } ?? "") + (hi.map { " ≤ \(fmt($0.kilowattHours, 3)) kWh" } ?? "")
        case .departureSoc(let g): "gun\(g): the driver's target SOC by the departure"
        }
    }
}

public struct Scenario: Sendable {
    public var name: String
    public var description: String
    public var file: String
    public var board: Board
    public var cars: [Int: CarProfile]
    public var events: [ScheduledInjection]
    public var duration: TimeSpan
    /// Stop early once every car has gone (default true).
    public var endWhenCarsGone: Bool
    public var expectations: [Expectation]
    /// Trace row period.
    public var tracePeriod: TimeSpan
    /// The site's grid state (time of use) and station clock, if the scenario names a site.
    public var grid: GridState? = nil
    /// Plug and charge: the cars' VINs decide their sessions (`[authorization]`), if the scenario says so.
    public var authorization: ScenarioAuthorization? = nil

    public init(name: String, description: String = "", file: String = "(memory)", board: Board, cars: [Int: CarProfile],
                events: [ScheduledInjection] = [], duration: TimeSpan, endWhenCarsGone: Bool = true,
                expectations: [Expectation] = [], tracePeriod: TimeSpan = .ms(100)) {
        self.name = name; self.description = description; self.file = file; self.board = board; self.cars = cars
        self.events = events; self.duration = duration; self.endWhenCarsGone = endWhenCarsGone
        self.expectations = expectations; self.tracePeriod = tracePeriod
    }

    /// Loads a scenario file. `boardsDirectory` resolves `board = "sim-60kw"` (a name) to a file; a value
    /// with a '/' or ending in .toml is a path relative to the scenario file. One function per table.
    public static func load(path: String, boardsDirectory: String) throws(ScenarioError) -> Scenario {
        func err(_ key: String, _ why: String) -> ScenarioError { ScenarioError(file: path, key: key, why: why) }
        guard let data = FileManager.default.contents(atPath: path) else { throw err("", "cannot read the file") }
        let root: TOMLTable
        let text = String(decoding: data, as: UTF8.self)
        if let r = TOMLGuard.check(text) { throw err("", "TOML refused at \(r)") }
        do { root = try TOMLTable(string: text) } catch { throw err("", "TOML syntax error: \(error)") }
        for k in root.keys where !["scenario", "car", "event", "expect", "authorization"].contains(k) {
            throw err(k, "unknown table (known: scenario, car, event, expect, authorization)")
        }
        guard let s = root["scenario"]?.table else { throw err("scenario", "missing [scenario] table") }
        for k in s.keys where !["name", "description", "board", "duration", "end_when_cars_gone", "trace_period", "site", "start"].contains(k) {
            throw err("scenario.\(k)", "unknown key")
        }
        guard let name = s["name"]?.string, !name.isEmpty else { throw err("scenario.name", "missing or not a string") }
        guard let boardName = s["board"]?.string else { throw err("scenario.board", "missing (a board name like \"sim-60kw\" or a path)") }
        let boardPath: String
        if boardName.contains("/") || boardName.hasSuffix(".toml") {
            boardPath = boardName.hasPrefix("/") ? boardName : (path as NSString).deletingLastPathComponent + "/" + boardName
        } else { boardPath = boardsDirectory + "/" + boardName + ".toml" }
        let board: Board
        do { board = try BoardLoader.load(path: boardPath) } catch { throw err("scenario.board", "\(error)") }
        guard board.plant != nil else { throw err("scenario.board", "board '\(board.name)' has no [plant]: scenarios run on sim- boards (bench boards through charger-plant)") }
        let r = ScenarioReader(path: path, spec: board.spec)
        var grid = try r.site(s, board: board)
        let duration = try r.seconds(s["duration"] ?? "3600 s", "scenario.duration")
        guard duration > 0, duration <= 48 * 3600 else { throw err("scenario.duration", "must be within 0...48 h") }
        let trace = try r.seconds(s["trace_period"] ?? "100 ms", "scenario.trace_period")
        guard trace >= board.spec.period.seconds, trace <= 60 else { throw err("scenario.trace_period", "must be one cycle ... 60 s") }
        let cars = try r.cars(root)
        if let plans = try r.plans(root, grid: grid) { grid!.plans = plans }
        let events = try r.events(root)
        var expectations: [Expectation] = []
        for (i, e) in (root["expect"]?.array ?? TOMLArray()).enumerated() {
            let key = "expect[\(i)]"
            guard let t = e.table else { throw err(key, "expected a table ([[expect]])") }
            expectations.append(try r.expectation(t, key))
        }
        guard !expectations.isEmpty else { throw err("expect", "a scenario needs at least one [[expect]]") }
        for (i, e) in expectations.enumerated() {
            if case .departureSoc(let g) = e, grid?.plans[g] == nil { throw err("expect[\(i)].gun", "no driver's plan on gun \(g) ([[car]] driver = ...)") }
        }
        var sc = Scenario(name: name, description: s["description"]?.string ?? "", file: path, board: board, cars: cars, events: events,
                          duration: .seconds(duration), endWhenCarsGone: s["end_when_cars_gone"]?.bool ?? true,
                          expectations: expectations, tracePeriod: .seconds(trace))
        sc.grid = grid
        sc.authorization = try r.authorization(root)
        return sc
    }
}

/// Reads the tables of one scenario file: its errors name the file and the key; times and quantities as
/// board files write them (a string, a number and its unit: QuantityText).
struct ScenarioReader {
    let path: String
    let spec: StationSpec

    func err(_ key: String, _ why: String) -> ScenarioError { ScenarioError(file: path, key: key, why: why) }

    func quantity(_ v: TOMLValueConvertible?, _ key: String, _ table: UnitTable) throws(ScenarioError) -> Double {
        guard let t = v?.string else { throw err(key, "expected a string with a unit (\(table.list)), e.g. \"1 \(table.units.keys.sorted().first ?? "")\"") }
        switch QuantityText.parse(t, table) {
        case .success(let x): return x
        case .failure(let e): throw err(key, e.description)
        }
    }

    func seconds(_ v: TOMLValueConvertible?, _ key: String) throws(ScenarioError) -> Double {
        let x = try quantity(v, key, .time)
        guard x >= 0 else { throw err(key, "'\(v?.string ?? "")': a time must be ≥ 0") }
        guard TimeSpan.checkedSeconds(x) != nil else { throw err(key, "'\(v?.string ?? "")': a time beyond 100 years") }
        return x
    }

    func gunIndex(_ v: TOMLValueConvertible?, _ key: String, default d: Int? = 0) throws(ScenarioError) -> Int? {
        guard let v else { return d }
        guard let g = v.int, g >= 0, g < spec.gunCount else { throw err(key, "gun must be 0...\(spec.gunCount - 1)") }
        return g
    }

    /// `site` and `start`: a site file (time of use) and the station clock at the start; the grid's
    /// composite limit is fed to the run every 100 ms of virtual time, as chargerd does.
    func site(_ s: TOMLTable, board: Board) throws(ScenarioError) -> GridState? {
        if let siteName = s["site"]?.string {
            let sitePath = siteName.hasPrefix("/") ? siteName : (path as NSString).deletingLastPathComponent + "/" + siteName
            let site: SiteConfig
            do { site = try SiteLoader.load(path: sitePath, board: board) } catch { throw err("scenario.site", "\(error)") }
            guard site.ems == nil, site.ocpp == nil else { throw err("scenario.site", "a scenario's site may have a time-of-use schedule only (EMS and OCPP peers run in wall-clock time: Tests/grid)") }
            guard let startText = s["start"]?.string, let start = Timestamp.parse(startText) else {
                throw err("scenario.start", "a site needs the station clock at the start, RFC 3339 (e.g. \"2026-11-24T16:00:00+08:00\")")
            }
            var g = GridState(clock: StationClock(epochMillisAtZero: start, utcOffsetSeconds: site.utcOffsetSeconds), ems: nil, tou: site.tou,
                              gridConnection: spec.gridLimit, ratings: (0..<spec.gunCount).map { spec.guns[$0].ratedPower }, freeVend: true)
            g.electrical = site.electrical
            return g
        }
        if s["start"] != nil { throw err("scenario.start", "only with a site") }
        return nil
    }

    /// `[[car]]`: at most one car per gun, each a `--car` profile.
    func cars(_ root: TOMLTable) throws(ScenarioError) -> [Int: CarProfile] {
        var cars: [Int: CarProfile] = [:]
        for (i, c) in (root["car"]?.array ?? TOMLArray()).enumerated() {
            let key = "car[\(i)]"
            guard let t = c.table else { throw err(key, "expected a table ([[car]])") }
            for k in t.keys where !["gun", "profile", "driver"].contains(k) { throw err("\(key).\(k)", "unknown key (gun, profile, driver)") }
            let g = try gunIndex(t["gun"], "\(key).gun")!
            guard cars[g] == nil else { throw err("\(key).gun", "a second car on gun \(g)") }
            do { cars[g] = try CarProfile.parse(t["profile"]?.string ?? "") } catch { throw err("\(key).profile", "\(error)") }
        }
        return cars
    }

    /// `[[car]] driver = "min-soc=40,departure=07:00"`: the V2G plan the driver sets at the plug (docs/grid.md
    /// "V2G"); the target is the car's own (`profile`'s target). Needs a site (the station clock): the
    /// departure is the first such local time after the car plugs in.
    func plans(_ root: TOMLTable, grid: GridState?) throws(ScenarioError) -> [DriverPlan?]? {
        var plans: [DriverPlan?] = Array(repeating: nil, count: spec.gunCount)
        var any = false
        for (i, c) in (root["car"]?.array ?? TOMLArray()).enumerated() {
            let key = "car[\(i)].driver"
            guard let t = c.table, let text = t["driver"]?.string else { continue }
            guard let grid else { throw err(key, "a driver's plan needs a site (the station clock)") }
            let g = try gunIndex(t["gun"], "car[\(i)].gun")!
            let profile: CarProfile
            do { profile = try CarProfile.parse(t["profile"]?.string ?? "") } catch { throw err("car[\(i)].profile", "\(error)") }
            var minSoc: Double? = nil, departure: Int? = nil
            for item in text.split(separator: ",") {
                let kv = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard kv.count == 2 else { throw err(key, "'\(item)': expected key=value (min-soc, departure)") }
                switch kv[0] {
                case "min-soc":
                    guard let d = Double(kv[1].hasSuffix("%") ? String(kv[1].dropLast()) : kv[1]), d.isFinite else { throw err(key, "min-soc '\(kv[1])' is not a percentage") }
                    minSoc = d
                case "departure":
                    guard let m = TimeOfUse.minute(of: kv[1]) else { throw err(key, "departure '\(kv[1])' is not a local time like \"07:00\"") }
                    departure = m
                default: throw err(key, "unknown key '\(kv[0])' (min-soc, departure)")
                }
            }
            guard let minSoc, let departure else { throw err(key, "needs min-soc and departure") }
            let plugMs = grid.clock.epochMillis(Instant.zero + profile.plugAt)
            let plugSecond = grid.clock.localSecondOfDay(epochMillis: plugMs)
            var ahead = departure * 60 - plugSecond
            if ahead <= 0 { ahead += 86_400 }
            let plan = DriverPlan(minSoc: minSoc, departure: plugMs + Int64(ahead) * 1000, targetSoc: profile.target)
            if let why = plan.problem(now: plugMs) { throw err(key, why) }
            plans[g] = plan
            any = true
        }
        return any ? plans : nil
    }

    /// `[[event]]`: what happens when, as `chargerd --inject` writes it.
    func events(_ root: TOMLTable) throws(ScenarioError) -> [ScheduledInjection] {
        var events: [ScheduledInjection] = []
        for (i, e) in (root["event"]?.array ?? TOMLArray()).enumerated() {
            let key = "event[\(i)]"
            guard let t = e.table else { throw err(key, "expected a table ([[event]])") }
            for k in t.keys where !["at", "do"].contains(k) { throw err("\(key).\(k)", "unknown key (at, do)") }
            guard let what = t["do"]?.string else { throw err("\(key).do", "missing: what happens, as in chargerd --inject (e.g. \"insulation:0=40kOhm\")") }
            let at: String
            if let s = t["at"]?.string, s.lowercased() == "stop" { at = "stop" } else { at = "\(try seconds(t["at"], "\(key).at"))s" }
            do { events.append(try InjectionParser.parse("\(what)@\(at)", spec: spec)) } catch { throw err("\(key).do", "\(error)") }
        }
        return events
    }

    /// One `[[expect]]` table.
    func expectation(_ t: TOMLTable, _ key: String) throws(ScenarioError) -> Expectation {
        guard let kind = t["kind"]?.string else { throw err("\(key).kind", "missing") }
        let allowed: [String: [String]] = [
            "state": ["gun", "at", "state"], "fault": ["code", "gun", "after", "within"], "no-fault": [], "not-fault": ["code"],
            "opening-current": ["gun", "max", "min_openings"], "current-below": ["gun", "max", "after", "within", "until"],
            "voltage-below": ["gun", "max", "after", "within", "until"],
            "energy": ["gun", "at_least", "at_most"], "power-never-above": ["gun", "max", "from", "until"],
            "energy-share": ["gun", "from", "until", "at_least", "at_most"], "binding": ["gun", "at", "source"],
            "end-state": ["state"], "exported": ["gun", "at_least", "at_most"], "departure-soc": ["gun"],
        ]
        guard let keys = allowed[kind] else { throw err("\(key).kind", "'\(kind)' (known: \(allowed.keys.sorted().joined(separator: ", ")))") }
        for k in t.keys where k != "kind" && !keys.contains(k) { throw err("\(key).\(k)", "not a key of '\(kind)' (\(keys.joined(separator: ", ")))") }
        let amps = UnitTable.current
        let watts = UnitTable.power
        func code() throws(ScenarioError) -> FaultCode {
            guard let c = t["code"]?.string, let f = FaultCode.allCases.first(where: { $0.name == c || $0.name.hasPrefix(c + "-") }) else {
                throw err("\(key).code", "unknown fault code (see chargerd --list-faults; 'E05' or 'E05-insulation')")
            }
            return f
        }
        switch kind {
        case "state":
            guard let p = t["state"]?.string, let phase = SessionPhase.allCases.first(where: { $0.name == p }) else {
                throw err("\(key).state", "unknown state (\(SessionPhase.allCases.map(\.name).joined(separator: ", ")))")
            }
            return (.state(gun: try gunIndex(t["gun"], "\(key).gun")!, at: Instant.zero + .seconds(try seconds(t["at"], "\(key).at")), phase: phase))
        case "fault":
            return (.fault(code: try code(), gun: try gunIndex(t["gun"], "\(key).gun", default: nil),
                                       after: Instant.zero + .seconds(try seconds(t["after"] ?? "0 s", "\(key).after")),
                                       within: .seconds(try seconds(t["within"], "\(key).within"))))
        case "no-fault": return (.noFault)
        case "not-fault": return (.notFault(code: try code()))
        case "opening-current":
            return (.openingCurrent(gun: try gunIndex(t["gun"], "\(key).gun")!, max: Amps(try quantity(t["max"] ?? "5 A", "\(key).max", amps)),
                                                minOpenings: t["min_openings"]?.int ?? 1))
        case "current-below":
            return (.currentBelow(gun: try gunIndex(t["gun"], "\(key).gun")!, max: Amps(try quantity(t["max"], "\(key).max", amps)),
                                              after: Instant.zero + .seconds(try seconds(t["after"], "\(key).after")),
                                              within: .seconds(try seconds(t["within"], "\(key).within")),
                                              until: t["until"] == nil ? nil : Instant.zero + .seconds(try seconds(t["until"], "\(key).until"))))
        case "voltage-below":
            return (.voltageBelow(gun: try gunIndex(t["gun"], "\(key).gun")!, max: Volts(try quantity(t["max"], "\(key).max", .voltage)),
                                              after: Instant.zero + .seconds(try seconds(t["after"], "\(key).after")),
                                              within: .seconds(try seconds(t["within"], "\(key).within")),
                                              until: t["until"] == nil ? nil : Instant.zero + .seconds(try seconds(t["until"], "\(key).until"))))
        case "energy":
            let wh = UnitTable.energy
            let lo = t["at_least"] == nil ? nil : WattHours(try quantity(t["at_least"], "\(key).at_least", wh))
            let hi = t["at_most"] == nil ? nil : WattHours(try quantity(t["at_most"], "\(key).at_most", wh))
            guard lo != nil || hi != nil else { throw err(key, "energy needs at_least or at_most") }
            return (.energy(gun: try gunIndex(t["gun"], "\(key).gun")!, atLeast: lo, atMost: hi))
        case "power-never-above":
            return (.powerNever(gun: try gunIndex(t["gun"], "\(key).gun", default: nil), above: Watts(try quantity(t["max"], "\(key).max", watts)),
                                            from: t["from"] == nil ? nil : Instant.zero + .seconds(try seconds(t["from"], "\(key).from")),
                                            until: t["until"] == nil ? nil : Instant.zero + .seconds(try seconds(t["until"], "\(key).until"))))
        case "energy-share":
            let lo = t["at_least"]?.double, hi = t["at_most"]?.double
            guard lo != nil || hi != nil, (lo ?? 0) >= 0, (hi ?? 1) <= 1 else { throw err(key, "energy-share needs at_least and/or at_most as fractions 0...1") }
            let from = Instant.zero + .seconds(try seconds(t["from"], "\(key).from")), until = Instant.zero + .seconds(try seconds(t["until"], "\(key).until"))
            guard until > from else { throw err("\(key).until", "must be after from") }
            return (.energyShare(gun: try gunIndex(t["gun"], "\(key).gun", default: nil), from: from, until: until, atLeast: lo, atMost: hi))
        case "binding":
            guard let src = t["source"]?.string, let ls = LimitSource.allCases.first(where: { $0.name == src }) else {
                throw err("\(key).source", "unknown limit source (\(LimitSource.allCases.map(\.name).joined(separator: ", ")))")
            }
            return (.binding(gun: try gunIndex(t["gun"], "\(key).gun")!, at: Instant.zero + .seconds(try seconds(t["at"], "\(key).at")), source: ls))
        case "exported":
            let wh = UnitTable.energy
            let lo = t["at_least"] == nil ? nil : WattHours(try quantity(t["at_least"], "\(key).at_least", wh))
            let hi = t["at_most"] == nil ? nil : WattHours(try quantity(t["at_most"], "\(key).at_most", wh))
            guard lo != nil || hi != nil else { throw err(key, "exported needs at_least or at_most") }
            return .exported(gun: try gunIndex(t["gun"], "\(key).gun", default: nil), atLeast: lo, atMost: hi)
        case "departure-soc":
            return .departureSoc(gun: try gunIndex(t["gun"], "\(key).gun")!)
        case "end-state":
            guard let st = t["state"]?.string, ["completed", "faulted", "not-authorized"].contains(st) else { throw err("\(key).state", "expected \"completed\", \"faulted\" or \"not-authorized\"") }
            return (.endState(st))
        default: throw err("\(key).kind", "'\(kind)'")
        }
    }
}
