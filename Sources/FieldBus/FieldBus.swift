// The Modbus devices of a board (rectifier modules, DC meters, IMDs), driven from their register maps
// in the board file. One polling thread per bus does every blocking libmodbus call; the control loop
// never waits on the wire. The two meet through lock-free triple buffers: the loop writes each device's
// latest command, the poller writes each device's latest reading. Every exchange is counted per device
// (good replies, timeouts, bad replies/CRC, exceptions, connection errors) with libmodbus's text of the
// last error; after the bus's `fault_after` failures in a row a device is lost. A lost meter or IMD
// raises its communication fault (E25-meter-comm-lost, E26-imd-comm-lost) in the next cycle; a module
// raises E23-module-comm-lost when it has not been heard for [limits] module_comm_timeout, counted from
// its last good reading, because the core also plans on a silent module delivering its last command
// until its own watchdog switches it off (module_self_off_time after that reading).
import BoardFile
import ChargerCore
import ChargerHAL
import Modbus
import RealTime
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// What the loop asks of a device (modules: on/off, voltage, current; IMD: on/off, self-test).
public struct DeviceCommand: Sendable, BitwiseCopyable, Equatable {
    public var enable = false
    public var voltage = 0.0
    public var current = 0.0
    public var selftest = false
    public init() {}
}

/// A device's latest good reading, decoded to SI units. `sequence` counts good polls (0: none yet).
public struct DeviceReading: Sendable, BitwiseCopyable {
    public var sequence: UInt64 = 0
    /// `fault_after` failed exchanges in a row since the last good one.
    public var lost = false
    public var voltage = 0.0, current = 0.0, temperature = 25.0, energy = 0.0, exportEnergy = 0.0
    public var resistancePlus = Double.infinity, resistanceMinus = Double.infinity
    public var status: UInt16 = 0
    public var selftestResult: UInt16 = 0
    public init() {}
}

/// An analog input module's latest channel values (raw, as the module reports them) and when each was
/// last read good (monotonic ns; 0: never). A channel whose status register says its value is not good
/// keeps its last value, which then ages (the loop's E36 judges the age).
public struct AnalogModuleReading: Sendable, BitwiseCopyable {
    public var raw: InlineArray<16, Double> = InlineArray(repeating: 0)
    public var readAtNanos: InlineArray<16, Int64> = InlineArray(repeating: 0)
    /// The status each channel last reported (0 good).
    public var status: InlineArray<16, UInt16> = InlineArray(repeating: 0)
    public init() {}
}

/// Per-device exchange counters (read by anyone, written by the device's poller).
public struct DeviceCounts: Sendable, Equatable {
    public var exchanges: UInt64 = 0, ok: UInt64 = 0, timeouts: UInt64 = 0, badReplies: UInt64 = 0
    public var exceptions: UInt64 = 0, connectionErrors: UInt64 = 0, refused: UInt64 = 0, lostEvents: UInt64 = 0
    public var lost = false
    public var lastError = ""
    /// Analog input modules: channel values refused because their status said so (open input, out of range).
    public var badChannels: UInt64 = 0
}

/// One device on a bus.
public final class FieldDevice: @unchecked Sendable {
    public let spec: ModbusDeviceSpec
    public let map: RegisterMap
    public let name: String
    let commandStorage = TripleBufferStorage<DeviceCommand>(initial: DeviceCommand())
    let readingStorage = TripleBufferStorage<DeviceReading>(initial: DeviceReading())
    let analogStorage = TripleBufferStorage<AnalogModuleReading>(initial: AnalogModuleReading())
    /// An analog input module's channels (the loop reads them wait-free).
    public var analogReadings: TripleBuffer<AnalogModuleReading> { analogStorage.buffer }
    var analog = AnalogModuleReading()
    public var commands: TripleBuffer<DeviceCommand> { commandStorage.buffer }
    public var readings: TripleBuffer<DeviceReading> { readingStorage.buffer }
    private let countsLock = Mutex(DeviceCounts())
    // Poller-private state.
    var lastSent: DeviceCommand? = nil
    var lastSentAt: Int64 = 0
    var consecutiveFailures = 0
    var lastTry: Int64 = 0
    var reading = DeviceReading()
    let readRuns: [RegisterRun]
    let writeRuns: [RegisterRun]

    init(spec: ModbusDeviceSpec, map: RegisterMap) {
        self.spec = spec; self.map = map; name = spec.name
        readRuns = map.readRuns; writeRuns = map.writeRuns
    }

    public var counts: DeviceCounts { countsLock.withLock { $0 } }
    func count(_ body: (inout DeviceCounts) -> Void) { countsLock.withLock { body(&$0) } }
}

/// One bus and its polling thread.
public final class ModbusPoller: @unchecked Sendable {
    public let bus: ModbusBusSpec
    public let devices: [FieldDevice]
    let connection: ModbusConnection
    /// Round trip of every exchange (request sent → reply decoded), good or bad.
    public let roundTrips = LatencyRecorder()
    private let thread = SideThread()
    /// How often a lost device is tried again (ns): ten polls, at least half a second.
    let lostRetry: Int64
    /// SCHED_FIFO priority of the polling thread (0: the normal scheduler), and the errno of its refusal.
    /// A bus that carries analog inputs feeds E36: on a real board it polls one below the loop, as the IIO
    /// sampler does, so the board's other work does not age its values.
    let priority: Int32
    public private(set) var fifoRefused: Int32 = 0

    init(bus: ModbusBusSpec, devices: [FieldDevice], priority: Int32 = 0) throws(ModbusError) {
        self.bus = bus
        self.devices = devices
        self.priority = priority
        lostRetry = max(500_000_000, bus.pollPeriod.micros * 10_000)
        let transport: ModbusTransport
        switch bus.transport {
        case .tcp(let host, let port): transport = .tcp(host: host, port: port)
        case .rtu(let device, let baud, let parity, let dataBits, let stopBits, let rs485, let rts):
            transport = .rtu(device: device, baud: baud, parity: Parity(rawValue: String(parity)) ?? .none, dataBits: dataBits,
                             stopBits: stopBits, rs485: rs485, rtsToggle: rts)
        }
        connection = try ModbusConnection(transport, unit: devices.first?.spec.unit ?? 1,
                                          responseTimeoutMs: Int(bus.responseTimeout.micros / 1000))
    }

    /// Opens the link (an RTU port's RS-485 and RTS options are checked here, so a port that cannot do
    /// them is refused at start with the reason) and starts the thread.
    func start() throws(ModbusError) {
        do { try connection.connect() } catch {
            // A TCP gateway that is not up yet is retried by the poller; a port that cannot do what the
            // board file asks is a configuration error.
            if error.kind == .unsupported || !isTCP { throw error }
        }
        let rc = thread.start(stackBytes: 512 * 1024) { self.run() }
        guard rc == 0 else { throw ModbusError(device: bus.name, operation: "start poller", unsupported: "cannot start the polling thread (errno \(rc))") }
    }

    var isTCP: Bool { if case .tcp = bus.transport { true } else { false } }

    /// Stops the thread after its last round, in which every module is sent its latest command (the
    /// loop's safe outputs when it stopped) once more.
    func stop() {
        guard thread.running else { return }
        thread.stop()
        connection.close()
    }

    func run() {
        if priority > 0 {
            var p = sched_param()
            p.sched_priority = priority
            fifoRefused = pthread_setschedparam(pthread_self(), SCHED_FIFO, &p)
        }
        let period = bus.pollPeriod.micros * 1000
        var next = monotonicNanos()
        while !thread.stopAsked {
            for d in devices {
                if thread.stopAsked { break }
                poll(d)
            }
            next += period
            let now = monotonicNanos()
            if next < now { next = now } else { sleepUntil(nanos: next) }
        }
        // The last word: the loop wrote its safe outputs before the poller was stopped.
        for d in devices where !d.writeRuns.isEmpty {
            connection.setUnit(d.spec.unit)
            d.lastSent = nil
            sendCommand(d, force: true)
        }
    }

    /// One device: its command when changed or when the keep-alive is due, then its readings. A lost
    /// device is tried again only once per `lostRetry`: each try costs a whole response timeout, and
    /// the devices that still answer must not starve behind it.
    func poll(_ d: FieldDevice) {
        let now = monotonicNanos()
        // An analog input module is tried at every poll even when lost: its values feed E36, and a module
        // back after a stall must be heard at once (the bus that carries it polls for it).
        if d.reading.lost && d.spec.role != .analogIn && now - d.lastTry < lostRetry { return }
        d.lastTry = now
        connection.setUnit(d.spec.unit)
        if !d.writeRuns.isEmpty && !sendCommand(d, force: false) { return }
        var ok = true
        var values: [RegisterFieldName: (UInt16, UInt16)] = [:]
        var channelWords: [(address: Int, words: [UInt16])] = []
        for run in d.readRuns {
            let t0 = monotonicNanos()
            let result: Result<[UInt16], ModbusError>
            do {
                result = .success(run.table == .input ? try connection.readInputRegisters(run.address, count: run.count)
                                                      : try connection.readHoldingRegisters(run.address, count: run.count))
            } catch { result = .failure(error) }
            roundTrips.histogram.record(nanos: monotonicNanos() - t0)
            switch result {
            case .success(let regs):
                if d.map.channels != nil { channelWords.append((run.address, regs)) }
                for name in run.fields {
                    let f = d.map.fields[name]!
                    let i = f.address - run.address
                    values[name] = (regs[i], f.words == 2 ? regs[i + 1] : 0)
                }
            case .failure(let e):
                failed(d, e)
                ok = false
            }
            if !ok { break }
        }
        guard ok else { return }
        if let c = d.map.channels {
            takeChannels(d, c, values: channelWords)
            return
        }
        var r = d.reading
        func v(_ n: RegisterFieldName) -> Double? { values[n].map { d.map.fields[n]!.decode($0.0, $0.1) } }
        func raw(_ n: RegisterFieldName) -> UInt16? { values[n].map { $0.0 } }
        if let x = v(.voltage) { r.voltage = x }
        if let x = v(.current) { r.current = x }
        if let x = v(.temperature) { r.temperature = x }
        if let x = v(.energy) { r.energy = x }
        if let x = v(.exportEnergy) { r.exportEnergy = x }
        if let x = v(.resistancePlus) { r.resistancePlus = x }
        if let x = v(.resistanceMinus) { r.resistanceMinus = x }
        if let x = raw(.status) { r.status = x }
        if let x = raw(.selftestResult) { r.selftestResult = x }
        r.sequence += 1
        r.lost = false
        d.reading = r
        d.consecutiveFailures = 0
        d.readings.write(r)
        d.count { $0.exchanges += UInt64(d.readRuns.count); $0.ok += UInt64(d.readRuns.count); $0.lost = false }
    }

    /// An analog input module's good poll: its values and, where the map has them, their statuses (in
    /// one run or two); a channel whose status is not 0 keeps its last value and time.
    func takeChannels(_ d: FieldDevice, _ c: AnalogChannels, values runs: [(address: Int, words: [UInt16])]) {
        let now = monotonicNanos()
        var a = d.analog
        var bad = 0, lastBad = (0, UInt16(0))
        func word(_ table: RegisterTable, _ address: Int) -> UInt16? {
            for (i, run) in d.readRuns.enumerated() where i < runs.count && run.table == table {
                let k = address - runs[i].address
                if k >= 0 && k < runs[i].words.count { return runs[i].words[k] }
            }
            return nil
        }
        for k in 0..<min(c.count, AnalogChannels.maxCount) {
            guard let value = word(c.table, c.address + k) else { continue }
            let status = c.statusTable.flatMap { t in c.statusAddress.flatMap { word(t, $0 + k) } } ?? 0
            a.status[k] = status
            if status != 0 { bad += 1; lastBad = (k, status); continue }
            a.raw[k] = c.raw(value)
            a.readAtNanos[k] = now
        }
        d.analog = a
        d.analogReadings.write(a)
        var r = d.reading
        r.sequence += 1
        r.lost = false
        d.reading = r
        d.consecutiveFailures = 0
        d.readings.write(r)
        d.count {
            $0.exchanges += UInt64(d.readRuns.count); $0.ok += UInt64(d.readRuns.count); $0.lost = false
            if bad > 0 { $0.badChannels += UInt64(bad); $0.lastError = "channel \(lastBad.0) status \(lastBad.1): value not used" }
        }
    }

    /// False when the exchange failed.
    @discardableResult
    func sendCommand(_ d: FieldDevice, force: Bool) -> Bool {
        let cmd = d.commands.read()
        let now = monotonicNanos()
        let due = force || d.lastSent != cmd || now - d.lastSentAt >= bus.keepalive.micros * 1000
        guard due else { return true }
        var regs: [RegisterFieldName: (UInt16, UInt16)] = [:]
        for (name, f) in d.map.fields where name.isCommand {
            let value: Double
            switch name {
            case .enable: value = cmd.enable ? 1 : 0
            case .voltageSetpoint: value = cmd.enable ? cmd.voltage : 0
            // Signed (V2G): forward current in current_setpoint; reverse current as a magnitude in
            // reverse_current_setpoint, with direction 1. A map without them never gets a reverse command
            // (the core commands reverse only to a bidirectional module, whose map has them).
            case .currentSetpoint: value = cmd.enable ? max(cmd.current, 0) : 0
            case .reverseCurrentSetpoint: value = cmd.enable ? max(-cmd.current, 0) : 0
            case .direction: value = cmd.enable && cmd.current < 0 ? 1 : 0
            case .selftest: value = cmd.selftest ? 1 : 0
            default: continue
            }
            guard let w = f.encode(value) else {
                // Never send a value the register cannot hold: refuse the whole command, count it.
                d.count { $0.refused += 1; $0.lastError = "\(name.rawValue) = \(value) does not fit \(f.type.rawValue) × \(f.scale)" }
                return true
            }
            regs[name] = w
        }
        // A self-test register of its own follows the command's edges (1 starts a test, 0 ends it):
        // keep-alives do not re-write it, so a device's own result handling is not disturbed. Sharing a
        // write with other commands, it carries the commanded value (unchanged between edges).
        let selftestEdge = force || cmd.selftest != (d.lastSent?.selftest ?? false)
        for run in d.writeRuns {
            if run.fields == [.selftest] && !selftestEdge { continue }
            var words = [UInt16](repeating: 0, count: run.count)
            for name in run.fields {
                let f = d.map.fields[name]!
                let (a, b) = regs[name]!
                words[f.address - run.address] = a
                if f.words == 2 { words[f.address - run.address + 1] = b }
            }
            let t0 = monotonicNanos()
            do {
                try connection.writeRegisters(run.address, words)
                roundTrips.histogram.record(nanos: monotonicNanos() - t0)
                d.count { $0.exchanges += 1; $0.ok += 1 }
            } catch {
                roundTrips.histogram.record(nanos: monotonicNanos() - t0)
                failed(d, error)
                return false
            }
        }
        d.lastSent = cmd
        d.lastSentAt = now
        return true
    }

    func failed(_ d: FieldDevice, _ e: ModbusError) {
        d.consecutiveFailures += 1
        let lostNow = d.consecutiveFailures >= bus.faultAfter
        if lostNow && !d.reading.lost {
            d.reading.lost = true
            d.readings.write(d.reading)
        }
        d.count {
            $0.exchanges += 1
            switch e.kind {
            case .timeout: $0.timeouts += 1
            case .exception: $0.exceptions += 1
            case .badReply: $0.badReplies += 1
            case .connection, .unsupported, .other: $0.connectionErrors += 1
            }
            if lostNow && !$0.lost { $0.lostEvents += 1 }
            $0.lost = lostNow || $0.lost
            $0.lastError = e.text + " (\(e.operation))"
        }
    }
}


/// Every Modbus device of a board, its pollers and its HAL drivers.
public final class FieldBus: @unchecked Sendable {
    public let pollers: [ModbusPoller]
    public let devices: [FieldDevice]

    /// `analogPriority`: the SCHED_FIFO priority of the pollers of buses with analog input modules (0: none).
    public init(config: ModbusConfig, analogPriority: Int32 = 0) throws(ModbusError) {
        var all: [FieldDevice] = []
        var pollers: [ModbusPoller] = []
        for (b, bus) in config.buses.enumerated() {
            let devs = config.devices.filter { $0.bus == b }.map { FieldDevice(spec: $0, map: config.maps[$0.map]) }
            guard !devs.isEmpty else { continue }
            all += devs
            let analog = devs.contains { $0.spec.role == .analogIn }
            pollers.append(try ModbusPoller(bus: bus, devices: devs, priority: analog ? analogPriority : 0))
        }
        self.pollers = pollers
        devices = all
    }

    public func start() throws(ModbusError) {
        for p in pollers { try p.start() }
    }
    public func stop() { for p in pollers { p.stop() } }

    public func device(_ role: DeviceRole, _ index: Int) -> FieldDevice? {
        devices.first { $0.spec.role == role && $0.spec.index == index }
    }

    /// One line per device: counters, and the bus's round-trip figures.
    public func report() -> [String] {
        var out: [String] = []
        for p in pollers {
            let s = p.roundTrips.histogram.snapshot()
            out.append("modbus bus \(p.bus.name) (\(p.connection.transport)): \(s.count) exchanges, round trip p50 \(s.percentileMicros(0.5)) / p99 \(s.percentileMicros(0.99)) / max \(Int(s.maxMicros)) µs"
                       + (p.priority > 0 ? (p.fifoRefused == 0 ? ", polled at SCHED_FIFO \(p.priority)" : "; its SCHED_FIFO was refused (\(String(cString: strerror(p.fifoRefused)))): its analog values may age (E36)") : ""))
            for d in p.devices {
                let c = d.counts
                var line = "modbus \(d.name) (unit \(d.spec.unit)): \(c.exchanges) exchanges, \(c.ok) ok, \(c.timeouts) timeouts, \(c.badReplies) bad replies, \(c.exceptions) exceptions, \(c.connectionErrors) connection errors"
                if c.refused > 0 { line += ", \(c.refused) commands refused" }
                if c.badChannels > 0 { line += ", \(c.badChannels) channel values refused by their status" }
                if c.lostEvents > 0 { line += ", lost \(c.lostEvents)x\(c.lost ? " (still lost)" : "")" }
                if !c.lastError.isEmpty { line += "; last error: \(c.lastError)" }
                out.append(line)
            }
        }
        return out
    }
}
