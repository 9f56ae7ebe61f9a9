// Fills the station's view (LoopContract) from one cycle's frame: the loop's side of the triple buffer the
// console and the grid interfaces read.
import ChargerCore
import LoopContract

extension StationView {
    /// Fills the view from one cycle's frame (the loop's thread; no allocation).
    package mutating func fill(_ f: borrowing ControlFrame, index: UInt64, status: (Int) -> GunStatus) {
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
            v.meterExportEnergy = i.meterExportEnergy
            if let offer = i.vehicle.bdp, offer.message.allowed, f.inputs.now - offer.at <= Standard.v2gOfferTimeout {
                v.carOffersDischarge = true; v.carMinSoc = offer.message.minSoc
            }
            v.carBatteryEnergy = i.vehicle.bcp?.message.nominalEnergy ?? .zero
            v.dischargeLimit = o.dischargeLimit; v.dischargeBinding = o.dischargeBinding; v.dischargeAvailable = o.dischargeAvailable
            v.insulation = i.insulation; v.imdAlarm = i.imdAlarm; v.imdSelfTest = i.imdSelfTest; v.imdSeenAt = i.imdSeenAt
            v.groundFaultTrip = i.groundFaultTrip; v.peContinuity = i.peContinuity
            v.lamp = o.lamp
            v.stopReason = f.state.sessions[g].stopReason
            v.ratedPower = gs.ratedPower; v.maxCurrent = gs.maxCurrent; v.connectorCurrent = gs.connectorCurrent
            v.thermalCurrent = gs.connectorCurrent * thermalFactor(i.gunTemperature, gs)
            v.gridSetpoint = i.gridSetpoint; v.operatorCap = i.operatorCap
            v.gridCurrentLimit = i.gridCurrentLimit; v.gridSource = i.gridSource; v.authorized = i.authorized
            v.vinCheck = i.vinCheck
            let session = f.state.sessions[g]
            if session.phase == .identification, let brm = i.vehicle.brm, brm.at >= session.phaseSince {
                v.vinSent = true; v.vin = brm.message.vin
            }
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
            let latched = f.state.safety[g].latched | f.state.station.latched
            v.testRefusal = actuatorTestRefusal(.lock, phase: f.state.sessions[g].phase, latched: latched, input: i)
            v.contactorTestRefusal = actuatorTestRefusal(.contactorsK1K2, phase: f.state.sessions[g].phase, latched: latched, input: i)
            guns[g] = v
        }
        for m in 0..<moduleCount {
            var v = ModuleSnapshot()
            let o = f.outputs.modules[m]
            let i = f.inputs.modules[m]
            v.gun = o.gun; v.enabled = o.enabled; v.voltageSetpoint = o.voltage; v.currentSetpoint = o.current
            v.voltage = i.outputVoltage; v.current = i.outputCurrent; v.temperature = i.temperature
            v.faulted = i.faulted; v.seenAt = i.seenAt
            v.silentSince = f.state.modules[m].silentSince
            v.commLost = f.state.station.moduleLatched[m].contains(.moduleCommLost)
            v.latched = f.state.station.moduleLatched[m]
            modules[m] = v
        }
    }
}
