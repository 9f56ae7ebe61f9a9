// The controller on a board with real devices (a real board, or a bench board whose plant is the
// emulator): one cycle is sample → step → apply on the board's drivers at the instant the clock gives.
// Nothing is simulated here. The cycle is driven either by the cyclic executive (a real board: the
// monotonic clock) or by the bench channel's ticks (a bench board: the plant's clock, in lockstep).
import ChargerCore
import LoopContract
import ChargerHAL
import RealTime
import Synchronization

public final class HardwareLoop: CycleBody, @unchecked Sendable {
    public let spec: StationSpec
    let devices: BoardDevices
    public let clock: LoopClock
    public let events = SPSCBuffer<LoopEvent>(capacity: 4096, filler: .overrun(misses: 0, at: .zero))
    public let commands = SPSCBuffer<OperatorCommand>(capacity: 256, filler: .reset(gun: 0))
    private let frame: UnsafeMutablePointer<ControlFrame>
    private let publisher: EventPublisher
    private let gunCount: Int
    private let moduleCount: Int
    private var overrunPending = false
    /// Where the loop's time comes from when the cyclic executive drives it: monotonic ns at time zero.
    private let epochNanos: Int64
    /// A hardware watchdog's kick, if any: at least every `kickEvery` of loop time, by a healthy cycle.
    /// Time, not a count of cycles: a starved loop that skips missed deadlines runs fewer cycles than
    /// periods, and a count of 100 cycles could then outlast the watchdog's timeout (the board file's
    /// `kick` is a time, docs/boards.md).
    private let kick: (() -> Void)?
    private let kickEvery: TimeSpan
    private var nextKick = Instant.never
    /// Kicks given (written by the loop's thread only; read by tests).
    public private(set) var kicks: UInt64 = 0
    private let cyclesDone = Atomic<UInt64>(0)
    /// The station's view for the console (written by the loop every 100 cycles).
    public let view = TripleBufferStorage(initial: StationView())
    /// The same view for the grid interfaces' thread, and the grid's composite feed back (wait-free).
    public let gridView = TripleBufferStorage(initial: StationView())
    public let grid = TripleBufferStorage(initial: GridFeed())
    private var gridWrites: UInt64 = 0
    /// The operator's and the grid's requests, merged into the inputs every cycle (`LoopRequests`).
    private var requests = LoopRequests()

    public init(spec: StationSpec, devices: BoardDevices, clock: LoopClock, statusEvery: UInt64,
                kick: (() -> Void)? = nil, kickEvery: TimeSpan = .ms(100)) {
        self.spec = spec
        self.devices = devices
        self.clock = clock
        self.kick = kick
        self.kickEvery = kickEvery
        gunCount = spec.gunCount
        moduleCount = spec.moduleCount
        frame = .allocate(capacity: 1)
        frame.initialize(to: ControlFrame(spec: spec))
        publisher = EventPublisher(
            queue: events.queue, gunCount: spec.gunCount, statusEvery: statusEvery, view: view.buffer, gridView: gridView.buffer)
        epochNanos = monotonicNanos()
    }
    deinit { frame.deinitialize(count: 1); frame.deallocate() }

    public var cycles: UInt64 { cyclesDone.load(ordering: .relaxed) }

    /// Latches faults that stood when the controller last stopped (`Journal.latchedAtStart`); call before
    /// the loop starts: a restart is not a reset.
    public func restoreLatched(_ faults: [StandingFault]) {
        for f in faults {
            frame.pointee.state.restoreLatched(f.code, gun: f.gun, at: clock.now, value: f.value, limit: f.limit, measure: f.measure)
        }
    }

    /// One cycle at `now` (the bench's tick, or the executive's clock).
    public func cycle(now: Instant, index: UInt64) {
        let f = frame
        clock.now = now
        f.pointee.inputs.now = now
        requests.loopOverrun = requests.loopOverrun || overrunPending
        overrunPending = false
        while let c = commands.queue.pop() { requests.apply(c) }
        // The grid's composite (written off the loop about every 100 ms), read only when one was written.
        let writes = grid.buffer.writes
        if writes != gridWrites {
            gridWrites = writes
            requests.feed(grid.buffer.read(), gunCount: gunCount)
        }
        requests.merge(into: &f.pointee.inputs, gunCount: gunCount)
        devices.sample(into: &f.pointee.inputs, spec: &f.pointee.spec)
        controlStep(&f.pointee.state, &f.pointee.inputs, &f.pointee.spec, &f.pointee.outputs)
        devices.apply(&f.pointee.outputs, spec: &f.pointee.spec)
        publisher.publish(frame: f, stepAt: now, index: index) { status(gun: $0) }
        // The watchdog hears from a loop that meets its deadlines and whose supervisor can be trusted.
        if let kick, now >= nextKick, healthy(f) {
            kick()
            kicks &+= 1
            nextKick = now + kickEvery
        }
        cyclesDone.add(1, ordering: .relaxed)
    }

    /// The loop and its supervisor can be trusted (the watchdog's condition).
    func healthy(_ f: UnsafeMutablePointer<ControlFrame>) -> Bool {
        // This cycle's: a deadline burst (E29's cause) or a failed line read or write (E32's); a loop that
        // meets its deadlines again with working lines kicks again. E31 stays: its outputs are suspect.
        if f.pointee.inputs.loopOverrun || f.pointee.inputs.boardIOError { return false }
        for g in 0..<gunCount where f.pointee.state.safety[g].latched.contains(.stepContractBroken) { return false }
        return true
    }

    /// Gun `g`'s figures as of the last step; the SOC is the car's own (BCS).
    public func status(gun g: Int) -> GunStatus {
        let f = frame
        let i = f.pointee.inputs.guns[g]
        return GunStatus(gun: Int8(g), at: f.pointee.inputs.now, phase: f.pointee.state.sessions[g].phase,
                         voltage: i.meterVoltage, current: i.meterCurrent, powerLimit: f.pointee.outputs.guns[g].powerLimit,
                         binding: f.pointee.outputs.guns[g].binding, soc: i.vehicle.bcs?.message.soc ?? .nan,
                         gunTemperature: i.gunTemperature, faults: f.pointee.state.faults(gun: g))
    }

    /// Gun `g`'s session as of the last step: why it stopped (or `.none`), the cable check's result.
    public func sessionEnd(gun g: Int) -> (stopReason: StopReason, insulation: Double?, insulationWarning: Bool) {
        let s = frame.pointee.state.sessions[g]
        return (s.stopReason, s.insulationMeasured.value > 0 ? s.insulationMeasured.value : nil, s.insulationWarning)
    }

    /// Every output safe and applied at once (no step): the loop's last word, and its word on overrun.
    public func forceSafeOutputs() {
        frame.pointee.outputs.makeSafe(gunCount: gunCount, moduleCount: moduleCount)
        devices.apply(&frame.pointee.outputs, spec: &frame.pointee.spec)
    }

    // MARK: CycleBody (driven by the cyclic executive on a real board)

    public func runCycle(deadline: Int64, index: UInt64) {
        cycle(now: Instant(micros: (deadline - epochNanos) / 1000), index: index)
    }
    public func loopOverrun(consecutiveMisses: Int, at deadline: Int64) {
        overrunPending = true
        forceSafeOutputs()
        events.queue.push(.overrun(misses: Int32(clamping: consecutiveMisses), at: Instant(micros: (deadline - epochNanos) / 1000)))
    }
    public func loopStopped() { forceSafeOutputs() }
}
