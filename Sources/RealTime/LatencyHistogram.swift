// Fixed-size latency histograms (wake-up latency, step compute time) that the real-time thread records
// into and any other thread reads. Buckets are relaxed atomics: recording is one atomic add, no lock,
// no allocation; a reader sees each bucket exactly, the set of them as of roughly one moment.
import Synchronization

/// Bucket layout: 1 µs wide up to 2 ms, 100 µs wide up to 100 ms, then one overflow bucket.
public enum HistogramLayout {
    public static let fineLimitMicros = 2_000
    public static let coarseWidthMicros = 100
    public static let coarseLimitMicros = 100_000
    public static let bucketCount = fineLimitMicros + (coarseLimitMicros - fineLimitMicros) / coarseWidthMicros + 1

    @inlinable public static func bucket(micros: Int) -> Int {
        if micros < 0 { return 0 }
        if micros < fineLimitMicros { return micros }
        if micros < coarseLimitMicros { return fineLimitMicros + (micros - fineLimitMicros) / coarseWidthMicros }
        return bucketCount - 1
    }

    /// Lower edge of a bucket in µs.
    public static func lowerEdge(bucket b: Int) -> Int {
        if b < fineLimitMicros { return b }
        if b < bucketCount - 1 { return fineLimitMicros + (b - fineLimitMicros) * coarseWidthMicros }
        return coarseLimitMicros
    }
}

/// The shared counters of one histogram.
public struct HistogramCounters: ~Copyable {
    @usableFromInline let count = Atomic<UInt64>(0)
    @usableFromInline let sumNanos = Atomic<UInt64>(0)
    @usableFromInline let minNanos = Atomic<Int64>(.max)
    @usableFromInline let maxNanos = Atomic<Int64>(0)
    init() {}
}

/// A non-owning handle on a histogram; `LatencyRecorder` owns the storage.
public struct LatencyHistogram: @unchecked Sendable {
    @usableFromInline let buckets: UnsafeMutablePointer<Atomic<UInt64>>
    @usableFromInline let counters: UnsafeMutablePointer<HistogramCounters>

    /// Records one sample in nanoseconds (negative samples count as 0).
    @_transparent
    public func record(nanos: Int64) {
        let v = nanos < 0 ? 0 : nanos
        buckets[HistogramLayout.bucket(micros: Int(v / 1000))].add(1, ordering: .relaxed)
        counters.pointee.count.add(1, ordering: .relaxed)
        counters.pointee.sumNanos.add(UInt64(v), ordering: .relaxed)
        if v < counters.pointee.minNanos.load(ordering: .relaxed) { counters.pointee.minNanos.store(v, ordering: .relaxed) }
        if v > counters.pointee.maxNanos.load(ordering: .relaxed) { counters.pointee.maxNanos.store(v, ordering: .relaxed) }
    }

    /// A copy of the counts, for percentiles (allocates: reader side only).
    public func snapshot() -> HistogramSnapshot {
        var counts = [UInt64](repeating: 0, count: HistogramLayout.bucketCount)
        for b in 0..<HistogramLayout.bucketCount { counts[b] = buckets[b].load(ordering: .relaxed) }
        let n = counters.pointee.count.load(ordering: .relaxed)
        return HistogramSnapshot(counts: counts, count: n,
                                 sumNanos: counters.pointee.sumNanos.load(ordering: .relaxed),
                                 minNanos: n == 0 ? 0 : counters.pointee.minNanos.load(ordering: .relaxed),
                                 maxNanos: counters.pointee.maxNanos.load(ordering: .relaxed))
    }

    /// Zeroes every bucket (call while nothing records).
    public func reset() {
        for b in 0..<HistogramLayout.bucketCount { buckets[b].store(0, ordering: .relaxed) }
        counters.pointee.count.store(0, ordering: .relaxed)
        counters.pointee.sumNanos.store(0, ordering: .relaxed)
        counters.pointee.minNanos.store(.max, ordering: .relaxed)
        counters.pointee.maxNanos.store(0, ordering: .relaxed)
    }
}

/// Owns a histogram's storage.
public final class LatencyRecorder: @unchecked Sendable {
    public let histogram: LatencyHistogram
    public init() {
        let b = UnsafeMutablePointer<Atomic<UInt64>>.allocate(capacity: HistogramLayout.bucketCount)
        for i in 0..<HistogramLayout.bucketCount { (b + i).initialize(to: Atomic<UInt64>(0)) }
        let c = UnsafeMutablePointer<HistogramCounters>.allocate(capacity: 1)
        c.initialize(to: HistogramCounters())
        histogram = LatencyHistogram(buckets: b, counters: c)
    }
    deinit {
        histogram.buckets.deinitialize(count: HistogramLayout.bucketCount)
        histogram.buckets.deallocate()
        histogram.counters.deinitialize(count: 1)
        histogram.counters.deallocate()
    }
}

/// A histogram read at one moment: percentiles in µs (the lower edge of the bucket holding the rank,
/// as cyclictest reports its histogram), exact min/max/mean from the counters.
public struct HistogramSnapshot: Sendable {
    public var counts: [UInt64]
    public var count: UInt64
    public var sumNanos: UInt64
    public var minNanos: Int64
    public var maxNanos: Int64

    public init(counts: [UInt64], count: UInt64, sumNanos: UInt64, minNanos: Int64, maxNanos: Int64) {
        self.counts = counts; self.count = count; self.sumNanos = sumNanos; self.minNanos = minNanos; self.maxNanos = maxNanos
    }

    /// Builds a snapshot from samples in µs (for histograms read from elsewhere, e.g. cyclictest's).
    public init(microsecondCounts: [Int: UInt64], overflow: UInt64 = 0, minMicros: Int, maxMicros: Int, meanMicros: Double) {
        var counts = [UInt64](repeating: 0, count: HistogramLayout.bucketCount)
        var n: UInt64 = overflow
        for (us, c) in microsecondCounts { counts[HistogramLayout.bucket(micros: us)] += c; n += c }
        counts[HistogramLayout.bucketCount - 1] += overflow
        self.init(counts: counts, count: n, sumNanos: UInt64(max(0, meanMicros * Double(n) * 1000)),
                  minNanos: Int64(minMicros) * 1000, maxNanos: Int64(maxMicros) * 1000)
    }

    /// The value in µs at or below which fraction `p` (0...1) of the samples lie.
    public func percentileMicros(_ p: Double) -> Int {
        guard count > 0 else { return 0 }
        let rank = UInt64((Double(count) * p).rounded(.up))
        var seen: UInt64 = 0
        for (b, c) in counts.enumerated() {
            seen += c
            if seen >= max(rank, 1) { return HistogramLayout.lowerEdge(bucket: b) }
        }
        return HistogramLayout.lowerEdge(bucket: counts.count - 1)
    }

    /// The sum of two histograms (e.g. interleaved rounds of one measurement).
    public func merged(with o: HistogramSnapshot) -> HistogramSnapshot {
        guard count > 0 else { return o }
        guard o.count > 0 else { return self }
        var c = counts
        for i in c.indices { c[i] += o.counts[i] }
        return HistogramSnapshot(counts: c, count: count + o.count, sumNanos: sumNanos + o.sumNanos,
                                 minNanos: min(minNanos, o.minNanos), maxNanos: max(maxNanos, o.maxNanos))
    }

    public var meanMicros: Double { count == 0 ? 0 : Double(sumNanos) / Double(count) / 1000 }
    public var minMicros: Double { Double(minNanos) / 1000 }
    public var maxMicros: Double { Double(maxNanos) / 1000 }

    /// Samples at or above `micros`.
    public func countAtOrAbove(micros: Int) -> UInt64 {
        let first = HistogramLayout.bucket(micros: micros)
        return counts[first...].reduce(0, +)
    }
}
