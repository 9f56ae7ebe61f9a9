// The step's own assertions (issue 15): what a cycle's outputs must satisfy whatever happened before.
// Every build checks them at the end of `controlStep` (measured at 0.08-0.95 µs a cycle, BENCHMARKS.md:
// under 0.1 % of the 1 ms period, so they are not compiled out): a gun whose outputs break one is cut
// (modules off, K1/K2 open, discharge) and E31 latches, an emergency that needs a reset. Debug builds
// also stop at an `assert`, and the simulator reports every E31 as an invariant violation.

/// A rule about one cycle's outputs, read from the state, the spec and the outputs alone.
public enum StepRule: UInt8, Sendable, CaseIterable {
    /// A latched emergency fault: K1/K2 commanded open in the same cycle (standards.md "Fault reactions").
    case emergencyOpensAtOnce
    /// A latched emergency fault: no module of the gun enabled.
    case emergencyModulesOff
    /// An error shutdown or refusal in force: every module of the gun commanded to zero current.
    case shutdownModulesAtZero
    /// The gun's current command within the limit in force.
    case commandAboveLimit
    /// The limit in force within the gun's rating and its connector's (board file `max_current`,
    /// `connector_current`).
    case limitAboveRating
    /// No module commanded above its own rated current (board file `[[modules]] max_current`).
    case moduleAboveRating
    /// The modules of a gun together commanded no more than the gun's command, in its direction (V2G:
    /// none against it).
    case modulesAboveCommand
    /// V2G: the gun's command no further into discharge than its discharge limit in force (zero where the
    /// gun may not discharge: no car's offer, no bidirectional module).
    case dischargeBeyondLimit

    public var name: String {
        switch self {
        case .emergencyOpensAtOnce: "emergency-opens-at-once"
        case .emergencyModulesOff: "emergency-modules-off"
        case .shutdownModulesAtZero: "shutdown-modules-at-zero"
        case .commandAboveLimit: "command-above-limit"
        case .limitAboveRating: "limit-above-rating"
        case .moduleAboveRating: "module-above-rating"
        case .modulesAboveCommand: "modules-above-command"
        case .dischargeBeyondLimit: "discharge-beyond-limit"
        }
    }
}

/// One broken rule: the gun (and module, -1 for none), the value found and the bound it broke.
public struct StepViolation: Sendable, Equatable {
    public var rule: StepRule
    public var gun: Int
    public var module: Int
    public var value: Double
    public var bound: Double
}

/// The rules a cycle broke: the first `capacity` kept, all counted. Fixed size: no allocation.
public struct StepViolations: Sendable {
    public static let capacity = 8
    public private(set) var count = 0
    @usableFromInline var items = InlineArray<8, StepViolation>(
        repeating: StepViolation(rule: .commandAboveLimit, gun: -1, module: -1, value: 0, bound: 0))
    public init() {}
    @inlinable public var isEmpty: Bool { count == 0 }
    /// The kept ones (at most `capacity`).
    public subscript(i: Int) -> StepViolation { items[i] }
    public var kept: Int { min(count, Self.capacity) }
    @_noAllocation @_noLocks
    mutating func append(_ v: StepViolation) {
        if count < Self.capacity { items[count] = v }
        count += 1
    }
}

/// Tolerance of the current rules (floating-point sums of module shares).
@usableFromInline let stepCurrentTolerance = Amps(1e-6)

/// The rules the outputs break (none: the step kept its contract). No allocation.
@_noAllocation @_noLocks
/// `repairTest`: the guns where a technician's K1/K2 test under their own contactor faults may hold the
/// contacts closed this cycle (`contactorRepairTest` and `actuatorTestRefusal`, from the inputs): the one
/// exception to "an emergency opens K1/K2 at once"; the modules must still be off.
public func checkStepOutputs(_ s: inout StationState, _ spec: inout StationSpec, _ out: inout StationOutputs,
                             repairTest: GunArray<Bool> = GunArray(repeating: false)) -> StepViolations {
    var found = StepViolations()
    for g in 0..<spec.gunCount {
        let reaction = (s.safety[g].latched | s.station.latched).strongestReaction
        let o = out.guns[g]
        if reaction == .emergency && o.closeK1K2 && !repairTest[g] {
            found.append(StepViolation(rule: .emergencyOpensAtOnce, gun: g, module: -1, value: 1, bound: 0))
        }
        if o.currentSetpoint > o.currentLimit + stepCurrentTolerance {
            found.append(StepViolation(rule: .commandAboveLimit, gun: g, module: -1, value: o.currentSetpoint.value, bound: o.currentLimit.value))
        }
        if o.currentSetpoint < -(o.dischargeLimit + stepCurrentTolerance) {
            found.append(
                StepViolation(rule: .dischargeBeyondLimit, gun: g, module: -1, value: o.currentSetpoint.value, bound: -o.dischargeLimit.value))
        }
        let rating = min(spec.guns[g].maxCurrent, spec.guns[g].connectorCurrent)
        if o.currentLimit > rating + stepCurrentTolerance {
            found.append(StepViolation(rule: .limitAboveRating, gun: g, module: -1, value: o.currentLimit.value, bound: rating.value))
        }
        if o.dischargeLimit > rating + stepCurrentTolerance {
            found.append(StepViolation(rule: .limitAboveRating, gun: g, module: -1, value: -o.dischargeLimit.value, bound: -rating.value))
        }
        // Each module's current counted in the gun's commanded direction: one running against it counts
        // as the whole of its current beyond the command.
        var sum = Amps.zero
        for m in 0..<spec.moduleCount where out.modules[m].gun == Int8(truncatingIfNeeded: g) {
            let mo = out.modules[m]
            if mo.enabled {
                let along = o.currentSetpoint < .zero ? -mo.current : mo.current
                sum += along < .zero ? Amps(.infinity) : along
            }
            if reaction == .emergency && mo.enabled {
                found.append(StepViolation(rule: .emergencyModulesOff, gun: g, module: m, value: mo.current.value, bound: 0))
            }
            if let r = reaction, r >= .refuse, mo.current != .zero {
                found.append(StepViolation(rule: .shutdownModulesAtZero, gun: g, module: m, value: mo.current.value, bound: 0))
            }
        }
        if sum > o.currentSetpoint.magnitude + stepCurrentTolerance * 100 {
            found.append(StepViolation(rule: .modulesAboveCommand, gun: g, module: -1, value: sum.value, bound: o.currentSetpoint.value))
        }
    }
    // Each module within its own rating: forward, and in reverse within its reverse rating (zero for a
    // rectifier that only charges).
    for m in 0..<spec.moduleCount {
        let i = out.modules[m].current
        let bound = i < .zero ? spec.modules[m].reverseMaxCurrent : spec.modules[m].maxCurrent
        if i.magnitude > bound + stepCurrentTolerance {
            found.append(StepViolation(rule: .moduleAboveRating, gun: Int(out.modules[m].gun), module: m,
                                       value: i.value, bound: i < .zero ? -bound.value : bound.value))
        }
    }
    return found
}

/// The safety net after the arbiter: every gun whose outputs break the contract is cut (modules off,
/// K1/K2 open, discharge) and E31 latches on it with the broken rule as its value. A module above its
/// rating on no gun is switched off. Returns what was found (empty: nothing was touched).
@_noAllocation @_noLocks
public func enforceStepContract(_ s: inout StationState, _ spec: inout StationSpec, _ out: inout StationOutputs,
                                now: Instant, repairTest: GunArray<Bool> = GunArray(repeating: false)) -> StepViolations {
    let broken = checkStepOutputs(&s, &spec, &out, repairTest: repairTest)
    if broken.isEmpty { return broken }
    // More than the kept ones: every gun is cut (a step this wrong is not trusted anywhere).
    let all = broken.count > broken.kept
    for g in 0..<spec.gunCount {
        var rule: StepRule? = nil
        for i in 0..<broken.kept where broken[i].gun == g { rule = broken[i].rule; break }
        guard rule != nil || all else { continue }
        s.raise(.stepContractBroken, gun: g, value: Double((rule ?? .commandAboveLimit).rawValue), now: now)
        cutOutput(&s, &out, gun: g, moduleCount: spec.moduleCount)
        out.guns[g].closeK1K2 = false
        out.guns[g].discharge = true
        recordCommand(&s, g, false, now)
    }
    for i in 0..<broken.kept where broken[i].rule == .moduleAboveRating && broken[i].gun < 0 {
        out.modules[broken[i].module].enabled = false   // either direction
        out.modules[broken[i].module].current = .zero
    }
    return broken
}
