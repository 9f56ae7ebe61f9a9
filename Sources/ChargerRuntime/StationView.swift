// What the console (and anything else off the loop) sees of the station: one fixed-size value the loop
// writes into a triple buffer every `viewEvery` cycles, read whole and never torn on the other side.
import ChargerCore
import RealTime

/// One gun as the loop last saw it.
public struct GunSnapshot: Sendable, BitwiseCopyable {
    public var status: GunStatus
    public var k1Closed = false, k2Closed = false, k3k4Closed = false, lockConfirmed = false
    public var cc1: Volts = .zero
    public var chargerSideVoltage: Volts = .zero, vehicleSideVoltage: Volts = .zero
    public var meterEnergy: WattHours = .zero
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
    public init() {}
}

public struct StationView: Sendable, BitwiseCopyable {
    public var at: Instant = .zero
    /// Cycles the loop has run (0: no view yet).
    public var cycles: UInt64 = 0
    public var gunCount = 0
    public var moduleCount = 0
    public var guns = GunArray<GunSnapshot>(repeating: GunSnapshot(status: GunStatus(gun: 0, at: .zero, phase: .unplugged, voltage: .zero, current: .zero, powerLimit: .zero, binding: .none, soc: .nan, gunTemperature: Celsius(25), faults: FaultSet())))
    public var modules = ModuleArray<ModuleSnapshot>(repeating: ModuleSnapshot())
    public var gridLimit: Watts = .zero
    public var stationSetpoint: Watts? = nil
    public var emergencyStop = false, doorOpen = false, mainsPresent = true
    public var stationFaults = FaultSet()
    public init() {}
}

extension StationView {
    /// Fills the view from one cycle's frame (the loop's thread; no allocation).
    mutating func fill(_ f: borrowing ControlFrame, index: UInt64, status: (Int) -> GunStatus) {
        at = f.inputs.now
        cycles = index + 1
        gunCount = f.spec.gunCount
        moduleCount = f.spec.moduleCount
        gridLimit = f.spec.gridLimit
        stationSetpoint = f.inputs.stationSetpoint
        emergencyStop = f.inputs.emergencyStop
        doorOpen = f.inputs.doorOpen
        mainsPresent = f.inputs.mainsPresent
        stationFaults = f.state.station.latched
        for g in 0..<gunCount {
            let i = f.inputs.guns[g]
            let o = f.outputs.guns[g]
            let gs = f.spec.guns[g]
            var v = GunSnapshot(status: status(g))
            v.k1Closed = i.k1Closed; v.k2Closed = i.k2Closed; v.k3k4Closed = i.k3k4Closed; v.lockConfirmed = i.lockConfirmed
            v.cc1 = i.cc1
            v.chargerSideVoltage = i.chargerSideVoltage; v.vehicleSideVoltage = i.vehicleSideVoltage
            v.meterEnergy = i.meterEnergy; v.meterSeenAt = i.meterSeenAt
            v.insulation = i.insulation; v.imdAlarm = i.imdAlarm; v.imdSelfTest = i.imdSelfTest; v.imdSeenAt = i.imdSeenAt
            v.groundFaultTrip = i.groundFaultTrip; v.peContinuity = i.peContinuity
            v.lamp = o.lamp
            v.stopReason = f.state.sessions[g].stopReason
            v.ratedPower = gs.ratedPower; v.maxCurrent = gs.maxCurrent; v.connectorCurrent = gs.connectorCurrent
            v.thermalCurrent = gs.connectorCurrent * thermalFactor(i.gunTemperature, gs)
            v.gridSetpoint = i.gridSetpoint; v.operatorCap = i.operatorCap
            v.gridCurrentLimit = i.gridCurrentLimit; v.gridSource = i.gridSource; v.authorized = i.authorized
            v.carCurrentDemand = i.vehicle.bcl?.message.currentDemand
            v.carVoltageDemand = i.vehicle.bcl?.message.voltageDemand
            v.currentLimit = o.currentLimit; v.currentSetpoint = o.currentSetpoint
            v.carMaxVoltage = i.vehicle.bhm?.message.maxAllowedVoltage
            v.carMaxChargeVoltage = i.vehicle.bcp?.message.maxChargeVoltage
            v.carMaxChargeCurrent = i.vehicle.bcp?.message.maxChargeCurrent
            v.carBatteryVoltage = i.vehicle.bcp?.message.batteryVoltage
            v.carMaxCellTemperature = i.vehicle.bsm?.message.maxCellTemperature
            v.outOfService = i.outOfService
            v.actuatorTest = i.actuatorTest
            let blocked = (f.state.safety[g].latched | f.state.station.latched).strongestReaction.map { $0 >= .refuse } ?? false
            v.testRefusal = actuatorTestRefusal(phase: f.state.sessions[g].phase, blocked: blocked, input: i)
            guns[g] = v
        }
        for m in 0..<moduleCount {
            var v = ModuleSnapshot()
            let o = f.outputs.modules[m]
            let i = f.inputs.modules[m]
            v.gun = o.gun; v.enabled = o.enabled; v.voltageSetpoint = o.voltage; v.currentSetpoint = o.current
            v.voltage = i.outputVoltage; v.current = i.outputCurrent; v.temperature = i.temperature
            v.faulted = i.faulted; v.seenAt = i.seenAt
            modules[m] = v
        }
    }
}

/// A session's edges for the journal: begins when the plug is confirmed and the lock commanded, ends
/// at `finished`, `faulted`, or when the car is gone before either.
public struct SessionEdge: Sendable, BitwiseCopyable {
    public var gun: Int8
    public var started: Bool
    public var at: Instant
    public var meterEnergy: WattHours
    /// The car's SOC (BCS), NaN when unknown.
    public var soc: Double
    public var stopReason: StopReason
}
