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

/// The `[[analog]]` channels a board puts on analog input modules (`source = "modbus"`): the loop's
/// side, reading each module's newest channels wait-free (no I/O, no lock, no allocation). value =
/// (raw + offset) × scale, as for an IIO channel. Each gun's analog age becomes the oldest of its
/// mapped values' (with the IIO channels' age, where the gun has both), so a module that stops
/// answering, or a channel whose status refuses its value, stops the gun through E36.
public final class ModbusAnalogInputs: @unchecked Sendable {
    struct Channel {
        var gun: Int
        var signal: AnalogSignal
        var device: FieldDevice
        var channel: Int
        var scale: Double
        var offset: Double
    }
    let channels: [Channel]
    /// When the loop's side was made: a channel never read is as old as that.
    let created = monotonicNanos()
    public var count: Int { channels.count }

    /// The board's Modbus-sourced specs; nil when it has none.
    public init?(specs: [AnalogInputSpec], field: FieldBus, config: ModbusConfig) {
        var out: [Channel] = []
        for s in specs {
            guard let m = s.modbusDevice, let ch = s.channel else { continue }
            let spec = config.devices[m]
            guard let d = field.devices.first(where: { $0.spec == spec }) else { continue }
            out.append(Channel(gun: s.gun, signal: s.signal, device: d, channel: ch, scale: s.scale, offset: s.offset))
        }
        guard !out.isEmpty else { return nil }
        channels = out
    }

    public func sample(gun g: Int, into i: inout GunInputs) {
        var oldest = Int64.max
        for c in channels where c.gun == g {
            let r = c.device.analogReadings.read()
            let at = r.readAtNanos[c.channel]
            oldest = min(oldest, at)
            guard at != 0 else { continue }
            let v = (r.raw[c.channel] + c.offset) * c.scale
            switch c.signal {
            case .cc1: i.cc1 = Volts(v)
            case .chargerVoltage: i.chargerSideVoltage = Volts(v)
            case .vehicleVoltage: i.vehicleSideVoltage = Volts(v)
            case .gunTemperature: i.gunTemperature = Celsius(v)
            case .auxSupply: i.auxSupply = Volts(v)
            }
        }
        guard oldest != .max else { return }
        // A channel never read is as old as this side (the core's E36 stops the gun once past its bound).
        let age = TimeSpan(micros: max(0, monotonicNanos() - (oldest == 0 ? created : oldest)) / 1000)
        i.analogAge = max(i.analogAge ?? .zero, age)
    }
}
