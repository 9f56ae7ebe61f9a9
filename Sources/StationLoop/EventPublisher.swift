// What the loop tells the rest of the process, built every cycle from the frame: fault, phase, session
// and status events, K1/K2's measured close and open times, and the station's view. Shared by the hardware
// loop (this module) and the simulated board's real-time body (ChargerRuntime).
import ChargerCore
import LoopContract
import RealTime

/// K1/K2's close and open times, measured every cycle: from the command's edge (the safety state's
/// `k1k2ChangedAt`) to the cycle whose inputs first show both aux contacts in the commanded position.
public struct ContactorTimes: Sendable {
    var waiting = false
    var lastCommand = false
    public private(set) var closeTime: TimeSpan = .zero, openTime: TimeSpan = .zero
    public private(set) var closedAt: Instant = .never, openedAt: Instant = .never
    public init() {}

    public mutating func observe(commanded: Bool, changedAt: Instant, k1: Bool, k2: Bool, now: Instant) {
        if commanded != lastCommand { lastCommand = commanded; waiting = true }
        guard waiting else { return }
        if commanded && k1 && k2 { closeTime = now - changedAt; closedAt = now; waiting = false }
        else if !commanded && !k1 && !k2 { openTime = now - changedAt; openedAt = now; waiting = false }
    }
}

/// Turns what one cycle changed into events: faults as they latch (and clearings), phase changes, session
/// edges, and each gun's status once per `statusEvery` cycles; and every `viewEvery` cycles the station's
/// view into its triple buffer. Shared by the simulated and the hardware loops. No allocation.
package final class EventPublisher {
    let queue: SPSCQueue<LoopEvent>
    let gunCount: Int
    let statusEvery: UInt64
    let view: TripleBuffer<StationView>?
    let gridView: TripleBuffer<StationView>?
    let viewEvery: UInt64
    private let lastPhase: UnsafeMutablePointer<SessionPhase>
    private let inSession: UnsafeMutablePointer<Bool>
    private let outOfService: UnsafeMutablePointer<Bool>
    /// Per gun: K1/K2's close and open times as last measured (command edge to both aux contacts), and
    /// whether the current command's edge still waits for its feedback.
    private let contactorTimes: UnsafeMutablePointer<ContactorTimes>
    private let scratch: UnsafeMutablePointer<StationView>
    private var lastSequence: UInt64 = 0
    private var lastClearings: UInt64 = 0

    package init(queue: SPSCQueue<LoopEvent>, gunCount: Int, statusEvery: UInt64, view: TripleBuffer<StationView>? = nil,
         gridView: TripleBuffer<StationView>? = nil, viewEvery: UInt64 = 100) {
        self.queue = queue; self.gunCount = gunCount; self.statusEvery = statusEvery
        self.view = view; self.gridView = gridView; self.viewEvery = max(1, viewEvery)
        lastPhase = .allocate(capacity: Capacity.guns)
        lastPhase.initialize(repeating: .unplugged, count: Capacity.guns)
        inSession = .allocate(capacity: Capacity.guns)
        inSession.initialize(repeating: false, count: Capacity.guns)
        outOfService = .allocate(capacity: Capacity.guns)
        outOfService.initialize(repeating: false, count: Capacity.guns)
        contactorTimes = .allocate(capacity: Capacity.guns)
        contactorTimes.initialize(repeating: ContactorTimes(), count: Capacity.guns)
        scratch = .allocate(capacity: 1)
        scratch.initialize(to: StationView())
    }
    deinit { lastPhase.deallocate(); inSession.deallocate(); outOfService.deallocate(); contactorTimes.deallocate(); scratch.deallocate() }

    /// `frame` is read only (in place: no copy of it per cycle).
    package func publish(frame f: UnsafeMutablePointer<ControlFrame>, stepAt: Instant, index: UInt64, status: (Int) -> GunStatus) {
        let q = queue
        // Everything is read through `f.pointee` in place (no copy of the 12 KB state per cycle).
        while lastSequence < f.pointee.state.log.lastSequence {
            lastSequence += 1
            if let r = f.pointee.state.log.record(sequence: lastSequence) { q.push(.fault(r)) }
        }
        if f.pointee.state.log.clearings != lastClearings {
            lastClearings = f.pointee.state.log.clearings
            var s = f.pointee.state.log.lastSequence
            var n = 0
            while s >= 1 && n < 128 {
                if let r = f.pointee.state.log.record(sequence: s), let c = r.clearedAt, c == stepAt { q.push(.fault(r)) }
                s -= 1; n += 1
            }
        }
        for g in 0..<gunCount {
            contactorTimes[g].observe(commanded: f.pointee.state.safety[g].k1k2Commanded, changedAt: f.pointee.state.safety[g].k1k2ChangedAt,
                                      k1: f.pointee.inputs.guns[g].k1Closed, k2: f.pointee.inputs.guns[g].k2Closed, now: stepAt)
            let out = f.pointee.inputs.guns[g].outOfService
            if out != outOfService[g] {
                outOfService[g] = out
                q.push(.service(gun: Int8(g), out: out, at: stepAt))
            }
            let p = f.pointee.state.sessions[g].phase
            if p != lastPhase[g] {
                let before = lastPhase[g]
                lastPhase[g] = p
                q.push(.phase(gun: Int8(g), p, at: stepAt))
                // Session edges: locking begins one; finished or faulted ends it, or the car went before.
                // Plug and charge: a session whose VIN is still to be answered begins when recognition lets
                // it on (parameter exchange), so that a refused VIN is no session (and no transaction).
                let vinPending = f.pointee.inputs.guns[g].vinCheck.isPending
                let startsNow = !inSession[g] && ((p == .locking && before != .locking && !vinPending) || p == .parameterExchange)
                let endsNow = inSession[g] && (p == .finished || p == .faulted || p == .unplugged)
                if endsNow || startsNow {
                    var edge = SessionEdge(gun: Int8(g), started: startsNow, at: stepAt, meterEnergy: f.pointee.inputs.guns[g].meterEnergy,
                                           soc: f.pointee.inputs.guns[g].vehicle.bcs?.message.soc ?? .nan,
                                           stopReason: f.pointee.state.sessions[g].stopReason,
                                           meterExportEnergy: f.pointee.inputs.guns[g].meterExportEnergy)
                    if endsNow {
                        edge.chargerEnergy = WattHours(f.pointee.state.metering[g].chargerEnergy)
                        let m = f.pointee.state.metering[g]
                        edge.meteringDeviation = m.anomaly || m.incomplete ? .nan : m.deviation
                    }
                    // (A phase cannot both end one session and begin another: locking is neither end.)
                    if endsNow { inSession[g] = false }
                    if startsNow { inSession[g] = true }
                    q.push(.session(edge))
                }
            }
        }
        if statusEvery > 0 && index % statusEvery == statusEvery - 1 {
            for g in 0..<gunCount { q.push(.status(status(g))) }
        }
        if view != nil || gridView != nil, index % viewEvery == 0 {
            scratch.pointee.fill(f.pointee, index: index, status: status)
            for g in 0..<gunCount {
                let c = contactorTimes[g]
                scratch.pointee.guns[g].contactorCloseTime = c.closeTime; scratch.pointee.guns[g].contactorClosedAt = c.closedAt
                scratch.pointee.guns[g].contactorOpenTime = c.openTime; scratch.pointee.guns[g].contactorOpenedAt = c.openedAt
            }
            view?.write(scratch.pointee)
            gridView?.write(scratch.pointee)
        }
    }
}
