// Time-of-use (峰/平/谷) periods with a power limit per kind: China's peak/flat/valley tariffs
// (standards.md "Orderly charging and grid setpoints": time-of-use pricing everywhere; a grid pilot cut
// charger power from 15:00 to 22:00). Set by the site file and rewritable by the EMS.
import ChargerCore

public enum TariffKind: UInt16, Sendable, CaseIterable {
    case peak = 1, flat = 2, valley = 3
    public var name: String {
        switch self { case .peak: "peak"; case .flat: "flat"; case .valley: "valley" }
    }
    public var source: GridSource {
        switch self { case .peak: .touPeak; case .flat: .touFlat; case .valley: .touValley }
    }
}

public struct TimeOfUse: Sendable, Equatable {
    public struct Period: Sendable, Equatable {
        /// Local minute of the day the period starts (0...1439); it lasts until the next period's start.
        public var startMinute: Int
        public var kind: TariffKind
        public init(startMinute: Int, kind: TariffKind) { self.startMinute = startMinute; self.kind = kind }
    }
    /// Most periods in a day (the EMS register map has room for this many).
    public static let maxPeriods = 12

    /// Strictly increasing start minutes; the last period wraps past midnight to the first's start.
    public var periods: [Period] = []
    /// Station power limit in each kind of period (nil: no limit in that kind).
    public var peakLimit: Watts? = nil
    public var flatLimit: Watts? = nil
    public var valleyLimit: Watts? = nil
    /// V2G (docs/grid.md "V2G"): the export asked of each gun in peak periods whose car offers discharge and
    /// whose driver set a plan (`DriverPlan`); nil: no discharge at peak.
    public var peakDischarge: Watts? = nil

    public init(periods: [Period] = [], peak: Watts? = nil, flat: Watts? = nil, valley: Watts? = nil) {
        self.periods = periods; peakLimit = peak; flatLimit = flat; valleyLimit = valley
    }

    public func limit(of kind: TariffKind) -> Watts? {
        switch kind { case .peak: peakLimit; case .flat: flatLimit; case .valley: valleyLimit }
    }

    /// The kind of period at a local second of the day (nil: no schedule).
    public func kind(atSecondOfDay s: Int) -> TariffKind? {
        guard let last = periods.last else { return nil }
        let minute = s / 60
        var k = last.kind
        for p in periods where p.startMinute <= minute { k = p.kind }
        return k
    }

    /// The station limit at a local second of the day, with its source; nil when none applies.
    public func limit(atSecondOfDay s: Int) -> (Watts, GridSource)? {
        guard let k = kind(atSecondOfDay: s), let w = limit(of: k) else { return nil }
        return (w, k.source)
    }

    /// Why the schedule is invalid, nil when it is valid.
    public var problem: String? {
        if periods.count > Self.maxPeriods { return "\(periods.count) periods (at most \(Self.maxPeriods))" }
        var previous = -1
        for (i, p) in periods.enumerated() {
            guard (0...1439).contains(p.startMinute) else { return "period \(i) starts at minute \(p.startMinute) (0...1439)" }
            guard p.startMinute > previous else { return "period \(i) starts at \(Self.clock(p.startMinute)), not after the period before it" }
            previous = p.startMinute
        }
        for w in [peakLimit, flatLimit, valleyLimit, peakDischarge] {
            if let w, !(w.value >= 0 && w.value.isFinite) { return "a limit of \(w.value) W" }
        }
        return nil
    }

    /// The end of the peak period that holds at local second `s` of the day, as seconds from `s` (nil: not
    /// in a peak, or a schedule that is all peak).
    public func secondsToPeakEnd(atSecondOfDay s: Int) -> Int? {
        guard kind(atSecondOfDay: s) == .peak else { return nil }
        for ahead in stride(from: 60 - s % 60, through: 86_400, by: 60) where kind(atSecondOfDay: (s + ahead) % 86_400) != .peak {
            return ahead
        }
        return nil
    }

    /// "15:00" for minute 900.
    public static func clock(_ minute: Int) -> String { Timestamp.pad(minute / 60, 2) + ":" + Timestamp.pad(minute % 60, 2) }
    /// Minute of the day of "HH:MM", nil when malformed.
    public static func minute(of text: String) -> Int? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2, let h = Int(parts[0]), let m = Int(parts[1]),
              (0...23).contains(h), (0...59).contains(m) else { return nil }
        return h * 60 + m
    }

    /// One line for the console: "00:00 valley 120.0 kW, 07:00 flat, 15:00 peak 40.0 kW, ...".
    public var text: String {
        guard !periods.isEmpty else { return "none" }
        return periods.map { p in
            "\(Self.clock(p.startMinute)) \(p.kind.name)" + (limit(of: p.kind).map { " \(fmtKW($0))" } ?? " (no limit)")
        }.joined(separator: ", ") + (peakDischarge.map { ", V2G export at peak \(fmtKW($0)) a gun" } ?? "")
    }
}

func fmtKW(_ w: Watts) -> String {
    let tenths = Int((w.value / 100).rounded())
    return (tenths < 0 ? "-" : "") + "\(abs(tenths) / 10).\(abs(tenths) % 10) kW"
}
