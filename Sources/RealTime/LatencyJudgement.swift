// The loop's wake-up latency against a reference (cyclictest with the same period, priority, CPU and
// length, in interleaved rounds: charger-bench §1), judged only where both sides measured something.
// A reference whose p99 fell past the end of its own histogram, a loop round that missed more than
// `maxMissFraction` of its deadlines, or a machine where the reference itself cannot keep the period is
// no measurement: such a round is left out and says why, and with no round left the comparison is
// "no figure", never a verdict (a noisy Xeon once printed "0.02x ≤ 1.25x: met" from cyclictest's
// overflow bucket read as 100000 µs).

public enum LatencyJudgement {
    /// A loop round that missed more than this share of its deadlines was not running at its period:
    /// its latency is not the loop's.
    public static let maxMissFraction = 0.05

    public struct Round: Sendable {
        public var loop: HistogramSnapshot
        public var loopCycles: UInt64
        public var loopMisses: UInt64
        /// The reference's histogram, or why it has none.
        public var reference: Result<HistogramSnapshot, ReferenceFailure>
        /// The last value the reference's histogram holds (cyclictest -h: beyond it, its overflow).
        public var referenceRangeMicros: Int

        public init(loop: HistogramSnapshot, loopCycles: UInt64, loopMisses: UInt64,
                    reference: Result<HistogramSnapshot, ReferenceFailure>, referenceRangeMicros: Int) {
            self.loop = loop; self.loopCycles = loopCycles; self.loopMisses = loopMisses
            self.reference = reference; self.referenceRangeMicros = referenceRangeMicros
        }
    }

    public struct ReferenceFailure: Error, Sendable, Equatable {
        public var why: String
        public init(_ why: String) { self.why = why }
    }

    public struct Outcome: Sendable, Equatable {
        /// loop p99 / reference p99 over the rounds judged; nil: no figure.
        public var ratio: Double?
        /// "met", "missed" or "no figure".
        public var verdict: String
        /// Each round: "loop/reference p99 µs" when judged, else why it was left out.
        public var rounds: [String]
        /// Why there is no figure (empty when there is one).
        public var why: String
    }

    /// The reference's p99 when its histogram holds it (nil: more than 1 % of its samples lie past
    /// its range, so its p99 is not known).
    public static func referenceP99(_ h: HistogramSnapshot, rangeMicros: Int) -> Int? {
        guard h.count > 0 else { return nil }
        let beyond = h.countAtOrAbove(micros: rangeMicros)
        guard beyond * 100 <= h.count else { return nil }
        return h.percentileMicros(0.99)
    }

    public static func judge(_ rounds: [Round], target: Double, periodMicros: Int) -> Outcome {
        var texts: [String] = []
        var reasons: [String] = []
        var loopSum: HistogramSnapshot? = nil, refSum: HistogramSnapshot? = nil
        for (i, r) in rounds.enumerated() {
            let n = i + 1
            let loopP99 = r.loop.percentileMicros(0.99)
            var why: String? = nil
            var refP99: Int? = nil
            switch r.reference {
            case .failure(let f): why = "the reference did not run (\(f.why))"
            case .success(let h):
                if let p = referenceP99(h, rangeMicros: r.referenceRangeMicros) {
                    refP99 = p
                    if p >= periodMicros { why = "the machine is too noisy to judge (the reference's own p99 \(p) µs ≥ the \(periodMicros) µs period)" }
                } else {
                    why = "the reference's p99 lies beyond its histogram (\(h.countAtOrAbove(micros: r.referenceRangeMicros)) of \(h.count) samples ≥ \(r.referenceRangeMicros) µs)"
                }
            }
            if why == nil {
                if r.loopCycles == 0 { why = "the loop ran no cycle" }
                else if Double(r.loopMisses) > maxMissFraction * Double(r.loopCycles) {
                    why = "the loop missed \(r.loopMisses) of \(r.loopCycles) deadlines (over \(Int(maxMissFraction * 100)) %: not running at its period)"
                }
            }
            if let why {
                texts.append("round \(n): \(loopP99)/\(refP99.map(String.init) ?? "-") µs, left out: \(why)")
                reasons.append("round \(n): \(why)")
            } else if case .success(let h) = r.reference {
                texts.append("round \(n): \(loopP99)/\(refP99!) µs")
                loopSum = loopSum?.merged(with: r.loop) ?? r.loop
                refSum = refSum?.merged(with: h) ?? h
            }
        }
        guard let l = loopSum, let ref = refSum else {
            return Outcome(ratio: nil, verdict: "no figure", rounds: texts, why: reasons.isEmpty ? "no round" : reasons.joined(separator: "; "))
        }
        let ratio = Double(max(l.percentileMicros(0.99), 1)) / Double(max(ref.percentileMicros(0.99), 1))
        return Outcome(ratio: ratio, verdict: ratio <= target ? "met" : "missed", rounds: texts, why: "")
    }
}
