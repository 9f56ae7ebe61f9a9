// Operator figures from the journal: availability and first-time charge success rate.
import Foundation

public struct OperatorStats: Sendable, Equatable {
    /// Controller time covered by the journal (sum over boots of the last record's time), seconds.
    public var coveredSeconds: Double = 0
    /// Per gun: seconds with a latched fault (gun or station) within the covered time, less the time the
    /// gun was out of service (planned: a technician's `service GUN off`, OCPP Inoperative).
    public var faultedSeconds: [Int: Double] = [:]
    /// Per gun: seconds out of service within the covered time; not counted against availability.
    public var outOfServiceSeconds: [Int: Double] = [:]
    public var sessionsStarted = 0
    /// Sessions that delivered energy and ended normally (not a fault, not a lost car link).
    public var sessionsSucceeded = 0
    public var energyKWh = 0.0
    /// V2G: energy exported from the cars (the meters' export registers over the sessions), and the
    /// sessions with a driver's plan, with those that met its departure target.
    public var exportedKWh = 0.0
    public var sessionsWithPlan = 0
    public var departuresMet = 0
    /// The share of sessions with a plan that met their departure target (nil with none).
    public var departureShare: Double? { sessionsWithPlan > 0 ? Double(departuresMet) / Double(sessionsWithPlan) : nil }
    public var faults = 0
    public var boots = 0
    /// Metering (issue 37): the sessions whose meter was checked against the charger, their mean and worst
    /// deviation (percent, signed; the worst by magnitude), and the metering records: E34 (a deviation
    /// beyond the budget) and E35 (the register went back, reset or jumped).
    public var meteringChecked = 0
    public var meanDeviationPercent: Double? = nil
    public var worstDeviationPercent: Double? = nil
    public var meteringFaults = 0
    public var registerAnomalies = 0
    /// Plug and charge (issue 37): cars authorized by their VIN, refused with no fallback (no energy), and
    /// refused with the site's fallback (the driver then used an idTag or a remote start, or left).
    public var vinAccepted = 0
    public var vinRefused = 0
    public var vinFellBack = 0
    /// Sessions started in the journal's last boot with no end and no shutdown after them: still charging
    /// when the journal was read (the console's `stats` mid-session). Not counted in `sessionsStarted`:
    /// a session in progress has not failed. One cut short by a shutdown or a restart has.
    public var sessionsInProgress = 0

    /// Availability of gun `g`: the time it was in service and not faulted over the time it was in
    /// service (1 when none is covered). Out-of-service time is planned and counts neither way.
    public func availability(gun g: Int) -> Double {
        let inService = coveredSeconds - (outOfServiceSeconds[g] ?? 0)
        return inService > 1e-9 ? min(1, max(0, 1 - (faultedSeconds[g] ?? 0) / inService)) : 1
    }
    /// First-time charge success rate (nil with no session).
    public var successRate: Double? { sessionsStarted > 0 ? Double(sessionsSucceeded) / Double(sessionsStarted) : nil }

    /// The station's gun count as its boot records state it (", 2 guns" in the boot text since issue 36),
    /// the largest when boots disagree; nil when no boot record states it (journals written before).
    public static func statedGunCount(_ entries: [JournalEntry]) -> Int? {
        var most: Int? = nil
        for e in entries {
            guard case .boot(let text) = e.event, let r = text.range(of: #", ([0-9]{1,2}) guns?$"#, options: .regularExpression) else { continue }
            let digits = text[r].filter(\.isNumber)
            if let n = Int(digits), n >= 1 { most = max(most ?? n, n) }
        }
        return most
    }

    /// The highest gun a record names, plus one (0: no record names a gun).
    public static func gunsNamed(_ entries: [JournalEntry]) -> Int {
        var n = 0
        for e in entries {
            if let g = e.fields.gun, g >= 0 { n = max(n, min(g, Int(Int32.max)) + 1) }
        }
        return n
    }

    /// Why `journal stats` cannot count the guns it was given.
    public struct GunCountError: Error, Equatable {
        public var message: String
        public init(message: String) { self.message = message }
    }

    /// The gun count to report: the one the boot records state, or the highest gun the records name when
    /// no boot states it (an older journal; `note` says so). `asked` (`--guns`) must agree with both: a
    /// count that leaves a gun of the journal out, or reports guns the station never had, is refused.
    public static func gunsFor(entries: [JournalEntry], asked: Int?, capacity: Int = 12) -> Result<(count: Int, note: String?), GunCountError> {
        let stated = statedGunCount(entries)
        let named = gunsNamed(entries)
        if let stated, stated > capacity {
            return .failure(GunCountError(message: "the journal's boot records say \(stated) guns, beyond the core's \(capacity)"))
        }
        if let asked {
            guard (1...capacity).contains(asked) else { return .failure(GunCountError(message: "--guns must be 1...\(capacity)")) }
            if let stated, stated != asked {
                return .failure(GunCountError(message: "the journal's boot records say \(stated) gun\(stated == 1 ? "" : "s"); --guns \(asked) disagrees"))
            }
            if named > asked {
                return .failure(GunCountError(message: "a record names gun \(named - 1); --guns \(asked) would leave it out"))
            }
            return .success((asked, nil))
        }
        if let stated {
            if named > stated {
                return .failure(GunCountError(message: "a record names gun \(named - 1) but the boot records say \(stated) gun\(stated == 1 ? "" : "s")"))
            }
            return .success((stated, nil))
        }
        guard named <= capacity else {
            return .failure(GunCountError(message: "a record names gun \(named - 1), beyond the core's \(capacity) guns"))
        }
        let n = max(1, named)
        return .success((n, "no boot record states the gun count (a journal written before it did): \(n) gun\(n == 1 ? "" : "s") from the records; --guns N to say"))
    }

    // Long: one pass over the records, boot by boot, whose running state (open sessions, latched faults,
    // out-of-service spans) every figure shares
    /// Computes the figures for `guns` guns from the records, oldest first. Faults still latched when a boot
    /// ends count until that boot's last record (a restart clears the core's latches).
    public init(entries: [JournalEntry], guns: Int) {
        var byBoot: [UInt64: [JournalEntry]] = [:]
        var order: [UInt64] = []
        for e in entries {
            if byBoot[e.boot] == nil { order.append(e.boot) }
            byBoot[e.boot, default: []].append(e)
        }
        boots = order.count
        for g in 0..<guns { faultedSeconds[g] = 0; outOfServiceSeconds[g] = 0 }
        var deviationSum = 0.0
        defer { meanDeviationPercent = meteringChecked > 0 ? deviationSum / Double(meteringChecked) : nil }
        var starts: [Int: Double] = [:]   // gun → meter energy at session start
        var exportStarts: [Int: Double] = [:]
        for (i, b) in order.enumerated() {
            let es = byBoot[b]!
            var shutDown = false
            let end = es.map(\.t).max() ?? 0
            coveredSeconds += end
            // Open fault intervals: core fault seq → (gun or -1, raised at).
            var open: [UInt64: (Int, Double)] = [:]
            var faultedUntil = [Int: [(Double, Double)]]()
            var serviceOut: [Int: Double] = [:]          // gun → out of service since
            var serviceSpans = [Int: [(Double, Double)]]()
            func close(_ key: UInt64, at t: Double) {
                guard let (g, t0) = open.removeValue(forKey: key) else { return }
                let gunsHit = g < 0 ? Array(0..<guns) : [g]
                for gg in gunsHit { faultedUntil[gg, default: []].append((t0, t)) }
            }
            for e in es {
                switch e.event {
                case .fault(let f):
                    faults += 1
                    if f.text?.hasPrefix("latched again at start") != true {
                        if f.code.hasPrefix("E34-") { meteringFaults += 1 }
                        if f.code.hasPrefix("E35-") { registerAnomalies += 1 }
                    }
                    if let s = f.faultSeq, f.reaction != "derate", f.reaction != "stop-and-reconnect" { open[s] = (f.gun ?? -1, e.t) }
                case .faultCleared(let f):
                    if let s = f.faultSeq { close(s, at: e.t) }
                case .sessionStart(let n):
                    sessionsStarted += 1
                    starts[n.gun] = n.energyKWh
                    exportStarts[n.gun] = n.exportKWh
                case .sessionEnd(let n):
                    if let d = n.deviationPercent, d.isFinite {
                        meteringChecked += 1
                        deviationSum += d
                        if abs(d) > abs(worstDeviationPercent ?? 0) || worstDeviationPercent == nil { worstDeviationPercent = d }
                    }
                    if let x0 = exportStarts.removeValue(forKey: n.gun), let x1 = n.exportKWh { exportedKWh += max(0, x1 - x0) }
                    if let met = n.departureMet { sessionsWithPlan += 1; if met { departuresMet += 1 } }
                    if let s0 = starts.removeValue(forKey: n.gun), let s1 = n.energyKWh {
                        let delivered = s1 - s0
                        energyKWh += max(0, delivered)
                        let normal = n.stopReason != "fault" && n.stopReason != "vehicle-comm-timeout"
                        if normal && delivered >= 0.001 { sessionsSucceeded += 1 }
                    }
                case .service(let g, let out):
                    guard g >= 0 && g < guns else { break }
                    if out { if serviceOut[g] == nil { serviceOut[g] = e.t } }
                    else if let t0 = serviceOut.removeValue(forKey: g) { serviceSpans[g, default: []].append((t0, e.t)) }
                case .authorization(let a) where a.method == "vin":
                    switch a.verdict {
                    case "accepted": vinAccepted += 1
                    case "refused-fallback": vinFellBack += 1
                    default: vinRefused += 1
                    }
                case .shutdown: shutDown = true
                default: break
                }
            }
            for k in Array(open.keys) { close(k, at: end) }
            for (g, t0) in serviceOut { serviceSpans[g, default: []].append((t0, end)) }
            if i == order.count - 1 && !shutDown {
                sessionsInProgress = starts.count
                sessionsStarted -= starts.count
            }
            starts.removeAll()
            exportStarts.removeAll()
            // Overlapping faults on a gun count once (the intervals merged); out-of-service time is not
            // counted against the gun, faulted or not.
            for g in 0..<guns {
                let faulted = Self.merged(faultedUntil[g] ?? [])
                let service = Self.merged(serviceSpans[g] ?? [])
                let serviceTotal = service.reduce(0) { $0 + ($1.1 - $1.0) }
                var overlap = 0.0
                for f in faulted { for o in service { overlap += max(0, min(f.1, o.1) - max(f.0, o.0)) } }
                faultedSeconds[g, default: 0] += faulted.reduce(0) { $0 + ($1.1 - $1.0) } - overlap
                outOfServiceSeconds[g, default: 0] += serviceTotal
            }
        }
    }

    /// Intervals merged where they overlap, in order.
    static func merged(_ spans: [(Double, Double)]) -> [(Double, Double)] {
        var out: [(Double, Double)] = []
        for s in spans.sorted(by: { $0.0 < $1.0 }) {
            if let last = out.last, s.0 <= last.1 { out[out.count - 1].1 = max(last.1, s.1) } else { out.append(s) }
        }
        return out
    }

    public var text: String {
        var s = "journal covers \(String(format: "%.1f", coveredSeconds / 3600)) h of controller time over \(boots) boot(s), \(faults) fault record(s)\n"
        for g in faultedSeconds.keys.sorted() {
            let off = outOfServiceSeconds[g] ?? 0
            s += "gun\(g): availability \(String(format: "%.2f", availability(gun: g) * 100)) % (faulted \(String(format: "%.0f", faultedSeconds[g] ?? 0)) s"
                + (off > 0 ? "; out of service \(String(format: "%.0f", off)) s, not counted" : "") + ")\n"
        }
        let running = sessionsInProgress > 0 ? "; \(sessionsInProgress) in progress" : ""
        if let r = successRate {
            // Two lines: the console shows this text, 80 columns at most.
            s += "first-time charge success \(String(format: "%.1f", r * 100)) % (\(sessionsSucceeded) of \(sessionsStarted) sessions\(running))\n"
            s += "  (delivered energy and ended normally), \(String(format: "%.3f", energyKWh)) kWh delivered\n"
        } else {
            s += "first-time charge success: no session ended yet\(running)\(running.isEmpty ? "" : ", not counted")\n"
        }
        if meteringChecked > 0 || meteringFaults > 0 || registerAnomalies > 0 {
            s += "metering: \(meteringChecked) session(s) checked against the charger"
            if let m = meanDeviationPercent, let w = worstDeviationPercent {
                s += ", deviation mean \(String(format: "%+.2f", m)) %, worst \(String(format: "%+.2f", w)) %"
            }
            s += "\n  \(meteringFaults) beyond the budget (E34), \(registerAnomalies) register anomal\(registerAnomalies == 1 ? "y" : "ies") (E35)\n"
        }
        if vinAccepted + vinRefused + vinFellBack > 0 {
            s += "plug and charge: \(vinAccepted) car(s) authorized by VIN, \(vinRefused) refused, \(vinFellBack) fell back\n"
        }
        if exportedKWh > 0 || sessionsWithPlan > 0 {
            s += "V2G: \(String(format: "%.3f", exportedKWh)) kWh exported; departure target met in "
                + (departureShare.map { String(format: "%.1f", $0 * 100) + " % (\(departuresMet) of \(sessionsWithPlan) sessions with a driver's plan)" } ?? "no session with a driver's plan") + "\n"
        }
        return s
    }

    /// The figures as one JSON object (keys sorted; `successRate` null with no session).
    public var json: String {
        struct Figures: Encodable {
            var coveredSeconds: Double, sessionsStarted: Int, sessionsSucceeded: Int, sessionsInProgress: Int, energyKWh: Double, faults: Int,
                boots: Int
            var availability: [String: Double]
            var outOfServiceSeconds: [String: Double]
            var successRate: Double?
            var exportedKWh: Double, sessionsWithPlan: Int, departuresMet: Int, departureShare: Double?
            var meteringChecked: Int, meanDeviationPercent: Double?, worstDeviationPercent: Double?, meteringFaults: Int, registerAnomalies: Int
            var vinAccepted: Int, vinRefused: Int, vinFellBack: Int
            enum CodingKeys: String, CodingKey {
                case coveredSeconds, sessionsStarted, sessionsSucceeded, sessionsInProgress, energyKWh, faults, boots, availability, successRate
                case outOfServiceSeconds
                case exportedKWh, sessionsWithPlan, departuresMet, departureShare
                case meteringChecked, meanDeviationPercent, worstDeviationPercent, meteringFaults, registerAnomalies
                case vinAccepted, vinRefused, vinFellBack
            }
            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(coveredSeconds, forKey: .coveredSeconds); try c.encode(sessionsStarted, forKey: .sessionsStarted)
                try c.encode(sessionsSucceeded, forKey: .sessionsSucceeded); try c.encode(sessionsInProgress, forKey: .sessionsInProgress)
                try c.encode(energyKWh, forKey: .energyKWh)
                try c.encode(faults, forKey: .faults); try c.encode(boots, forKey: .boots); try c.encode(availability, forKey: .availability)
                try c.encode(outOfServiceSeconds, forKey: .outOfServiceSeconds)
                try c.encode(successRate, forKey: .successRate)      // null, not left out, with no session
                try c.encode(exportedKWh, forKey: .exportedKWh); try c.encode(sessionsWithPlan, forKey: .sessionsWithPlan)
                try c.encode(departuresMet, forKey: .departuresMet); try c.encode(departureShare, forKey: .departureShare)
                try c.encode(meteringChecked, forKey: .meteringChecked); try c.encode(meanDeviationPercent, forKey: .meanDeviationPercent)
                try c.encode(worstDeviationPercent, forKey: .worstDeviationPercent); try c.encode(meteringFaults, forKey: .meteringFaults)
                try c.encode(registerAnomalies, forKey: .registerAnomalies)
                try c.encode(vinAccepted, forKey: .vinAccepted); try c.encode(vinRefused, forKey: .vinRefused)
                try c.encode(vinFellBack, forKey: .vinFellBack)
            }
        }
        var av: [String: Double] = [:]
        var off: [String: Double] = [:]
        for g in faultedSeconds.keys { av["gun\(g)"] = availability(gun: g); off["gun\(g)"] = outOfServiceSeconds[g] ?? 0 }
        let f = Figures(
            coveredSeconds: coveredSeconds, sessionsStarted: sessionsStarted, sessionsSucceeded: sessionsSucceeded,
            sessionsInProgress: sessionsInProgress,
                        energyKWh: energyKWh, faults: faults, boots: boots, availability: av, outOfServiceSeconds: off, successRate: successRate,
                        exportedKWh: exportedKWh, sessionsWithPlan: sessionsWithPlan, departuresMet: departuresMet, departureShare: departureShare,
                        meteringChecked: meteringChecked, meanDeviationPercent: meanDeviationPercent, worstDeviationPercent: worstDeviationPercent,
                        meteringFaults: meteringFaults, registerAnomalies: registerAnomalies,
                        vinAccepted: vinAccepted, vinRefused: vinRefused, vinFellBack: vinFellBack)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return (try? enc.encode(f)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}
