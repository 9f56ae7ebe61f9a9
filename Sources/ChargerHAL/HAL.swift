// Hardware abstraction: one small protocol per device class. The runtime samples every device into
// one StationInputs snapshot per cycle and applies one StationOutputs; backends (simulated board,
// gpiod, modbus) implement these. None of these calls run inside the control step.
import ChargerCore

/// Digital and analog I/O of one gun's front end: contactor coils and mirror contacts, K3/K4, the lock
/// motor and its feedback, detection point 1 (CC1), output voltage sensing both sides of K1/K2, the
/// connector temperature sensors, the ground-fault (RCD / 6 mA DC) trip input and PE monitor, lamps.
public protocol GunFrontEnd: AnyObject {
    func sample(gun: Int, into input: inout GunInputs)
    func apply(gun: Int, _ output: GunOutputs)
    /// The cycle's outputs are all applied: a front end that writes its lines in one go does it now.
    func flush()
}

extension GunFrontEnd {
    public func flush() {}
}

/// Station-wide inputs: emergency stop, door switch, AC mains presence.
public protocol StationSignals: AnyObject {
    func sample(into input: inout StationInputs)
}

/// The rectifier power modules and the module-to-gun matrix relays.
public protocol PowerModuleBus: AnyObject {
    func sample(into modules: inout ModuleArray<ModuleInputs>, count: Int)
    func apply(_ modules: inout ModuleArray<ModuleOutputs>, count: Int)
}

/// The DC energy meter of one gun (voltage, current, energy at 0.001 kWh resolution).
public protocol EnergyMeter: AnyObject {
    func sample(gun: Int, into input: inout GunInputs)
}

/// The insulation monitor (IEC 61557-8) of one gun.
public protocol InsulationMonitor: AnyObject {
    func sample(gun: Int, into input: inout GunInputs)
    func apply(gun: Int, enable: Bool, selfTest: Bool)
}

/// The GB/T 27930 link to the car of one gun (typed messages; framing is the driver's business).
public protocol VehicleLink: AnyObject {
    func receive(gun: Int, into messages: inout VehicleMessages)
    func transmit(gun: Int, _ messages: ChargerMessages)
}

/// The devices of one board, each by its class. A board is data: a backend builds this from the board file.
public struct BoardDevices {
    public var frontEnd: any GunFrontEnd
    public var signals: any StationSignals
    public var modules: any PowerModuleBus
    public var meter: any EnergyMeter
    public var imd: any InsulationMonitor
    public var vehicle: any VehicleLink
    public init(frontEnd: any GunFrontEnd, signals: any StationSignals, modules: any PowerModuleBus,
                meter: any EnergyMeter, imd: any InsulationMonitor, vehicle: any VehicleLink) {
        self.frontEnd = frontEnd; self.signals = signals; self.modules = modules
        self.meter = meter; self.imd = imd; self.vehicle = vehicle
    }

    /// Samples every device into `inputs` (the snapshot the step will see). `spec` is read-only; it is
    /// passed by reference because a by-value pass was measured copying its 4 KB every cycle.
    public func sample(into inputs: inout StationInputs, spec: inout StationSpec) {
        signals.sample(into: &inputs)
        modules.sample(into: &inputs.modules, count: spec.moduleCount)
        for g in 0..<spec.gunCount {
            frontEnd.sample(gun: g, into: &inputs.guns[g])
            meter.sample(gun: g, into: &inputs.guns[g])
            imd.sample(gun: g, into: &inputs.guns[g])
            vehicle.receive(gun: g, into: &inputs.guns[g].vehicle)
        }
    }

    /// Applies one cycle's outputs to every device (`outputs` and `spec` read-only, by reference).
    public func apply(_ outputs: inout StationOutputs, spec: inout StationSpec) {
        let guns = spec.gunCount
        for g in 0..<guns {
            frontEnd.apply(gun: g, outputs.guns[g])
            imd.apply(gun: g, enable: outputs.guns[g].imdEnable, selfTest: outputs.guns[g].imdSelfTest)
            vehicle.transmit(gun: g, outputs.guns[g].tx)
        }
        modules.apply(&outputs.modules, count: spec.moduleCount)
        frontEnd.flush()
    }
}

/// The module-to-gun matrix relays (GPIO on a real board, the channel on a bench): `set` each module's
/// gun (-1 none) during a cycle, `commit` once at its end.
public protocol MatrixRelays: AnyObject {
    func set(module: Int, gun: Int8)
    func commit()
}

/// The instant of the cycle being sampled, for drivers that stamp what they receive (a fresh Modbus
/// reading is stamped with the cycle that first saw it). Set by the loop before sampling.
public final class LoopClock: @unchecked Sendable {
    public var now: Instant = .zero
    public init() {}
}
