// The console's window on the journal (`log`, `faults`): the last records, kept as their JSON payloads
// in one byte ring allocated and touched when the journal opens. A controller runs for months between
// visits; a window of decoded records grew the resident memory by ~1.6 kB a session until it filled
// (about 250 sessions, a week of a busy gun). The ring's memory is the same on day 1 and on day 300.
#if canImport(Glibc)
import Glibc
#endif

public struct RecentRing: Sendable {
    /// Most records kept (the console's `log N` bound).
    public let limit: Int
    /// The payloads, back to back, wrapping at the end.
    private var bytes: [UInt8]
    /// Per kept record, oldest at `first`: where its payload starts and how long it is.
    private var offsets: [Int]
    private var lengths: [Int]
    private var first = 0
    public private(set) var count = 0
    /// Where the next payload goes, and the bytes in use (contiguous from the oldest record's start).
    private var head = 0
    private var used = 0

    public init(limit: Int, byteCapacity: Int) {
        self.limit = max(1, limit)
        // Reserved whole at open and never grown, but not zeroed: the ring reads back only bytes it has
        // written (`offsets`/`lengths` of kept records), and zeroing 256 kB touched every page at open
        // (a fifth of the console fuzz target's time, a Journal per input). Under mlockall the pages
        // are faulted in at allocation anyway.
        let capacity = max(1, byteCapacity)
        bytes = Array(unsafeUninitializedCapacity: capacity) { _, initialized in initialized = capacity }
        offsets = Array(repeating: 0, count: self.limit)
        lengths = Array(repeating: 0, count: self.limit)
    }

    public var byteCapacity: Int { bytes.count }

    /// Keeps `payload`, dropping the oldest records until it fits (by count and by bytes). A payload
    /// larger than the whole ring is not kept (the journal on storage still has it).
    public mutating func append<C: Collection>(_ payload: C) where C.Element == UInt8 {
        let n = payload.count
        guard n > 0, n <= bytes.count else { return }
        while count > 0 && (count == limit || bytes.count - used < n) {
            used -= lengths[first]
            first = (first + 1) % limit
            count -= 1
        }
        if count == 0 { head = 0; used = 0 }
        let at = head
        bytes.withUnsafeMutableBufferPointer { b in
            var i = at
            for v in payload { b[i] = v; i += 1; if i == b.count { i = 0 } }
        }
        let slot = (first + count) % limit
        offsets[slot] = at
        lengths[slot] = n
        count += 1
        head = (at + n) % bytes.count
        used += n
    }

    /// The payloads of the last `n` records, oldest first (copies: for the reader to decode).
    public func last(_ n: Int) -> [[UInt8]] {
        let k = min(max(0, n), count)
        var out: [[UInt8]] = []
        out.reserveCapacity(k)
        for r in (count - k)..<count {
            let slot = (first + r) % limit
            let at = offsets[slot], len = lengths[slot]
            if at + len <= bytes.count { out.append(Array(bytes[at..<(at + len)])) }
            else { out.append(Array(bytes[at...]) + Array(bytes[..<(at + len - bytes.count)])) }
        }
        return out
    }
}
