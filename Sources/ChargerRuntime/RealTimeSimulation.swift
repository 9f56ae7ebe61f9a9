// The simulated board on the real-time runtime: the cyclic executive calls one cycle per period, the
// simulation's control half (sample → step → apply) then its plant half. Nothing leaves the loop but
// fixed-size events through a lock-free queue; nothing enters but operator commands through another.
import ChargerCore
import RealTime
import Synchronization

/// What the loop tells the rest of the process, by value, through an SPSC queue.
public enum LoopEvent: Sendable, BitwiseCopyable {
    /// A fault latched (or an existing record cleared), as logged by the core.
    case fault(FaultRecord)
    /// A gun's session changed phase.
    case phase(gun: Int8, SessionPhase, at: Instant)
    /// The loop missed `misses` deadlines in a row (beyond the board's limit): outputs forced safe.
    case overrun(misses: Int32, at: Instant)
    /// A gun's figures, once per status interval.
    case status(GunStatus)
}

/// Operator requests into the loop (console, grid interface, signal handler).
public enum OperatorCommand: Sendable, BitwiseCopyable {
    case reset(gun: Int8)
    case stop(gun: Int8)
    case stationSetpoint(Watts?)
    case gunSetpoint(gun: Int8, Watts?)
    /// A technician's temporary power cap on a gun (nil lifts it).
    case operatorCap(gun: Int8, Watts?)
    /// Take a gun out of service (true) or back (false).
    case outOfService(gun: Int8, Bool)
    /// Hold an actuator test on an idle gun (`.none` ends it).
    case actuatorTest(gun: Int8, ActuatorTest)
}

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

    public init(sim: Simulation, statusEvery: UInt64) {
        self.sim = sim
        gunCount = sim.spec.gunCount
        publisher = EventPublisher(queue: events.queue, gunCount: gunCount, statusEvery: statusEvery)
        probeStorage = .allocate(capacity: 1)
        probeStorage.initialize(to: ReactionProbe())
    }
    deinit { probeStorage.deallocate() }

    /// Every car served and gone (set by the loop; read by anyone).
    public var done: Bool { doneFlag.load(ordering: .acquiring) }
    /// The ground-fault reaction timing, once measured.
    public var reaction: ReactionProbe? { probeReady.load(ordering: .acquiring) ? probeStorage.pointee : nil }

    public func runCycle(deadline: Int64, index: UInt64) {
        while let c = commands.queue.pop() {
            switch c {
            case .reset(let g): sim.requestReset(gun: Int(g))
            case .stop(let g): sim.requestStop(gun: Int(g))
            case .stationSetpoint(let p): sim.setStationSetpoint(p)
            case .gunSetpoint(let g, let p): sim.setGunSetpoint(Int(g), p)
            case .operatorCap(let g, let p): sim.setOperatorCap(gun: Int(g), p)
            case .outOfService(let g, let o): sim.setOutOfService(gun: Int(g), o)
            case .actuatorTest(let g, let t): sim.setActuatorTest(gun: Int(g), t)
            }
        }
        let started = monotonicNanos()
        sim.controlHalf()
        let applied = monotonicNanos()
        probe(index: index, nanos: applied - started)
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
        guard !probeReady.load(ordering: .relaxed) else { return }
        let f = sim.frame
        for g in 0..<gunCount where f.inputs.guns[g].groundFaultTrip {
            if probeStorage.pointee.edgeCycle == .max {
                probeStorage.pointee.edgeCycle = index
                probeStorage.pointee.edgeToAppliedNanos = nanos
            }
            var safe = !f.outputs.guns[g].closeK1K2
            for m in 0..<sim.moduleCount where f.outputs.modules[m].gun == Int8(g) && f.outputs.modules[m].enabled { safe = false }
            if safe {
                probeStorage.pointee.safeCycle = index
                probeReady.store(true, ordering: .releasing)
            }
            return
        }
    }

    private func publish(index: UInt64) {
        // The instant this cycle's step ran (the plant has since moved one period on).
        publisher.publish(state: &sim.hotFrame.pointee.state, stepAt: sim.frame.inputs.now, index: index) { sim.status(gun: $0) }
    }
}

/// Turns what one cycle changed into events: faults as they latch (and clearings), phase changes, and
/// each gun's status once per `statusEvery` cycles. Shared by the simulated and the hardware loops.
final class EventPublisher {
    let queue: SPSCQueue<LoopEvent>
    let gunCount: Int
    let statusEvery: UInt64
    private let lastPhase: UnsafeMutablePointer<SessionPhase>
    private var lastSequence: UInt64 = 0
    private var lastClearings: UInt64 = 0

    init(queue: SPSCQueue<LoopEvent>, gunCount: Int, statusEvery: UInt64) {
        self.queue = queue; self.gunCount = gunCount; self.statusEvery = statusEvery
        lastPhase = .allocate(capacity: Capacity.guns)
        lastPhase.initialize(repeating: .unplugged, count: Capacity.guns)
    }
    deinit { lastPhase.deallocate() }

    /// `state` is read only (by reference: no copy of it per cycle).
    func publish(state: inout StationState, stepAt: Instant, index: UInt64, status: (Int) -> GunStatus) {
        let q = queue
        while lastSequence < state.log.lastSequence {
            lastSequence += 1
            if let r = state.log.record(sequence: lastSequence) { q.push(.fault(r)) }
        }
        if state.log.clearings != lastClearings {
            lastClearings = state.log.clearings
            var s = state.log.lastSequence
            var n = 0
            while s >= 1 && n < 128 {
                if let r = state.log.record(sequence: s), let c = r.clearedAt, c == stepAt { q.push(.fault(r)) }
                s -= 1; n += 1
            }
        }
        for g in 0..<gunCount {
            let p = state.sessions[g].phase
            if p != lastPhase[g] {
                lastPhase[g] = p
                q.push(.phase(gun: Int8(g), p, at: stepAt))
            }
        }
        if statusEvery > 0 && index % statusEvery == statusEvery - 1 {
            for g in 0..<gunCount { q.push(.status(status(g))) }
        }
    }
}
