// The Modbus side of a board file: buses ([[modbus_bus]]), devices on them ([[modbus_device]]) and the
// register maps of each device model ([modbus_map.NAME]). A register map is data: which register holds
// which quantity, in which table, as which type, with which scale, offset and word order. The drivers
// (Sources/FieldBus) and the plant emulator (HIL/emulator) both read the same maps, so a bench speaks
// exactly what the board file says a real device speaks.
import ChargerCore

/// Where a bus is: a Modbus TCP gateway (host, port), or an RTU serial line with its options.
public enum BusTransport: Sendable, Equatable {
    case tcp(host: String, port: Int)
    /// parity "N", "E" or "O".
    case rtu(device: String, baud: Int, parity: Character, dataBits: Int, stopBits: Int, rs485: Bool, rtsToggle: Bool)
}

/// One Modbus link and how it is polled.
public struct ModbusBusSpec: Sendable, Equatable {
    public var name: String
    public var transport: BusTransport
    /// How long a request waits for its reply before it counts as a timeout.
    public var responseTimeout: TimeSpan
    /// The shortest time between two polls of the same device.
    public var pollPeriod: TimeSpan
    /// Failed exchanges in a row after which a device counts as lost (a communication fault).
    public var faultAfter: Int
    /// Module commands are re-sent at least this often even when unchanged: the modules' own watchdog
    /// switches them off when it stops hearing from the controller ([limits] module_self_off_time).
    public var keepalive: TimeSpan
    public init(name: String, transport: BusTransport, responseTimeout: TimeSpan, pollPeriod: TimeSpan, faultAfter: Int, keepalive: TimeSpan) {
        self.name = name; self.transport = transport; self.responseTimeout = responseTimeout
        self.pollPeriod = pollPeriod; self.faultAfter = faultAfter; self.keepalive = keepalive
    }
}

/// module: a rectifier module; meter, imd: a gun's DC meter and insulation monitor; analog-in: an analog
/// input module whose channels carry `[[analog]]` signals (docs/boards.md "Analog inputs").
public enum DeviceRole: String, Sendable, CaseIterable { case module, meter, imd, analogIn = "analog-in" }

public enum RegisterTable: String, Sendable { case holding, input }
public enum RegisterType: String, Sendable { case u16, i16, u32, i32, f32 }
public enum WordOrder: String, Sendable { case highFirst = "high-first", lowFirst = "low-first" }

/// What a register field carries, and so which units its scale may have.
public enum FieldQuantity: Sendable { case voltage, current, temperature, energy, resistance, raw }

/// The named fields a register map may hold.
public enum RegisterFieldName: String, Sendable, CaseIterable {
    case enable, voltageSetpoint = "voltage_setpoint", currentSetpoint = "current_setpoint"
    case voltage, current, temperature, status, energy
    case resistancePlus = "resistance_plus", resistanceMinus = "resistance_minus"
    case selftest, selftestResult = "selftest_result"
    /// V2G: a bidirectional module's direction (0 forward, 1 reverse) and reverse current setpoint (a
    /// magnitude); a meter's export energy register.
    case direction, reverseCurrentSetpoint = "reverse_current_setpoint", exportEnergy = "export_energy"

    public var quantity: FieldQuantity {
        switch self {
        case .voltageSetpoint, .voltage: .voltage
        case .currentSetpoint, .current, .reverseCurrentSetpoint: .current
        case .temperature: .temperature
        case .energy, .exportEnergy: .energy
        case .resistancePlus, .resistanceMinus: .resistance
        case .enable, .status, .selftest, .selftestResult, .direction: .raw
        }
    }
    /// Written by the controller (commands); the others are read (measurements).
    public var isCommand: Bool {
        self == .enable || self == .voltageSetpoint || self == .currentSetpoint || self == .selftest || self == .direction
            || self == .reverseCurrentSetpoint
    }

    /// Required and optional fields of each device role.
    public static func required(_ role: DeviceRole) -> [RegisterFieldName] {
        switch role {
        case .module: [.enable, .voltageSetpoint, .currentSetpoint, .voltage, .current, .temperature, .status]
        case .meter: [.voltage, .current, .energy]
        case .imd: [.resistancePlus, .resistanceMinus, .status, .selftest, .selftestResult]
        case .analogIn: []
        }
    }
    public static func optional(_ role: DeviceRole) -> [RegisterFieldName] {
        switch role {
        case .module: [.direction, .reverseCurrentSetpoint]
        case .meter: [.status, .exportEnergy]
        case .imd: [.enable]
        case .analogIn: []
        }
    }
}

/// One quantity in one register (or two): value = raw × scale + offset, in SI units (V, A, °C, Wh, Ω).
public struct RegisterField: Sendable, Equatable {
    public var table: RegisterTable
    public var address: Int
    public var type: RegisterType
    public var scale: Double
    public var offset: Double
    public var wordOrder: WordOrder
    public init(table: RegisterTable, address: Int, type: RegisterType, scale: Double = 1, offset: Double = 0, wordOrder: WordOrder = .highFirst) {
        self.table = table; self.address = address; self.type = type; self.scale = scale; self.offset = offset; self.wordOrder = wordOrder
    }

    public var words: Int { type == .u16 || type == .i16 ? 1 : 2 }

    /// The value from its register words (`hi`/`lo` as they sit at address and address+1).
    public func decode(_ first: UInt16, _ second: UInt16 = 0) -> Double {
        let (hi, lo) = wordOrder == .highFirst ? (first, second) : (second, first)
        let bits = UInt32(hi) << 16 | UInt32(lo)
        let raw: Double
        switch type {
        case .u16: raw = Double(first)
        case .i16: raw = Double(Int16(bitPattern: first))
        case .u32: raw = Double(bits)
        case .i32: raw = Double(Int32(bitPattern: bits))
        case .f32: raw = Double(Float(bitPattern: bits))
        }
        return raw * scale + offset
    }

    /// The register words for `value` (in wire order), or nil when it cannot be represented (out of the
    /// type's range, or not a number): the caller refuses to send it.
    public func encode(_ value: Double) -> (UInt16, UInt16)? {
        guard value.isFinite, scale != 0 else { return nil }
        let raw = (value - offset) / scale
        let bits: UInt32
        switch type {
        case .u16:
            let r = raw.rounded()
            guard r >= 0 && r <= Double(UInt16.max) else { return nil }
            return (UInt16(r), 0)
        case .i16:
            let r = raw.rounded()
            guard r >= Double(Int16.min) && r <= Double(Int16.max) else { return nil }
            return (UInt16(bitPattern: Int16(r)), 0)
        case .u32:
            let r = raw.rounded()
            guard r >= 0 && r <= Double(UInt32.max) else { return nil }
            bits = UInt32(r)
        case .i32:
            let r = raw.rounded()
            guard r >= Double(Int32.min) && r <= Double(Int32.max) else { return nil }
            bits = UInt32(bitPattern: Int32(r))
        case .f32:
            guard abs(raw) <= Double(Float.greatestFiniteMagnitude) else { return nil }
            bits = Float(raw).bitPattern
        }
        let hi = UInt16(bits >> 16), lo = UInt16(bits & 0xFFFF)
        return wordOrder == .highFirst ? (hi, lo) : (lo, hi)
    }
}

/// An analog input module's channels: `count` raw values in consecutive registers from `address`, and
/// where the module has one, a status register per channel (0: the value is good; anything else, e.g. an
/// open input or a value out of range, and the value is not used).
public struct AnalogChannels: Sendable, Equatable {
    /// The most channels one module may have (the poller's fixed-size reading).
    public static let maxCount = 16
    public var table: RegisterTable
    public var address: Int
    public var count: Int
    /// u16 or i16: one register a channel.
    public var type: RegisterType
    public var statusTable: RegisterTable? = nil
    public var statusAddress: Int? = nil
    public init(table: RegisterTable, address: Int, count: Int, type: RegisterType) {
        self.table = table; self.address = address; self.count = count; self.type = type
    }
    /// Channel `k`'s raw value from its register.
    public func raw(_ word: UInt16) -> Double { type == .i16 ? Double(Int16(bitPattern: word)) : Double(word) }
}

/// A device model's register map.
public struct RegisterMap: Sendable, Equatable {
    public var name: String
    public var role: DeviceRole
    public var fields: [RegisterFieldName: RegisterField]
    /// Module: status bits that mean "faulted". IMD: status bits that mean "alarm". Meter: "error".
    public var faultMask: UInt16
    /// IMD self-test result codes (selftest_result).
    public var selftestRunning: UInt16 = 1
    public var selftestPassed: UInt16 = 2
    public var selftestFailed: UInt16 = 3
    /// An analog input module's channels (role analog-in; its only fields).
    public var channels: AnalogChannels? = nil

    /// The read fields grouped into as few requests as the protocol allows: runs of one table, at most
    /// 125 registers each, reading through gaps of up to 8 unused registers.
    public var readRuns: [RegisterRun] {
        if let c = channels {
            // The values and their statuses in one request where one can hold both (one snapshot, half the
            // exchanges): the E1240's 0-7 and 60-67 are one read of 68 registers.
            let values = RegisterRun(table: c.table, address: c.address, count: c.count, fields: [])
            guard let t = c.statusTable, let a = c.statusAddress else { return [values] }
            let lo = min(a, c.address), hi = max(a, c.address) + c.count
            if t == c.table && hi - lo <= 125 { return [RegisterRun(table: t, address: lo, count: hi - lo, fields: [])] }
            return [values, RegisterRun(table: t, address: a, count: c.count, fields: [])]
        }
        return Self.runs(fields.filter { !$0.key.isCommand }, maxGap: 8)
    }
    /// The command fields grouped into write requests (function 16): runs without gaps only, since a
    /// write through a gap would overwrite registers the map does not describe.
    public var writeRuns: [RegisterRun] { Self.runs(fields.filter { $0.key.isCommand }, maxGap: 0) }

    static func runs(_ f: [RegisterFieldName: RegisterField], maxGap: Int) -> [RegisterRun] {
        var out: [RegisterRun] = []
        for table in [RegisterTable.holding, .input] {
            let sorted = f.filter { $0.value.table == table }.sorted { $0.value.address < $1.value.address }
            for (name, field) in sorted {
                if var last = out.last, last.table == table,
                   field.address - (last.address + last.count) <= maxGap,
                   field.address + field.words - last.address <= 125 {
                    last.count = max(last.count, field.address + field.words - last.address)
                    last.fields.append(name)
                    out[out.count - 1] = last
                } else {
                    out.append(RegisterRun(table: table, address: field.address, count: field.words, fields: [name]))
                }
            }
        }
        return out
    }
}

/// One request's worth of registers.
public struct RegisterRun: Sendable, Equatable {
    public var table: RegisterTable
    public var address: Int
    public var count: Int
    public var fields: [RegisterFieldName]
}

/// One device on a bus: which module (or which gun's meter or IMD) it is, its unit id and its map.
public struct ModbusDeviceSpec: Sendable, Equatable {
    public var role: DeviceRole
    /// Module index (modules), gun index (meter, IMD), or the analog input module's place among them.
    public var index: Int
    /// An analog input module's name, which `[[analog]]` channels give as their `device`.
    public var label = ""
    public var bus: Int
    public var unit: Int
    public var map: Int
    public init(role: DeviceRole, index: Int, bus: Int, unit: Int, map: Int) {
        self.role = role; self.index = index; self.bus = bus; self.unit = unit; self.map = map
    }
    /// "module 0", "meter gun 0", "imd gun 1".
    public var name: String {
        switch role {
        case .module: "module \(index)"
        case .analogIn: "analog-in \(label)"
        default: "\(role.rawValue) gun \(index)"
        }
    }
}

/// Everything Modbus of a board.
public struct ModbusConfig: Sendable, Equatable {
    public var buses: [ModbusBusSpec] = []
    public var devices: [ModbusDeviceSpec] = []
    public var maps: [RegisterMap] = []
    /// The maps that came from the device library (DeviceLibrary), in the order devices named them.
    public var libraryMaps: [String] = []
    public init() {}
    public var isEmpty: Bool { devices.isEmpty }
    public func device(_ role: DeviceRole, _ index: Int) -> ModbusDeviceSpec? {
        devices.first { $0.role == role && $0.index == index }
    }
}

extension BoardLoader {
    // Long: the [modbus_bus], [modbus_device] and [modbus_map] tables read in file order, each key's error
    // naming file and key; the cross-checks between the tables need them all in scope
    static func modbusConfig(_ r: Reader, _ top: Section, guns: Int, modules: Int, selfOff: TimeSpan,
                             commTimeouts: [DeviceRole: TimeSpan], readingMaxAge: TimeSpan = .ms(100)) throws(BoardFileError) -> ModbusConfig {
        var config = ModbusConfig()
        if top.table["modbus_bus"] == nil && top.table["modbus_device"] == nil && top.table["modbus_map"] == nil { return config }

        // Maps first: devices name them (the board's own; then the device library's, as devices name them).
        if let mapsTable = try r.optionalTable(top, "modbus_map") {
            for name in mapsTable.table.keys.sorted() {
                config.maps.append(try registerMap(r, try r.table(mapsTable, name), name: name))
            }
        }

        for b in try r.arrayOfTables(top, "modbus_bus") {
            try r.onlyKeys(b, ["name", "transport", "host", "port", "device", "baud", "parity", "data_bits", "stop_bits", "rs485",
                               "rts_toggle", "response_timeout", "poll_period", "fault_after", "keepalive"])
            let name = try r.string(b, "name")
            guard !name.isEmpty else { throw r.error(b, "name", "must not be empty") }
            if config.buses.contains(where: { $0.name == name }) { throw r.error(b, "name", "bus '\(name)' is defined twice") }
            let kind = try r.string(b, "transport")
            let transport: BusTransport
            switch kind {
            case "tcp":
                for k in ["device", "baud", "parity", "data_bits", "stop_bits", "rs485", "rts_toggle"] where b.table[k] != nil {
                    throw r.error(b, k, "a tcp bus has no '\(k)' (that is an rtu option)")
                }
                let host = try r.string(b, "host")
                guard !host.isEmpty, !host.contains(" ") else { throw r.error(b, "host", "'\(host)' is not a host name or address") }
                transport = .tcp(host: host, port: try r.integer(b, "port", range: 1...65535))
            case "rtu":
                for k in ["host", "port"] where b.table[k] != nil { throw r.error(b, k, "an rtu bus has no '\(k)' (that is a tcp option)") }
                let device = try r.string(b, "device")
                guard device.hasPrefix("/") else { throw r.error(b, "device", "'\(device)' is not a device path (/dev/ttyAMA0, /dev/ttyUSB0)") }
                let baud = try r.integer(b, "baud", range: 1200...921_600)
                guard [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115_200, 230_400, 460_800, 921_600].contains(baud) else {
                    throw r.error(b, "baud", "\(baud) is not a standard rate (9600, 19200, 38400, 57600, 115200, ...)")
                }
                let parityText = try r.optionalString(b, "parity") ?? "none"
                guard let parity = ["none": Character("N"), "even": "E", "odd": "O"][parityText] else {
                    throw r.error(b, "parity", "'\(parityText)' is not one of none, even, odd")
                }
                let dataBits = b.table["data_bits"] == nil ? 8 : try r.integer(b, "data_bits", range: 7...8)
                let stopBits = b.table["stop_bits"] == nil ? 1 : try r.integer(b, "stop_bits", range: 1...2)
                transport = .rtu(device: device, baud: baud, parity: parity, dataBits: dataBits, stopBits: stopBits,
                                 rs485: try r.optionalBool(b, "rs485") ?? false, rtsToggle: try r.optionalBool(b, "rts_toggle") ?? false)
            default:
                throw r.error(b, "transport", "'\(kind)' is not one of tcp, rtu")
            }
            let timeout = try r.duration(b, "response_timeout", default: .ms(100), range: .ms(5)...(.s(5)))
            // 50 ms when not given: a reading then counts as the current now under the default reading_max_age.
            let poll = try r.duration(b, "poll_period", default: .ms(50), range: .ms(1)...(.s(10)))
            let faultAfter = b.table["fault_after"] == nil ? 3 : try r.integer(b, "fault_after", range: 1...100)
            let keepalive = try r.duration(b, "keepalive", default: .ms(200), range: .ms(10)...(.s(60)))
            // "Well inside" the modules' own timeout: four keep-alives before a module gives up.
            guard keepalive * 4 <= selfOff else {
                throw r.error(b, "keepalive", "\(keepalive.seconds) s is not well inside the modules' own timeout ([limits] module_self_off_time \(selfOff.seconds) s): at most a quarter of it")
            }
            config.buses.append(ModbusBusSpec(name: name, transport: transport, responseTimeout: timeout, pollPeriod: poll,
                                              faultAfter: faultAfter, keepalive: keepalive))
        }

        for d in try r.arrayOfTables(top, "modbus_device") {
            try r.onlyKeys(d, ["role", "module", "gun", "name", "bus", "unit", "map"])
            let roleText = try r.string(d, "role")
            guard let role = DeviceRole(rawValue: roleText) else {
                throw r.error(d, "role", "'\(roleText)' is not one of \(DeviceRole.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let index: Int
            var label = ""
            if role == .analogIn {
                for k in ["module", "gun"] where d.table[k] != nil { throw r.error(d, k, "an analog-in device has a name, not a \(k) (its channels say which gun they serve)") }
                label = try r.string(d, "name")
                guard !label.isEmpty, label.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
                    throw r.error(d, "name", "'\(label)' is not a name (letters, digits, - and _)")
                }
                if config.devices.contains(where: { $0.role == .analogIn && $0.label == label }) { throw r.error(d, "name", "analog-in '\(label)' is defined twice") }
                index = config.devices.filter { $0.role == .analogIn }.count
            } else if role == .module {
                if d.table["gun"] != nil { throw r.error(d, "gun", "a module device names its module, not a gun") }
                index = try r.integer(d, "module", range: 0...(modules - 1))
            } else {
                if d.table["name"] != nil { throw r.error(d, "name", "only an analog-in device has a name") }
                if d.table["module"] != nil { throw r.error(d, "module", "a \(role.rawValue) device names its gun, not a module") }
                index = try r.integer(d, "gun", range: 0...(guns - 1))
            }
            let busName = try r.string(d, "bus")
            guard let bus = config.buses.firstIndex(where: { $0.name == busName }) else {
                throw r.error(d, "bus", "no [[modbus_bus]] named '\(busName)' (buses: \(config.buses.map(\.name).joined(separator: ", ")))")
            }
            let unit = try r.integer(d, "unit", range: 1...247)
            let mapName = try r.string(d, "map")
            if !config.maps.contains(where: { $0.name == mapName }), let m = try DeviceLibrary.map(mapName) {
                config.maps.append(m)
                config.libraryMaps.append(mapName)
            }
            guard let map = config.maps.firstIndex(where: { $0.name == mapName }) else {
                let own = config.maps.filter { !config.libraryMaps.contains($0.name) }.map(\.name)
                throw r.error(d, "map", "no [modbus_map.\(mapName)] in the board and no device file '\(mapName)' in the library"
                              + " (the board's maps: \(own.isEmpty ? "none" : own.joined(separator: ", ")); devices: \(DeviceLibrary.names.joined(separator: ", ")))")
            }
            guard config.maps[map].role == role else {
                throw r.error(d, "map", "'\(mapName)' is a \(config.maps[map].role.rawValue) map, not a \(role.rawValue) map")
            }
            var spec = ModbusDeviceSpec(role: role, index: index, bus: bus, unit: unit, map: map)
            spec.label = label
            if let other = config.devices.first(where: { $0.bus == bus && $0.unit == unit }) {
                throw r.error(d, "unit", "unit \(unit) on bus '\(busName)' is already \(other.name)")
            }
            if config.devices.contains(where: { $0.role == role && $0.index == index }) { throw r.error(d, "role", "\(spec.name) is defined twice") }
            // A poll must come round well inside the core's communication timeout for the role.
            if let t = commTimeouts[role], config.buses[bus].pollPeriod * 2 > t {
                throw r.error(d, "bus", "bus '\(busName)' polls every \(config.buses[bus].pollPeriod.seconds) s: too slow for the \(role.rawValue)'s communication timeout of \(t.seconds) s ([limits]); at most half of it")
            }
            // A meter's or module's reading must be able to count as the current now (standards.md
            // "Fault reactions": a stop opens, and the current is judged against its command, only on one).
            if (role == .module || role == .meter) && config.buses[bus].pollPeriod * 2 > readingMaxAge {
                throw r.error(d, "bus", "bus '\(busName)' polls every \(config.buses[bus].pollPeriod.seconds) s: too slow for [limits] reading_max_age of \(readingMaxAge.seconds) s (the \(role.rawValue)'s readings would never count as the current now); at most half of it")
            }
            config.devices.append(spec)
        }
        // Every module and every gun's meter and IMD is somewhere.
        for m in 0..<modules where config.device(.module, m) == nil { throw r.error(top, "modbus_device", "no device for module \(m)") }
        for g in 0..<guns {
            for role in [DeviceRole.meter, .imd] where config.device(role, g) == nil {
                throw r.error(top, "modbus_device", "no \(role.rawValue) device for gun \(g)")
            }
        }
        return config
    }

    /// A device file of the library (DeviceLibrary): a register map at its top level. Its errors name the
    /// device file and the key.
    package static func libraryMap(_ name: String, text: String) throws(BoardFileError) -> RegisterMap {
        let file = DeviceLibrary.path(name)
        return try registerMap(Reader(file: file), try topSection(text, file: file), name: name)
    }

    /// One register map ([modbus_map.NAME], or a device file's top level): its role, word order, fault
    /// mask and fields, each checked against the role.
    static func registerMap(_ r: Reader, _ m: Section, name: String) throws(BoardFileError) -> RegisterMap {
        try r.onlyKeys(m, ["role", "word_order", "fault_mask", "selftest_running", "selftest_passed", "selftest_failed", "channels", "channel_status"]
                          + RegisterFieldName.allCases.map(\.rawValue))
        let roleText = try r.string(m, "role")
        guard let role = DeviceRole(rawValue: roleText) else {
            throw r.error(m, "role", "'\(roleText)' is not one of \(DeviceRole.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let orderText = try r.optionalString(m, "word_order") ?? WordOrder.highFirst.rawValue
        guard let order = WordOrder(rawValue: orderText) else { throw r.error(m, "word_order", "'\(orderText)' is not one of high-first, low-first") }
        var map = RegisterMap(name: name, role: role, fields: [:], faultMask: 0)
        if role == .analogIn {
            map.channels = try analogChannels(r, m)
            return map
        }
        for k in ["channels", "channel_status"] where m.table[k] != nil { throw r.error(m, k, "only an analog-in map has \(k)") }
        let allowed = RegisterFieldName.required(role) + RegisterFieldName.optional(role)
        for f in RegisterFieldName.allCases where m.table[f.rawValue] != nil {
            guard allowed.contains(f) else {
                throw r.error(m, f.rawValue, "a \(role.rawValue) map has no '\(f.rawValue)' (allowed: \(allowed.map(\.rawValue).joined(separator: ", ")))")
            }
            map.fields[f] = try registerField(r, try r.table(m, f.rawValue), f, order: order)
        }
        for f in RegisterFieldName.required(role) where map.fields[f] == nil {
            throw r.error(m, f.rawValue, "missing: a \(role.rawValue) map needs \(RegisterFieldName.required(role).map(\.rawValue).joined(separator: ", "))")
        }
        // A bidirectional module's map: its direction and its reverse setpoint, both or neither.
        if (map.fields[.direction] == nil) != (map.fields[.reverseCurrentSetpoint] == nil) {
            let missing: RegisterFieldName = map.fields[.direction] == nil ? .direction : .reverseCurrentSetpoint
            throw r.error(m, missing.rawValue, "missing: a bidirectional module map needs both direction and reverse_current_setpoint")
        }
        if role == .module || role == .imd || m.table["fault_mask"] != nil {
            map.faultMask = UInt16(try r.integer(m, "fault_mask", range: 1...0xFFFF))
        }
        if role == .imd {
            if m.table["selftest_running"] != nil { map.selftestRunning = UInt16(try r.integer(m, "selftest_running", range: 0...0xFFFF)) }
            if m.table["selftest_passed"] != nil { map.selftestPassed = UInt16(try r.integer(m, "selftest_passed", range: 0...0xFFFF)) }
            if m.table["selftest_failed"] != nil { map.selftestFailed = UInt16(try r.integer(m, "selftest_failed", range: 0...0xFFFF)) }
            guard Set([map.selftestRunning, map.selftestPassed, map.selftestFailed]).count == 3 else {
                throw r.error(m, "selftest_failed", "selftest_running, selftest_passed and selftest_failed must differ")
            }
        }
        // Two fields in the same register would make one of them a lie.
        // In file order of the field names where two start at the same register, so the error is stable.
        let rank = RegisterFieldName.allCases
        let placed = map.fields.sorted { (a, b) -> Bool in
            let ra = rank.firstIndex(of: a.key)!, rb = rank.firstIndex(of: b.key)!
            return (a.value.table.rawValue, a.value.address, ra) < (b.value.table.rawValue, b.value.address, rb)
        }
        for (a, b) in zip(placed, placed.dropFirst()) where a.value.table == b.value.table && a.value.address + a.value.words > b.value.address {
            throw r.error(m, b.key.rawValue, "register \(b.value.address) overlaps '\(a.key.rawValue)' (\(a.value.address), \(a.value.words) word(s))")
        }
        return map
    }

    /// An analog-in map: `channels = { table, address, count, type }` and, where the module has them,
    /// `channel_status = { table, address }` (one register a channel, 0 when its value is good).
    static func analogChannels(_ r: Reader, _ m: Section) throws(BoardFileError) -> AnalogChannels {
        for k in RegisterFieldName.allCases.map(\.rawValue) + ["fault_mask", "selftest_running", "selftest_passed", "selftest_failed"] where m.table[k] != nil {
            throw r.error(m, k, "an analog-in map has channels and channel_status only")
        }
        guard m.table["channels"] != nil else { throw r.error(m, "channels", "missing: an analog-in map needs channels = { table, address, count, type }") }
        let c = try r.table(m, "channels")
        try r.onlyKeys(c, ["table", "address", "count", "type"])
        let tableText = try r.optionalString(c, "table") ?? "input"
        guard let table = RegisterTable(rawValue: tableText) else { throw r.error(c, "table", "'\(tableText)' is not one of holding, input") }
        let count = try r.integer(c, "count", range: 1...AnalogChannels.maxCount)
        let address = try r.integer(c, "address", range: 0...(65536 - count))
        let typeText = try r.optionalString(c, "type") ?? "u16"
        guard let type = RegisterType(rawValue: typeText), type == .u16 || type == .i16 else {
            throw r.error(c, "type", "'\(typeText)' is not one of u16, i16 (a channel's raw value in one register)")
        }
        var out = AnalogChannels(table: table, address: address, count: count, type: type)
        if m.table["channel_status"] != nil {
            let st = try r.table(m, "channel_status")
            try r.onlyKeys(st, ["table", "address"])
            let t = try r.optionalString(st, "table") ?? "input"
            guard let stable = RegisterTable(rawValue: t) else { throw r.error(st, "table", "'\(t)' is not one of holding, input") }
            let a = try r.integer(st, "address", range: 0...(65536 - count))
            if stable == table && a < address + count && address < a + count {
                throw r.error(st, "address", "registers \(a)-\(a + count - 1) overlap the channels' \(address)-\(address + count - 1)")
            }
            out.statusTable = stable; out.statusAddress = a
        }
        return out
    }

    static func registerField(_ r: Reader, _ s: Section, _ name: RegisterFieldName, order: WordOrder) throws(BoardFileError) -> RegisterField {
        try r.onlyKeys(s, ["table", "address", "type", "scale", "offset", "word_order"])
        let tableText = try r.optionalString(s, "table") ?? "holding"
        guard let table = RegisterTable(rawValue: tableText) else { throw r.error(s, "table", "'\(tableText)' is not one of holding, input") }
        if name.isCommand && table != .holding { throw r.error(s, "table", "'\(name.rawValue)' is written, so it must be a holding register") }
        let address = try r.integer(s, "address", range: 0...65535)
        let typeText = try r.optionalString(s, "type") ?? "u16"
        guard let type = RegisterType(rawValue: typeText) else { throw r.error(s, "type", "'\(typeText)' is not one of u16, i16, u32, i32, f32") }
        let orderText = try r.optionalString(s, "word_order") ?? order.rawValue
        guard let wordOrder = WordOrder(rawValue: orderText) else { throw r.error(s, "word_order", "'\(orderText)' is not one of high-first, low-first") }
        var field = RegisterField(table: table, address: address, type: type, wordOrder: wordOrder)
        guard address + field.words - 1 <= 65535 else { throw r.error(s, "address", "\(type.rawValue) at \(address) runs past register 65535") }
        let units: UnitTable
        switch name.quantity {
        case .voltage: units = .voltage
        case .current: units = .current
        case .temperature: units = .temperature
        case .energy: units = .energy
        case .resistance: units = .resistance
        case .raw:
            for k in ["scale", "offset"] where s.table[k] != nil { throw r.error(s, k, "'\(name.rawValue)' is a raw code: no \(k)") }
            if type == .f32 { throw r.error(s, "type", "'\(name.rawValue)' is a raw code: an integer type") }
            return field
        }
        guard let scale = try r.quantity(s, "scale", UnitTable("\(name.quantity) per register step", units.units)) else {
            throw r.error(s, "scale", "missing: the value of one register step with its unit (e.g. \"\(name.quantity == .energy ? "0.001 kWh" : "0.1 " + (units.units.keys.sorted().first ?? ""))\")")
        }
        guard scale != 0 else { throw r.error(s, "scale", "must not be 0") }
        field.scale = scale
        field.offset = try r.quantity(s, "offset", UnitTable("\(name.quantity)", units.units)) ?? 0
        return field
    }
}

extension ModbusConfig {
    /// Time on the wire of one poll of every device of RTU bus `bus`, from frame sizes (not measured):
    /// each read run is a request of 8 bytes and a reply of 5 + 2n; each write run a request of 9 + 2n
    /// and a reply of 8; every frame is followed by 3.5 characters of silence; a character is 1 start bit,
    /// the data bits, the parity bit if any and the stop bits. Returns (reads, writes) in seconds.
    public func rtuWireTime(bus: Int) -> (reads: Double, writes: Double)? {
        guard case .rtu(_, let baud, let parity, let dataBits, let stopBits, _, _) = buses[bus].transport else { return nil }
        let bitsPerChar = Double(1 + dataBits + (parity == "N" ? 0 : 1) + stopBits)
        let charTime = bitsPerChar / Double(baud)
        var reads = 0.0, writes = 0.0
        for d in devices where d.bus == bus {
            let map = maps[d.map]
            for run in map.readRuns { reads += (Double(8 + 5 + 2 * run.count) + 7) * charTime }
            for run in map.writeRuns { writes += (Double(9 + 2 * run.count + 8) + 7) * charTime }
        }
        return (reads, writes)
    }
}

extension ModbusConfig {
    /// How long a module command takes to show in the readings, in wall time: it waits up to one poll
    /// period and one round of the bus to be sent, and the result up to as long to be read back (module
    /// and meter). A round is the RTU wire time from frame sizes, or 1 ms per device on TCP (a loopback
    /// or LAN exchange measured well under that). The largest over the buses of modules and meters.
    public var commandLatency: TimeSpan {
        var worst = TimeSpan.zero
        for (b, bus) in buses.enumerated() where devices.contains(where: { $0.bus == b && ($0.role == .module || $0.role == .meter) }) {
            let round: TimeSpan
            if let w = rtuWireTime(bus: b) { round = .seconds(w.reads + w.writes) }
            else { round = .ms(Int64(devices.filter { $0.bus == b }.count)) }
            worst = max(worst, (bus.pollPeriod + round) * 2)
        }
        return worst
    }
}
