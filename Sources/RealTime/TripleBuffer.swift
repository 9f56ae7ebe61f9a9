// Lock-free latest-value exchange between one writer thread and one reader thread: how the real-time
// loop and a Modbus polling thread share setpoints and readings. A queue is the wrong shape for these
// (a slow reader would see old values and a fast writer would fill it); what both sides want is the
// newest complete value, never a torn one, without either side waiting.
//
// Three slots: the writer fills its back slot, then swaps it with the middle slot and marks it fresh;
// the reader, when it sees the mark, swaps its front slot with the middle. Each side only ever touches
// its own slot, so a value is never read while written. Wait-free on both sides: one atomic exchange.
import Synchronization

/// The middle slot's index and the fresh mark (bit 2), shared by both sides.
public struct TripleIndex: ~Copyable {
    @usableFromInline let middle = Atomic<UInt8>(1)
    @usableFromInline let writes = Atomic<UInt64>(0)
    init() {}
}

/// A non-owning handle on a triple buffer's storage (copy it to the writer and to the reader); the
/// storage belongs to the `TripleBufferStorage` that made it and lives as long as that object. Each
/// handle must be used by one side only: `write` by one thread, `read` by one other thread.
public struct TripleBuffer<Value: BitwiseCopyable>: @unchecked Sendable {
    @usableFromInline let slots: UnsafeMutablePointer<Value>
    @usableFromInline let shared: UnsafeMutablePointer<TripleIndex>
    /// The writer's back slot and the reader's front slot (each touched by its own side only).
    @usableFromInline let back: UnsafeMutablePointer<UInt8>
    @usableFromInline let front: UnsafeMutablePointer<UInt8>

    @usableFromInline static var fresh: UInt8 { 4 }

    /// Writer side: publishes `value` as the newest. Never blocks, never allocates.
    @_transparent
    public func write(_ value: Value) {
        let b = Int(back.pointee)
        slots[b] = value
        let old = shared.pointee.middle.exchange(UInt8(b) | Self.fresh, ordering: .acquiringAndReleasing)
        back.pointee = old & 3
        shared.pointee.writes.add(1, ordering: .relaxed)
    }

    /// Reader side: the newest published value (the same one again when nothing new was written).
    /// Never blocks, never allocates.
    @_transparent
    public func read() -> Value {
        if shared.pointee.middle.load(ordering: .relaxed) & Self.fresh != 0 {
            let old = shared.pointee.middle.exchange(front.pointee, ordering: .acquiringAndReleasing)
            front.pointee = old & 3
        }
        return slots[Int(front.pointee)]
    }

    /// How many values the writer has published (either side; a snapshot).
    public var writes: UInt64 { shared.pointee.writes.load(ordering: .relaxed) }
}

/// Owns a triple buffer's storage (allocated once, at start).
public final class TripleBufferStorage<Value: BitwiseCopyable>: @unchecked Sendable {
    public let buffer: TripleBuffer<Value>

    /// Every slot starts as `initial`: a reader before the first write sees it.
    public init(initial: Value) {
        let slots = UnsafeMutablePointer<Value>.allocate(capacity: 3)
        slots.initialize(repeating: initial, count: 3)
        let shared = UnsafeMutablePointer<TripleIndex>.allocate(capacity: 1)
        shared.initialize(to: TripleIndex())
        let back = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        back.initialize(to: 0)
        let front = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)
        front.initialize(to: 2)
        buffer = TripleBuffer(slots: slots, shared: shared, back: back, front: front)
    }

    deinit {
        buffer.shared.deinitialize(count: 1)
        buffer.shared.deallocate()
        buffer.slots.deallocate()
        buffer.back.deallocate()
        buffer.front.deallocate()
    }
}
