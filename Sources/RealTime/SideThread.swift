// A side thread of the runtime (a CAN link, a Modbus bus poller, the analog sampler, the EMS server, the
// OCPP client): a plain thread (normal scheduling, never on the loop's path) running its owner's body
// until it is asked to stop. One shape for all: started once, the owner kept alive by the thread while
// it runs, stopped by a flag the body polls (and a wake for a body that blocks in poll(2)), then joined.
import CRealTime
import Synchronization

public final class SideThread: @unchecked Sendable {
    private let stopFlag = Atomic<Bool>(false)
    private var handle: UInt64 = 0
    /// Touched by the owner's thread only (start and stop).
    public private(set) var running = false

    public init() {}

    /// The body's question, each round: has a stop been asked?
    public var stopAsked: Bool { stopFlag.load(ordering: .acquiring) }

    /// Starts `body` on a thread of its own; 0, or the errno of the failure.
    public func start(stackBytes: Int, _ body: @escaping @Sendable () -> Void) -> Int32 {
        guard !running else { return 0 }
        let box = Unmanaged.passRetained(Body(body)).toOpaque()
        let rc = rt_thread_start(sideThreadEntry, box, stackBytes, &handle)
        guard rc == 0 else {
            Unmanaged<Body>.fromOpaque(box).release()
            return rc
        }
        running = true
        return 0
    }

    /// Asks the body to stop, wakes it (`wake`: what ends its wait), and joins it.
    public func stop(wake: () -> Void = {}) {
        guard running else { return }
        stopFlag.store(true, ordering: .releasing)
        wake()
        _ = rt_thread_join(handle)
        running = false
    }
}

private final class Body {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

/// The C entry (a plain function: no actor context on a foreign thread).
private func sideThreadEntry(_ context: UnsafeMutableRawPointer?) {
    guard let context else { return }
    Unmanaged<Body>.fromOpaque(context).takeRetainedValue().run()
}
