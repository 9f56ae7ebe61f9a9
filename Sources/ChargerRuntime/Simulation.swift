// The simulated charger: the mocked board's plant, the HAL sampling, the control step and the
// invariants, cycle by cycle in virtual time. Deterministic: same board, cars and injections →
// the same trace, bit for bit.
import ChargerCore
import LoopContract
import Foundation
import ChargerHAL
import BoardFile
import SimPlant
import RealTime
import StationLoop

/// Per-gun running figures for the status line and the summary.
public struct GunReport: Sendable {
    public var peakPower: Watts = .zero
    public var energyAtPlug: WattHours? = nil
    /// The meter's export register at the plug (V2G).
    public var exportAtPlug: WattHours = .zero
    public var socStart: Double? = nil
    public var socEnd: Double? = nil
    public var completedSessions = 0
    /// Sessions started on this gun in the run, and the meter's energy of those before the present one
    /// (continuous mode: the run's energy is all of them, not the last car's alone).
    public var startedSessions = 0
    public var energyBefore: WattHours = .zero
    public var endedNormally = false
    /// The gun's last session was refused by plug and charge (stop reason not-authorized, no energy).
    public var notAuthorized = false
    public var maxTemperature = Celsius(-100)
    /// Seconds of charging during which each limit source bound, indexed by `LimitSource.rawValue`.
    public var limitSourceTime = [Double](repeating: 0, count: LimitSource.allCases.count)
    public init() {}
}

public final class Simulation {
    public let board: Board
    /// The station as the step sees it (one copy, in the frame).
    public var spec: StationSpec { _read { yield cycleData.pointee.frame.spec } }
    /// Scalars of the spec read every cycle (reading them through `spec` would load all 4 KB of it).
    let gunCount: Int
    let moduleCount: Int
    let period: TimeSpan
    let periodSeconds: Double
    public let plant: Plant
    let devices: BoardDevices
    /// When the plant's mains were lost, while they are (V2G's anti-islanding rule).
    var mainsLostAt: Instant? = nil
    /// Everything the cycle reads and writes, in storage this object owns: through a pointer these
    /// accesses skip Swift's dynamic exclusivity bookkeeping (about a fifth of a cycle, perf). The
    /// simulation is single-threaded.
    private let cycleData: UnsafeMutablePointer<CycleRecords>
    /// The frame in place (the real-time wrapper reads the state through it without a copy).
    var framePointer: UnsafeMutablePointer<ControlFrame> {
        (UnsafeMutableRawPointer(cycleData) + MemoryLayout<CycleRecords>.offset(of: \CycleRecords.frame)!).assumingMemoryBound(to: ControlFrame.self)
    }
    deinit { cycleData.deinitialize(count: 1); cycleData.deallocate() }
    /// The per-cycle data, kept in one value and accessed in place (no snapshot copies per cycle).
    public private(set) var frame: ControlFrame { _read { yield cycleData.pointee.frame } _modify { yield &cycleData.pointee.frame } }
    /// Every fault record drained from the core's bounded ring, in order.
    public private(set) var faults: [FaultRecord] { _read { yield cycleData.pointee.faults } _modify { yield &cycleData.pointee.faults } }
    public private(set) var violations: [InvariantViolation] {
        _read { yield cycleData.pointee.violations }
        _modify { yield &cycleData.pointee.violations }
    }
    public private(set) var reports: [GunReport] { _read { yield cycleData.pointee.reports } _modify { yield &cycleData.pointee.reports } }
    /// What the operator and the grid ask of the loop, merged into the inputs every cycle (`LoopRequests`).
    var requests: LoopRequests { _read { yield cycleData.pointee.requests } _modify { yield &cycleData.pointee.requests } }
    var faultLatchedAt: [Instant?] { _read { yield cycleData.pointee.faultLatchedAt } _modify { yield &cycleData.pointee.faultLatchedAt } }
    var repairTestUntil: GunArray<Instant> { _read { yield cycleData.pointee.repairTestUntil } _modify { yield &cycleData.pointee.repairTestUntil } }
    var lastPhase: [SessionPhase] { _read { yield cycleData.pointee.lastPhase } _modify { yield &cycleData.pointee.lastPhase } }
    var seenClearings: UInt64 { _read { yield cycleData.pointee.seenClearings } _modify { yield &cycleData.pointee.seenClearings } }
    /// Borrowed in place within this module (`sim.state.safety[g]` reads one gun's fields); a caller in
    /// another module gets a copy whatever the accessor (see `faultsInForce`, `binding`).
    public var state: StationState { _read { yield cycleData.pointee.frame.state } }
    public var inputs: StationInputs { _read { yield cycleData.pointee.frame.inputs } }
    public var outputs: StationOutputs { _read { yield cycleData.pointee.frame.outputs } }
    public var injections: [ScheduledInjection] { _read { yield cycleData.pointee.injections } _modify { yield &cycleData.pointee.injections } }
    /// Times every control step when set (benchmark).
    public var stepTimer: StepTimer? { _read { yield cycleData.pointee.stepTimer } _modify { yield &cycleData.pointee.stepTimer } }
    /// Optional observer called after every cycle (tests, traces).
    public var observer: ((Simulation) -> Void)? { _read { yield cycleData.pointee.observer } _modify { yield &cycleData.pointee.observer } }

    /// `modules` replaces the plant's module driver (tests: a field bus's delay in front of the plant).
    public init(board: Board, cars: [Int: CarProfile], injections: [ScheduledInjection] = [],
                modules: ((Plant) -> any PowerModuleBus)? = nil) {
        precondition(board.plant != nil, "a simulation needs a board with a [plant] model")
        self.board = board
        gunCount = board.spec.gunCount
        moduleCount = board.spec.moduleCount
        period = board.spec.period
        periodSeconds = board.spec.period.seconds
        plant = Plant(spec: board.spec, params: PlantParameters(board.plant!))
        var devices = plant.devices()
        if let modules { devices.modules = modules(plant) }
        self.devices = devices
        let n = board.spec.gunCount
        cycleData = .allocate(capacity: 1)
        cycleData.initialize(to: CycleRecords(frame: ControlFrame(spec: board.spec), reports: (0..<n).map { _ in GunReport() },
                                     faultLatchedAt: Array(repeating: nil, count: n), injections: injections,
                                     lastPhase: Array(repeating: .unplugged, count: n)))
        for (g, car) in cars where g < gunCount { plant.attach(car: car, gun: g) }
    }

    public var now: Instant { plant.now }
    public func phase(_ g: Int) -> SessionPhase { cycleData.pointee.frame.state.sessions[g].phase }
    /// The faults in force on gun `g` (its own and the station's), read in place. Observers in other modules
    /// use these small reads every cycle: `sim.state` there is a copy of the whole state, whatever the accessor.
    public func faultsInForce(gun g: Int) -> FaultSet {
        cycleData.pointee.frame.state.safety[g].latched | cycleData.pointee.frame.state.station.latched
    }
    /// The station's setpoint from the grid as the last step saw it, read in place (the observer's trace,
    /// every trace period: `sim.frame` there copied the whole frame).
    public var stationSetpoint: Watts? { cycleData.pointee.frame.inputs.stationSetpoint }
    /// The limit source that bound gun `g`'s output in the last step.
    public func binding(gun g: Int) -> LimitSource { cycleData.pointee.frame.outputs.guns[g].binding }
    /// Timed injections not yet performed (those waiting for a stop are not counted), without a copy.
    public var pendingTimedInjections: Int {
        var n = 0
        for i in cycleData.pointee.injections.indices where !cycleData.pointee.injections[i].done {
            if case .onStop = cycleData.pointee.injections[i].time { continue }
            n += 1
        }
        return n
    }

    /// Latches faults that stood when the controller last stopped (`Journal.latchedAtStart`), before the
    /// first cycle: a restart is not a reset.
    public func restoreLatched(_ faults: [StandingFault]) {
        for f in faults {
            cycleData.pointee.frame.state.restoreLatched(f.code, gun: f.gun, at: now, value: f.value, limit: f.limit, measure: f.measure)
        }
    }

    /// Operator actions (console, HIL) arrive as inputs of the next cycle.
    public func command(_ c: OperatorCommand) { cycleData.pointee.requests.apply(c) }
    public func requestReset(gun g: Int) { command(.reset(gun: Int8(g))) }
    public func requestStop(gun g: Int) { command(.stop(gun: Int8(g))) }
    public func setStationSetpoint(_ p: Watts?) { command(.stationSetpoint(p)) }
    public func setGunSetpoint(_ g: Int, _ p: Watts?) { command(.gunSetpoint(gun: Int8(g), p)) }
    public func setOperatorCap(gun g: Int, _ p: Watts?) { command(.operatorCap(gun: Int8(g), p)) }
    public func setOutOfService(gun g: Int, _ out: Bool) { command(.outOfService(gun: Int8(g), out)) }
    public func setActuatorTest(gun g: Int, _ t: ActuatorTest) { command(.actuatorTest(gun: Int8(g), t)) }
    /// The grid interfaces' composite limit, authorizations and remote stops (applied from the next cycle;
    /// a bumped stop count is a stop request).
    public func setGridFeed(_ feed: GridFeed) { cycleData.pointee.requests.feed(feed, gunCount: gunCount) }
    public var gridFeed: GridFeed { cycleData.pointee.requests.grid }

    /// One control cycle: scheduled injections, sample, step, apply, invariants, then the plant moves
    /// one period on.
    public func cycle() {
        if let b = cycleData.pointee.budget { budgetedCycle(b); return }
        controlHalf()
        plantHalf()
    }

    /// Where each cycle's time goes (charger-bench's per-cycle budget): the same work as `cycle()`, the
    /// control half and each part of `plantHalf()` timed.
    public var budget: CycleBudget? { _read { yield cycleData.pointee.budget } _modify { yield &cycleData.pointee.budget } }

    func budgetedCycle(_ b: CycleBudget) {
        let t0 = monotonicNanos()
        controlHalf()
        let t1 = monotonicNanos()
        drainFaults()
        checkInvariants(&frame)
        let t2 = monotonicNanos()
        account(&frame)
        let t3 = monotonicNanos()
        observer?(self)
        let t4 = monotonicNanos()
        plant.advance(by: period)
        let t5 = monotonicNanos()
        b.add(control: t1 - t0, invariants: t2 - t1, accounting: t3 - t2, observer: t4 - t3, plant: t5 - t4)
    }

    /// What the controller does in a cycle: operator requests and scheduled injections in, then
    /// sample → step → apply (on a real board this is the whole cycle).
    public func controlHalf() {
        applyDueInjections()
        Self.sampleStepApply(&cycleData.pointee.frame, &cycleData.pointee.requests, devices: devices, now: plant.now, timer: stepTimer)
    }

    /// What the simulator does after it: the fault log drained, the invariants checked, the figures
    /// accounted, and the plant moved one period on.
    public func plantHalf() {
        drainFaults()
        checkInvariants(&frame)
        account(&frame)
        observer?(self)
        plant.advance(by: period)
    }

    /// The runtime's loop missed too many deadlines: outputs safe now, E29 latched next cycle.
    public func loopOverrun() {
        cycleData.pointee.requests.loopOverrun = true
        forceSafeOutputs()
    }

    /// Puts every output in its safe state and applies it to the board at once (no step).
    public func forceSafeOutputs() {
        cycleData.pointee.frame.outputs.makeSafe(gunCount: gunCount, moduleCount: moduleCount)
        devices.apply(&cycleData.pointee.frame.outputs, spec: &cycleData.pointee.frame.spec)
    }

    static func sampleStepApply(_ f: inout ControlFrame, _ requests: inout LoopRequests, devices: BoardDevices, now: Instant,
                                timer: StepTimer?) {
        let gunCount = f.spec.gunCount
        f.inputs.now = now
        requests.merge(into: &f.inputs, gunCount: gunCount)
        for g in 0..<gunCount { f.wasClosed[g] = f.outputs.guns[g].closeK1K2 }
        stepInPlace(spec: &f.spec, state: &f.state, inputs: &f.inputs, outputs: &f.outputs, devices: devices, timer: timer)
    }

    /// Sample → step → apply on storage passed by address, so no snapshot is copied on the way.
    static func stepInPlace(spec: inout StationSpec, state: inout StationState, inputs: inout StationInputs,
                            outputs: inout StationOutputs, devices: BoardDevices, timer: StepTimer?) {
        devices.sample(into: &inputs, spec: &spec)
        if let timer {
            let t0 = monotonicNanos()
            controlStep(&state, &inputs, &spec, &outputs)
            timer.add(monotonicNanos() - t0)
        } else {
            controlStep(&state, &inputs, &spec, &outputs)
        }
        devices.apply(&outputs, spec: &spec)
    }

    /// Heap allocations made by each half of every cycle until every car is gone or `limit` of virtual
    /// time has passed. `probe` returns the calling thread's allocation count (a malloc replacement the
    /// tests and the benchmark link).
    public func countAllocations(limit: TimeSpan, probe: @convention(c) () -> UInt64) -> (control: UInt64, plant: UInt64, cycles: Int) {
        var control: UInt64 = 0, plant: UInt64 = 0, cycles = 0
        let end = now + limit
        while !allCarsGone && now < end {
            let a = probe()
            controlHalf()
            let m = probe()
            plantHalf()
            control += m - a
            plant += probe() - m
            cycles += 1
        }
        return (control, plant, cycles)
    }

    /// Runs cycles until `until` returns true or `limit` of virtual time has passed.
    public func run(for limit: TimeSpan, until: (Simulation) -> Bool = { _ in false }) {
        let end = plant.now + limit
        while plant.now < end {
            cycle()
            if until(self) { return }
        }
    }

    func applyDueInjections() {
        for i in injections.indices where !injections[i].done {
            switch injections[i].time {
            case .at(let t) where plant.now >= t:
                perform(injections[i].action)
                injections[i].done = true
            case .onStop:
                if case .plant(.weld(let g, _)) = injections[i].action, frame.state.sessions[g].phase == .stopping {
                    perform(injections[i].action)
                    injections[i].done = true
                }
            default: break
            }
        }
    }

    public func perform(_ a: InjectionAction) {
        switch a {
        case .plant(let p): plant.inject(p)
        case .reset(let g): requestReset(gun: g)
        case .stop(let g): requestStop(gun: g)
        case .stationSetpoint(let p): setStationSetpoint(p)
        case .gunSetpoint(let g, let p): setGunSetpoint(g, p)
        case .outOfService(let g, let out): setOutOfService(gun: g, out)
        }
    }

    func drainFaults() {
        guard frame.state.log.lastSequence > UInt64(faults.count) || frame.state.log.clearings != seenClearings else { return }
        seenClearings = frame.state.log.clearings
        let log = frame.state.log
        let have = UInt64(faults.count)
        if log.lastSequence > have {
            var s = have + 1
            while s <= log.lastSequence {
                if let r = log.record(sequence: s) {
                    faults.append(r)
                    // The core cut a gun whose outputs broke its contract after the arbiter: never expected.
                    if r.code == .stepContractBroken {
                        violate(Int(max(r.gun, 0)), "step-contract", "E31: \(StepRule(rawValue: UInt8(r.value)).map(\.name) ?? "?") broken after the arbiter")
                    }
                }
                s += 1
            }
        }
        // Clearing marks older records: refresh the uncleared ones still in the ring.
        for i in faults.indices where faults[i].clearedAt == nil {
            if let r = log.record(sequence: faults[i].sequence), r.clearedAt != nil { faults[i].clearedAt = r.clearedAt }
        }
    }

    func violate(_ g: Int, _ rule: String, _ detail: String) {
        if violations.count < 1000 { violations.append(InvariantViolation(at: plant.now, gun: g, rule: rule, detail: detail)) }
    }

    // Long: every invariant in one pass over the frame, every cycle; they share the per-gun values read
    // once
    /// What must hold every cycle (TigerBeetle-style assertions on the simulated station).
    func checkInvariants(_ f: inout ControlFrame) {
        var stationPower = Watts.zero
        for g in 0..<gunCount {
            let gs = f.spec.guns[g]
            let gi = GunView(f.inputs.guns[g])
            let o = OutputView(f.outputs.guns[g])
            let was = f.wasClosed[g]
            let faults = f.state.safety[g].latched | f.state.station.latched
            let reaction = faults.strongestReaction
            let isEmergency = reaction == .emergency
            var truth = (forced: false, power: Watts.zero, current: Amps.zero, closed: false)
            plant.withGun(g) {
                // A welded contact stays closed whatever anyone commands: that is E14's business.
                let closed = ($0.k1.closed && !$0.k1.welded) || ($0.k2.closed && !$0.k2.welded)
                truth = ($0.forcedVoltage != nil || $0.forcedCurrent != nil, $0.vehicleSide * $0.current, $0.current, closed)
            }
            if !truth.forced { stationPower += truth.power }

            // A latched fault is always in the log, uncleared.
            if !faults.isEmpty {
                for code in faults.codes
                where !self.faults.contains(where: { $0.code == code && $0.clearedAt == nil && (Int($0.gun) == g || $0.gun < 0) }) {
                    violate(g, "latched-fault-logged", "\(code.name) latched but not in the log")
                }
                if faultLatchedAt[g] == nil { faultLatchedAt[g] = plant.now }
            } else { faultLatchedAt[g] = nil }

            // Never energised with an insulation, ground or PE fault beyond the shutdown window.
            if faults.contains(.insulationFault) || faults.contains(.groundFault) || faults.contains(.protectiveEarthLost) {
                if o.closeK1K2, let t = faultLatchedAt[g], plant.now - t > Standard.errorShutdownOpenWithin {
                    violate(g, "no-energy-on-insulation-fault", "K1/K2 closed \(fmt((plant.now - t).seconds * 1000, 0)) ms after the fault")
                }
            }
            // The one exception: a technician's K1/K2 test under the gun's own contactor faults, which the
            // step may hold closed only on a dead output (`contactorRepairTest`): judged here on the plant's
            // truth, no module on the gun, no current, both sides below 60 V, no plug.
            var repairTest = false
            if truth.closed && contactorRepairTest(f.inputs.guns[g].actuatorTest, latched: faults) {
                var powered = false
                for m in 0..<f.spec.moduleCount where f.outputs.modules[m].gun == Int8(g) && f.outputs.modules[m].enabled { powered = true }
                var dead = false, unplugged = false
                plant.withGun(g) {
                    dead = $0.current.magnitude < Standard.openCurrentLimit && $0.vehicleSide < Standard.unlockMaxVoltage
                    unplugged = $0.car == nil || ($0.car!.cc1 - Standard.cc1Unplugged).magnitude < Volts(0.5)
                }
                if powered || !dead || !unplugged {
                    violate(g, "repair-test-dead-output", "K1/K2 held for a test under \(faults.codes.map(\.name)) with "
                            + (powered ? "a module on" : !dead ? "the output live" : "a plug in"))
                } else { repairTest = true; repairTestUntil[g] = plant.now + f.spec.contactorOpeningTime }
            }
            // Released, the contacts take the contactor's opening time to part.
            if !repairTest && repairTestUntil[g] != .never && plant.now <= repairTestUntil[g] { repairTest = true }
            // Every shutdown meets its row's time whatever the devices do: the plant's K1/K2 contacts apart
            // by the earliest latch + openWithin of the faults in force (standards.md "Fault reactions").
            if truth.closed && !faults.isEmpty && !repairTest {
                for r in self.faults where r.clearedAt == nil && r.reaction >= .refuse && (Int(r.gun) == g || r.gun < 0) {
                    // An emergency commands the open in the latch's cycle (checked above); its contacts take
                    // the contactor's own opening time to part.
                    if let row = r.code.openWithin, case let within = max(row, f.spec.contactorOpeningTime), plant.now - r.raisedAt > within {
                        violate(g, "open-within-row", "K1/K2 still closed \(fmt((plant.now - r.raisedAt).seconds * 1000, 0)) ms after \(r.code.name) (row: \(fmt(within.seconds * 1000, 0)) ms)")
                        break
                    }
                }
            }
            // Never close K1/K2 across more than 10 V.
            if o.closeK1K2 && !was {
                let diff = (gi.chargerSideVoltage - gi.vehicleSideVoltage).magnitude
                if diff > Standard.maxCloseMismatch {
                    violate(g, "close-mismatch", "closing across \(fmt(diff.value, 1)) V")
                }
            }
            // Current ≤ 5 A at every non-emergency opening (the plant's true current, not a reading).
            let trueCurrent = truth.current
            if !o.closeK1K2 && was && !isEmergency && trueCurrent.magnitude > Standard.openCurrentLimit {
                violate(g, "open-under-load", "opened at \(fmt(trueCurrent.value, 1)) A without an emergency")
            }
            // The measurements within the ratings (the commands' rules are the core's own, below).
            // Measured-value rules judge the controller, so they are skipped while an injection forces
            // the plant's voltage (a runaway module is the plant failing, and the OV checks own it).
            if truth.forced { continue }
            let ratedI = min(gs.maxCurrent, gs.connectorCurrent)
            if trueCurrent.magnitude > ratedI * 1.01 + Amps(1) {
                violate(g, "current-above-rating", "\(fmt(trueCurrent.value, 1)) A > \(fmt(ratedI.value, 0)) A")
            }
            checkV2G(g, current: trueCurrent, power: truth.power)
            if (gi.meterVoltage * gi.meterCurrent).magnitude > gs.ratedPower * 1.02 + Watts(500) {
                violate(g, "power-above-rating", "\(fmt((gi.meterVoltage * gi.meterCurrent).kilowatts, 1)) kW > \(fmt(gs.ratedPower.kilowatts, 0)) kW")
            }
        }
        // The step's output contract is the core's own (StepContract.swift, checked at the end of every step):
        // a broken rule cuts the gun and latches E31, which `drainFaults` reports as a violation. That the
        // cut outputs keep the contract is CoreTests' `aBrokenContractCutsTheGunAndLatchesE31`.
        // A module's matrix relay moves only when its current is zero (the plant's module current).
        for m in 0..<moduleCount where f.outputs.modules[m].gun != f.previousModuleGun[m] {
            let i = plant.modules[m].current
            if i > Amps(0.5) {
                violate(Int(max(f.previousModuleGun[m], 0)), "module-moved-under-load",
                        "module \(m) switched from gun \(f.previousModuleGun[m]) to \(f.outputs.modules[m].gun) at \(fmt(i.value, 1)) A")
            }
        }
        for m in 0..<moduleCount { f.previousModuleGun[m] = f.outputs.modules[m].gun }
        if stationPower > f.spec.gridLimit * 1.02 + Watts(1000) {
            violate(0, "station-above-grid-limit", "\(fmt(stationPower.kilowatts, 1)) kW > \(fmt(f.spec.gridLimit.kilowatts, 0)) kW")
        }
        if -stationPower > f.spec.gridLimit * 1.02 + Watts(1000) {
            violate(0, "station-export-above-grid-limit", "\(fmt(-stationPower.kilowatts, 1)) kW exported > \(fmt(f.spec.gridLimit.kilowatts, 0)) kW")
        }
    }

    /// V2G's rules on the plant's truth (docs/standards.md "V2G"): a car is discharged only with its offer
    /// in force, within its current and power, never below its minimum state of charge; export stops
    /// within the anti-islanding time of the mains' loss. The grace after a withdrawal is the offer's
    /// period (the charger learns of it from the next BDP) and the modules' lag.
    func checkV2G(_ g: Int, current: Amps, power: Watts) {
        let exporting = current < -Amps(1)
        if !plant.mainsPresent {
            let since = mainsLostAt ?? plant.now
            mainsLostAt = since
            if exporting && plant.now - since > Standard.antiIslandingWithin {
                violate(g, "export-after-mains-lost", "\(fmt(-current.value, 1)) A exported \(fmt((plant.now - since).seconds, 2)) s after the mains were lost")
            }
        } else { mainsLostAt = nil }
        guard exporting else { return }
        var car: SimCar? = nil
        plant.withGun(g) { car = $0.car }
        guard let car else { return }
        guard let offer = car.profile.v2g else {
            violate(g, "discharge-without-offer", "\(fmt(-current.value, 1)) A from a car that offers no discharge"); return
        }
        if let w = car.v2gWithdrawnAt, plant.now - w > Standard.periodBDP + .ms(50) {
            violate(g, "discharge-after-withdrawal", "\(fmt(-current.value, 1)) A \(fmt((plant.now - w).seconds * 1000, 0)) ms after the offer was withdrawn")
        }
        if -current > offer.maxCurrent * 1.01 + Amps(1) {
            violate(g, "discharge-above-car-current", "\(fmt(-current.value, 1)) A > \(fmt(offer.maxCurrent.value, 0)) A")
        }
        if -power > offer.maxPower * 1.02 + Watts(500) {
            violate(g, "discharge-above-car-power", "\(fmt(-power.kilowatts, 1)) kW > \(fmt(offer.maxPower.kilowatts, 1)) kW")
        }
        // The charger reads the SOC from BCS (every 250 ms): 0.1 % below the minimum is a discharge that
        // went on past it, not the message's age.
        if car.soc < offer.minSoc - 0.1 {
            violate(g, "discharge-below-car-minimum-soc", "SOC \(fmt(car.soc, 2)) % < \(fmt(offer.minSoc, 0)) %")
        }
    }

    func account(_ f: inout ControlFrame) {
        // The reports through one buffer: a write through the array checked its uniqueness each time
        // (3.4 million checks in a two-seed campaign, measured with callgrind).
        cycleData.pointee.reports.withUnsafeMutableBufferPointer { reports in
            for g in 0..<gunCount { accountGun(g, &f, &reports[g]) }
        }
    }

    private func accountGun(_ g: Int, _ f: inout ControlFrame, _ report: inout GunReport) {
        let gi = GunView(f.inputs.guns[g])
        let p = gi.meterVoltage * gi.meterCurrent
        let phase = f.state.sessions[g].phase
        if p > report.peakPower { report.peakPower = p }
        if gi.gunTemperature > report.maxTemperature { report.maxTemperature = gi.gunTemperature }
        var soc: Double? = nil
        plant.withGun(g) { soc = $0.car?.soc }
        if let soc {
            // A session starts when the plug is confirmed and the lock is commanded (a driver holding
            // the latch while holstering the gun shows as "connecting" and is no session).
            if lastPhase[g] != .locking && phase == .locking {
                if let start = report.energyAtPlug { report.energyBefore = report.energyBefore + (gi.meterEnergy - start) }
                report.startedSessions += 1
                report.energyAtPlug = gi.meterEnergy
                report.exportAtPlug = f.inputs.guns[g].meterExportEnergy
                report.socStart = soc
                report.endedNormally = false
                report.notAuthorized = false
            }
            report.socEnd = soc
        }
        if phase == .charging {
            report.limitSourceTime[Int(f.outputs.guns[g].binding.rawValue)] += periodSeconds
        }
        if phase == .finished && lastPhase[g] != .finished && f.state.sessions[g].stopReason == .notAuthorized {
            report.notAuthorized = true
        } else if phase == .finished && lastPhase[g] != .finished && f.state.sessions[g].stopReason != .fault {
            report.endedNormally = true
            report.completedSessions += 1
        }
        // The car leaves once the gun is unlocked after the session (or after a fault, once safe).
        // After a fault the driver takes the gun once the controller has unlocked it.
        if phase == .finished || (phase == .faulted && !gi.lockConfirmed) {
            plant.withGun(g) { gun in
                if gun.car != nil && gun.car?.unplugRequested == false { gun.car?.unplugRequested = true }
            }
        }
        lastPhase[g] = phase
    }

    /// Energy delivered at gun `g` in the whole run: every session's, the present one's included.
    public func runEnergy(gun g: Int) -> WattHours { reports[g].energyBefore + energy(gun: g) }

    /// Energy delivered at gun `g` since its car plugged in (meter, 0.001 kWh resolution).
    public func energy(gun g: Int) -> WattHours {
        guard let start = reports[g].energyAtPlug else { return .zero }
        return frame.inputs.guns[g].meterEnergy - start
    }

    /// Energy exported from gun `g`'s car since it plugged in (V2G; the meter's export register).
    public func exported(gun g: Int) -> WattHours {
        guard reports[g].energyAtPlug != nil else { return .zero }
        return frame.inputs.guns[g].meterExportEnergy - reports[g].exportAtPlug
    }

    /// True once every car has come, been served (or refused) and gone.
    public var allCarsGone: Bool {
        for g in 0..<gunCount {
            var present = false, done = false
            plant.withGun(g) { present = $0.car != nil; done = $0.car?.done ?? false }
            guard present else { continue }
            if !done { return false }
            let p = frame.state.sessions[g].phase
            if p != .unplugged && p != .faulted { return false }
        }
        return true
    }
}

/// The scalar fields of a gun's inputs the invariants and reports read (a small copy, not the messages).
struct GunView {
    var meterVoltage: Volts, meterCurrent: Amps, meterEnergy: WattHours
    var chargerSideVoltage: Volts, vehicleSideVoltage: Volts
    var gunTemperature: Celsius
    var lockConfirmed: Bool, k1Closed: Bool, k2Closed: Bool
    init(_ i: borrowing GunInputs) {
        meterVoltage = i.meterVoltage; meterCurrent = i.meterCurrent; meterEnergy = i.meterEnergy
        chargerSideVoltage = i.chargerSideVoltage; vehicleSideVoltage = i.vehicleSideVoltage
        gunTemperature = i.gunTemperature
        lockConfirmed = i.lockConfirmed; k1Closed = i.k1Closed; k2Closed = i.k2Closed
    }
}

struct OutputView {
    var closeK1K2: Bool, currentSetpoint: Amps, currentLimit: Amps, binding: LimitSource
    init(_ o: borrowing GunOutputs) {
        closeK1K2 = o.closeK1K2; currentSetpoint = o.currentSetpoint; currentLimit = o.currentLimit; binding = o.binding
    }
}

/// The simulation's per-cycle bookkeeping, in one place.
struct CycleRecords {
    var frame: ControlFrame
    var faults: [FaultRecord] = []
    var violations: [InvariantViolation] = []
    var reports: [GunReport]
    var faultLatchedAt: [Instant?]
    /// Per gun: until when a technician's K1/K2 test under its own contactor fault excuses closed contacts
    /// (while it holds, and the contactor's opening time after).
    var repairTestUntil = GunArray<Instant>(repeating: .never)
    var lastPhase: [SessionPhase]
    var seenClearings: UInt64 = 0
    /// The operator's and the grid's requests (`LoopRequests`), merged into the inputs every cycle.
    var requests = LoopRequests()
    var injections: [ScheduledInjection]
    var stepTimer: StepTimer? = nil
    var budget: CycleBudget? = nil
    var observer: ((Simulation) -> Void)? = nil
    init(frame: ControlFrame, reports: [GunReport], faultLatchedAt: [Instant?], injections: [ScheduledInjection], lastPhase: [SessionPhase]) {
        self.frame = frame; self.reports = reports; self.faultLatchedAt = faultLatchedAt; self.lastPhase = lastPhase
        self.injections = injections
        // Room reserved up front: a fault in a real-time cycle appends without allocating.
        faults.reserveCapacity(1024)
        violations.reserveCapacity(1000)
    }
}

/// Wall time spent in each part of the simulator's cycles, summed (benchmark): the controller's half
/// (injections, sample, step with its contract, apply), the invariants (with the fault log drained), the
/// session accounting, the observer (a scenario's or campaign's recorder and trace), the plant.
public final class CycleBudget {
    public private(set) var cycles: Int64 = 0
    public private(set) var control: Int64 = 0
    public private(set) var invariants: Int64 = 0
    public private(set) var accounting: Int64 = 0
    public private(set) var observer: Int64 = 0
    public private(set) var plant: Int64 = 0
    public init() {}
    func add(control c: Int64, invariants i: Int64, accounting a: Int64, observer o: Int64, plant p: Int64) {
        cycles += 1; control += c; invariants += i; accounting += a; observer += o; plant += p
    }
    public var total: Int64 { control + invariants + accounting + observer + plant }
    /// Mean ns per cycle of each part, in the order above.
    public var perCycle: [(name: String, nanos: Double)] {
        let n = Double(max(cycles, 1))
        return [("control half (sample, step, contract, apply)", Double(control) / n), ("invariants", Double(invariants) / n),
                ("session accounting", Double(accounting) / n), ("observer and trace", Double(observer) / n), ("plant", Double(plant) / n)]
    }
}

/// Wall time of each control step, in ns, into storage allocated up front (benchmark).
public final class StepTimer {
    public let capacity: Int
    private let samples: UnsafeMutablePointer<Int64>
    public private(set) var count = 0
    public init(capacity: Int) {
        self.capacity = capacity
        samples = .allocate(capacity: capacity)
    }
    deinit { samples.deallocate() }
    func add(_ nanos: Int64) {
        if count < capacity { samples[count] = nanos; count += 1 }
    }
    /// The value (ns) at fraction `p` of the sorted samples.
    public func percentile(_ p: Double) -> Int64 {
        guard count > 0 else { return 0 }
        let sorted = UnsafeBufferPointer(start: samples, count: count).sorted()
        let rank = max(1, Int((Double(count) * p).rounded(.up)))
        return sorted[min(count, rank) - 1]
    }
}
