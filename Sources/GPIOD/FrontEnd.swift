// The digital front end of a real board on the kernel's GPIO character device (libgpiod v1): the HAL
// driver behind GunFrontEnd, StationSignals and MatrixRelays.
//
// At start: per chip, one bulk request for the outputs (each at its safe, inactive level) and one for
// the inputs, consumer "chargerd"; the trip inputs (e-stop, RCD/6 mA) each requested for both-edge
// events instead. A line held by another consumer, a missing chip or line: GPIOError naming chip, line
// and the holder. Every cycle: one ioctl reads every input of a chip, one ppoll asks whether a trip
// line saw an edge (a read only when it did), one ioctl writes every output of a chip; nothing is
// allocated. Inputs are debounced by board data; a trip input's active edge is taken at once, however
// short (the kernel timestamps it), and only its release is debounced. A failed read or write forces
// every output safe and is reported to the core (E32) on the next sample.
import BoardFile
import CGPIOD
import ChargerCore
import ChargerHAL
import RealTime
import SystemErrors
import SystemPackage
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One chip's bulk of lines: the libgpiod bulk, and which of the front end's slots each position is.
final class LineGroup {
    let chip: GPIOChip
    let bulk: UnsafeMutablePointer<gpiod_line_bulk>
    /// Front-end slot (output or input number) of each position.
    var slots: [Int] = []
    let values: UnsafeMutablePointer<Int32>
    init(chip: GPIOChip) {
        self.chip = chip
        bulk = cg_bulk_new()
        values = .allocate(capacity: 64)
        values.initialize(repeating: 0, count: 64)
    }
    deinit { cg_bulk_release(bulk); cg_bulk_free(bulk); values.deallocate() }
}

/// A debounced input: the level the controller takes, and how a new raw level earns its place.
public struct DebouncedInput: Sendable {
    public internal(set) var state = false
    var candidateCycles: Int32 = 0
    /// Cycles a new level must hold (the board's `debounce` over the loop period; 0: the next sample).
    public var holdCycles: Int32 = 0
    /// Trip inputs: an active level is taken at once; only the release waits.
    public var trip = false

    public init(holdCycles: Int32 = 0, trip: Bool = false) { self.holdCycles = holdCycles; self.trip = trip }

    /// Takes one raw sample (logical: true = active); `edgeSeen` is an active edge the kernel reported
    /// since the last sample, however short.
    public mutating func take(_ raw: Bool, edgeSeen: Bool) {
        if trip && (raw || edgeSeen) { state = true; candidateCycles = 0; return }
        if raw == state { candidateCycles = 0; return }
        candidateCycles += 1
        if candidateCycles > holdCycles { state = raw; candidateCycles = 0 }
    }
}

/// One edge event of a trip line (e-stop, RCD/6 mA trip) as the front end takes it.
///
/// Every edge starts or ends an active period, so an edge that reports the inactive level while the line
/// was known inactive means an active period came and went unseen. That happens: a line requested for
/// both edges through the v1 character device gets its edge's kind from the level the kernel's threaded
/// handler reads, later than the edge itself, so a pulse shorter than that latency comes back as two
/// edges of the inactive kind (seen with gpio-sim, Tests/kernel). Such a pulse is a trip.
public enum TripEdge {
    /// The line's level after the edge, and whether it shows an active period since the last sample.
    public static func take(rising: Bool, activeHigh: Bool, wasActive: Bool) -> (active: Bool, tripSeen: Bool) {
        let active = rising == activeHigh
        return (active, active || !wasActive)
    }
}

public final class GPIOFrontEnd: GunFrontEnd, StationSignals, MatrixRelays {
    public let specs: [GPIOLineSpec]
    private var chips: [String: GPIOChip] = [:]
    private var outputGroups: [LineGroup] = []
    private var inputGroups: [LineGroup] = []
    /// Trip lines, one event request each, grouped per chip for one ppoll.
    private var eventGroups: [LineGroup] = []
    private let readyBulk = cg_bulk_new()!

    /// Output slots: spec index and the logical value wanted.
    private let outputSpec: [Int]
    private let outputWanted: UnsafeMutablePointer<Bool>
    /// Input slots.
    private let inputSpec: [Int]
    private let inputs: UnsafeMutablePointer<DebouncedInput>
    private let inputRaw: UnsafeMutablePointer<Bool>
    private let inputEdge: UnsafeMutablePointer<Bool>
    private let eventCount: Int
    /// One read's worth of edges (kinds and kernel timestamps), allocated once.
    private let edgeRising = UnsafeMutablePointer<Int32>.allocate(capacity: 16)
    private let edgeStamps = UnsafeMutablePointer<Int64>.allocate(capacity: 16)

    /// Per gun: slot numbers (-1 none), looked up once.
    private struct GunSlots {
        var k1k2 = -1, k3k4 = -1, lockMotor = -1, discharge = -1, rcdTest = -1, green = -1, blue = -1, red = -1
        var k1Aux = -1, k2Aux = -1, k3k4Aux = -1, lockFeedback = -1, rcdTrip = -1, imdAlarm = -1, peMonitor = -1
    }
    private let gunSlots: [GunSlots]
    private let estop: Int, door: Int, mains: Int
    /// The contactor coils' charge pump (-1 none) and the level it was last written at: flipped at every
    /// flush, so the supply holds only while the loop writes its outputs (`[contactor_supply]`).
    private let coilPump: Int
    private var pumpLevel = false
    /// Matrix relay output slot of (module, gun), -1 none: `matrix[module * guns + gun]`.
    private let matrix: [Int]
    private let guns: Int

    /// The earth-fault detector's test, per gun: commanded, and whether its trip came back.
    private var testCommanded: [Bool]
    private var testTripSeen: [Bool]

    /// A read or write failed since the last sample (reported to the core once, then cleared).
    private var ioErrorPending = false
    /// What failed in the loop, as plain values (no text is made on the loop's thread, even on this
    /// path: the reader formats it).
    enum IOOperation: UInt8 {
        case readInputs = 1, pollTrips, readTrips, writeOutputs
        var text: String {
            switch self {
            case .readInputs: "read inputs"
            case .pollTrips: "poll trip lines"
            case .readTrips: "read trip events"
            case .writeOutputs: "write outputs"
            }
        }
    }
    /// Every failure so far, and the last one packed as operation << 40 | chip << 32 | errno (for the
    /// console, another thread).
    private let ioErrorCount = Atomic<UInt64>(0)
    private let lastIOErrorPacked = Atomic<UInt64>(0)
    /// The chips in request order: group `i` of each kind is on `chipNames[i]` (set once in init).
    private var chipNames: [String] = []
    public var ioErrors: UInt64 { ioErrorCount.load(ordering: .relaxed) }
    public var lastIOError: String {
        let v = lastIOErrorPacked.load(ordering: .relaxed)
        guard let op = IOOperation(rawValue: UInt8(truncatingIfNeeded: v >> 40)) else { return "" }
        let chip = Int(UInt8(truncatingIfNeeded: v >> 32))
        let e = Errno(rawValue: Int32(bitPattern: UInt32(truncatingIfNeeded: v)))
        return "\(op.text) on \(chip < chipNames.count ? chipNames[chip] : "chip \(chip)"): \(e) (\(e.cName))"
    }

    /// The kernel's timestamp of the last active e-stop edge, and the monotonic time the first outputs
    /// computed after it (K1/K2 inactive: E01 latched in that step) reached the lines (ns; 0 none).
    private let estopEdgeNs = Atomic<Int64>(0)
    private let estopSafeWriteNs = Atomic<Int64>(0)
    public var lastEstopEdgeNs: Int64 { estopEdgeNs.load(ordering: .relaxed) }
    public var lastEstopSafeWriteNs: Int64 { estopSafeWriteNs.load(ordering: .relaxed) }
    private let period: TimeSpan

    // Long: every line requested chip by chip with its safe level, and every request released again if a later
    // one fails: one transaction
    /// Requests every line of `map` (outputs at their safe level). `period` turns debounce times into
    /// cycles.
    public init(map: [GPIOLineSpec], guns: Int, modules: Int, period: TimeSpan, consumer: String = "chargerd") throws(GPIOError) {
        specs = map
        self.guns = guns
        self.period = period
        var outSpec: [Int] = [], inSpec: [Int] = []
        for (i, s) in map.enumerated() { if s.isOutput { outSpec.append(i) } else { inSpec.append(i) } }
        outputSpec = outSpec
        inputSpec = inSpec
        outputWanted = .allocate(capacity: max(1, outSpec.count))
        outputWanted.initialize(repeating: false, count: max(1, outSpec.count))
        inputs = .allocate(capacity: max(1, inSpec.count))
        inputs.initialize(repeating: DebouncedInput(), count: max(1, inSpec.count))
        inputRaw = .allocate(capacity: max(1, inSpec.count))
        inputRaw.initialize(repeating: false, count: max(1, inSpec.count))
        inputEdge = .allocate(capacity: max(1, inSpec.count))
        inputEdge.initialize(repeating: false, count: max(1, inSpec.count))
        testCommanded = Array(repeating: false, count: guns)
        testTripSeen = Array(repeating: false, count: guns)

        func slot(_ list: [Int], _ signal: GPIOSignal, gun: Int?) -> Int {
            list.firstIndex { map[$0].signal == signal && map[$0].gun == gun } ?? -1
        }
        gunSlots = (0..<guns).map { g in
            GunSlots(k1k2: slot(outSpec, .k1k2, gun: g), k3k4: slot(outSpec, .k3k4, gun: g), lockMotor: slot(outSpec, .lockMotor, gun: g),
                     discharge: slot(outSpec, .discharge, gun: g), rcdTest: slot(outSpec, .rcdTest, gun: g),
                     green: slot(outSpec, .lampGreen, gun: g), blue: slot(outSpec, .lampBlue, gun: g), red: slot(outSpec, .lampRed, gun: g),
                     k1Aux: slot(inSpec, .k1Aux, gun: g), k2Aux: slot(inSpec, .k2Aux, gun: g), k3k4Aux: slot(inSpec, .k3k4Aux, gun: g),
                     lockFeedback: slot(inSpec, .lockFeedback, gun: g), rcdTrip: slot(inSpec, .rcdTrip, gun: g),
                     imdAlarm: slot(inSpec, .imdAlarm, gun: g), peMonitor: slot(inSpec, .peMonitor, gun: g))
        }
        estop = slot(inSpec, .emergencyStop, gun: nil)
        door = slot(inSpec, .door, gun: nil)
        mains = slot(inSpec, .mains, gun: nil)
        coilPump = slot(outSpec, .coilPump, gun: nil)
        var m: [Int] = Array(repeating: -1, count: max(1, modules * guns))
        for (k, i) in outSpec.enumerated() where map[i].signal == .matrix {
            if let mod = map[i].module, let g = map[i].gun { m[mod * guns + g] = k }
        }
        matrix = m

        // Requests, per chip: outputs (safe levels), inputs, and each trip line for events.
        var chipsSeen: [String] = []
        for s in map where !chipsSeen.contains(s.chip) { chipsSeen.append(s.chip) }
        chipNames = chipsSeen
        var events = 0
        for name in chipsSeen {
            let chip: GPIOChip
            if let c = chips[name] { chip = c } else { chip = try GPIOChip(name); chips[name] = chip }
            let outs = LineGroup(chip: chip), ins = LineGroup(chip: chip), evs = LineGroup(chip: chip)
            for (k, i) in outSpec.enumerated() where map[i].chip == name {
                outs.values[outs.slots.count] = Self.physical(false, map[i])
                try Self.add(outs, map[i], chip)
                outs.slots.append(k)
            }
            for (k, i) in inSpec.enumerated() where map[i].chip == name {
                inputs[k].holdCycles = Int32(clamping: period.micros > 0 ? map[i].debounce.micros / period.micros : 0)
                inputs[k].trip = map[i].signal.isTripInput
                let group = map[i].signal.isTripInput ? evs : ins
                try Self.add(group, map[i], chip)
                group.slots.append(k)
            }
            if !outs.slots.isEmpty {
                guard cg_bulk_request_output(outs.bulk, consumer, outs.values) == 0 else { throw Self.requestError(outs, map, outSpec, consumer) }
            }
            if !ins.slots.isEmpty {
                guard cg_bulk_request_input(ins.bulk, consumer) == 0 else { throw Self.requestError(ins, map, inSpec, consumer) }
            }
            for (p, k) in evs.slots.enumerated() {
                let line = cg_bulk_line(evs.bulk, UInt32(p))
                guard gpiod_line_request_both_edges_events(line, consumer) == 0 else {
                    throw Self.requestError(evs, map, inSpec, consumer, only: p)
                }
                // The level now (one ioctl at start); edges keep it from here.
                let v = gpiod_line_get_value(line)
                guard v >= 0 else {
                    let s = map[inSpec[k]]
                    throw GPIOError(operation: .getValue, chip: name, line: s.line, signal: s.name, errno: Errno(rawValue: errno))
                }
                inputRaw[k] = (v == 1) == (map[inSpec[k]].active == .high)
                inputs[k].state = inputRaw[k]
                events += 1
            }
            outputGroups.append(outs)
            inputGroups.append(ins)
            eventGroups.append(evs)
        }
        eventCount = events
        // The first reading of every input is its state (no debounce wait at start).
        readInputs()
        for k in 0..<inSpec.count { inputs[k].state = inputRaw[k] || inputEdge[k]; inputEdge[k] = false }
    }

    deinit {
        outputWanted.deallocate(); inputs.deallocate(); inputRaw.deallocate(); inputEdge.deallocate()
        cg_bulk_free(readyBulk); edgeRising.deallocate(); edgeStamps.deallocate()
    }

    /// The physical level of a logical value on a line (active-low lines inverted).
    static func physical(_ active: Bool, _ s: GPIOLineSpec) -> Int32 { active == (s.active == .high) ? 1 : 0 }

    static func add(_ g: LineGroup, _ s: GPIOLineSpec, _ chip: GPIOChip) throws(GPIOError) {
        errno = 0
        guard g.slots.count < 64, let line = gpiod_chip_get_line(chip.handle, UInt32(s.line)) else {
            throw GPIOError(operation: .getLine, chip: chip.name, line: s.line, signal: s.name, errno: Errno(c: errno) ?? .invalidArgument)
        }
        cg_bulk_add(g.bulk, line)
    }

    /// The error of a failed request, naming the line another consumer holds (as gpioinfo shows it).
    static func requestError(_ g: LineGroup, _ map: [GPIOLineSpec], _ list: [Int], _ consumer: String, only: Int? = nil) -> GPIOError {
        let e = Errno(rawValue: errno)
        let positions = only.map { [$0] } ?? Array(0..<g.slots.count)
        // The request failed, so none of these is ours: a consumer on one is the holder.
        for p in positions {
            let line = cg_bulk_line(g.bulk, UInt32(p))
            _ = gpiod_line_update(line)
            if gpiod_line_is_used(line), let c = gpiod_line_consumer(line) {
                let s = map[list[g.slots[p]]]
                var err = GPIOError(operation: .request, chip: g.chip.name, line: s.line, signal: s.name, errno: e)
                err.holder = String(cString: c)
                return err
            }
        }
        let s = map[list[g.slots[positions.first ?? 0]]]
        return GPIOError(operation: .request, chip: g.chip.name, line: only == nil ? nil : s.line, signal: only == nil ? "\(g.slots.count) lines" : s.name, errno: e)
    }

    // MARK: the cycle

    /// Reads every input group (one ioctl each) and drains the trip lines' edges (one ppoll; a read
    /// only where an edge came).
    private func readInputs() {
        for (c, g) in inputGroups.enumerated() where !g.slots.isEmpty {
            guard cg_bulk_get(g.bulk, g.values) == 0 else { ioFailed(.readInputs, chip: c); continue }
            for (p, k) in g.slots.enumerated() { inputRaw[k] = (g.values[p] == 1) == (specs[inputSpec[k]].active == .high) }
        }
        guard eventCount > 0 else { return }
        for (c, g) in eventGroups.enumerated() where !g.slots.isEmpty {
            let r = cg_bulk_events_pending(g.bulk, readyBulk)
            if r < 0 { ioFailed(.pollTrips, chip: c); continue }
            guard r == 1 else { continue }
            // Only the lines with an edge waiting (usually one): find each one's position.
            for q in 0..<cg_bulk_count(readyBulk) {
                let line = cg_bulk_line(readyBulk, q)
                var p = 0
                while p < g.slots.count && cg_bulk_line(g.bulk, UInt32(p)) != line { p += 1 }
                guard p < g.slots.count else { continue }
                let k = g.slots[p]
                let activeHigh = specs[inputSpec[k]].active == .high
                let n = cg_line_read_events(line, edgeRising, edgeStamps, 16)
                if n < 0 { ioFailed(.readTrips, chip: c); continue }
                for e in 0..<Int(n) {
                    let step = TripEdge.take(rising: edgeRising[e] == 1, activeHigh: activeHigh, wasActive: inputRaw[k])
                    inputRaw[k] = step.active
                    if step.tripSeen {
                        inputEdge[k] = true
                        if k == estop { estopEdgeNs.store(edgeStamps[e], ordering: .relaxed) }
                    }
                }
            }
        }
    }

    private func ioFailed(_ op: IOOperation, chip: Int) {
        let e = UInt64(UInt32(bitPattern: errno))
        ioErrorCount.add(1, ordering: .relaxed)
        ioErrorPending = true
        lastIOErrorPacked.store(UInt64(op.rawValue) << 40 | UInt64(UInt8(truncatingIfNeeded: chip)) << 32 | e, ordering: .relaxed)
        for k in 0..<outputSpec.count { outputWanted[k] = false }
        for g in outputGroups where !g.slots.isEmpty {
            for (p, k) in g.slots.enumerated() { g.values[p] = Self.physical(false, specs[outputSpec[k]]) }
            _ = cg_bulk_set(g.bulk, g.values)
        }
    }

    private func state(_ slot: Int, otherwise: Bool) -> Bool { slot >= 0 ? inputs[slot].state : otherwise }

    // MARK: StationSignals (sampled first in a cycle: the one read of the lines)

    public func sample(into i: inout StationInputs) {
        readInputs()
        for k in 0..<inputSpec.count {
            inputs[k].take(inputRaw[k], edgeSeen: inputEdge[k])
            inputEdge[k] = false
        }
        i.emergencyStop = state(estop, otherwise: false)
        i.doorOpen = state(door, otherwise: false)
        i.mainsPresent = state(mains, otherwise: true)
        i.boardIOError = ioErrorPending
        ioErrorPending = false
    }

    // MARK: GunFrontEnd

    public func sample(gun g: Int, into i: inout GunInputs) {
        let s = gunSlots[g]
        i.k1Closed = state(s.k1Aux, otherwise: false)
        i.k2Closed = state(s.k2Aux, otherwise: false)
        i.k3k4Closed = state(s.k3k4Aux, otherwise: false)
        i.lockConfirmed = state(s.lockFeedback, otherwise: false)
        i.groundFaultTrip = state(s.rcdTrip, otherwise: false)
        i.imdAlarm = state(s.imdAlarm, otherwise: false)
        i.peContinuity = state(s.peMonitor, otherwise: true)
        // The detector's test: running while commanded until its trip relay answers, then passed.
        if testCommanded[g] && i.groundFaultTrip { testTripSeen[g] = true }
        i.groundDetectorTest = s.rcdTest < 0 ? .idle : !testCommanded[g] ? .idle : testTripSeen[g] ? .passed : .running
    }

    public func apply(gun g: Int, _ o: GunOutputs) {
        let s = gunSlots[g]
        set(s.k1k2, o.closeK1K2)
        set(s.k3k4, o.closeK3K4)
        set(s.lockMotor, o.lock)
        set(s.discharge, o.discharge)
        set(s.rcdTest, o.groundDetectorTest)
        set(s.green, o.lamp == .available)
        set(s.blue, o.lamp == .charging || o.lamp == .busy)
        set(s.red, o.lamp == .fault)
        if o.groundDetectorTest != testCommanded[g] { testCommanded[g] = o.groundDetectorTest; testTripSeen[g] = false }
    }

    private func set(_ slot: Int, _ active: Bool) { if slot >= 0 { outputWanted[slot] = active } }

    /// One write of every output line per chip (the cycle's end), the coil pump flipped in it.
    public func flush() {
        if coilPump >= 0 { pumpLevel.toggle(); outputWanted[coilPump] = pumpLevel }
        write()
    }

    private func write() {
        for (c, g) in outputGroups.enumerated() where !g.slots.isEmpty {
            for (p, k) in g.slots.enumerated() { g.values[p] = Self.physical(outputWanted[k], specs[outputSpec[k]]) }
            guard cg_bulk_set(g.bulk, g.values) == 0 else { ioFailed(.writeOutputs, chip: c); return }
        }
        if lastEstopEdgeNs > 0 && lastEstopSafeWriteNs < lastEstopEdgeNs {
            estopSafeWriteNs.store(monotonicNanos(), ordering: .relaxed)
        }
    }

    // MARK: MatrixRelays

    public func set(module m: Int, gun: Int8) {
        for g in 0..<guns { set(matrix[m * guns + g], Int(gun) == g) }
    }
    public func commit() {}

    /// Every output inactive, written now (exit paths; the loop's own safe state goes through apply). The
    /// coil pump stops with them: inactive, and no longer flipped, the supply falls after its hold.
    public func makeSafe() {
        for k in 0..<outputSpec.count { outputWanted[k] = false }
        pumpLevel = false
        write()
    }

    /// The front end for the console: lines, errors, the last e-stop edge to safe outputs.
    public var report: String {
        var s = "gpio: \(outputSpec.count) outputs, \(inputSpec.count - eventCount) inputs, \(eventCount) trip lines on edge events; \(ioErrors) I/O errors"
        if !lastIOError.isEmpty { s += " (last: \(lastIOError))" }
        if lastEstopSafeWriteNs > 0 {
            let ns = lastEstopSafeWriteNs - lastEstopEdgeNs
            let cycles = period.micros > 0 ? Double(ns) / 1000 / Double(period.micros) : 0
            s += "; e-stop edge (kernel timestamp) to the lines written safe: \(String(format: "%.3f", Double(ns) / 1e6)) ms (\(String(format: "%.2f", cycles)) periods)"
        }
        return s
    }
}
