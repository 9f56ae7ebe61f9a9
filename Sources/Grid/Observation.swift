// What the grid interfaces observe of the station, from the loop's view: one mapping for chargerd's grid
// desk and the HIL runner (issue 34: the two copies differed; the runner's lacked the binding source, the
// fault, the power limit, the rating and the lock).
import ChargerCore
import LoopContract

extension StationObservation {
    /// The observation of `view`. `refuseOnMetering`: the board refuses sessions while a metering fault
    /// stands, so a gun with one counts as faulted.
    public init(view v: StationView, refuseOnMetering: Bool) {
        self.init()
        at = v.at
        gridConnection = v.gridLimit
        var modules = FaultSet()
        for m in 0..<v.moduleCount { modules = modules | v.modules[m].latched }
        moduleFaults = modules.codes.map(\.name).joined(separator: ",")
        for g in 0..<v.gunCount { guns.append(GunObservation(v.guns[g], refuseOnMetering: refuseOnMetering)) }
    }
}

extension GunObservation {
    public init(_ x: GunSnapshot, refuseOnMetering: Bool) {
        self.init()
        phase = x.status.phase
        binding = x.status.binding
        gridSource = x.gridSource
        let stops = x.status.faults.strongestReaction.map { $0 >= .refuse } ?? false
        let metering = x.status.faults & .metering
        faulted = stops || (refuseOnMetering && !metering.isEmpty)
        meteringFaults = metering.codes.map(\.name).joined(separator: ",")
        voltage = x.status.voltage
        current = x.status.current
        meterEnergy = x.meterEnergy
        powerLimit = x.status.powerLimit
        ratedPower = x.ratedPower
        soc = x.status.soc
        lockConfirmed = x.lockConfirmed
        exportEnergy = x.meterExportEnergy
        offersDischarge = x.carOffersDischarge
        carMinSoc = x.carMinSoc
        batteryEnergy = x.carBatteryEnergy
        dischargeAvailable = x.dischargeAvailable * x.status.voltage
        if x.vinSent { vin = VINReading(x.vin) }
        stopReason = x.stopReason
    }
}
