// The control step: (state, inputs, time) → (state, outputs). Pure, allocation-free and lock-free,
// proven by the compiler (@_noAllocation, @_noLocks). Order inside one cycle:
//   1. supervisor checks and resets   2. session per gun   3. limits per gun
//   4. station share (grid connection / setpoint)   5. module pool   6. ramps and module setpoints
//   7. the arbiter: latched faults override everything above.

/// One module's place in the pool.
public struct ModuleSlot: Sendable {
    /// Gun whose bus the matrix relays connect this module to, -1 for none.
    public var assigned: Int8 = -1
    /// Commanded off, waiting for zero current before its relay may move.
    public var releasing = false
    /// What this module may be delivering were it to fall silent now, and what a silent one is taken to go
    /// on delivering until its own switch-off time: its reading at its last answer or any command sent
    /// since that answer (which may or may not have reached it), the largest. (Only the latest command,
    /// as before, let a module released after it fell silent look idle while it still delivered its
    /// last received setpoint: exploration seed 2198, its relay moved at 33.6 A.)
    /// A magnitude, in either direction (V2G: a reverse module's current counts the same).
    public var lastCommand: Amps = .zero
    /// The largest command sent since the module's last answer (`heardAt`, its inputs' `seenAt`), a magnitude.
    public var commandSinceHeard: Amps = .zero
    public var heardAt: Instant = .never
    /// When the module was last heard of, once it has gone silent.
    public var silentSince: Instant? = nil
    public init() {}
}

/// Per-gun figures computed this cycle (kept for status and invariants).
public struct GunFigures: Sendable {
    public var wanted: Watts = .zero
    public var share: Watts = .zero
    public var activeModules = 0
    /// V2G: the gun's active modules that can run in reverse, and the export the grid asks of the gun now
    /// (power at the operating voltage, within what the gun may discharge; zero: none).
    public var reverseModules = 0
    public var export: Watts = .zero
    public var starvedSince: Instant? = nil
    public init() {}
}

public struct StationState: Sendable {
    public var started = false
    public var bootAt: Instant = .zero
    public var lastNow: Instant = .zero
    public var sessions = GunArray<GunSession>(repeating: GunSession())
    public var safety = GunArray<GunSafety>(repeating: GunSafety())
    public var station = StationSafety()
    public var modules = ModuleArray<ModuleSlot>(repeating: ModuleSlot())
    public var figures = GunArray<GunFigures>(repeating: GunFigures())
    public var metering = GunArray<GunMetering>(repeating: GunMetering())
    public var log = FaultLog()
    public var lastAllocation: Instant = .never
    public init() {}
}

/// Thermal derating factor of the connector at temperature `t` (board-file curve).
@inlinable public func thermalFactor(_ t: Celsius, _ gun: GunSpec) -> Double {
    if t <= gun.deratingStart { return 1 }
    if t >= gun.deratingEnd { return 0 }
    return (gun.deratingEnd - t) / (gun.deratingEnd - gun.deratingStart)
}

/// Runs one control cycle. `out` is overwritten completely.
/// `inputs` and `spec` are read-only: they are passed by reference only so that the 8 KB snapshot and the
/// 4 KB spec are not copied every cycle (perf: memmove was half of a simulated cycle before). The step
/// never writes them (CoreTests `stepDoesNotWriteInputsOrSpec` checks this).
@_noAllocation @_noLocks
public func controlStep(_ s: inout StationState, _ inputs: inout StationInputs, _ spec: inout StationSpec,
                        _ out: inout StationOutputs) {
    let now = inputs.now
    // Preconditions: a station within the core's fixed capacities, a positive period, monotonic time.
    assert(spec.gunCount >= 1 && spec.gunCount <= Capacity.guns && spec.moduleCount <= Capacity.modules, "station outside the core's capacity")
    assert(spec.period > .zero, "a step needs a positive period")
    assert(!s.started || now >= s.lastNow, "time went back (the loop's clock must be monotonic)")
    if !s.started { s.started = true; s.bootAt = now; s.lastNow = now }
    var dt = TimeSpan(micros: now.micros &- s.lastNow.micros)
    if dt < .zero { dt = .zero }
    // A late cycle never integrates a ramp over more than ten periods' worth of current.
    if dt > spec.period * 10 { dt = spec.period * 10 }
    s.lastNow = now

    // 1. Supervisor (independent of the session) and explicit resets.
    s.supervise(&inputs, &spec)
    s.applyResets(&inputs, &spec)

    // Modules that stopped answering, before anything reads a current: a silent module keeps running on
    // its last command until its own timeout switches it off (standards.md "Rectifier modules": 10–20 s),
    // so that current is counted as delivered and out of our hands (the sessions' stop and the arbiter).
    noteSilentModules(&s, &inputs, &spec)
    var uncontrolled = GunArray<Amps>(repeating: .zero)
    for m in 0..<spec.moduleCount where s.modules[m].assigned >= 0 && isUncontrolled(s.modules[m], now, spec) {
        uncontrolled[Int(s.modules[m].assigned)] += s.modules[m].lastCommand
    }

    // 2-6: the sessions, the limits, the station's share, the module pool, the ramps and setpoints.
    var demands = GunArray<SessionDemand>(repeating: SessionDemand())
    advanceSessions(&s, &inputs, &spec, &demands, uncontrolled: &uncontrolled, now: now, &out)
    var L = StepLimits()
    gunLimits(&s, &inputs, &spec, &demands, &L)
    shareStation(&s, &inputs, &spec, &demands, &L)
    allocateModules(&s, &inputs, &spec, &demands, &L.operatingVoltage)
    capByModules(&s, &spec, &demands, &L, uncontrolled: &uncontrolled, now: now)
    rampCommands(&s, &spec, &demands, &L, dt: dt, &out)
    var measured = GunArray<Double>(repeating: 0)
    var blind = GunArray<Bool>(repeating: false)
    moduleSetpoints(&s, &inputs, &spec, &demands, uncontrolled: &uncontrolled, now: now, &out, measured: &measured, blind: &blind)
    // The meter against the charger's own measurements (Metering.swift): records, never a stop. The
    // modules' readings by gun come from the setpoints' pass over the modules (one pass, not two).
    checkMetering(&s, &inputs, &spec, dt: dt, now: now, current: &measured, blind: &blind)
    // 7. Safety last: opening only at ≤ 5 A, then the arbiter (latched faults win over the session).
    openOnlyAtLowCurrent(&s, &inputs, &spec, uncontrolled: &uncontrolled, now: now, &out)
    arbitrate(&s, &inputs, &spec, uncontrolled: &uncontrolled, now: now, &out)
    for g in 0..<spec.gunCount {
        if s.safety[g].groundTestCommanded && !out.guns[g].groundDetectorTest { s.safety[g].groundTestEndedAt = inputs.now }
        s.safety[g].groundTestCommanded = out.guns[g].groundDetectorTest
        if !out.guns[g].closeK3K4 { s.safety[g].k3k4CommandedSince = nil }
        else if s.safety[g].k3k4CommandedSince == nil { s.safety[g].k3k4CommandedSince = inputs.now }
    }
    // Postconditions (StepContract.swift): emergency opens at once, shutdowns at zero, nothing above a
    // limit. Kept in release builds: a broken one cuts the gun and latches E31.
    var repairTest = GunArray<Bool>(repeating: false)
    for g in 0..<spec.gunCount where inputs.guns[g].actuatorTest == .contactorsK1K2 {
        let latched = s.safety[g].latched | s.station.latched
        repairTest[g] = contactorRepairTest(.contactorsK1K2, latched: latched)
            && actuatorTestRefusal(.contactorsK1K2, phase: s.sessions[g].phase, latched: latched, input: inputs.guns[g]) == nil
    }
    let broken = enforceStepContract(&s, &spec, &out, now: now, repairTest: repairTest)
    assert(broken.isEmpty, "the step broke its output contract (E31 names the rule)")
}

/// The limits of one cycle per gun: the current limit and its source, the operating voltage the power
/// limits are converted at, and every limit but the grid's (a lower grid limit is ramped down to).
struct StepLimits {
    var limitA = GunArray<Amps>(repeating: .zero)
    var source = GunArray<LimitSource>(repeating: .none)
    var operatingVoltage = GunArray<Volts>(repeating: .zero)
    var nonGrid = GunArray<Amps>(repeating: .zero)
    /// V2G (docs/standards.md "V2G"), magnitudes at the operating voltage: what the grid asks the gun to
    /// export, and what the gun may discharge without the grid (the car's offer, the gun, its connector,
    /// thermal derating, the operator's cap, its modules in reverse) with the source that binds it.
    var exportA = GunArray<Amps>(repeating: .zero)
    var dischargeNonGrid = GunArray<Amps>(repeating: .zero)
    var dischargeSource = GunArray<LimitSource>(repeating: .none)
}

/// 2. Sessions. Demands are kept in a fixed array.
@_noAllocation @_noLocks
func advanceSessions(_ s: inout StationState, _ inputs: inout StationInputs, _ spec: inout StationSpec, _ demands: inout GunArray<SessionDemand>,
                     uncontrolled: inout GunArray<Amps>, now: Instant, _ out: inout StationOutputs) {
    for g in 0..<spec.gunCount {
        out.guns[g] = GunOutputs()
        // Fields read directly: a method call on the 12 KB state would copy it.
        let latched = s.safety[g].latched | s.station.latched
        let blocking = latched.strongestReaction
        let blocked = blocking != nil && blocking! >= .refuse
        let test = inputs.guns[g].actuatorTest
        let testing = test != .none && actuatorTestRefusal(test, phase: s.sessions[g].phase, latched: latched, input: inputs.guns[g]) == nil
        var d = SessionDemand()
        // A normal stop opens on the current it can confirm, like an error shutdown (only read there).
        let current = s.sessions[g].phase == .stopping
            ? shutdownCurrent(&s, &inputs, &spec, gun: g, uncontrolled: uncontrolled[g], now: now) : inputs.guns[g].meterCurrent
        // A metering fault refuses new sessions where the board says so: the gun is held as out of service
        // before a session begins (one that runs finishes).
        let phase = s.sessions[g].phase
        let hold = heldByMetering(phase, latched: latched, spec)
        let fault: SessionFault?
        if hold {
            var held = inputs.guns[g]
            held.outOfService = true
            fault = s.sessions[g].advance(now: now, input: held, gun: spec.guns[g], blocked: blocked, testing: testing, current: current,
                                          out: &out.guns[g], demand: &d)
        } else {
            fault = s.sessions[g].advance(now: now, input: inputs.guns[g], gun: spec.guns[g], blocked: blocked, testing: testing, current: current,
                                          out: &out.guns[g], demand: &d)
        }
        if let f = fault {
            if f.latch {
                s.raise(f.code, gun: g, value: f.value, limit: f.limit, measure: f.measure, now: now)
            } else {
                s.log.append(code: f.code, gun: Int8(truncatingIfNeeded: g), module: -1, at: now, value: f.value,
                             reaction: .reconnect, measure: f.measure, limit: f.limit)
            }
        }
        demands[g] = d
    }
}

/// 3. Limits per gun, in amps at the operating voltage, with the binding source.
@_noAllocation @_noLocks
func gunLimits(
    _ s: inout StationState, _ inputs: inout StationInputs, _ spec: inout StationSpec, _ demands: inout GunArray<SessionDemand>,
    _ L: inout StepLimits
) {
    for g in 0..<spec.gunCount {
        let gunSpec = spec.guns[g]
        // Fields of the inputs read in place (a `let` of the whole gun's inputs copies its messages too).
        let vehicleSide = inputs.guns[g].vehicleSideVoltage, temperature = inputs.guns[g].gunTemperature
        let operatorCap = inputs.guns[g].operatorCap, gridSetpoint = inputs.guns[g].gridSetpoint
        let gridCurrentLimit = inputs.guns[g].gridCurrentLimit
        let d = demands[g]
        // Power limits become current limits at the present output voltage (not the car's voltage demand,
        // which is the CV ceiling and would understate the current available).
        let v = max(vehicleSide, gunSpec.minVoltage)
        L.operatingVoltage[g] = v
        var limit = min(gunSpec.maxCurrent, gunSpec.ratedPower / v)
        var src = LimitSource.gunRating
        if gunSpec.connectorCurrent < limit { limit = gunSpec.connectorCurrent; src = .connector }
        let thermal = gunSpec.connectorCurrent * thermalFactor(temperature, gunSpec)
        if thermal < limit { limit = thermal; src = .thermal }
        if let cap = operatorCap {
            let a = max(cap, .zero) / v
            if a < limit { limit = a; src = .operatorCap }
        }
        if s.sessions[g].phase == .insulationCheck {
            if Standard.cableCheckCurrentLimit < limit { limit = Standard.cableCheckCurrentLimit; src = .cableCheck }
        } else if s.sessions[g].phase != .stopping && d.current < limit {
            // While stopping the demand is zero by definition and the stop ramp takes the current
            // there; the car's demand is a limit only while it is charging.
            limit = d.current; src = .vehicle
        }
        // Every limit but the grid's: a lower grid limit is ramped down to, never below these.
        L.nonGrid[g] = limit
        if let sp = gridSetpoint {
            let a = max(sp, .zero) / v
            if a < limit { limit = a; src = .gridSetpoint }
        }
        if let a = gridCurrentLimit, max(a, .zero) < limit { limit = max(a, .zero); src = .gridSetpoint }
        if !d.needsPower { limit = .zero; src = .none; L.nonGrid[g] = .zero }
        L.limitA[g] = limit
        L.source[g] = src
        s.figures[g].wanted = limit * v
        // V2G: a negative grid setpoint asks the gun to export. It may only while charging with the car's
        // fresh offer (BDP) in force, its state of charge above the offer's minimum and charging not paused;
        // then within the car's discharge current and power and every rating that holds both ways.
        var dis = Amps.zero, dsrc = LimitSource.none
        if s.sessions[g].phase == .charging && d.needsPower, let offer = inputs.guns[g].vehicle.bdp, offer.message.allowed,
           inputs.now - offer.at <= Standard.v2gOfferTimeout, let bcs = inputs.guns[g].vehicle.bcs,
           bcs.message.soc > offer.message.minSoc, inputs.guns[g].vehicle.bsm?.message.chargingAllowed ?? true {
            dis = min(gunSpec.maxCurrent, gunSpec.ratedPower / v); dsrc = .gunRating
            if gunSpec.connectorCurrent < dis { dis = gunSpec.connectorCurrent; dsrc = .connector }
            if thermal < dis { dis = thermal; dsrc = .thermal }
            if let cap = operatorCap {
                let a = max(cap, .zero) / v
                if a < dis { dis = a; dsrc = .operatorCap }
            }
            let car = min(offer.message.maxDischargeCurrent, offer.message.maxDischargePower / v)
            if car < dis { dis = max(car, .zero); dsrc = .vehicle }
        }
        L.dischargeNonGrid[g] = dis
        L.dischargeSource[g] = dsrc
        L.exportA[g] = .zero
        if let sp = gridSetpoint, sp < .zero, dis > .zero { L.exportA[g] = (-sp) / v }
    }
}

/// Max-min fair shares of `budget` among the first `count` wants (each gets its want or the fair level).
@_noAllocation @_noLocks
func waterFill(_ wants: inout GunArray<Watts>, count: Int, budget: Watts) -> GunArray<Watts> {
    var shares = GunArray<Watts>(repeating: .zero)
    var open = GunArray<Bool>(repeating: false)
    var openCount = 0
    for g in 0..<count where wants[g] > .zero { open[g] = true; openCount += 1 }
    var remaining = max(budget, .zero)
    var rounds = 0
    while openCount > 0 && rounds < Capacity.guns {
        rounds += 1
        let fair = remaining / Double(openCount)
        var satisfied = 0
        for g in 0..<count where open[g] && wants[g] <= fair {
            shares[g] = wants[g]; remaining -= wants[g]
            open[g] = false; openCount -= 1; satisfied += 1
        }
        if satisfied == 0 {
            for g in 0..<count where open[g] { shares[g] = fair; open[g] = false }
            openCount = 0
        }
    }
    return shares
}

/// 4. Station share: max-min fair water-filling of min(grid connection, grid setpoint).
@_noAllocation @_noLocks
func shareStation(
    _ s: inout StationState, _ inputs: inout StationInputs, _ spec: inout StationSpec, _ demands: inout GunArray<SessionDemand>,
    _ L: inout StepLimits
) {
    var budget = spec.gridLimit
    if let sp = inputs.stationSetpoint, sp < budget { budget = max(sp, .zero) }
    let budgetFromSetpoint = budget < spec.gridLimit
    // The same max-min fair sharing as the export's below (one `waterFill`).
    var wants = GunArray<Watts>(repeating: .zero)
    for g in 0..<spec.gunCount where demands[g].needsPower { wants[g] = s.figures[g].wanted }
    let shares = waterFill(&wants, count: spec.gunCount, budget: budget)
    for g in 0..<spec.gunCount { s.figures[g].share = shares[g] }
    for g in 0..<spec.gunCount where demands[g].needsPower {
        let shareA = s.figures[g].share / L.operatingVoltage[g]
        if s.figures[g].share < s.figures[g].wanted - Watts(1) && shareA < L.limitA[g] {
            L.limitA[g] = shareA
            L.source[g] = budgetFromSetpoint ? .gridSetpoint : .station
        }
    }
    // V2G export: a negative station setpoint is shared max-min fair among the guns that may discharge;
    // a gun's request is the larger of that share and its own setpoint's (both are ceilings on signed
    // power), within what it may discharge; all exports together stay within the grid connection.
    var capable = GunArray<Watts>(repeating: .zero)
    for g in 0..<spec.gunCount { capable[g] = L.dischargeNonGrid[g] * L.operatingVoltage[g] }
    var stationShare = GunArray<Watts>(repeating: .zero)
    if let sp = inputs.stationSetpoint, sp < .zero { stationShare = waterFill(&capable, count: spec.gunCount, budget: -sp) }
    var requests = GunArray<Watts>(repeating: .zero)
    for g in 0..<spec.gunCount {
        requests[g] = min(max(L.exportA[g] * L.operatingVoltage[g], stationShare[g]), capable[g])
    }
    let granted = waterFill(&requests, count: spec.gunCount, budget: spec.gridLimit)
    for g in 0..<spec.gunCount {
        L.exportA[g] = L.operatingVoltage[g] > .zero ? granted[g] / L.operatingVoltage[g] : .zero
        s.figures[g].export = granted[g]
    }
}

/// 5. After the module pool (`allocateModules`, which releases no module that is still uncontrolled, so
/// `uncontrolled` holds): a gun's limit is what its modules can deliver at its voltage; a gun left without
/// modules longer than the grace latches E24.
@_noAllocation @_noLocks
func capByModules(_ s: inout StationState, _ spec: inout StationSpec, _ demands: inout GunArray<SessionDemand>,
                  _ L: inout StepLimits, uncontrolled: inout GunArray<Amps>, now: Instant) {
    for g in 0..<spec.gunCount {
        guard demands[g].needsPower else { continue }
        var cap = uncontrolled[g]
        for m in 0..<spec.moduleCount where s.modules[m].assigned == Int8(g) && !s.modules[m].releasing
            && s.station.moduleLatched[m].isEmpty {
            cap += spec.modules[m].currentCapability(at: L.operatingVoltage[g])
        }
        if cap < L.limitA[g] { L.limitA[g] = cap; L.source[g] = .modules }
        // What the modules can deliver is a physical limit: a ramp down to a lower grid limit never stays
        // above it (exploration seed 31000309: a 2 kW setpoint released a module while the ramp held
        // 150 A, and the one left was commanded above its 100 A rating; E31 caught it).
        if cap < L.nonGrid[g] { L.nonGrid[g] = cap }
        // In reverse, the same: what the gun's bidirectional modules can take from the car (a silent
        // one counted at its last command, as forward, where the gun has any: on a gun whose modules only
        // charge, a silent one's current is no reverse capability).
        var reverse = Amps.zero
        for m in 0..<spec.moduleCount where s.modules[m].assigned == Int8(g) && !s.modules[m].releasing
            && s.station.moduleLatched[m].isEmpty {
            reverse += spec.modules[m].reverseCapability(at: L.operatingVoltage[g])
        }
        if reverse > .zero { reverse += uncontrolled[g] }
        if reverse < L.dischargeNonGrid[g] { L.dischargeNonGrid[g] = reverse; L.dischargeSource[g] = .modules }
        if reverse < L.exportA[g] { L.exportA[g] = reverse }
        if s.figures[g].activeModules == 0 {
            let since = s.figures[g].starvedSince ?? now
            s.figures[g].starvedSince = since
            if now - since > spec.noModulesGrace {
                s.raise(.noModulesAvailable, gun: g, value: (now - since).seconds, limit: spec.noModulesGrace.seconds, measure: .seconds, now: now)
            }
        } else { s.figures[g].starvedSince = nil }
    }
}

/// 6. Ramps: each gun's command towards the lower of its demand and its limit, the limit in force reported.
@_noAllocation @_noLocks
func rampCommands(_ s: inout StationState, _ spec: inout StationSpec, _ demands: inout GunArray<SessionDemand>,
                  _ L: inout StepLimits, dt: TimeSpan, _ out: inout StationOutputs) {
    for g in 0..<spec.gunCount {
        let gunSpec = spec.guns[g]
        let d = demands[g]
        // V2G: the export asked and allowed (a magnitude), and what the gun may discharge without the grid.
        let mayDischarge = d.needsPower ? L.dischargeNonGrid[g] : .zero
        let export = min(L.exportA[g], mayDischarge)
        let target = export > .zero ? -export : min(d.current, L.limitA[g])
        var i = s.sessions[g].rampedCurrent
        if !d.needsPower || d.dropAtOnce {
            i = .zero
        } else if i < .zero || export > .zero {
            // Discharging, or asked to (docs/standards.md "V2G"): a change of direction passes through zero
            // at the board's ramps with K1/K2 closed; the discharge limits without the grid (the car's offer
            // withdrawn or its minimum SOC reached, a rating, the modules) apply at once.
            if i > .zero {
                // Still charging: down to zero at the stop ramp, never above a charge limit other than the grid's.
                i = max(.zero, min(i - gunSpec.stopRamp * dt, L.source[g] == .gridSetpoint ? L.nonGrid[g] : L.limitA[g]))
            } else if target < i {
                // More export: the magnitude grows at the board's ramp up.
                i = max(target, i - gunSpec.rampUp * dt)
            } else {
                // Less export, or none: back at the stop ramp, not past zero in this cycle (the charge
                // ramp up takes over from there).
                i = min(min(target, .zero), i + gunSpec.stopRamp * dt)
            }
            if -i > mayDischarge { i = -mayDischarge }
        } else if target < i {
            // Limits and demand reductions apply at once; a normal stop ramps at the stop rate, and so
            // does a lower grid limit (a dispatch is a request, not a protection: the board's ramp), but
            // never staying above any other limit or the car's demand.
            if s.sessions[g].phase == .stopping {
                // The stop ramp is the demand's way to zero, not a licence to stay above a limit: a
                // limit that falls below it while stopping (the station's share when another gun wants
                // more, the operator's cap, thermal derating, a module lost) applies at once, a grid
                // dispatch at the ramp. Exploration seed 882217947: a stopping gun on sim-dual-360kw
                // ramped at 500 A/s from 207 A while its station share fell to 180 A; E31 caught it.
                let ceiling = L.source[g] == .gridSetpoint ? L.nonGrid[g] : L.limitA[g]
                i = max(target, min(i - gunSpec.stopRamp * dt, ceiling))
            } else if L.source[g] == .gridSetpoint {
                i = max(target, min(min(i - gunSpec.stopRamp * dt, L.nonGrid[g]), d.current))
            } else { i = target }
        } else {
            i = min(target, i + gunSpec.rampUp * dt)
        }
        s.sessions[g].rampedCurrent = i
        out.guns[g].voltageSetpoint = d.voltage
        out.guns[g].currentSetpoint = i
        // While the command ramps down to a lower grid limit, the limit in force is the ramp.
        let inForce = L.source[g] == .gridSetpoint && i > L.limitA[g] ? i : L.limitA[g]
        out.guns[g].currentLimit = inForce
        out.guns[g].powerLimit = inForce * L.operatingVoltage[g]
        out.guns[g].binding = L.source[g]
        // The discharge limit in force: the export allowed, or the ramp while it comes down to a lower one;
        // and what the gun may discharge now, dispatched or not (what an EMS can ask of it).
        let discharging = i < .zero ? -i : .zero
        out.guns[g].dischargeLimit = max(export, discharging)
        out.guns[g].dischargeAvailable = mayDischarge
        out.guns[g].dischargeBinding = export >= discharging && export > .zero
            ? (L.exportA[g] < mayDischarge ? .gridSetpoint : L.dischargeSource[g])
            : (discharging > .zero ? .gridSetpoint : .none)
    }
}

/// 6b. Each module's command: its gun's setpoint less what silent and departing modules still deliver, shared by the
/// gun's active modules; and what each module is taken to deliver (`lastCommand`) once it goes silent.
/// Also sums each gun's modules' current readings (`measured`, signed) and notes a gun with a module not
/// heard of within its timeout (`blind`): the metering check's figures, from this one pass.
@_noAllocation @_noLocks
func moduleSetpoints(_ s: inout StationState, _ inputs: inout StationInputs, _ spec: inout StationSpec, _ demands: inout GunArray<SessionDemand>,
                     uncontrolled: inout GunArray<Amps>, now: Instant, _ out: inout StationOutputs,
                     measured: inout GunArray<Double>, blind: inout GunArray<Bool>) {
    // A module still on a gun but given no share (being released, or latched) is told zero, yet until it
    // answers its current is what it last said or was told since (`lastCommand`): counted as delivered,
    // as a silent one's is, so the gun's other modules take its share only as it lets go (exploration
    // seed 321727741: the pool released a module 2 ms before it counted as silent; the five left took
    // its share while it still delivered 23 A, and the station ran 12 kW over its 300 kW limit).
    var lettingGo = GunArray<Amps>(repeating: .zero)
    for m in 0..<spec.moduleCount where s.modules[m].assigned >= 0
        && (s.modules[m].releasing || !s.station.moduleLatched[m].isEmpty) && !isUncontrolled(s.modules[m], now, spec) {
        lettingGo[Int(s.modules[m].assigned)] += s.modules[m].lastCommand
    }
    for m in 0..<spec.moduleCount {
        var mo = ModuleOutputs()
        let slot = s.modules[m]
        mo.gun = slot.assigned
        if slot.assigned >= 0 {
            measured[Int(slot.assigned)] += inputs.modules[m].outputCurrent.value
            if now - inputs.modules[m].seenAt > spec.moduleCommTimeout { blind[Int(slot.assigned)] = true }
        }
        if slot.assigned >= 0 && !slot.releasing && s.station.moduleLatched[m].isEmpty {
            let g = Int(slot.assigned)
            let n = s.figures[g].activeModules
            if demands[g].needsPower && n > 0 {
                mo.enabled = true
                mo.voltage = demands[g].voltage
                // An equal share, never above the module's own rating: the gun's limit is what its modules
                // can deliver, so with one module type the share is always within it; a gun served by
                // module types of different ratings (no shipped board has one) gets less than its command
                // rather than a module driven past its rating (E31).
                let sp = out.guns[g].currentSetpoint
                if sp >= .zero {
                    mo.current = min(max(.zero, sp - uncontrolled[g] - lettingGo[g]) / Double(n), spec.modules[m].maxCurrent)
                } else {
                    // V2G reverse: shared by the gun's bidirectional modules, each within its reverse rating;
                    // a rectifier that only charges stays on at zero.
                    let nr = s.figures[g].reverseModules
                    mo.current = spec.modules[m].bidirectional && nr > 0
                        ? -min(max(.zero, -sp - uncontrolled[g] - lettingGo[g]) / Double(nr), spec.modules[m].reverseMaxCurrent) : .zero
                }
            }
        }
        out.modules[m] = mo
        if !isUncontrolled(slot, now, spec) {
            let command = mo.enabled ? mo.current.magnitude : .zero
            if inputs.modules[m].seenAt != slot.heardAt {
                // A new answer: what it said it delivers, and what it is told from now on.
                s.modules[m].heardAt = inputs.modules[m].seenAt
                s.modules[m].commandSinceHeard = command
                s.modules[m].lastCommand = max(inputs.modules[m].outputCurrent.magnitude, command)
            } else {
                s.modules[m].commandSinceHeard = max(slot.commandSinceHeard, command)
                s.modules[m].lastCommand = max(slot.lastCommand, command)
            }
        }
    }
}

/// K1/K2 open outside an emergency only at ≤ 5 A (standards.md "Fault reactions": "open K1/K2 only with
/// current ≤ 5 A"), judged on the current that can be confirmed (`shutdownCurrent`). The arbiter's own
/// shutdown rules hold and escalate a gun with a fault at or above refuse; for the others:
/// - a session that opens on more than 5 A breaks the current under load: an emergency, E28 with the
///   current broken (exploration seed 649374051: a short through the cable check's discharge, K1/K2
///   opened at 55 A when the output fell below 60 V, before E12's 100 ms persistence);
/// - a normal stop has its rows: ≤ 5 A within 100 ms after the charger's CST, within 10 s after the
///   car's BST. A stop still holding K1/K2 closed on more than 5 A past its row (a module ignoring its
///   command, a current that cannot be confirmed down), or on a current no command can bring down
///   (silent modules), opens under load as an error shutdown that missed its time does: E28. On a
///   field bus the result of a command shows only after `commandLatency`, so the row is judged that
///   much later.
@_noAllocation @_noLocks
func openOnlyAtLowCurrent(
    _ s: inout StationState, _ inputs: inout StationInputs, _ spec: inout StationSpec, uncontrolled: inout GunArray<Amps>, now: Instant,
                          _ out: inout StationOutputs) {
    for g in 0..<spec.gunCount where s.safety[g].k1k2Commanded {
        if let r = (s.safety[g].latched | s.station.latched).strongestReaction, r >= .refuse { continue }
        let opening = !out.guns[g].closeK1K2
        guard opening || s.sessions[g].phase == .stopping else { continue }
        let i = shutdownCurrent(&s, &inputs, &spec, gun: g, uncontrolled: uncontrolled[g], now: now)
        guard i > Standard.openCurrentLimit else { continue }
        let row = (s.sessions[g].chargerInitiatedStop ? Standard.cstCurrentDownWithin : Standard.bstCurrentDownWithin) + spec.commandLatency
        if opening || uncontrolled[g] > Standard.openCurrentLimit || now - s.sessions[g].phaseSince > row {
            s.raise(.escalatedToEmergency, gun: g, value: i.value, now: now)
        }
    }
}

/// A metering fault holds a gun out of sessions where the board says so (`MeteringSpec.refuseSessions`),
/// before a session begins: one that runs finishes.
@inline(__always)
func heldByMetering(_ phase: SessionPhase, latched: FaultSet, _ spec: borrowing StationSpec) -> Bool {
    spec.metering.refuseSessions && !(latched & .metering).isEmpty && (phase == .unplugged || phase == .connecting || phase == .connected)
}

/// 7. The arbiter: latched faults win over everything the session asked for.
@_noAllocation @_noLocks
func arbitrate(
    _ s: inout StationState, _ inputs: inout StationInputs, _ spec: inout StationSpec, uncontrolled: inout GunArray<Amps>, now: Instant,
    _ out: inout StationOutputs
) {
    for g in 0..<spec.gunCount {
        let faults = s.safety[g].latched | s.station.latched
        guard let reaction = faults.strongestReaction else {
            s.safety[g].shutdownDeadline = nil
            s.safety[g].shutdownCounted = .empty
            recordCommand(&s, g, out.guns[g].closeK1K2, now)
            continue
        }
        noteShutdownDeadline(&s, g, faults, now, opening: spec.contactorOpeningTime)
        // The fault lamp says the gun cannot serve: a fault that refuses or shuts down, or a metering fault
        // that holds it where the board refuses sessions on one. A derate fault (a module lost, a metering
        // record) leaves the session's lamp: the car goes on charging, and the fault is the technician's
        // and the central system's (StatusNotification OtherError); a red lamp over a charging car said
        // otherwise (docs/faults.md).
        if reaction >= .refuse || heldByMetering(s.sessions[g].phase, latched: faults, spec) { out.guns[g].lamp = .fault }
        // CEM names the message that timed out. The session says which in `timedOut` (BRM after the
        // handshake's last retry, say) but sends CEM only from the next cycle's phase; the supervisor's own
        // 10 s backstop (it watches BCL) is the only E17 the session has not named.
        if (s.safety[g].latched).contains(.vehicleCommTimeout) && out.guns[g].tx.cem == nil {
            out.guns[g].tx.cem = s.sessions[g].timedOut ?? .bcl
        }
        let energised = inputs.guns[g].k1Closed || inputs.guns[g].k2Closed || s.safety[g].k1k2Commanded
        var emergency = reaction == .emergency
        if reaction >= .refuse && !emergency {
            // Error shutdown (standards.md "Fault reactions", last paragraph): modules to zero, open K1/K2
            // once the current is ≤ 5 A. The rule's 5 A gives way to the row's time: a current that no
            // command can bring down (silent modules still on their last command) or that is still above
            // 5 A at the row's deadline is broken under load, as an emergency (E28 with the current broken,
            // the contactor-wear record), rather than energy held on a faulted gun.
            let i = shutdownCurrent(&s, &inputs, &spec, gun: g, uncontrolled: uncontrolled[g], now: now)
            let holding = energised && s.safety[g].k1k2Commanded && i > Standard.openCurrentLimit
            let hopeless = uncontrolled[g] > Standard.openCurrentLimit
            if holding && (hopeless || now >= s.safety[g].shutdownDeadline ?? now) {
                s.raise(.escalatedToEmergency, gun: g, value: i.value, now: now)
                emergency = true
            }
            cutOutput(&s, &out, gun: g, moduleCount: spec.moduleCount)
            out.guns[g].closeK1K2 = holding && !emergency
            if !out.guns[g].closeK1K2 { out.guns[g].discharge = true }
        }
        if emergency {
            // Modules off and K1/K2 open in this same cycle.
            cutOutput(&s, &out, gun: g, moduleCount: spec.moduleCount)
            out.guns[g].closeK1K2 = false
            out.guns[g].discharge = true
        }
        // The one exception: a technician's K1/K2 test under the gun's own contactor faults, plug out and
        // both sides below 60 V (`contactorRepairTest`), decided here from the inputs, not from what the
        // session asked. The modules stay cut (above); the contacts close on a dead output.
        let test = inputs.guns[g].actuatorTest
        if contactorRepairTest(test, latched: faults) && !energisedByModules(&out, gun: g, moduleCount: spec.moduleCount)
            && actuatorTestRefusal(test, phase: s.sessions[g].phase, latched: faults, input: inputs.guns[g]) == nil {
            out.guns[g].closeK1K2 = true
            out.guns[g].discharge = false
        }
        recordCommand(&s, g, out.guns[g].closeK1K2, now)
    }
}

/// True when a module is enabled on gun `g` in `out` (after a cut, none is).
@_noAllocation @_noLocks
func energisedByModules(_ out: inout StationOutputs, gun g: Int, moduleCount: Int) -> Bool {
    for m in 0..<moduleCount where out.modules[m].gun == Int8(truncatingIfNeeded: g) && out.modules[m].enabled { return true }
    return false
}

/// Counts faults latched since the last cycle into the gun's shutdown deadline: each fault's row gives
/// the time from its latch by which K1/K2 must be open (`FaultCode.openWithin`), less the contactor's own
/// opening time (`opening`) for the command; the earliest wins.
@_noAllocation @_noLocks
func noteShutdownDeadline(_ s: inout StationState, _ g: Int, _ faults: FaultSet, _ now: Instant, opening: TimeSpan) {
    // A fault cleared by a reset and latched again counts anew.
    s.safety[g].shutdownCounted = s.safety[g].shutdownCounted & faults
    var fresh = faults.subtracting(s.safety[g].shutdownCounted).bits
    while fresh != 0 {
        let bit = fresh.trailingZeroBitCount
        fresh &= fresh - 1
        guard let code = FaultCode(rawValue: UInt8(bit)), let within = code.openWithin else { continue }
        let due = now + (within > opening ? within - opening : .zero)
        if let d = s.safety[g].shutdownDeadline, d <= due { continue }
        s.safety[g].shutdownDeadline = due
    }
    s.safety[g].shutdownCounted = faults
}

/// The current a shutdown (error or normal stop) may believe is flowing in gun `g`, from what can still
/// be measured and what no longer can. A meter reading no older than `readingMaxAge` is the gun's current
/// (it sees every module, silent or not); beside it the sum of the gun's modules' readings as fresh (a
/// sum: with three modules at 3 A each, 9 A flow). Without such a meter reading: the modules' fresh
/// readings, plus each module whose reading is older but which is not yet silent at its last reading or
/// last command, the larger (a stale reading neither confirms nor clears), plus the silent modules at
/// their last command until their own switch-off time (`uncontrolled`), never at zero.
@_noAllocation @_noLocks
func shutdownCurrent(_ s: inout StationState, _ inputs: inout StationInputs, _ spec: inout StationSpec,
                     gun g: Int, uncontrolled: Amps, now: Instant) -> Amps {
    var measured = Amps.zero, unconfirmed = Amps.zero
    for m in 0..<spec.moduleCount where s.modules[m].assigned == Int8(g) {
        let age = now - inputs.modules[m].seenAt
        let reading = inputs.modules[m].outputCurrent.magnitude   // either direction (V2G)
        if age <= spec.readingMaxAge { measured += reading }
        else if age <= spec.moduleCommTimeout { unconfirmed += max(reading, s.modules[m].lastCommand) }
    }
    if now - inputs.guns[g].meterSeenAt <= spec.readingMaxAge { return max(inputs.guns[g].meterCurrent.magnitude, measured) }
    return measured + unconfirmed + uncontrolled
}

/// A gun's outputs cut (`StationOutputs.cut`) and its session's ramp reset to zero.
@_noAllocation @_noLocks
func cutOutput(_ s: inout StationState, _ out: inout StationOutputs, gun g: Int, moduleCount: Int) {
    out.cut(gun: g, moduleCount: moduleCount)
    s.sessions[g].rampedCurrent = .zero
}

/// Marks the modules not heard of within the module timeout as silent since their last answer.
@_noAllocation @_noLocks
func noteSilentModules(_ s: inout StationState, _ inputs: inout StationInputs, _ spec: inout StationSpec) {
    let now = inputs.now
    for m in 0..<spec.moduleCount {
        if now - inputs.modules[m].seenAt > spec.moduleCommTimeout {
            if s.modules[m].silentSince == nil { s.modules[m].silentSince = inputs.modules[m].seenAt }
        } else { s.modules[m].silentSince = nil }
    }
}

/// A silent module still within its own switch-off time: it may be delivering its last command. Its
/// watchdog restarts with each command it receives, and one sent after its last answer may have reached
/// it: on a field bus the time counts from its last answer plus the command latency (a clean-clone CI run
/// of test-wire saw the emulated module on 0.1-0.3 s past its last answer + 15 s, its current then
/// judged against a command without it: E12).
@_noAllocation @_noLocks
func isUncontrolled(_ slot: ModuleSlot, _ now: Instant, _ spec: borrowing StationSpec) -> Bool {
    guard let since = slot.silentSince else { return false }
    return now - since < spec.moduleSelfOffTime + spec.commandLatency && slot.lastCommand > .zero
}

@_noAllocation @_noLocks
func recordCommand(_ s: inout StationState, _ g: Int, _ close: Bool, _ now: Instant) {
    if close != s.safety[g].k1k2Commanded {
        s.safety[g].k1k2Commanded = close
        s.safety[g].k1k2ChangedAt = now
    }
}

// Long: one pass of the module pool (release, serve, hand out) over fixed-size arrays, compiler-checked free of
// allocation; its phases share the pool's working state
/// Module pool: decide how many modules each gun needs, keep existing assignments where they still
/// serve, release surplus (off first, relay moved only at zero current), hand free modules to the guns
/// with the largest deficit. Deterministic: ties go to the lower index.
/// `demands` and `operatingVoltage` are read only (by reference: a copy of the gun arrays per cycle is what it saves).
@_noAllocation @_noLocks
func allocateModules(_ s: inout StationState, _ inputs: inout StationInputs, _ spec: inout StationSpec,
                     _ demands: inout GunArray<SessionDemand>, _ operatingVoltage: inout GunArray<Volts>) {
    let now = inputs.now
    // Releasing modules become free once their output current is zero ("move a module only when its
    // current is zero"); unhealthy modules are released the same way.
    for m in 0..<spec.moduleCount {
        let healthy = s.station.moduleLatched[m].bits == 0
        let uncontrolled = isUncontrolled(s.modules[m], now, spec)
        // A silent module stays on its gun (its relay must not open under load) until it has switched
        // itself off; a faulted one that still talks is released like any surplus module.
        if s.modules[m].assigned >= 0 && !healthy && !uncontrolled { s.modules[m].releasing = true }
        // A module that talks is at zero on a current reading of zero with no command since it was read.
        let zeroCurrent = s.modules[m].silentSince != nil ? !uncontrolled
            : inputs.modules[m].outputCurrent.magnitude < Amps(0.5) && now - inputs.modules[m].seenAt <= spec.readingMaxAge
              && s.modules[m].commandSinceHeard == .zero   // magnitudes: either direction
        if s.modules[m].releasing && zeroCurrent {
            s.modules[m].assigned = -1
            s.modules[m].releasing = false
            s.modules[m].lastCommand = .zero
            s.modules[m].commandSinceHeard = .zero
        }
    }
    var tick = now - s.lastAllocation >= spec.allocationPeriod
    for g in 0..<spec.gunCount where demands[g].needsPower && s.figures[g].activeModules == 0 { tick = true }
    // Count the healthy active modules per gun: what serves it. An unhealthy one still on it (a silent
    // module goes on delivering until it switches itself off) is not counted: counted, it made a healthy
    // module beside it surplus and released (a setpoint of zero with a module silent on sim-60kw left
    // the gun without a module: E24, then E28 under the silent one's current).
    var active = GunArray<Int>(repeating: 0)
    for m in 0..<spec.moduleCount where s.modules[m].assigned >= 0 && !s.modules[m].releasing && s.station.moduleLatched[m].isEmpty {
        active[Int(s.modules[m].assigned)] += 1
    }
    if tick {
        s.lastAllocation = now
        var want = GunArray<Int>(repeating: 0)
        for g in 0..<spec.gunCount where demands[g].needsPower {
            // Module capacity at this voltage; the target is the gun's share (≥ one module).
            var per = Watts.zero, perReverse = Watts.zero
            for m in 0..<spec.moduleCount where spec.modules[m].gunMask & (1 << UInt16(g)) != 0 {
                per = spec.modules[m].currentCapability(at: operatingVoltage[g]) * operatingVoltage[g]
                perReverse = spec.modules[m].reverseCapability(at: operatingVoltage[g]) * operatingVoltage[g]
                break
            }
            var n = 1
            if per > .zero {
                let target = min(s.figures[g].share, s.figures[g].wanted)
                let k = target / per
                var c = Int(k)
                if Double(c) < k { c += 1 }
                if c > n { n = c }
            }
            // V2G: enough modules for the export asked too.
            if perReverse > .zero && s.figures[g].export > .zero {
                let k = s.figures[g].export / perReverse
                var c = Int(k)
                if Double(c) < k { c += 1 }
                if c > n { n = c }
            }
            want[g] = n
        }
        // More modules wanted than the healthy pool has: the largest wants give one up each until it
        // fits, so that every gun that needs power keeps at least one (a gun whose share is the whole pool
        // otherwise starves a second car into E24: found with two cars on sim-v2g-60kw, whose 4 modules
        // equal its 60 kW connection).
        var pool = 0, wanted = 0
        for m in 0..<spec.moduleCount where s.station.moduleLatched[m].isEmpty { pool += 1 }
        for g in 0..<spec.gunCount { wanted += want[g] }
        while wanted > pool {
            var largest = -1
            for g in 0..<spec.gunCount where want[g] > 1 && (largest < 0 || want[g] > want[largest]) { largest = g }
            guard largest >= 0 else { break }
            want[largest] -= 1; wanted -= 1
        }
        // Keep what still serves, release the surplus (highest index first).
        for m in stride(from: spec.moduleCount - 1, through: 0, by: -1) {
            let a = s.modules[m].assigned
            guard a >= 0, !s.modules[m].releasing, s.station.moduleLatched[m].isEmpty else { continue }
            let g = Int(a)
            if active[g] > want[g] { s.modules[m].releasing = true; active[g] -= 1 }
        }
        // Free, healthy modules go to the gun with the largest deficit that the matrix allows.
        for m in 0..<spec.moduleCount where s.modules[m].assigned < 0 && s.station.moduleLatched[m].isEmpty {
            var best = -1
            var bestDeficit = 0
            for g in 0..<spec.gunCount where spec.modules[m].gunMask & (1 << UInt16(g)) != 0 {
                let deficit = want[g] - active[g]
                if deficit > bestDeficit { best = g; bestDeficit = deficit }
            }
            if best >= 0 { s.modules[m].assigned = Int8(best); active[best] += 1 }
        }
    }
    for g in 0..<spec.gunCount { s.figures[g].activeModules = 0; s.figures[g].reverseModules = 0 }
    for m in 0..<spec.moduleCount where s.modules[m].assigned >= 0 && !s.modules[m].releasing && s.station.moduleLatched[m].isEmpty {
        s.figures[Int(s.modules[m].assigned)].activeModules += 1
        if spec.modules[m].bidirectional { s.figures[Int(s.modules[m].assigned)].reverseModules += 1 }
    }
}
