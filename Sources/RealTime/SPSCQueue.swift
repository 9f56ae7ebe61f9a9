// Lock-free single-producer single-consumer queue: how the real-time loop meets every other thread
// (docs/architecture.md "Design rules": one direction per cycle). A Lamport ring: the producer owns `tail`, the consumer
// owns `head`; each publishes its index with release ordering and reads the other's with acquire.
// Bounded (TigerBeetle: a limit on everything): a full queue drops the new element and counts it, so the
// producer never waits. push/pop are @_transparent so they inline, concrete, into the compiler-checked
// (@_noAllocation @_noLocks) code that calls them, in debug builds too.
import Synchronization

/// The two indices and the drop counter, shared by both sides.
public struct SPSCIndices: ~Copyable {
    @usableFromInline let head = Atomic<Int>(0)
    @usableFromInline let tail = Atomic<Int>(0)
    @usableFromInline let dropped = Atomic<Int>(0)
    init() {}
}

/// A non-owning handle on a queue's storage: copy it to the producer and to the consumer. The storage
/// belongs to the `SPSCBuffer` that made it and lives as long as that object.
public struct SPSCQueue<Element: BitwiseCopyable>: @unchecked Sendable {
    @usableFromInline let slots: UnsafeMutablePointer<Element>
    @usableFromInline let indices: UnsafeMutablePointer<SPSCIndices>
    @usableFromInline let mask: Int

    /// Capacity in elements (a power of two).
    public var capacity: Int { mask + 1 }

    /// Producer side: appends `element`, or drops it (counted in `dropped`) when the queue is full.
    /// Never blocks, never allocates.
    @_transparent @discardableResult
    public func push(_ element: Element) -> Bool {
        let t = indices.pointee.tail.load(ordering: .relaxed)
        let h = indices.pointee.head.load(ordering: .acquiring)
        if t &- h > mask {
            indices.pointee.dropped.add(1, ordering: .relaxed)
            return false
        }
        slots[t & mask] = element
        indices.pointee.tail.store(t &+ 1, ordering: .releasing)
        return true
    }

    /// Consumer side: the oldest element, or nil when empty. Never blocks, never allocates.
    @_transparent
    public func pop() -> Element? {
        let h = indices.pointee.head.load(ordering: .relaxed)
        let t = indices.pointee.tail.load(ordering: .acquiring)
        if h == t { return nil }
        let element = slots[h & mask]
        indices.pointee.head.store(h &+ 1, ordering: .releasing)
        return element
    }

    /// Elements waiting (either side; exact for the calling side, a snapshot for the other).
    public var count: Int {
        indices.pointee.tail.load(ordering: .acquiring) &- indices.pointee.head.load(ordering: .acquiring)
    }

    /// Elements dropped because the queue was full.
    public var dropped: Int { indices.pointee.dropped.load(ordering: .relaxed) }
}

/// Owns a queue's storage (allocated once, at start: nothing is allocated afterwards).
public final class SPSCBuffer<Element: BitwiseCopyable>: @unchecked Sendable {
    public let queue: SPSCQueue<Element>

    /// `capacity` is rounded up to a power of two; `filler` initialises the slots.
    public init(capacity: Int, filler: Element) {
        precondition(capacity > 0 && capacity <= 1 << 24, "SPSC capacity \(capacity) out of range")
        var n = 1
        while n < capacity { n <<= 1 }
        let slots = UnsafeMutablePointer<Element>.allocate(capacity: n)
        slots.initialize(repeating: filler, count: n)
        let indices = UnsafeMutablePointer<SPSCIndices>.allocate(capacity: 1)
        indices.initialize(to: SPSCIndices())
        queue = SPSCQueue(slots: slots, indices: indices, mask: n - 1)
    }

    deinit {
        queue.indices.deinitialize(count: 1)
        queue.indices.deallocate()
        queue.slots.deallocate()
    }
}
