// The HAL drivers of Modbus devices, called by the control loop: each reads its device's latest
// reading and writes its latest command through the triple buffers. No I/O, no locks, no allocation.
import BoardFile
import ChargerCore
import ChargerHAL
import RealTime

/// Stamps: a reading is "seen" in the first cycle whose sample finds its sequence new.
final class Freshness {
    let sequence: UnsafeMutablePointer<UInt64>
    let at: UnsafeMutablePointer<Instant>
    init(count: Int) {
        sequence = .allocate(capacity: count); sequence.initialize(repeating: 0, count: count)
        at = .allocate(capacity: count); at.initialize(repeating: .never, count: count)
    }
    deinit { sequence.deallocate(); at.deallocate() }
    /// The instant of the latest reading's arrival (`.never` before the first). A lost device keeps
    /// the instant it was last heard: the core's communication timeout counts from there, and for a
    /// module the core also knows from it when the module's own watchdog will switch it off (until
    /// then a silent module goes on delivering its last command, and the core must count on that).
    @inline(__always)
    func seen(_ i: Int, _ r: DeviceReading, now: Instant) -> Instant {
        if r.sequence != sequence[i] { sequence[i] = r.sequence; at[i] = now }
        return r.sequence == 0 ? .never : at[i]
    }
    /// For a meter or an IMD: `.never` as soon as the poller counts the device lost (`fault_after`
    /// failures in a row), so the core raises its communication fault at once.
    @inline(__always)
    func seenUnlessLost(_ i: Int, _ r: DeviceReading, now: Instant) -> Instant {
        let t = seen(i, r, now: now)
        return r.lost ? .never : t
    }
}

public final class ModbusModuleBus: PowerModuleBus {
    let devices: [FieldDevice]
    let faultMasks: [UInt16]
    let clock: LoopClock
    let relays: MatrixRelays?
    let fresh: Freshness

    /// `devices[m]` is module m's device; `relays` carries each module's gun (the matrix).
    public init(devices: [FieldDevice], clock: LoopClock, relays: MatrixRelays?) {
        self.devices = devices; self.clock = clock; self.relays = relays
        faultMasks = devices.map(\.map.faultMask)
        fresh = Freshness(count: devices.count)
    }

    public func sample(into ms: inout ModuleArray<ModuleInputs>, count: Int) {
        let now = clock.now
        for m in 0..<count {
            let r = devices[m].readings.read()
            ms[m].seenAt = fresh.seen(m, r, now: now)
            guard r.sequence > 0 else { continue }
            ms[m].outputVoltage = Volts(r.voltage)
            ms[m].outputCurrent = Amps(r.current)
            ms[m].temperature = Celsius(r.temperature)
            ms[m].faulted = r.status & faultMasks[m] != 0
        }
    }

    public func apply(_ ms: inout ModuleArray<ModuleOutputs>, count: Int) {
        for m in 0..<count {
            var c = DeviceCommand()
            c.enable = ms[m].enabled
            c.voltage = ms[m].voltage.value
            c.current = ms[m].current.value
            devices[m].commands.write(c)
            relays?.set(module: m, gun: ms[m].gun)
        }
        relays?.commit()
    }
}

public final class ModbusMeter: EnergyMeter {
    let devices: [FieldDevice]
    let hasStatus: [Bool]
    let clock: LoopClock
    let fresh: Freshness

    /// `devices[g]` is gun g's meter. A meter whose status register shows an error bit is not trusted:
    /// its readings are not taken as fresh, so the core's meter timeout applies.
    public init(devices: [FieldDevice], clock: LoopClock) {
        self.devices = devices; self.clock = clock
        hasStatus = devices.map { $0.map.fields[.status] != nil }
        fresh = Freshness(count: devices.count)
    }

    public func sample(gun g: Int, into i: inout GunInputs) {
        let r = devices[g].readings.read()
        if hasStatus[g] && r.status & devices[g].map.faultMask != 0 { return }
        i.meterSeenAt = fresh.seenUnlessLost(g, r, now: clock.now)
        guard r.sequence > 0 else { return }
        i.meterVoltage = Volts(r.voltage)
        i.meterCurrent = Amps(r.current)
        i.meterEnergy = WattHours(r.energy)
        i.meterExportEnergy = WattHours(r.exportEnergy)
    }
}

public final class ModbusIMD: InsulationMonitor {
    let devices: [FieldDevice]
    let clock: LoopClock
    let fresh: Freshness

    /// `devices[g]` is gun g's IMD.
    public init(devices: [FieldDevice], clock: LoopClock) {
        self.devices = devices; self.clock = clock
        fresh = Freshness(count: devices.count)
    }

    public func sample(gun g: Int, into i: inout GunInputs) {
        let r = devices[g].readings.read()
        i.imdSeenAt = fresh.seenUnlessLost(g, r, now: clock.now)
        guard r.sequence > 0 else { return }
        let map = devices[g].map
        i.insulation = Ohms(min(r.resistancePlus, r.resistanceMinus))
        // The alarm relay (front end) or the alarm bit over Modbus.
        i.imdAlarm = i.imdAlarm || r.status & map.faultMask != 0
        switch r.selftestResult {
        case map.selftestRunning: i.imdSelfTest = .running
        case map.selftestPassed: i.imdSelfTest = .passed
        case map.selftestFailed: i.imdSelfTest = .failed
        default: i.imdSelfTest = .idle
        }
    }

    public func apply(gun g: Int, enable: Bool, selfTest: Bool) {
        var c = DeviceCommand()
        c.enable = enable
        c.selftest = selfTest
        devices[g].commands.write(c)
    }
}

extension FieldBus {
    /// The HAL drivers of this board's Modbus devices (modules in index order, meter and IMD per gun).
    public func drivers(spec: StationSpec, clock: LoopClock, relays: MatrixRelays?) -> (modules: ModbusModuleBus, meter: ModbusMeter, imd: ModbusIMD)
    {
        let modules = (0..<spec.moduleCount).map { device(.module, $0)! }
        let meters = (0..<spec.gunCount).map { device(.meter, $0)! }
        let imds = (0..<spec.gunCount).map { device(.imd, $0)! }
        return (ModbusModuleBus(devices: modules, clock: clock, relays: relays), ModbusMeter(devices: meters, clock: clock),
                ModbusIMD(devices: imds, clock: clock))
    }
}
