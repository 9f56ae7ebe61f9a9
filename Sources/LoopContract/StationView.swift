// What the console (and anything else off the loop) sees of the station: one fixed-size value the loop
// writes into a triple buffer every `viewEvery` cycles, read whole and never torn on the other side.
import ChargerCore

/// One gun as the loop last saw it.
public struct GunSnapshot: Sendable, BitwiseCopyable {
    public var status: GunStatus
    public var k1Closed = false, k2Closed = false, k3k4Closed = false, lockConfirmed = false
    /// K1/K2's last measured close time (the command to both aux contacts closed) and open time (the
    /// command to both open), to the loop's cycle, and the controller time each was measured at (`.never`:
    /// not yet). A technician's `test contactor K1` reads them.
    public var contactorCloseTime: TimeSpan = .zero, contactorOpenTime: TimeSpan = .zero
    public var contactorClosedAt: Instant = .never, contactorOpenedAt: Instant = .never
    public var cc1: Volts = .zero
    public var chargerSideVoltage: Volts = .zero, vehicleSideVoltage: Volts = .zero
    public var meterEnergy: WattHours = .zero
    /// V2G: the meter's export register; the car's discharge offer in force (BDP, fresh), its minimum
    /// state of charge, the battery's energy (BCP), and the discharge limit in force with its source.
    public var meterExportEnergy: WattHours = .zero
    public var carOffersDischarge = false
    public var carMinSoc: Double = 0
    public var carBatteryEnergy: WattHours = .zero
    public var dischargeLimit: Amps = .zero
    public var dischargeBinding: LimitSource = .none
    public var dischargeAvailable: Amps = .zero
    public var meterSeenAt: Instant = .never
    public var insulation = Ohms(.infinity)
    public var imdAlarm = false
    public var imdSelfTest: SelfTestState = .idle
    public var imdSeenAt: Instant = .never
    public var groundFaultTrip = false
    public var peContinuity = true
    public var lamp: Lamp = .off
    public var stopReason: StopReason = .none
    /// The limit sources (each as the step computed it this cycle, nil where it does not apply).
    public var ratedPower: Watts = .zero
    public var maxCurrent: Amps = .zero
    public var connectorCurrent: Amps = .zero
    public var thermalCurrent: Amps = .zero
    public var gridSetpoint: Watts? = nil
    public var gridCurrentLimit: Amps? = nil
    public var gridSource: GridSource = .none
    public var authorized = true
    /// Plug and charge: the grid's word on the VIN in force, and the VIN the car sent in BRM during this
    /// recognition (`vinSent` false: no BRM in this recognition yet; all zero bytes: the short BRM, no VIN).
    public var vinCheck: VINCheck = .notUsed
    public var vinSent = false
    public var vin = InlineArray<17, UInt8>(repeating: 0)
    public var operatorCap: Watts? = nil
    public var carCurrentDemand: Amps? = nil
    public var carVoltageDemand: Volts? = nil
    public var currentLimit: Amps = .zero
    public var currentSetpoint: Amps = .zero
    /// The car, from the handshake (nil before it said).
    public var carMaxVoltage: Volts? = nil
    public var carMaxChargeVoltage: Volts? = nil
    public var carMaxChargeCurrent: Amps? = nil
    public var carBatteryVoltage: Volts? = nil
    public var carMaxCellTemperature: Celsius? = nil
    public var outOfService = false
    public var actuatorTest: ActuatorTest = .none
    /// Why an actuator test would be refused now, nil when it would run (the step decides again when it runs).
    public var testRefusal: ActuatorTestRefusal? = nil
    /// Why the K1/K2 test may not run now; nil also under the gun's own contactor faults (E14, E15) with
    /// the plug out, to check a repair before the reset (`contactorRepairTest`).
    public var contactorTestRefusal: ActuatorTestRefusal? = nil
    public init(status: GunStatus) { self.status = status }
}

/// One rectifier module.
public struct ModuleSnapshot: Sendable, BitwiseCopyable {
    public var gun: Int8 = -1
    public var enabled = false
    public var voltageSetpoint: Volts = .zero, currentSetpoint: Amps = .zero
    public var voltage: Volts = .zero, current: Amps = .zero
    public var temperature = Celsius(25)
    public var faulted = false
    public var seenAt: Instant = .never
    /// Silent past the board's module timeout (the core's view: since when), and latched E23 for it.
    public var silentSince: Instant? = nil
    public var commLost = false
    /// The module's latched faults (E22, E23: derate; until a reset).
    public var latched = FaultSet()
    public init() {}
}

public struct StationView: Sendable, BitwiseCopyable {
    public var at: Instant = .zero
    /// Cycles the loop has run (0: no view yet).
    public var cycles: UInt64 = 0
    public var gunCount = 0
    public var moduleCount = 0
    public var guns = GunArray<GunSnapshot>(
        repeating: GunSnapshot(
            status: GunStatus(
                gun: 0, at: .zero, phase: .unplugged, voltage: .zero, current: .zero, powerLimit: .zero, binding: .none, soc: .nan,
                gunTemperature: Celsius(25), faults: FaultSet())))
    public var modules = ModuleArray<ModuleSnapshot>(repeating: ModuleSnapshot())
    public var gridLimit: Watts = .zero
    public var stationSetpoint: Watts? = nil
    public var emergencyStop = false, doorOpen = false, mainsPresent = true
    public var stationFaults = FaultSet()
    public init() {}
}
