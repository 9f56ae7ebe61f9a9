// The simulated board on the real-time runtime: the cyclic executive calls one cycle per period, the
// simulation's control half (sample → step → apply) then its plant half. Nothing leaves the loop but
// fixed-size events through a lock-free queue; nothing enters but operator commands through another.
import ChargerCore
import LoopContract
import RealTime
import StationLoop
import Synchronization

/// Timing of the first ground-fault edge seen by the loop (benchmark and tests).
public struct ReactionProbe: Sendable, BitwiseCopyable {
    /// Cycle in which the trip input was first sampled set, and the cycle whose applied outputs had
    /// K1/K2 open and every module of the gun off.
    public var edgeCycle: UInt64 = .max
    public var safeCycle: UInt64 = .max
    /// ns from the start of the edge cycle's sampling to the moment its outputs were applied.
    public var edgeToAppliedNanos: Int64 = -1
}

public final class RealTimeSimulation: CycleBody, @unchecked Sendable {
    public let sim: Simulation
    public let events = SPSCBuffer<LoopEvent>(capacity: 4096, filler: .overrun(misses: 0, at: .zero))
    public let commands = SPSCBuffer<OperatorCommand>(capacity: 256, filler: .reset(gun: 0))
    /// Cycles between status events (0: none).
    let gunCount: Int
    private let publisher: EventPublisher
    private let doneFlag = Atomic<Bool>(false)
    private let probeStorage: UnsafeMutablePointer<ReactionProbe>
    private let probeReady = Atomic<Bool>(false)

    /// The station's view for the console (written by the loop every 100 cycles).
    public let view = TripleBufferStorage(initial: StationView())
    /// The same view for the grid interfaces' thread (a triple buffer has one reader).
    public let gridView = TripleBufferStorage(initial: StationView())
    /// The grid's composite feed, written off the loop, read by it every cycle (wait-free).
    public let grid = TripleBufferStorage(initial: GridFeed())
    private var gridWrites: UInt64 = 0

    /// Times the first ground-fault reaction (two clock reads a cycle): the benchmark's and the tests'.
    let probeReaction: Bool

    public init(sim: Simulation, statusEvery: UInt64, probeReaction: Bool = true) {
        self.sim = sim
        self.probeReaction = probeReaction
        gunCount = sim.spec.gunCount
        publisher = EventPublisher(queue: events.queue, gunCount: gunCount, statusEvery: statusEvery, view: view.buffer, gridView: gridView.buffer)
        probeStorage = .allocate(capacity: 1)
        probeStorage.initialize(to: ReactionProbe())
    }
    deinit { probeStorage.deallocate() }

    /// Every car served and gone (set by the loop; read by anyone).
    public var done: Bool { doneFlag.load(ordering: .acquiring) }
    /// The ground-fault reaction timing, once measured.
    public var reaction: ReactionProbe? { probeReady.load(ordering: .acquiring) ? probeStorage.pointee : nil }

    public func runCycle(deadline: Int64, index: UInt64) {
        while let c = commands.queue.pop() { sim.command(c) }
        // A new grid feed (the writer publishes about every 100 ms): read only when one was written.
        let writes = grid.buffer.writes
        if writes != gridWrites {
            gridWrites = writes
            sim.setGridFeed(grid.buffer.read())
        }
        if probeReaction && !probeReady.load(ordering: .relaxed) {
            let started = monotonicNanos()
            sim.controlHalf()
            let applied = monotonicNanos()
            probe(index: index, nanos: applied - started)
        } else {
            sim.controlHalf()
        }
        sim.plantHalf()
        publish(index: index)
        if index % 1024 == 0 && sim.allCarsGone { doneFlag.store(true, ordering: .releasing) }
    }

    public func loopOverrun(consecutiveMisses: Int, at deadline: Int64) {
        sim.loopOverrun()
        events.queue.push(.overrun(misses: Int32(clamping: consecutiveMisses), at: sim.now))
    }

    public func loopStopped() { sim.forceSafeOutputs() }

    private func probe(index: UInt64, nanos: Int64) {
        // Through the frame's address: a copy of the whole frame per cycle would cost more than the cycle.
        let f = sim.framePointer
        for g in 0..<gunCount where f.pointee.inputs.guns[g].groundFaultTrip {
            if probeStorage.pointee.edgeCycle == .max {
                probeStorage.pointee.edgeCycle = index
                probeStorage.pointee.edgeToAppliedNanos = nanos
            }
            var safe = !f.pointee.outputs.guns[g].closeK1K2
            for m in 0..<sim.moduleCount where f.pointee.outputs.modules[m].gun == Int8(g) && f.pointee.outputs.modules[m].enabled { safe = false }
            if safe {
                probeStorage.pointee.safeCycle = index
                probeReady.store(true, ordering: .releasing)
            }
            return
        }
    }

    private func publish(index: UInt64) {
        // The instant this cycle's step ran (the plant has since moved one period on).
        publisher.publish(frame: sim.framePointer, stepAt: sim.framePointer.pointee.inputs.now, index: index) { sim.status(gun: $0) }
    }
}
