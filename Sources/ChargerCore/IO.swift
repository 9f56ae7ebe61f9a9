// One cycle's inputs and outputs: fixed-size values, one snapshot each, one direction of flow
// (docs/architecture.md "Design rules": one direction per cycle).

/// IMD self-test progress as the device reports it.
public enum SelfTestState: UInt8, Sendable { case idle, running, passed, failed }

/// Lamp shown to the user (status lamps on GPIO).
public enum Lamp: UInt8, Sendable { case off, available, busy, charging, fault }

/// Inputs of one gun, sampled once per cycle.
public struct GunInputs: Sendable {
    /// Detection point 1 voltage (CC1).
    public var cc1: Volts = Standard.cc1Unplugged
    public var lockConfirmed = false
    /// Auxiliary (mirror) contacts of the DC contactors: true = closed.
    public var k1Closed = false
    public var k2Closed = false
    public var k3k4Closed = false
    /// The 12 V auxiliary supply at the gun side of K3/K4; NaN where the board does not measure it (the
    /// rule then has nothing to judge).
    public var auxSupply: Volts = Volts(.nan)
    /// How old the oldest of this gun's analog values is (CC1, the K1/K2 voltages, the gun's temperature,
    /// the auxiliary supply), where a front end samples them apart from the loop (a real board's IIO
    /// sampler); nil where they are the cycle's own (the simulated plant, the bench channel).
    public var analogAge: TimeSpan? = nil
    /// Voltage on the charger side of K1/K2 (module bus of this gun).
    public var chargerSideVoltage: Volts = .zero
    /// Voltage on the vehicle side of K1/K2 (the cable, the car's battery once its contactors close).
    public var vehicleSideVoltage: Volts = .zero
    /// DC meter at the gun.
    public var meterVoltage: Volts = .zero
    public var meterCurrent: Amps = .zero
    /// Energy into the car (import from the grid) and out of it (export, V2G): the meter's two registers.
    public var meterEnergy: WattHours = .zero
    public var meterExportEnergy: WattHours = .zero
    public var meterSeenAt: Instant = .never
    /// Hottest connector/cable temperature sensor.
    public var gunTemperature = Celsius(25)
    /// IMD: the lower of DC+/DC− to earth, its alarm relay, self-test state, when last read.
    public var insulation = Ohms(.infinity)
    public var imdAlarm = false
    public var imdSelfTest: SelfTestState = .idle
    public var imdSeenAt: Instant = .never
    /// Residual current device or 6 mA DC fault detector trip input.
    public var groundFaultTrip = false
    /// The detector's self-test progress (devices that support one).
    public var groundDetectorTest: SelfTestState = .idle
    /// Protective earth continuity monitor: true = continuity good.
    public var peContinuity = true
    /// Latest car messages on this gun's link.
    public var vehicle = VehicleMessages()
    /// Orderly-charging setpoint for this gun from the grid interface, if any.
    public var gridSetpoint: Watts? = nil
    /// A grid limit in amps of output current (an OCPP profile in A), if any.
    public var gridCurrentLimit: Amps? = nil
    /// Which grid source set `gridSetpoint` or `gridCurrentLimit` (carried to the console and the EMS read-back; the step
    /// treats every grid source alike).
    public var gridSource: GridSource = .none
    /// A session may start on this gun (an idTag or a remote start was accepted; true where the station
    /// charges without authorization). Without it a plugged car waits in `connected`, unlocked.
    public var authorized = true
    /// Plug and charge by the car's VIN: what the grid interface says of this car's VIN (`notUsed` where the
    /// session is authorized otherwise).
    public var vinCheck: VINCheck = .notUsed
    /// Operator commands (console, HIL): explicit fault reset; stop the session.
    public var resetRequest = false
    public var stopRequest = false
    /// A technician's temporary power cap on this gun (console `cap`), if any.
    public var operatorCap: Watts? = nil
    /// The gun is out of service (console `service GUN off`): no new session starts; a running one stops.
    public var outOfService = false
    /// An actuator test the technician holds (console `test ...`); honoured only while the gun is idle.
    public var actuatorTest: ActuatorTest = .none
    public init() {}
}

/// Plug and charge by VIN (docs/grid.md "Authorization by VIN"): the grid interface's word on the VIN the car
/// sent in BRM. The core holds recognition for it (CRM 0x00) at most `Standard.vinAnswerWait`; no answer in
/// that time counts as a refusal (with the site's fallback when the word was `pendingFallBack`). A refusal
/// stops before any energy (stop reason `not-authorized`).
public enum VINCheck: UInt8, Sendable, BitwiseCopyable {
    /// The session is authorized otherwise (an idTag, a remote start, free vend): BRM is recognised at once.
    case notUsed
    /// The VIN decides and the answer has not come: recognition waits.
    case pending
    case accepted
    /// Refused, unknown or no VIN: the session stops before energy and ends (`finished`).
    case refused
    /// Refused, and the site falls back to another method: the session stops before energy and the gun
    /// waits in `connected`, unlocked, for an idTag or a remote start (a new handshake follows).
    case refusedFallBack
    /// As `pending`, on a site that falls back to another method: no answer within the bound is
    /// `refusedFallBack`, not `refused`.
    case pendingFallBack

    /// The answer has not come: recognition waits.
    @inlinable public var isPending: Bool { self == .pending || self == .pendingFallBack }
}

/// Actuator tests a technician runs on an idle gun (console `test contactor K1`, `test lock`, `test lamp`,
/// `imd selftest`). The step honours one only while `actuatorTestRefusal` is nil; otherwise it is ignored.
public enum ActuatorTest: UInt8, Sendable, CaseIterable {
    case none, contactorsK1K2, contactorsK3K4, lock, lamp, imdSelfTest
    public var name: String {
        switch self {
        case .none: "none"
        case .contactorsK1K2: "contactor K1/K2"
        case .contactorsK3K4: "contactor K3/K4"
        case .lock: "lock"
        case .lamp: "lamp"
        case .imdSelfTest: "imd selftest"
        }
    }
}

/// Why an actuator test may not run on a gun now (the console words it; the step obeys it).
public enum ActuatorTestRefusal: UInt8, Sendable {
    /// A latched fault at or above `refuse` holds the gun.
    case faultLatched
    /// The gun's session is not idle (not in `unplugged`).
    case notIdle
    /// CC1 is not at the unplugged level: a plug is in, or on its way.
    case plugged
    /// A side of K1/K2 is at or above 60 V (standards.md "Connection confirm": unlock only below 60 V).
    case outputLive
}

extension FaultSet {
    /// A gun's own contactor faults: E14 (K1/K2 welded) and E15 (K1/K2 did not close).
    @inlinable public static var contactor: FaultSet {
        FaultSet(bits: 1 << UInt64(FaultCode.contactorWelded.rawValue) | 1 << UInt64(FaultCode.contactorFailedToClose.rawValue))
    }
}

/// The one exception to "a latched fault holds the outputs safe" (issue 36, ask 5): a technician's K1/K2
/// test on a gun whose only blocking faults (its own and the station's) are its contactor faults, so
/// that a repaired or replaced contactor is checked, its close and open times measured, before the
/// reset. Everything else an actuator test asks still holds (`actuatorTestRefusal`: no plug on CC1, both
/// sides of K1/K2 below 60 V), and the modules stay off: the arbiter cuts them as for any latched fault,
/// so the contacts close on a dead output. The contactor watchdog keeps running: contacts that do not
/// close, or do not open after the test, latch their fault again.
public func contactorRepairTest(_ test: ActuatorTest, latched: FaultSet) -> Bool {
    guard test == .contactorsK1K2, !(latched & .contactor).isEmpty else { return false }
    guard let other = latched.subtracting(.contactor).strongestReaction else { return true }
    return other.rawValue < Reaction.refuse.rawValue
}

/// Nil when actuator test `test` may run: idle (unplugged phase, no blocking fault; for the K1/K2 test
/// under the gun's own contactor faults, `contactorRepairTest`, also the faulted phase), no plug seen on
/// CC1, and both sides of K1/K2 below 60 V; otherwise the first reason it may not.
public func actuatorTestRefusal(_ test: ActuatorTest, phase: SessionPhase, latched: FaultSet, input: borrowing GunInputs) -> ActuatorTestRefusal? {
    let repair = contactorRepairTest(test, latched: latched)
    var blocked = false
    if let r = latched.strongestReaction { blocked = r.rawValue >= Reaction.refuse.rawValue }
    if blocked && !repair { return .faultLatched }
    if phase != .unplugged && !(repair && phase == .faulted) { return .notIdle }
    if !cc1Is(input.cc1, Standard.cc1Unplugged) { return .plugged }
    if input.vehicleSideVoltage >= Standard.unlockMaxVoltage { return .outputLive }
    if input.chargerSideVoltage >= Standard.unlockMaxVoltage { return .outputLive }
    return nil
}

/// Measurements of one module, as polled.
public struct ModuleInputs: Sendable {
    public var outputVoltage: Volts = .zero
    public var outputCurrent: Amps = .zero
    public var temperature = Celsius(25)
    public var faulted = false
    public var seenAt: Instant = .never
    public init() {}
}

/// Everything the step sees in one cycle. Time is an input: the step never reads a clock.
public struct StationInputs: Sendable {
    public var now: Instant = .zero
    public var guns = GunArray<GunInputs>(repeating: GunInputs())
    public var modules = ModuleArray<ModuleInputs>(repeating: ModuleInputs())
    public var emergencyStop = false
    public var doorOpen = false
    public var mainsPresent = true
    /// The runtime's cyclic executive missed more deadlines in a row than the board allows (board file
    /// [runtime] miss_limit): the outputs were already forced safe; the step latches E29.
    public var loopOverrun = false
    /// A read or write of the board's GPIO lines failed since the last cycle (the front end forced its
    /// outputs safe); the step latches E32.
    public var boardIOError = false
    /// Station-wide orderly-charging setpoint from the grid interface, if any.
    public var stationSetpoint: Watts? = nil
    public init() {}
}

/// Which source sets the power limit in force on a gun.
public enum LimitSource: UInt8, Sendable, CaseIterable {
    case none, gunRating, connector, thermal, modules, station, gridSetpoint, vehicle, cableCheck, safety, operatorCap
    public var name: String {
        switch self {
        case .none: "none"
        case .gunRating: "gun-rating"
        case .connector: "connector"
        case .thermal: "thermal"
        case .modules: "modules"
        case .station: "station"
        case .gridSetpoint: "grid-setpoint"
        case .vehicle: "vehicle"
        case .cableCheck: "cable-check"
        case .safety: "safety"
        case .operatorCap: "operator-cap"
        }
    }
}

/// Outputs of one gun.
public struct GunOutputs: Sendable {
    public var closeK1K2 = false
    public var closeK3K4 = false
    public var lock = false
    /// Output discharge (bleeder) circuit.
    public var discharge = false
    public var lamp: Lamp = .available
    public var imdEnable = false
    public var imdSelfTest = false
    /// Ask the ground-fault detector to test itself (it trips its own relay while it does).
    public var groundDetectorTest = false
    public var tx = ChargerMessages()
    // What the step decided, for status, logs and invariants.
    public var voltageSetpoint: Volts = .zero
    public var currentSetpoint: Amps = .zero
    /// Limit in force in current and in power at the present voltage, and the source that binds.
    public var currentLimit: Amps = .zero
    public var powerLimit: Watts = .zero
    public var binding: LimitSource = .none
    /// V2G: `currentSetpoint` is signed (negative: the car is discharged). The discharge limit in force
    /// (a magnitude, zero where the gun may not discharge) and the source that binds it.
    public var dischargeLimit: Amps = .zero
    public var dischargeBinding: LimitSource = .none
    /// What the gun may discharge now without the grid's dispatch (the car's offer, ratings, modules),
    /// a magnitude: what an EMS can ask of it.
    public var dischargeAvailable: Amps = .zero
    public init() {}
}

/// Command to one module.
public struct ModuleOutputs: Sendable {
    public var enabled = false
    /// Gun the matrix relays connect the module to, -1 for none.
    public var gun: Int8 = -1
    public var voltage: Volts = .zero
    /// Signed: negative is reverse (a bidirectional module discharging the car).
    public var current: Amps = .zero
    public init() {}
}

public struct StationOutputs: Sendable {
    public var guns = GunArray<GunOutputs>(repeating: GunOutputs())
    public var modules = ModuleArray<ModuleOutputs>(repeating: ModuleOutputs())
    public init() {}

    /// What both shutdown classes do to a gun's outputs: no current asked or allowed, its modules off,
    /// no IMD self-test. When K1/K2 open is the caller's decision.
    @_noAllocation @_noLocks
    public mutating func cut(gun g: Int, moduleCount: Int) {
        guns[g].currentSetpoint = .zero
        guns[g].currentLimit = .zero
        guns[g].powerLimit = .zero
        guns[g].binding = .safety
        guns[g].dischargeLimit = .zero
        guns[g].dischargeBinding = .safety
        guns[g].dischargeAvailable = .zero
        guns[g].imdSelfTest = false
        for m in 0..<moduleCount where modules[m].gun == Int8(g) {
            modules[m].enabled = false
            modules[m].current = .zero
            modules[m].voltage = .zero
        }
    }

    /// Every output in its safe state, without the step (the runtime's last word when the loop stops
    /// or overruns): each gun cut, K1/K2 and K3/K4 open, the discharge circuit on, the fault lamp, and
    /// every module off. The lock and the matrix relays stay as they are: the lock is released only by
    /// the session once the output is below 60 V, and a relay moved under current could arc.
    @_noAllocation @_noLocks
    public mutating func makeSafe(gunCount: Int, moduleCount: Int) {
        for g in 0..<gunCount {
            cut(gun: g, moduleCount: moduleCount)
            guns[g].closeK1K2 = false
            guns[g].closeK3K4 = false
            guns[g].discharge = true
            guns[g].voltageSetpoint = .zero
            guns[g].lamp = .fault
        }
        for m in 0..<moduleCount { modules[m].enabled = false; modules[m].current = .zero; modules[m].voltage = .zero }
    }
}

// Values that leave the control loop by copy through the runtime's lock-free queues: plain bits.
extension Instant: BitwiseCopyable {}
extension TimeSpan: BitwiseCopyable {}
extension Volts: BitwiseCopyable {}
extension Amps: BitwiseCopyable {}
extension Watts: BitwiseCopyable {}
extension Celsius: BitwiseCopyable {}
extension SessionPhase: BitwiseCopyable {}
extension LimitSource: BitwiseCopyable {}
extension FaultCode: BitwiseCopyable {}
extension Reaction: BitwiseCopyable {}
extension FaultSet: BitwiseCopyable {}
extension FaultRecord: BitwiseCopyable {}
extension ActuatorTest: BitwiseCopyable {}
extension WattHours: BitwiseCopyable {}
extension Ohms: BitwiseCopyable {}
extension SelfTestState: BitwiseCopyable {}
extension Lamp: BitwiseCopyable {}
extension StopReason: BitwiseCopyable {}
extension ActuatorTestRefusal: BitwiseCopyable {}

/// Where a grid limit came from (standards.md "Orderly charging and grid setpoints"): the composite of
/// the grid interfaces names its binding source with one of these.
public enum GridSource: UInt8, Sendable, CaseIterable, BitwiseCopyable {
    case none, manual, ems, emsFailsafe, touPeak, touFlat, touValley, ocppChargePointMax, ocppTxDefault, ocppTx
    public var name: String {
        switch self {
        case .none: "none"
        case .manual: "manual"
        case .ems: "ems"
        case .emsFailsafe: "ems-failsafe"
        case .touPeak: "tou-peak"
        case .touFlat: "tou-flat"
        case .touValley: "tou-valley"
        case .ocppChargePointMax: "ocpp-charge-point-max"
        case .ocppTxDefault: "ocpp-tx-default"
        case .ocppTx: "ocpp-tx"
        }
    }
}

/// What the grid interfaces feed the step, computed once off the loop (the composite limit of the
/// EMS, OCPP and the time-of-use schedule) and read by the loop whole, without a lock.
public struct GridFeed: Sendable, BitwiseCopyable {
    /// The station's cap and the source that set it (nil: none).
    public var station: Watts? = nil
    public var stationSource: GridSource = .none
    public var guns = GunArray<Watts?>(repeating: nil)
    /// Per gun: a limit in amps of output current (OCPP profiles in A), nil: none.
    public var gunCurrents = GunArray<Amps?>(repeating: nil)
    public var gunSources = GunArray<GridSource>(repeating: .none)
    /// Per gun: a session may start (see `GunInputs.authorized`).
    public var authorized = GunArray<Bool>(repeating: true)
    /// Per gun: the word on the car's VIN (see `GunInputs.vinCheck`).
    public var vinChecks = GunArray<VINCheck>(repeating: .notUsed)
    /// Per gun: bumped by one for each remote stop; the loop turns a change into a stop request.
    public var stopCount = GunArray<UInt32>(repeating: 0)
    /// Per gun: made unavailable by the central system (OCPP ChangeAvailability Inoperative); the loop
    /// takes the gun out of service as the console's `service GUN off` does (either one suffices).
    public var unavailable = GunArray<Bool>(repeating: false)
    public init() {}
}
