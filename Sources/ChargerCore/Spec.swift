// The station as the control step sees it: fixed-size, built once from the board file, never
// allocated or reference-counted in the cycle (TigerBeetle: a limit on everything).

public enum Capacity {
    /// Most guns one controller drives (a 12-gun station is the benchmark's largest).
    public static let guns = 12
    /// Most rectifier modules in one station's pool.
    public static let modules = 64
    /// Fault records kept in the core's ring; the runtime drains it into the durable log.
    public static let faultLog = 128
}

public typealias GunArray<T> = InlineArray<12, T>
public typealias ModuleArray<T> = InlineArray<64, T>

/// Insulation thresholds to apply (standards.md "Insulation check before charging").
public enum InsulationRule: UInt8, Sendable {
    /// GB/T 18487.1: warning between 100 and 500 Ω/V, fault at or below 100 Ω/V.
    case gbt
    /// IEC 61851-23:2023: no warning level, fault at or below 100 Ω/V.
    case iec
}

public enum Cooling: UInt8, Sendable { case natural, liquid }

/// One gun (connector + cable + its DC output circuit). Every figure comes from the board file.
public struct GunSpec: Sendable, Equatable {
    /// Rated output power of the gun.
    public var ratedPower: Watts
    /// Output voltage range of the gun (charger rated voltage, used for Table 103 and CML).
    public var maxVoltage: Volts
    public var minVoltage: Volts
    /// Rated current of the gun's output circuit.
    public var maxCurrent: Amps
    /// Rating of connector and cable (GB/T 20234.x), board file.
    public var connectorCurrent: Amps
    public var cooling: Cooling
    /// Thermal derating curve of the connector (standards.md "Connector thermal derating": from the
    /// board file): full current at or below `deratingStart`, linear to zero at `deratingEnd`.
    public var deratingStart: Celsius
    public var deratingEnd: Celsius
    /// Above this the gun trips (over-temperature fault).
    public var tripTemperature: Celsius
    /// Current ramp when following demand; validated ≥ Standard.minimumDemandRamp.
    public var rampUp: AmpsPerSecond
    /// Current ramp on a normal stop; validated ≥ Standard.minimumStopRamp.
    public var stopRamp: AmpsPerSecond
    /// Over-current trip: measured current above max(demand-limited setpoint, rating) by this factor.
    public var overCurrentFactor: Double
    public var insulationRule: InsulationRule
    /// Lock feedback must confirm within this time (board file; vendor lock motors take 0.3–1 s).
    public var lockTimeout: TimeSpan
    /// The RCD / 6 mA DC fault detector can self-test (board file): tested before each session.
    public var groundDetectorSelfTest: Bool
    /// How long the detector's relay may stay tripped once its test is no longer commanded (board file
    /// `ground_detector_release`): the test passes on the relay's trip, and the device releases it when
    /// its own test ends (docs/standards.md "Residual current / earth").
    public var groundDetectorRelease: TimeSpan = .ms(300)

    public init(ratedPower: Watts, maxVoltage: Volts, minVoltage: Volts, maxCurrent: Amps, connectorCurrent: Amps,
                cooling: Cooling, deratingStart: Celsius, deratingEnd: Celsius, tripTemperature: Celsius,
                rampUp: AmpsPerSecond, stopRamp: AmpsPerSecond, overCurrentFactor: Double = 1.1,
                insulationRule: InsulationRule = .gbt, lockTimeout: TimeSpan = .s(2), groundDetectorSelfTest: Bool = false) {
        self.ratedPower = ratedPower; self.maxVoltage = maxVoltage; self.minVoltage = minVoltage
        self.maxCurrent = maxCurrent; self.connectorCurrent = connectorCurrent; self.cooling = cooling
        self.deratingStart = deratingStart; self.deratingEnd = deratingEnd; self.tripTemperature = tripTemperature
        self.rampUp = rampUp; self.stopRamp = stopRamp; self.overCurrentFactor = overCurrentFactor
        self.insulationRule = insulationRule; self.lockTimeout = lockTimeout
        self.groundDetectorSelfTest = groundDetectorSelfTest
    }

    public static let placeholder = GunSpec(ratedPower: .zero, maxVoltage: .zero, minVoltage: .zero, maxCurrent: .zero,
        connectorCurrent: .zero, cooling: .natural, deratingStart: Celsius(70), deratingEnd: Celsius(90),
        tripTemperature: Celsius(95), rampUp: AmpsPerSecond(20), stopRamp: AmpsPerSecond(100))
}

/// One rectifier power module (standards.md "Rectifier modules": 20/30/40 kW, about 150–1000 V, 100–133 A).
public struct ModuleSpec: Sendable, Equatable {
    public var ratedPower: Watts
    public var maxVoltage: Volts
    public var minVoltage: Volts
    public var maxCurrent: Amps
    /// Bit g set: the module can be switched onto gun g (module-to-gun matrix from the board file).
    public var gunMask: UInt16
    /// A bidirectional module's reverse (discharge: car to grid) rating, board file `reverse_power` and
    /// `reverse_current`; zero for a rectifier that only charges (docs/standards.md "V2G").
    public var reversePower: Watts
    public var reverseMaxCurrent: Amps
    public init(ratedPower: Watts, maxVoltage: Volts, minVoltage: Volts, maxCurrent: Amps, gunMask: UInt16,
                reversePower: Watts = .zero, reverseMaxCurrent: Amps = .zero) {
        self.ratedPower = ratedPower; self.maxVoltage = maxVoltage; self.minVoltage = minVoltage
        self.maxCurrent = maxCurrent; self.gunMask = gunMask
        self.reversePower = reversePower; self.reverseMaxCurrent = reverseMaxCurrent
    }
    /// The module can discharge a car.
    @inlinable public var bidirectional: Bool { reverseMaxCurrent > .zero && reversePower > .zero }
    public static let placeholder = ModuleSpec(ratedPower: .zero, maxVoltage: .zero, minVoltage: .zero, maxCurrent: .zero, gunMask: 0)

    /// Current the module can deliver at `v`: constant current, then constant power.
    @inlinable public func currentCapability(at v: Volts) -> Amps {
        let vv = v.value < minVoltage.value ? minVoltage : v
        let byPower = ratedPower / vv
        return byPower < maxCurrent ? byPower : maxCurrent
    }

    /// Current the module can take from the car at `v` in reverse (a magnitude; zero for a rectifier that
    /// only charges): constant current, then constant power, like the forward rating.
    @inlinable public func reverseCapability(at v: Volts) -> Amps {
        guard bidirectional else { return .zero }
        let vv = v.value < minVoltage.value ? minVoltage : v
        let byPower = reversePower / vv
        return byPower < reverseMaxCurrent ? byPower : reverseMaxCurrent
    }
}

/// The whole station, as data.
public struct StationSpec: Sendable {
    public var gunCount: Int
    public var guns: GunArray<GunSpec>
    public var moduleCount: Int
    public var modules: ModuleArray<ModuleSpec>
    /// Grid connection limit of the whole station (board file).
    public var gridLimit: Watts
    /// Control period (board file; 1 ms default).
    public var period: TimeSpan
    /// Contactor must report closed within this time (board file, from the contactor datasheet).
    public var contactorCloseTimeout: TimeSpan
    /// Contactor must report open within this time, else it is welded (board file).
    public var contactorOpenTimeout: TimeSpan
    /// The contactor's own opening time, coil off to contacts apart (board file, from the datasheet; 30 ms
    /// when the board does not say). A shutdown that must escalate commands the open this long before its
    /// row's deadline, so that the contacts are apart by the deadline, not just the coil.
    public var contactorOpeningTime: TimeSpan = .ms(30)
    /// A module silent for this long is lost (board file; modules themselves switch off after 10–20 s,
    /// standards.md "Rectifier modules").
    public var moduleCommTimeout: TimeSpan
    /// How long a module that lost its controller may go on delivering its last command before it
    /// switches itself off (board file; standards.md "Rectifier modules": most switch off after 10–20 s).
    public var moduleSelfOffTime: TimeSpan
    /// How old a meter or module reading may be and still be taken for the current flowing now, when a
    /// stop decides to open K1/K2 or the supervisor judges a current against its command (board file;
    /// 100 ms when it does not say: the shortest row of standards.md "Fault reactions", so an older
    /// reading cannot show that row was met). Older but not yet silent, a reading neither confirms nor
    /// clears: it counts at its value or the last command, the larger.
    public var readingMaxAge: TimeSpan = .ms(100)
    /// How old a gun's analog values may be (`GunInputs.analogAge`) before E36 stops the gun (board file
    /// `analog_max_age`; 20 ms when it does not say, or three periods on a slower loop). A frozen CC1 is
    /// as blind as a broken one: docs/standards.md "Analog inputs that stop".
    public var analogMaxAge: TimeSpan = .ms(20)
    /// Meter and IMD silence limits (board file).
    public var meterCommTimeout: TimeSpan
    public var imdCommTimeout: TimeSpan
    /// How often module allocation is reconsidered (board file; moves need zero current anyway).
    public var allocationPeriod: TimeSpan
    /// A gun that needs power and has had no module for this long raises E24 (four allocation
    /// periods: a free module would have been handed over by then).
    public var noModulesGrace: TimeSpan { allocationPeriod * 4 }
    /// How long a command takes to show in the measurements: zero for the simulated board's direct
    /// drivers; on a field bus, one poll to deliver the command and one to read the result back (set
    /// by the runtime from the board's buses, `ModbusConfig.commandLatency`). The uncommanded-current
    /// check compares the current with the highest command of this long ago, not only the latest.
    public var commandLatency: TimeSpan = .zero
    /// The meter checked against the charger (board file `[metering]`).
    public var metering = MeteringSpec()

    public init(guns: [GunSpec], modules: [ModuleSpec], gridLimit: Watts, period: TimeSpan = .ms(1),
                contactorCloseTimeout: TimeSpan = .ms(200), contactorOpenTimeout: TimeSpan = .ms(200), contactorOpeningTime: TimeSpan = .ms(30),
                moduleCommTimeout: TimeSpan = .s(1), meterCommTimeout: TimeSpan = .s(2), imdCommTimeout: TimeSpan = .s(2),
                allocationPeriod: TimeSpan = .ms(500), moduleSelfOffTime: TimeSpan = .s(20), readingMaxAge: TimeSpan = .ms(100)) {
        precondition(guns.count >= 1 && guns.count <= Capacity.guns, "gun count out of range")
        precondition(modules.count >= 1 && modules.count <= Capacity.modules, "module count out of range")
        gunCount = guns.count
        self.guns = GunArray(repeating: .placeholder)
        for (i, g) in guns.enumerated() { self.guns[i] = g }
        moduleCount = modules.count
        self.modules = ModuleArray(repeating: .placeholder)
        for (i, m) in modules.enumerated() { self.modules[i] = m }
        self.gridLimit = gridLimit; self.period = period
        self.contactorCloseTimeout = contactorCloseTimeout; self.contactorOpenTimeout = contactorOpenTimeout
        self.contactorOpeningTime = contactorOpeningTime
        self.moduleCommTimeout = moduleCommTimeout; self.meterCommTimeout = meterCommTimeout
        self.imdCommTimeout = imdCommTimeout; self.allocationPeriod = allocationPeriod
        self.moduleSelfOffTime = moduleSelfOffTime
        self.readingMaxAge = readingMaxAge
    }
}
