// The service report a technician leaves behind after a visit (issue 36, ask 4): what the journal covers
// (its first and last record, the boots), each gun's availability with the time it was out of service
// kept apart (planned: not counted against it), the faults counted by code, and the sessions one by one
// with their energy and why each ended. The gun count is the one the boot records state
// (`OperatorStats.gunsFor`). Read by `chargerd journal report` and the console's `report`; 80 columns.
import Foundation

public struct ServiceReport: Sendable {
    public struct FaultCount: Sendable, Equatable {
        public var code: String
        public var count: Int
        /// Where: "station" or the guns ("gun0", "gun0,1").
        public var guns: String
        public var lastWall: String
    }

    public struct Session: Sendable, Equatable {
        public var boot: UInt64
        public var gun: Int
        public var startWall: String
        /// Minutes from start to end (nil: no end).
        public var minutes: Double?
        /// Meter energy over the session, kWh (nil: no end, or no meter reading at an edge).
        public var energyKWh: Double?
        public var socStart: Double?
        public var socEnd: Double?
        /// The core's stop reason; "in progress" when the journal's last boot is still on it; "cut short"
        /// when the controller stopped without ending it (kill -9, a power cut).
        public var ended: String
    }

    public var firstSeq: UInt64 = 0
    public var lastSeq: UInt64 = 0
    public var firstWall = ""
    public var lastWall = ""
    public var guns: Int
    public var stats: OperatorStats
    public var faults: [FaultCount] = []
    /// Faults latched again at a restart (the same fault standing, not a new one): not in `faults`.
    public var relatched = 0
    public var sessions: [Session] = []

    public init(entries: [JournalEntry], guns: Int) {
        self.guns = guns
        stats = OperatorStats(entries: entries, guns: guns)
        firstSeq = entries.first?.seq ?? 0
        lastSeq = entries.last?.seq ?? 0
        firstWall = entries.first?.wall ?? ""
        lastWall = entries.last?.wall ?? ""
        var byCode: [String: (count: Int, guns: Set<Int>, last: String)] = [:]
        var open: [Int: (JournalEntry, SessionNote)] = [:]
        var boot: UInt64? = nil
        var shutDown = false
        func cut(_ why: String) {
            for g in open.keys.sorted() {
                let (e, n) = open[g]!
                sessions.append(
                    Session(boot: e.boot, gun: g, startWall: e.wall, minutes: nil, energyKWh: nil, socStart: n.soc, socEnd: nil, ended: why))
            }
            open.removeAll()
        }
        for e in entries {
            if e.boot != boot {
                cut("cut short")
                boot = e.boot
                shutDown = false
            }
            switch e.event {
            case .fault(let f):
                if f.text?.hasPrefix("latched again at start") == true { relatched += 1; break }
                var c = byCode[f.code] ?? (0, [], "")
                c.count += 1
                c.guns.insert(f.gun ?? -1)
                c.last = e.wall
                byCode[f.code] = c
            case .sessionStart(let n):
                if let (e0, n0) = open.removeValue(forKey: n.gun) {
                    sessions.append(
                        Session(
                            boot: e0.boot, gun: n.gun, startWall: e0.wall, minutes: nil, energyKWh: nil, socStart: n0.soc, socEnd: nil,
                            ended: "cut short"))
                }
                open[n.gun] = (e, n)
            case .sessionEnd(let n):
                guard let (s, sn) = open.removeValue(forKey: n.gun) else { break }
                var energy: Double? = nil
                if let a = sn.energyKWh, let b = n.energyKWh { energy = max(0, b - a) }
                sessions.append(Session(boot: e.boot, gun: n.gun, startWall: s.wall, minutes: max(0, e.t - s.t) / 60, energyKWh: energy,
                                        socStart: sn.soc, socEnd: n.soc, ended: n.stopReason ?? "?"))
            case .shutdown: shutDown = true
            default: break
            }
        }
        // The last boot's open sessions run on, unless it shut down (then they were cut short).
        cut(shutDown ? "cut short" : "in progress")
        sessions.sort { ($0.startWall, $0.gun) < ($1.startWall, $1.gun) }
        faults = byCode.map { code, c in
            let gunText = c.guns.contains(-1) && c.guns.count == 1 ? "station"
                : (c.guns.contains(-1) ? "station," : "") + "gun" + c.guns.filter { $0 >= 0 }.sorted().map(String.init).joined(separator: ",")
            return FaultCount(code: code, count: c.count, guns: gunText, lastWall: c.last)
        }.sorted { ($0.count, $1.code) > ($1.count, $0.code) }
    }

    /// "2026-12-06T10:00:02.123Z" → "2026-12-06 10:00:02" (UTC).
    static func short(_ wall: String) -> String {
        guard wall.count >= 19 else { return String(wall.prefix(19)) }
        return String(wall.prefix(10)) + " " + String(wall.dropFirst(11).prefix(8))
    }

    /// `x` with `d` decimals in at most `width` characters ("*" where a figure from a damaged or hostile
    /// journal would not fit: the report keeps its 80 columns whatever the records say).
    static func f(_ x: Double, _ d: Int, width: Int = 10) -> String {
        let t = x.isFinite ? String(format: "%.\(d)f", x) : "-"
        return t.count <= width ? t : String(repeating: "*", count: width)
    }

    /// The report as text, no line over 80 columns; `sessionLimit` keeps the newest sessions only (the
    /// console's screen), saying how many were left out.
    public func text(sessionLimit: Int? = nil) -> String {
        var s: [String] = []
        if lastSeq == 0 { return "service report: the journal is empty" }
        s.append("Service report, journal #\(firstSeq) to #\(lastSeq) (UTC)")
        s.append("  from \(Self.short(firstWall).prefix(19)) to \(Self.short(lastWall).prefix(19))")
        s.append("  \(stats.boots) boot(s), \(Self.f(stats.coveredSeconds / 3600, 1)) h of controller time, \(guns) gun\(guns == 1 ? "" : "s") (boot records)")
        s.append("")
        s.append("Availability (time out of service is planned: not counted against it)")
        for g in 0..<guns {
            let a = Self.f(stats.availability(gun: g) * 100, 2).leftPadded(6)
            s.append("  gun\(g)  \(a) %   faulted \(Self.f(stats.faultedSeconds[g] ?? 0, 0)) s   out of service \(Self.f(stats.outOfServiceSeconds[g] ?? 0, 0)) s")
        }
        s.append("")
        let total = faults.reduce(0) { $0 + $1.count }
        s.append("Faults by code: \(total)" + (relatched > 0 ? " (and \(relatched) latched again at a restart)" : ""))
        if !faults.isEmpty {
            s.append("  code                        count  where      last (UTC)")
            for c in faults {
                s.append("  \(String(c.code.prefix(26)).rightPadded(26))  \(String(c.count).leftPadded(5))  \(String(c.guns.prefix(9)).rightPadded(9))  \(Self.short(c.lastWall))")
            }
        }
        s.append("")
        // The headline is `journal stats`' own figures; the list below adds up to them.
        let running = stats.sessionsInProgress
        s.append("Sessions: \(stats.sessionsStarted + running), \(stats.sessionsSucceeded) delivered energy and ended normally"
                 + (running > 0 ? ", \(running) in progress" : ""))
        s.append("  \(Self.f(stats.energyKWh, 3, width: 14)) kWh delivered")
        if !sessions.isEmpty {
            s.append("  gun  started (UTC)          min      kWh  SOC %      ended")
            var shown = sessions[...]
            if let n = sessionLimit, sessions.count > n { shown = sessions.suffix(max(0, n)) }
            for x in shown {
                // From-to where the start is known (the car's first report comes after the session began).
                let end = x.socEnd.map { Self.f($0, 0, width: 4) } ?? "-"
                let soc = x.socStart.map { Self.f($0, 0, width: 4) + "-" + end } ?? end
                let gun = x.gun >= 0 && x.gun < 1000 ? String(x.gun) : "*"
                s.append("  \(gun.leftPadded(3))  \(String(Self.short(x.startWall).prefix(19)).rightPadded(19))  \((x.minutes.map { Self.f($0, 1, width: 6) } ?? "-").leftPadded(5))"
                         + "  \((x.energyKWh.map { Self.f($0, 3, width: 9) } ?? "-").leftPadded(7))  \(String(soc.prefix(9)).rightPadded(9))  \(String(x.ended.prefix(16)))")
            }
            if shown.count < sessions.count { s.append("  (\(sessions.count - shown.count) older session(s): chargerd journal report)") }
        }
        return s.joined(separator: "\n")
    }

    /// The report as one JSON object (keys sorted).
    public var json: String {
        struct Out: Encodable {
            var firstSeq: UInt64, lastSeq: UInt64, firstWall: String, lastWall: String, guns: Int
            var availability: [String: Double], faultedSeconds: [String: Double], outOfServiceSeconds: [String: Double]
            var faults: [F], relatched: Int, sessions: [S], energyKWh: Double
        }
        struct F: Encodable { var code: String, count: Int, guns: String, lastWall: String }
        struct S: Encodable {
            var gun: Int, boot: UInt64, startWall: String, minutes: Double?, energyKWh: Double?, socStart: Double?, socEnd: Double?, ended: String
            enum CodingKeys: String, CodingKey { case gun, boot, startWall, minutes, energyKWh, socStart, socEnd, ended }
            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(gun, forKey: .gun); try c.encode(boot, forKey: .boot); try c.encode(startWall, forKey: .startWall)
                try c.encode(minutes, forKey: .minutes); try c.encode(energyKWh, forKey: .energyKWh)
                try c.encode(socStart, forKey: .socStart); try c.encode(socEnd, forKey: .socEnd); try c.encode(ended, forKey: .ended)
            }
        }
        var av: [String: Double] = [:], fs: [String: Double] = [:], off: [String: Double] = [:]
        for g in 0..<guns {
            av["gun\(g)"] = stats.availability(gun: g)
            fs["gun\(g)"] = stats.faultedSeconds[g] ?? 0
            off["gun\(g)"] = stats.outOfServiceSeconds[g] ?? 0
        }
        let o = Out(firstSeq: firstSeq, lastSeq: lastSeq, firstWall: firstWall, lastWall: lastWall, guns: guns,
                    availability: av, faultedSeconds: fs, outOfServiceSeconds: off,
                    faults: faults.map { F(code: $0.code, count: $0.count, guns: $0.guns, lastWall: $0.lastWall) }, relatched: relatched,
                    sessions: sessions.map { S(gun: $0.gun, boot: $0.boot, startWall: $0.startWall, minutes: $0.minutes, energyKWh: $0.energyKWh,
                                               socStart: $0.socStart, socEnd: $0.socEnd, ended: $0.ended) },
                    energyKWh: sessions.reduce(0) { $0 + ($1.energyKWh ?? 0) })
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return (try? enc.encode(o)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
    func rightPadded(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
}
