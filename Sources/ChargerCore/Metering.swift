// The meter checked against the charger (issue 37, part 2). Every cycle the charger integrates what it
// delivers by its own measurements (the voltage at its side of K1/K2 times its modules' currents) while
// a session runs; the meter's energy register over the same time is compared with it. A deviation beyond
// the budget (`MeteringSpec`, docs/standards.md "Metering budget": the meter's accuracy class and the
// charger's own voltage and current accuracy, root-sum-square, plus the register's resolution) that
// holds for `persist` latches E34: a record, not a stop (derate class: the session finishes; the board
// may have new sessions refused while it stands). The register itself is watched on every fresh reading:
// going back (tamper, a glitch), falling to almost nothing (replacement, rollover) or rising by more than
// the gun could have delivered since the value before was first seen (`MeteringSpec.registerLag` more for a
// value read late) latches E35 with both readings; the session's deviation is then not judged.

/// The metering check's figures for one board (board file `[metering]`; defaults in docs/standards.md).
public struct MeteringSpec: Sendable, Equatable {
    /// The meter's accuracy class, percent of energy (GB/T 33708-2017: classes 0.5 and 1).
    public private(set) var meterClass: Double = 1
    /// The charger's own output current and voltage accuracy, percent (NB/T 33001: ±1 % of current at or
    /// above 30 A, ±0.5 % of voltage).
    public private(set) var currentAccuracy: Double = 1
    public private(set) var voltageAccuracy: Double = 0.5
    /// The relative budget: the three independent errors combined root-sum-square (GUM), percent; set
    /// with them (a square root is not for the cycle).
    public private(set) var budgetPercent: Double = 1.5
    /// The register's resolution (0.001 kWh: JJG 1149-2022's energy step).
    public var resolution: WattHours = WattHours(1)
    /// A session is judged once the charger has delivered this much (below it the resolution and the
    /// low-current accuracy dominate).
    public var minEnergy: WattHours = .kWh(1)
    /// How long a deviation beyond the budget must hold before E34 latches.
    public var persist: TimeSpan = .s(60)
    /// No new session while E34 or E35 stands on the gun (board file; off by default: a metering fault is
    /// the operator's business, not the driver's).
    public var refuseSessions = false
    /// How often a session's deviation is judged while it runs (and once at its end).
    public static let judgeEvery = TimeSpan.ms(100)
    /// How stale a register value may be when it is read (a meter refreshes its registers on its own
    /// clock): the register watch allows the gun's rated power over this much more.
    public static let registerLag = TimeSpan.s(2)
    public init() {}

    /// Sets the accuracies (percent) and the budget they make.
    public mutating func setAccuracy(meterClass m: Double, current c: Double, voltage v: Double) {
        meterClass = m; currentAccuracy = c; voltageAccuracy = v
        budgetPercent = (m * m + c * c + v * v).squareRoot()
    }
    /// The budget for a session of `energy` (fraction): the relative budget plus a register step at each end.
    public func budget(for energy: WattHours) -> Double {
        let e = max(abs(energy.value), 1)
        return budgetPercent / 100 + 2 * resolution.value / e
    }
}

extension FaultSet {
    /// The metering faults: E34 (deviation beyond the budget) and E35 (the register misbehaved).
    @inlinable public static var metering: FaultSet {
        FaultSet(bits: 1 << UInt64(FaultCode.meteringDeviation.rawValue) | 1 << UInt64(FaultCode.meterRegister.rawValue))
    }
}

/// One gun's metering check.
public struct GunMetering: Sendable {
    /// The charger's own energy since the session began, Wh (import positive, export negative).
    public var chargerEnergy: Double = 0
    /// The meter's register when the session began; nil: no session, or no fresh reading yet.
    public var meterStart: WattHours? = nil
    public var active = false
    /// The last fresh register reading, the time of the reading, and the first reading that showed that
    /// value (the register watch: a meter whose register is refreshed more slowly than it is polled
    /// shows the same value on many fresh readings, then its rise over all that time at once).
    public var lastRegister: WattHours? = nil
    public var lastRegisterAt: Instant = .never
    public var registerSince: Instant = .never
    public var overSince: Instant? = nil
    /// The deviation as last judged, (meter − charger) / charger; nan while not judged.
    public var deviation: Double = .nan
    /// The register misbehaved during this session: its deviation is not judged.
    public var anomaly = false
    /// When the deviation was last judged.
    public var judgedAt: Instant = .never
    /// The charger's own figure is incomplete: a module on the gun went silent while K1/K2 were closed
    /// (its current is not known), so the session is not judged either.
    public var incomplete = false
    /// The meter's export register when the session began (V2G: the meter counts the two directions
    /// apart; the charger's figure is the net).
    public var exportStart: WattHours = .zero
    public init() {}
}

/// The metering stage, after the module setpoints: integrates, judges, watches the register. No
/// allocation. `current`: each gun's modules' readings summed (signed); `blind`: a module on the gun not
/// heard of within its timeout (both from `moduleSetpoints`' pass over the modules).
@_noAllocation @_noLocks
func checkMetering(_ s: inout StationState, _ inputs: inout StationInputs, _ spec: inout StationSpec, dt: TimeSpan, now: Instant,
                   current: inout GunArray<Double>, blind: inout GunArray<Bool>) {
    for g in 0..<spec.gunCount {
        let seenAt = inputs.guns[g].meterSeenAt
        let register = inputs.guns[g].meterEnergy
        let phase = s.sessions[g].phase
        let fresh = seenAt != .never && now - seenAt <= spec.meterCommTimeout
        // The register watch, on every fresh reading.
        if fresh, seenAt != s.metering[g].lastRegisterAt {
            if let last = s.metering[g].lastRegister {
                let step = register.value - last.value
                let elapsed = max((seenAt - s.metering[g].registerSince).seconds, spec.period.seconds)
                // What the gun could have delivered since the value was first seen, with half again and
                // `MeteringSpec.registerLag` for a value read some time after the meter refreshed it.
                let possible = spec.guns[g].ratedPower.value * (elapsed * 1.5 + MeteringSpec.registerLag.seconds) / 3600
                    + 2 * spec.metering.resolution.value
                if step < -1.5 * spec.metering.resolution.value || step > possible {
                    s.raise(.meterRegister, gun: g, value: register.value / 1000, limit: last.value / 1000, now: now)
                    s.metering[g].anomaly = true
                    s.metering[g].overSince = nil
                }
            }
            if s.metering[g].lastRegister != register { s.metering[g].registerSince = seenAt }
            s.metering[g].lastRegister = register
            s.metering[g].lastRegisterAt = seenAt
        }
        // The session's window: from the lock to its end.
        let inSession = phase != .unplugged && phase != .finished && phase != .faulted && phase != .connecting && phase != .connected
        if inSession && !s.metering[g].active {
            s.metering[g] = GunMetering()
            s.metering[g].active = true
            s.metering[g].lastRegister = fresh ? register : nil
            s.metering[g].lastRegisterAt = fresh ? seenAt : .never
            s.metering[g].registerSince = fresh ? seenAt : .never
            s.metering[g].meterStart = fresh ? register : nil
            s.metering[g].exportStart = inputs.guns[g].meterExportEnergy
        }
        if s.metering[g].active {
            if s.metering[g].meterStart == nil && fresh {
                s.metering[g].meterStart = register; s.metering[g].exportStart = inputs.guns[g].meterExportEnergy
            }
            if inputs.guns[g].k1Closed && inputs.guns[g].k2Closed {
                s.metering[g].chargerEnergy += inputs.guns[g].chargerSideVoltage.value * current[g] * dt.seconds / 3600
                if blind[g] { s.metering[g].incomplete = true; s.metering[g].overSince = nil }
            }
            // Judged on fresh readings once enough energy has flowed, at most every `judgeEvery` (the
            // persistence is a minute: a finer look buys nothing), and at the window's end.
            let e = s.metering[g].chargerEnergy
            if fresh, !s.metering[g].anomaly, !s.metering[g].incomplete, let start = s.metering[g].meterStart,
                abs(e) >= spec.metering.minEnergy.value,
               !inSession || s.metering[g].judgedAt == .never || now - s.metering[g].judgedAt >= MeteringSpec.judgeEvery {
                s.metering[g].judgedAt = now
                let net = (register.value - start.value) - (inputs.guns[g].meterExportEnergy.value - s.metering[g].exportStart.value)
                let d = (net - e) / abs(e)
                s.metering[g].deviation = d
                let budget = spec.metering.budget(for: WattHours(e))
                if abs(d) > budget {
                    let since = s.metering[g].overSince ?? now
                    s.metering[g].overSince = since
                    if now - since >= spec.metering.persist {
                        s.raise(.meteringDeviation, gun: g, value: d * 100, limit: (d < 0 ? -budget : budget) * 100, now: now)
                    }
                } else { s.metering[g].overSince = nil }
            }
            if !inSession { s.metering[g].active = false }
        }
    }
}
