// The rest of a board's I/O as data: analog inputs ([[analog]], Linux IIO sysfs channels), the
// hardware watchdog ([watchdog]) and, on bench boards, the local channel shared with the plant
// emulator ([bench]).
import ChargerCore

/// Analog quantities of a gun the controller samples.
public enum AnalogSignal: String, Sendable, CaseIterable {
    case cc1 = "cc1"                           // detection point 1 voltage
    case chargerVoltage = "charger-voltage"    // charger side of K1/K2
    case vehicleVoltage = "vehicle-voltage"    // vehicle side of K1/K2
    case gunTemperature = "gun-temperature"    // hottest connector sensor
    case auxSupply = "aux-supply"              // the car's 12 V auxiliary supply, gun side of K3/K4

    var units: UnitTable { self == .gunTemperature ? .temperature : .voltage }

    /// The longest low-pass time constant a board may put on the signal: a filter delays what it
    /// filters by about its time constant, and each signal's rule has a budget (docs/standards.md):
    /// CC1's 3 ms debounce inside the latch row's 50 ms; the voltages' 9 ms Table 103 window; the
    /// auxiliary supply's 100 ms debounce; a gun's temperature, which moves in minutes.
    public var maxFilter: TimeSpan {
        switch self {
        case .cc1: .ms(2)
        case .chargerVoltage, .vehicleVoltage: .ms(1)
        case .auxSupply: .ms(20)
        case .gunTemperature: .s(2)
        }
    }
}

/// One analog input: an IIO channel's raw value; value = (raw + offset) × scale, then low-pass filtered.
public struct AnalogInputSpec: Sendable, Equatable {
    public var signal: AnalogSignal
    public var gun: Int
    /// The channel's file, e.g. /sys/bus/iio/devices/iio:device0/in_voltage0_raw; empty when the board
    /// names the device instead (`device`, `channel`), found at start by its `name` attribute.
    public var path: String
    /// The IIO device's name (its `name` file: the driver, e.g. "mcp3208") and the channel number: the
    /// kernel numbers iio:deviceN in probe order, which a board's device tree does not fix.
    public var device: String? = nil
    public var channel: Int? = nil
    /// The quantity of one raw step at the input of the divider or amplifier (V or °C).
    public var scale: Double
    /// Raw offset added before scaling (IIO's in_*_offset).
    public var offset: Double
    /// First-order low-pass time constant (zero: none), at most `signal.maxFilter`.
    public var filter: TimeSpan = .zero
    /// `source = "modbus"`: the analog input module (its place in `ModbusConfig.devices`) whose channel
    /// `channel` carries the signal; `device` is then the module's name. Nil: an IIO channel.
    public var modbusDevice: Int? = nil
    public init(signal: AnalogSignal, gun: Int, path: String, scale: Double, offset: Double, filter: TimeSpan = .zero) {
        self.signal = signal; self.gun = gun; self.path = path; self.scale = scale; self.offset = offset; self.filter = filter
    }
    public init(signal: AnalogSignal, gun: Int, device: String, channel: Int, scale: Double, offset: Double, filter: TimeSpan = .zero) {
        self.signal = signal; self.gun = gun; self.path = ""; self.device = device; self.channel = channel
        self.scale = scale; self.offset = offset; self.filter = filter
    }
}

/// A hardware watchdog the control loop kicks: if the loop stops, the board resets and its outputs
/// fall to their hardware-safe state.
public struct WatchdogSpec: Sendable, Equatable {
    public var device: String
    /// Timeout set on the device (WDIOC_SETTIMEOUT), or nil to keep the device's own.
    public var timeout: TimeSpan?
    /// How often the loop kicks it.
    public var kick: TimeSpan
}

/// The contactor coils' supply (`[contactor_supply]`): a charge pump on the board powers every contactor
/// coil driver only while the `coil-pump` line toggles, and holds the supply `hold` after its last edge.
/// The loop flips the line at every write of its outputs, so a controller that dies, hangs or is stopped
/// drops every coil within `hold` whatever its lines were left at (docs/standards.md "A controller that
/// dies"). Software cannot hold a contactor closed on its own: the pump is hardware, and the board file
/// says how long it holds.
public struct ContactorSupplySpec: Sendable, Equatable {
    /// How long the supply holds after the pump's last edge (its RC decay to the coil drivers' dropout).
    public var hold: TimeSpan
    public init(hold: TimeSpan) { self.hold = hold }
}

/// A bench board's local channel with the plant emulator (HIL/README.md "The bench channel").
public struct BenchSpec: Sendable, Equatable {
    /// The shared-memory file both processes map (the emulator creates it).
    public var channel: String
}

extension BoardLoader {
    // Long: the keys of the two sources (IIO, an analog input module on Modbus) checked in file order
    static func analogInputs(_ r: Reader, _ top: Section, guns: Int, modbus: ModbusConfig,
                             maxAge: TimeSpan) throws(BoardFileError) -> [AnalogInputSpec] {
        guard top.table["analog"] != nil else { return [] }
        var out: [AnalogInputSpec] = []
        for a in try r.arrayOfTables(top, "analog") {
            try r.onlyKeys(a, ["signal", "gun", "source", "path", "device", "channel", "scale", "offset", "filter"])
            let text = try r.string(a, "signal")
            guard let signal = AnalogSignal(rawValue: text) else {
                throw r.error(a, "signal", "'\(text)' is not one of \(AnalogSignal.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let gun = try r.integer(a, "gun", range: 0...(guns - 1))
            let source = try r.optionalString(a, "source") ?? "iio"
            guard source == "iio" || source == "modbus" else { throw r.error(a, "source", "'\(source)' is not one of iio, modbus") }
            var path = ""
            var device: String? = nil, channel: Int? = nil
            var module: Int? = nil
            if source == "modbus" {
                for k in ["path", "filter"] where a.table[k] != nil {
                    throw r.error(a, k, k == "path" ? "a modbus channel is named by device and channel" : "a modbus channel is filtered by its module (its own setting), not here")
                }
                let d = try r.string(a, "device")
                guard let m = modbus.devices.firstIndex(where: { $0.role == .analogIn && $0.label == d }) else {
                    let names = modbus.devices.filter { $0.role == .analogIn }.map(\.label)
                    throw r.error(a, "device", "no [[modbus_device]] role \"analog-in\" named '\(d)' (analog-in devices: \(names.isEmpty ? "none" : names.joined(separator: ", ")))")
                }
                let count = modbus.maps[modbus.devices[m].map].channels?.count ?? 0
                channel = try r.integer(a, "channel", range: 0...(count - 1))
                // A value polled every poll_period is up to about that old when the loop reads it, and
                // one late reply must not stop the gun: the bus polls at most every half of analog_max_age.
                let bus = modbus.buses[modbus.devices[m].bus]
                guard bus.pollPeriod * 2 <= maxAge else {
                    throw r.error(a, "device", "'\(d)' is on bus '\(bus.name)', polled every \(bus.pollPeriod.seconds * 1000) ms: too slow for [limits] analog_max_age of \(maxAge.seconds * 1000) ms (E36); at most half of it")
                }
                device = d; module = m
            } else if a.table["device"] != nil || a.table["channel"] != nil {
                guard a.table["path"] == nil else { throw r.error(a, "path", "give either path or device and channel, not both") }
                let d = try r.string(a, "device")
                guard !d.isEmpty, !d.contains("/") else { throw r.error(a, "device", "'\(d)' is not an IIO device name (its name attribute, e.g. \"mcp3208\")") }
                device = d
                channel = try r.integer(a, "channel", range: 0...63)
            } else {
                path = try r.string(a, "path")
                guard path.hasPrefix("/"), path.hasSuffix("_raw") || path.hasSuffix("_input") else {
                    throw r.error(a, "path", "'\(path)' is not an IIO channel file (/sys/bus/iio/devices/iio:deviceN/in_voltageM_raw)")
                }
            }
            guard let scale = try r.quantity(a, "scale", signal.units) else {
                throw r.error(a, "scale", "missing: the quantity of one raw step, e.g. \"0.25 V\"")
            }
            guard scale != 0, scale.isFinite else { throw r.error(a, "scale", "must not be 0") }
            let offset = try r.optionalNumber(a, "offset") ?? 0
            var filter = TimeSpan.zero
            if a.table["filter"] != nil {
                filter = try r.duration(a, "filter", default: .zero, range: .zero...(.s(10)))
                guard filter <= signal.maxFilter else {
                    throw r.error(a, "filter", "\(filter.seconds * 1000) ms is longer than \(text) allows (\(signal.maxFilter.seconds * 1000) ms): a filter delays the rules that read the signal (docs/boards.md \"Analog inputs\")")
                }
            }
            if out.contains(where: { $0.signal == signal && $0.gun == gun }) { throw r.error(a, "signal", "\(text) of gun \(gun) is mapped twice") }
            var spec = AnalogInputSpec(signal: signal, gun: gun, path: path, scale: scale, offset: offset, filter: filter)
            spec.device = device; spec.channel = channel; spec.modbusDevice = module
            out.append(spec)
        }
        return out
    }

    static func watchdog(_ r: Reader, _ top: Section, period: TimeSpan) throws(BoardFileError) -> WatchdogSpec? {
        guard let w = try r.optionalTable(top, "watchdog") else { return nil }
        try r.onlyKeys(w, ["device", "timeout", "kick"])
        let device = try r.string(w, "device")
        guard device.hasPrefix("/") else { throw r.error(w, "device", "'\(device)' is not a device path (/dev/watchdog0)") }
        var timeout: TimeSpan? = nil
        if w.table["timeout"] != nil { timeout = try r.duration(w, "timeout", default: .s(1), range: .s(1)...(.s(60))) }
        let kick = try r.duration(w, "kick", default: .ms(100), range: period...(.s(10)))
        if let timeout, kick * 4 > timeout {
            throw r.error(w, "kick", "\(kick.seconds) s is not well inside the timeout (\(timeout.seconds) s): at most a quarter of it")
        }
        return WatchdogSpec(device: device, timeout: timeout, kick: kick)
    }

    /// `[contactor_supply]` and its `coil-pump` line, each needing the other. The hold covers the loop's
    /// jitter (at least three periods) and, with the contactors' opening time, keeps a dead controller's
    /// contactors within `Standard.deadControllerDisconnect`.
    static func contactorSupply(_ r: Reader, _ top: Section, period: TimeSpan, opening: TimeSpan,
                                gpio: [GPIOLineSpec], emulated: Bool = false) throws(BoardFileError) -> ContactorSupplySpec? {
        let pumped = gpio.contains { $0.signal == .coilPump }
        guard let c = try r.optionalTable(top, "contactor_supply") else {
            if pumped { throw r.error(top, "contactor_supply", "a coil-pump line needs [contactor_supply] (how long the supply holds after its last edge)") }
            return nil
        }
        try r.onlyKeys(c, ["kind", "hold"])
        let kind = try r.string(c, "kind")
        guard kind == "charge-pump" else { throw r.error(c, "kind", "'\(kind)' is not one of charge-pump") }
        guard pumped else { throw r.error(c, "", "a charge pump needs its [[gpio]] line: signal = \"coil-pump\"") }
        // An emulated board (the VM board: its emulator stalls a healthy loop for ~100 ms) may take four
        // times the bound; a charger's board never (docs/standards.md "A controller that dies").
        let bound = emulated ? Standard.deadControllerDisconnect * 4 : Standard.deadControllerDisconnect
        let hold = try r.duration(c, "hold", default: .ms(20), range: .ms(1)...bound)
        guard hold >= period * 3 else {
            throw r.error(c, "hold", "\(hold.seconds * 1000) ms is under three of the loop's \(period.seconds * 1000) ms periods: a healthy loop's jitter would drop the coils")
        }
        guard hold + opening <= bound else {
            throw r.error(c, "hold", "\(hold.seconds * 1000) ms and the contactors' \(opening.seconds * 1000) ms opening time exceed the \(bound.seconds * 1000) ms a dead controller's contactors may stay closed (docs/standards.md \"A controller that dies\"\(emulated ? ", an emulated board's four times it" : ""))")
        }
        return ContactorSupplySpec(hold: hold)
    }

    static func bench(_ r: Reader, _ top: Section, kind: BoardKind) throws(BoardFileError) -> BenchSpec? {
        guard let b = try r.optionalTable(top, "bench") else {
            if kind == .bench { throw r.error(top, "bench", "a bench board needs a [bench] table (its channel to the plant emulator)") }
            return nil
        }
        guard kind == .bench else { throw r.error(b, "", "[bench] belongs to bench boards only") }
        try r.onlyKeys(b, ["channel"])
        let channel = try r.string(b, "channel")
        guard channel.hasPrefix("/"), !channel.hasSuffix("/") else { throw r.error(b, "channel", "'\(channel)' is not a file path (/dev/shm/charger-bench)") }
        return BenchSpec(channel: channel)
    }
}

/// One gun's GB/T 27930 car link on a SocketCAN interface (`[[can]]`).
public struct CANLinkSpec: Sendable, Equatable {
    public var gun: Int
    /// The network interface (can0, vcan0): its bit rate is set where interfaces are configured
    /// (systemd-networkd, `ip link set can0 type can bitrate 250000`), not by the controller.
    public var interface: String
    /// The bit rate the wiring expects (GB/T 27930-2015 §6: 250 kbit/s); checked against the interface's
    /// own when the kernel reports one (a virtual vcan has none).
    public var bitrate: Int = 250_000
    /// J1939 source addresses (docs/standards.md "GB/T 27930 on CAN"): the receive filter passes only
    /// frames from `bmsAddress` to `chargerAddress`.
    public var chargerAddress: UInt8 = 0x56
    public var bmsAddress: UInt8 = 0xF4
    public init(gun: Int, interface: String) { self.gun = gun; self.interface = interface }
}

extension BoardLoader {
    /// `[[can]]`: one car link per gun, each on its own interface.
    static func canLinks(_ r: Reader, _ top: Section, guns: Int, kind: BoardKind) throws(BoardFileError) -> [CANLinkSpec] {
        guard top.table["can"] != nil else { return [] }
        var links: [CANLinkSpec] = []
        for c in try r.arrayOfTables(top, "can") {
            try r.onlyKeys(c, ["gun", "interface", "bitrate", "charger_address", "bms_address"])
            if kind == .sim { throw r.error(c, "", "a sim board's car is the simulated plant's: [[can]] belongs to bench and real boards") }
            let gun = try r.integer(c, "gun", range: 0...(guns - 1))
            let name = try r.string(c, "interface")
            // IFNAMSIZ is 16 with its NUL; a name is one path component of /sys/class/net.
            guard !name.isEmpty, name.utf8.count < 16, !name.contains("/"), !name.contains(" ") else {
                throw r.error(c, "interface", "'\(name)' is not a network interface name (can0, vcan0: 1-15 characters, no '/' or space)")
            }
            var s = CANLinkSpec(gun: gun, interface: name)
            if c.table["bitrate"] != nil {
                s.bitrate = try r.integer(c, "bitrate", range: 10_000...1_000_000)
            }
            if c.table["charger_address"] != nil { s.chargerAddress = UInt8(try r.integer(c, "charger_address", range: 0...253)) }
            if c.table["bms_address"] != nil { s.bmsAddress = UInt8(try r.integer(c, "bms_address", range: 0...253)) }
            guard s.chargerAddress != s.bmsAddress else {
                throw r.error(c, "bms_address", "the BMS and the charger cannot share address \(s.bmsAddress)")
            }
            if let other = links.first(where: { $0.gun == gun }) {
                throw r.error(c, "gun", "gun \(gun) already has its car link on \(other.interface)")
            }
            if let other = links.first(where: { $0.interface == name }) {
                throw r.error(c, "interface", "\(name) already carries gun \(other.gun)'s link: one BMS at 0x\(String(s.bmsAddress, radix: 16, uppercase: true)) per bus")
            }
            links.append(s)
        }
        return links
    }
}
