// Board files: a board is data (PX4, Zephyr). TOML, validated on load: unknown keys, missing keys,
// wrong types, wrong units and impossible values are refused with the file, the key and why.
// Quantities are strings with their unit ("750 V", "60 kW", "200 A", "70 °C", "200 ms").
import ChargerCore
import TOMLKit
#if canImport(Glibc)
import Glibc
#endif

public enum BoardKind: String, Sendable { case sim, bench, real }

/// A loaded, validated board.
/// `[console]`: the UART the technician's console is served on (115200 8N1 unless said otherwise).
public struct ConsoleSpec: Sendable, Equatable {
    public var device: String
    public var baud = 115_200
    public var parity = "N"
    public var stopBits = 1
    public var rtsCts = false
}

/// `[storage]`: the journal's directory on the board's storage, its file size and how many files to keep.
public struct StorageSpec: Sendable, Equatable {
    public var journal: String
    public var journalMaxKB = 1024
    public var journalFiles = 8
}

/// `[plant]`: the physical model a sim board's simulator and a bench board's emulator run. Plain values;
/// the plant builds its own parameters from them. The defaults are the board file's.
public struct PlantSpec: Sendable, Equatable {
    public var contactorCloseDelay: TimeSpan = .ms(30)
    public var contactorOpenDelay: TimeSpan = .ms(20)
    public var lockTime: TimeSpan = .ms(400)
    public var moduleTimeConstant: TimeSpan = .ms(10)
    public var busTimeConstant: TimeSpan = .ms(60)
    public var dischargeTimeConstant: TimeSpan = .ms(120)
    public var ambient = Celsius(25)
    public var thermalRiseAtRated = Celsius(35)
    public var thermalTimeConstant: TimeSpan = .s(600)
    public var insulation = Ohms(20_000_000)
    public var imdPeriod: TimeSpan = .ms(500)
    public var imdSelfTestTime: TimeSpan = .s(2)
    public init() {}
}

/// `[runtime]`: how the real-time loop is scheduled (the runtime builds its loop settings from it).
public struct RuntimeSpec: Sendable, Equatable {
    /// SCHED_FIFO priority 1–99; 0 runs under the normal scheduler on purpose.
    public var priority: Int32 = 80
    /// CPU to pin the loop to, or nil.
    public var cpu: Int? = nil
    /// mlockall before starting.
    public var lockMemory = true
    /// More missed deadlines in a row than this is a fault (E29).
    public var missLimit = 3
    public init() {}
}

public struct Board: Sendable {
    public var name: String
    public var description: String
    public var kind: BoardKind
    /// A real board that runs under emulation (`[board] emulated = true`: the VM board in the qemu
    /// guest): its real-time bounds may exceed a charger's (analog_max_age), and chargerd says so at start.
    public var emulated = false
    public var path: String
    /// FNV-1a 64 of the file's bytes, shown by `version` so a technician knows which file runs.
    public var checksum: String
    public var spec: StationSpec
    /// Plant model of a simulated board (absent on real boards).
    public var plant: PlantSpec?
    /// The real-time loop: priority, CPU, memory locking, miss limit (its period is `spec.period`).
    public var runtime: RuntimeSpec
    /// The GPIO map (real and bench boards; empty on sim boards, whose signals are the plant's).
    public var gpio: [GPIOLineSpec] = []
    /// Modbus buses, devices and register maps (real and bench boards).
    public var modbus = ModbusConfig()
    /// Analog inputs (IIO channels) of a real board.
    public var analog: [AnalogInputSpec] = []
    /// The hardware watchdog the loop kicks, if the board has one.
    public var watchdog: WatchdogSpec? = nil
    /// A bench board's channel to the plant emulator.
    public var bench: BenchSpec? = nil
    /// The technician's serial console (`[console]`): UART path and line settings; nil: none on the board.
    public var console: ConsoleSpec? = nil
    /// Where the journal lives on the board's storage (`[storage]`); nil: none configured.
    public var storage: StorageSpec? = nil
    /// The car links on CAN, one per gun that has one (`[[can]]`); a gun without one has no car link on
    /// a real board and the bench channel's on a bench board.
    public var can: [CANLinkSpec] = []
    /// The contactor coils' charge-pumped supply (`[contactor_supply]`), if the board has one.
    public var contactorSupply: ContactorSupplySpec? = nil
}

public struct BoardFileError: Error, CustomStringConvertible, Equatable {
    public var file: String
    public var key: String
    public var why: String
    public var description: String { key.isEmpty ? "\(file): \(why)" : "\(file): \(key): \(why)" }
    public init(file: String, key: String, why: String) { self.file = file; self.key = key; self.why = why }
}

public enum BoardLoader {
    /// Reads and validates the board file at `path`.
    public static func load(path: String) throws(BoardFileError) -> Board {
        let (text, bytes) = try readText(path)
        var board = try parse(text, file: path)
        board.checksum = fnv1a(bytes + DeviceLibrary.checksumBytes(board.modbus.libraryMaps))
        return board
    }

    /// A configuration file's text and bytes: a regular file, readable, UTF-8 (board and site files).
    package static func readText(_ path: String) throws(BoardFileError) -> (String, [UInt8]) {
        var st = stat()
        if stat(path, &st) == 0 && (st.st_mode & S_IFMT) != S_IFREG {
            throw BoardFileError(file: path, key: "", why: "not a regular file")
        }
        guard let bytes = readFile(path) else {
            throw BoardFileError(file: path, key: "", why: "cannot read the file (\(String(cString: strerror(errno))))")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw BoardFileError(file: path, key: "", why: "not UTF-8 text")
        }
        return (text, bytes)
    }

    /// The TOML document's top table, a syntax error named with its line and column.
    package static func topSection(_ text: String, file: String) throws(BoardFileError) -> Section {
        if let r = TOMLGuard.check(text) { throw BoardFileError(file: file, key: "", why: "TOML refused at \(r)") }
        do { return Section(table: try TOMLTable(string: text), path: "") }
        catch let e as TOMLParseError {
            throw BoardFileError(file: file, key: "", why: "TOML syntax error at line \(e.source.begin.line), column \(e.source.begin.column): \(e.description)")
        } catch {
            throw BoardFileError(file: file, key: "", why: "TOML syntax error: \(error)")
        }
    }

    /// Parses and validates board-file text; `file` names it in errors. One function per table, in the
    /// order the checks have always run (the first error found is the one reported).
    public static func parse(_ text: String, file: String) throws(BoardFileError) -> Board {
        let r = Reader(file: file)
        let top = try topSection(text, file: file)
        try r.onlyKeys(top, ["board", "limits", "runtime", "gun", "modules", "gpio", "plant", "modbus_bus", "modbus_device",
                             "modbus_map", "analog", "watchdog", "bench", "console", "storage", "can", "metering", "contactor_supply"])
        let head = try boardTable(r, top)
        let kind = head.kind
        let timing = try limitsTable(r, top, period: head.period, emulated: head.emulated)
        let runtime = try runtimeTable(r, top)
        let guns = try gunTables(r, top)
        let modules = try moduleTables(r, top, guns: guns.count)
        let gpio = try gpioMap(r, top, guns: guns.count, modules: modules)
        try requireRealBoardLines(r, top, kind: kind, gpio: gpio, guns: guns.count)
        try requireSelfTestLines(r, top, kind: kind, gpio: gpio, guns: guns)
        let modbus = try modbusConfig(r, top, guns: guns.count, modules: modules.count, selfOff: timing.selfOff,
                                      commTimeouts: [.module: timing.module, .meter: timing.meter, .imd: timing.imd],
                                      readingMaxAge: timing.readingAge)
        if kind != .sim && modbus.isEmpty {
            throw r.error(top, "modbus_device", "a \(kind.rawValue) board needs its Modbus devices ([[modbus_bus]], [[modbus_device]], and [modbus_map.NAME] or a device file of the library)")
        }
        if kind == .sim && !modbus.isEmpty {
            throw r.error(top, "modbus_device", "a sim board's devices are the simulated plant's; Modbus devices belong to bench and real boards")
        }
        // V2G: a bidirectional module is told its direction and reverse setpoint, so its map has them.
        for d in modbus.devices where d.role == .module && modules[d.index].bidirectional && modbus.maps[d.map].fields[.direction] == nil {
            throw r.error(top, "modbus_device", "module \(d.index) is bidirectional (reverse_power) but its map '\(modbus.maps[d.map].name)' has no direction and reverse_current_setpoint")
        }
        let analog = try analogInputs(r, top, guns: guns.count, modbus: modbus, maxAge: timing.analogAge)
        if kind != .real && !analog.isEmpty { throw r.error(top, "analog", "analog inputs belong to real boards (a bench board's come through its channel)") }
        let watchdog = try watchdog(r, top, period: head.period)
        let contactorSupply = try contactorSupply(r, top, period: head.period, opening: timing.opening, gpio: gpio, emulated: head.emulated)
        let bench = try bench(r, top, kind: kind)
        let plant = try plantTable(r, top, kind: kind)
        let console = try consoleTable(r, top)
        let storage = try storageTable(r, top)
        let can = try canLinks(r, top, guns: guns.count, kind: kind)
        let metering = try meteringTable(r, top)
        // One serial port, one user: a console and a Modbus bus (or two buses) on the same UART would
        // each read the other's bytes.
        var serialUsers: [String: String] = [:]
        if let c = console { serialUsers[c.device] = "[console]" }
        for b in modbus.buses {
            guard case .rtu(let device, _, _, _, _, _, _) = b.transport else { continue }
            if let other = serialUsers[device] {
                throw r.error(top, "modbus_bus", "bus '\(b.name)' is on \(device), which \(other) already uses: one serial port serves one user")
            }
            serialUsers[device] = "bus '\(b.name)'"
        }

        let spec = StationSpec(guns: guns, modules: modules, gridLimit: head.gridLimit, period: head.period,
                               contactorCloseTimeout: timing.close, contactorOpenTimeout: timing.open, contactorOpeningTime: timing.opening,
                               moduleCommTimeout: timing.module, meterCommTimeout: timing.meter,
                               imdCommTimeout: timing.imd, allocationPeriod: timing.allocation,
                               moduleSelfOffTime: timing.selfOff, readingMaxAge: timing.readingAge)
        var station = spec
        station.metering = metering
        station.analogMaxAge = timing.analogAge
        return Board(
            name: head.name, description: head.description, kind: kind, emulated: head.emulated, path: file,
            checksum: fnv1a(Array(text.utf8) + DeviceLibrary.checksumBytes(modbus.libraryMaps)),
                     spec: station, plant: plant, runtime: runtime, gpio: gpio, modbus: modbus, analog: analog, watchdog: watchdog, bench: bench,
                     console: console, storage: storage, can: can, contactorSupply: contactorSupply)
    }

    /// `[board]`: name, description, kind, period, grid connection.
    static func boardTable(_ r: Reader, _ top: Section) throws(BoardFileError)
        -> (name: String, description: String, kind: BoardKind, period: TimeSpan, gridLimit: Watts, emulated: Bool) {
        let b = try r.table(top, "board")
        try r.onlyKeys(b, ["name", "description", "kind", "period", "grid_limit", "emulated"])
        let name = try r.string(b, "name")
        let description = try r.optionalString(b, "description") ?? ""
        let kindText = try r.string(b, "kind")
        guard let kind = BoardKind(rawValue: kindText) else {
            throw r.error(b, "kind", "'\(kindText)' is not one of sim, bench, real")
        }
        let period = try r.duration(b, "period", default: .ms(1), range: .us(100)...(.ms(100)))
        let gridLimit = try r.power(b, "grid_limit", range: Watts(1_000)...Watts.kW(10_000))
        let emulated = try r.optionalBool(b, "emulated") ?? false
        if emulated && kind != .real { throw r.error(b, "emulated", "only a real board runs under emulation (a sim or bench board has its own time)") }
        return (name, description, kind, period, gridLimit, emulated)
    }

    /// `[limits]`: the station's timeouts and times, each with its default.
    struct Timing {
        var close = TimeSpan.ms(200), open = TimeSpan.ms(200), opening = TimeSpan.ms(30)
        var module = TimeSpan.s(1), meter = TimeSpan.s(2), imd = TimeSpan.s(2)
        var allocation = TimeSpan.ms(500), selfOff = TimeSpan.s(20), readingAge = TimeSpan.ms(100)
        /// 20 ms, or three periods of a slower loop (docs/standards.md "Analog inputs that stop").
        var analogAge = TimeSpan.ms(20)
    }

    static func limitsTable(_ r: Reader, _ top: Section, period: TimeSpan, emulated: Bool = false) throws(BoardFileError) -> Timing {
        var timing = Timing()
        timing.analogAge = max(timing.analogAge, period * 3)
        guard let l = try r.optionalTable(top, "limits") else { return timing }
        try r.onlyKeys(l, ["contactor_close_timeout", "contactor_open_timeout", "contactor_opening_time", "module_comm_timeout",
                           "meter_comm_timeout", "imd_comm_timeout", "allocation_period", "module_self_off_time", "reading_max_age",
                           "analog_max_age"])
        timing.close = try r.duration(l, "contactor_close_timeout", default: timing.close, range: .ms(10)...(.s(2)))
        timing.open = try r.duration(l, "contactor_open_timeout", default: timing.open, range: .ms(10)...(.s(2)))
        timing.opening = try r.duration(l, "contactor_opening_time", default: timing.opening, range: .ms(1)...(.ms(100)))
        timing.module = try r.duration(l, "module_comm_timeout", default: timing.module, range: .ms(50)...(.s(10)))
        timing.meter = try r.duration(l, "meter_comm_timeout", default: timing.meter, range: .ms(50)...(.s(10)))
        timing.imd = try r.duration(l, "imd_comm_timeout", default: timing.imd, range: .ms(50)...(.s(15)))
        timing.allocation = try r.duration(l, "allocation_period", default: timing.allocation, range: .ms(10)...(.s(10)))
        timing.selfOff = try r.duration(l, "module_self_off_time", default: timing.selfOff, range: .s(1)...(.s(120)))
        timing.readingAge = try r.duration(l, "reading_max_age", default: timing.readingAge, range: .ms(1)...(.s(1)))
        // Within the CC1 row's 50 ms to ≤ 5 A (a frozen CC1 must not hide an unplugging longer), and over
        // three periods (a sample a period late is not a stall). An emulated board ([board] emulated) may
        // take up to ten times that: its emulator stalls for longer than the row (docs/standards.md
        // "Analog inputs that stop").
        let most = emulated ? TimeSpan.ms(500) : .ms(50)
        if !emulated, let v = try? r.duration(l, "analog_max_age", default: .zero, range: .zero...(.s(10))), v > most {
            throw r.error(l, "analog_max_age", "\(v.seconds * 1000) ms is past the CC1 row's 50 ms (only a board that runs under emulation, [board] emulated = true, may take more)")
        }
        timing.analogAge = try r.duration(l, "analog_max_age", default: timing.analogAge, range: .ms(1)...most)
        guard timing.analogAge >= period * 3 else {
            throw r.error(l, "analog_max_age", "\(timing.analogAge.seconds * 1000) ms is under three of the loop's \(period.seconds * 1000) ms periods: a sample a period late would stop the gun")
        }
        return timing
    }

    /// `[runtime]`: the loop's priority, CPU, memory locking and miss limit.
    static func runtimeTable(_ r: Reader, _ top: Section) throws(BoardFileError) -> RuntimeSpec {
        var runtime = RuntimeSpec()
        guard let rt = try r.optionalTable(top, "runtime") else { return runtime }
        try r.onlyKeys(rt, ["priority", "cpu", "lock_memory", "miss_limit"])
        if rt.table["priority"] != nil { runtime.priority = Int32(try r.integer(rt, "priority", range: 0...99)) }
        if rt.table["cpu"] != nil { runtime.cpu = try r.integer(rt, "cpu", range: 0...1023) }
        if let l = try r.optionalBool(rt, "lock_memory") { runtime.lockMemory = l }
        if rt.table["miss_limit"] != nil { runtime.missLimit = try r.integer(rt, "miss_limit", range: 1...1000) }
        return runtime
    }

    /// `[[gun]]`: each gun's ratings, derating curve, ramps and checks.
    static func gunTables(_ r: Reader, _ top: Section) throws(BoardFileError) -> [GunSpec] {
        let gunTables = try r.arrayOfTables(top, "gun")
        guard !gunTables.isEmpty else { throw r.error(top, "gun", "at least one [[gun]] is required") }
        guard gunTables.count <= Capacity.guns else { throw r.error(top, "gun", "\(gunTables.count) guns; at most \(Capacity.guns)") }
        var guns: [GunSpec] = []
        for g in gunTables {
            try r.onlyKeys(g, ["rated_power", "max_voltage", "min_voltage", "max_current", "connector_current", "cooling",
                               "derating_start", "derating_end", "trip_temperature", "ramp_up", "stop_ramp",
                               "over_current_factor", "insulation_rule", "lock_timeout", "ground_detector_self_test",
                               "ground_detector_release"])
            let maxV = try r.voltage(g, "max_voltage", range: Volts(50)...Volts(1500))
            let minV = try r.voltage(g, "min_voltage", range: Volts(50)...Volts(1500))
            guard minV < maxV else { throw r.error(g, "min_voltage", "\(minV.value) V must be below max_voltage (\(maxV.value) V)") }
            let maxI = try r.current(g, "max_current", range: Amps(1)...Amps(3000))
            let connI = try r.current(g, "connector_current", range: Amps(1)...Amps(3000))
            let power = try r.power(g, "rated_power", range: Watts(1_000)...Watts.kW(5_000))
            guard power <= maxV * maxI else {
                throw r.error(g, "rated_power", "\(power.kilowatts) kW exceeds max_voltage × max_current (\((maxV * maxI).kilowatts) kW)")
            }
            let coolingText = try r.string(g, "cooling")
            guard let cooling = ["natural": Cooling.natural, "liquid": .liquid][coolingText] else {
                throw r.error(g, "cooling", "'\(coolingText)' is not one of natural, liquid")
            }
            let dStart = try r.temperature(g, "derating_start", range: Celsius(20)...Celsius(150))
            let dEnd = try r.temperature(g, "derating_end", range: Celsius(20)...Celsius(150))
            guard dStart < dEnd else { throw r.error(g, "derating_end", "\(dEnd.value) °C must be above derating_start (\(dStart.value) °C)") }
            let trip = try r.temperature(g, "trip_temperature", range: Celsius(20)...Celsius(150))
            guard trip >= dEnd else { throw r.error(g, "trip_temperature", "\(trip.value) °C must be at or above derating_end (\(dEnd.value) °C)") }
            // standards.md "Current demand changes" (≥ 20 A/s) and "Normal stop ramps" (≥ 100 A/s).
            let up = try r.ramp(g, "ramp_up", range: Standard.minimumDemandRamp...AmpsPerSecond(100_000))
            let stop = try r.ramp(g, "stop_ramp", range: Standard.minimumStopRamp...AmpsPerSecond(100_000))
            let ocf = try r.optionalNumber(g, "over_current_factor") ?? 1.1
            guard ocf >= 1.0 && ocf <= 2.0 else { throw r.error(g, "over_current_factor", "\(ocf) must be within 1.0...2.0") }
            let ruleText = try r.optionalString(g, "insulation_rule") ?? "gbt"
            guard let rule = ["gbt": InsulationRule.gbt, "iec": .iec][ruleText] else {
                throw r.error(g, "insulation_rule", "'\(ruleText)' is not one of gbt, iec")
            }
            let lockTimeout = try r.duration(g, "lock_timeout", default: .s(2), range: .ms(100)...(.s(10)))
            let groundTest = try r.optionalBool(g, "ground_detector_self_test") ?? false
            if g.table["ground_detector_release"] != nil && !groundTest {
                throw r.error(g, "ground_detector_release", "only a detector that tests itself (ground_detector_self_test = true) has a release time")
            }
            let release = try r.duration(g, "ground_detector_release", default: .ms(300), range: .zero...(.s(2)))
            guns.append(GunSpec(ratedPower: power, maxVoltage: maxV, minVoltage: minV, maxCurrent: maxI, connectorCurrent: connI,
                                cooling: cooling, deratingStart: dStart, deratingEnd: dEnd, tripTemperature: trip,
                                rampUp: up, stopRamp: stop, overCurrentFactor: ocf, insulationRule: rule, lockTimeout: lockTimeout,
                                groundDetectorSelfTest: groundTest))
            guns[guns.count - 1].groundDetectorRelease = release
        }
        return guns
    }

    /// `[[modules]]`: groups of identical rectifier modules and the guns each can be switched onto.
    static func moduleTables(_ r: Reader, _ top: Section, guns gunCount: Int) throws(BoardFileError) -> [ModuleSpec] {
        let moduleGroups = try r.arrayOfTables(top, "modules")
        guard !moduleGroups.isEmpty else { throw r.error(top, "modules", "at least one [[modules]] group is required") }
        var modules: [ModuleSpec] = []
        for mt in moduleGroups {
            try r.onlyKeys(mt, ["count", "rated_power", "max_voltage", "min_voltage", "max_current", "guns",
                                "reverse_power", "reverse_current"])
            let count = try r.integer(mt, "count", range: 1...Capacity.modules)
            let maxV = try r.voltage(mt, "max_voltage", range: Volts(50)...Volts(1500))
            let minV = try r.voltage(mt, "min_voltage", range: Volts(50)...Volts(1500))
            guard minV < maxV else { throw r.error(mt, "min_voltage", "\(minV.value) V must be below max_voltage (\(maxV.value) V)") }
            let maxI = try r.current(mt, "max_current", range: Amps(1)...Amps(1000))
            let power = try r.power(mt, "rated_power", range: Watts(1_000)...Watts.kW(200))
            // A bidirectional module (V2G): both reverse ratings or neither, each within the forward one.
            var reverseP = Watts.zero, reverseI = Amps.zero
            if mt.table["reverse_power"] != nil || mt.table["reverse_current"] != nil {
                reverseP = try r.power(mt, "reverse_power", range: Watts(1_000)...power)
                reverseI = try r.current(mt, "reverse_current", range: Amps(1)...maxI)
            }
            let gunList = try r.integerArray(mt, "guns")
            guard !gunList.isEmpty else { throw r.error(mt, "guns", "must name at least one gun") }
            var mask: UInt16 = 0
            for gi in gunList {
                guard gi >= 0 && gi < gunCount else { throw r.error(mt, "guns", "gun \(gi) does not exist (guns are 0...\(gunCount - 1))") }
                mask |= 1 << UInt16(gi)
            }
            guard modules.count + count <= Capacity.modules else {
                throw r.error(mt, "count", "\(modules.count + count) modules in all; at most \(Capacity.modules)")
            }
            for _ in 0..<count {
                modules.append(ModuleSpec(ratedPower: power, maxVoltage: maxV, minVoltage: minV, maxCurrent: maxI, gunMask: mask,
                                          reversePower: reverseP, reverseMaxCurrent: reverseI))
            }
        }
        for g in 0..<gunCount where !modules.contains(where: { $0.gunMask & (1 << UInt16(g)) != 0 }) {
            throw r.error(top, "modules", "no module can serve gun \(g)")
        }
        return modules
    }

    /// A real board's GPIO map must name every gun's contactor, aux contacts, lock and RCD lines and the e-stop.
    static func requireRealBoardLines(_ r: Reader, _ top: Section, kind: BoardKind, gpio: [GPIOLineSpec], guns: Int) throws(BoardFileError) {
        guard kind == .real else { return }
        if gpio.isEmpty { throw r.error(top, "gpio", "a real board needs its [[gpio]] map") }
        for g in 0..<guns {
            for needed in [GPIOSignal.k1k2, .k1Aux, .k2Aux, .lockMotor, .lockFeedback, .rcdTrip]
            where !gpio.contains(where: { $0.signal == needed && $0.gun == g }) {
                throw r.error(top, "gpio", "gun \(g) has no '\(needed.rawValue)' line")
            }
        }
        if !gpio.contains(where: { $0.signal == .emergencyStop }) { throw r.error(top, "gpio", "no 'estop' line") }
    }

    /// A gun whose earth-fault detector tests itself needs the line that starts the test.
    static func requireSelfTestLines(_ r: Reader, _ top: Section, kind: BoardKind, gpio: [GPIOLineSpec], guns: [GunSpec]) throws(BoardFileError) {
        guard kind == .real else { return }
        for (g, gun) in guns.enumerated() where gun.groundDetectorSelfTest && !gpio.contains(where: { $0.signal == .rcdTest && $0.gun == g }) {
            throw r.error(top, "gpio", "gun \(g) has ground_detector_self_test = true but no 'rcd-test' line to start the test")
        }
    }

    /// `[plant]`: the model a sim or bench board runs (required there, refused on a real board).
    static func plantTable(_ r: Reader, _ top: Section, kind: BoardKind) throws(BoardFileError) -> PlantSpec? {
        var plant: PlantSpec? = nil
        if let p = try r.optionalTable(top, "plant") {
            guard kind == .sim || kind == .bench else { throw r.error(p, "", "a [plant] model belongs to sim or bench boards only") }
            try r.onlyKeys(p, ["contactor_close_delay", "contactor_open_delay", "lock_time", "module_time_constant",
                               "bus_time_constant", "discharge_time_constant", "ambient", "thermal_rise_at_rated",
                               "thermal_time_constant", "insulation", "imd_period", "imd_selftest_time"])
            var pp = PlantSpec()
            pp.contactorCloseDelay = try r.duration(p, "contactor_close_delay", default: pp.contactorCloseDelay, range: .ms(1)...(.ms(500)))
            pp.contactorOpenDelay = try r.duration(p, "contactor_open_delay", default: pp.contactorOpenDelay, range: .ms(1)...(.ms(500)))
            pp.lockTime = try r.duration(p, "lock_time", default: pp.lockTime, range: .ms(10)...(.s(5)))
            pp.moduleTimeConstant = try r.duration(p, "module_time_constant", default: pp.moduleTimeConstant, range: .ms(1)...(.s(1)))
            pp.busTimeConstant = try r.duration(p, "bus_time_constant", default: pp.busTimeConstant, range: .ms(1)...(.s(2)))
            pp.dischargeTimeConstant = try r.duration(p, "discharge_time_constant", default: pp.dischargeTimeConstant, range: .ms(5)...(.ms(300)))
            pp.ambient = try r.optionalTemperature(p, "ambient", range: Celsius(-40)...Celsius(60)) ?? pp.ambient
            pp.thermalRiseAtRated = try r.optionalTemperature(p, "thermal_rise_at_rated", range: Celsius(1)...Celsius(150)) ?? pp.thermalRiseAtRated
            pp.thermalTimeConstant = try r.duration(p, "thermal_time_constant", default: pp.thermalTimeConstant, range: .s(1)...(.s(7200)))
            pp.insulation = try r.optionalResistance(p, "insulation", range: Ohms(1)...Ohms(1e12)) ?? pp.insulation
            pp.imdPeriod = try r.duration(p, "imd_period", default: pp.imdPeriod, range: .ms(10)...(.s(5)))
            pp.imdSelfTestTime = try r.duration(p, "imd_selftest_time", default: pp.imdSelfTestTime, range: .ms(10)...(.s(20)))
            plant = pp
        } else if kind == .sim || kind == .bench {
            throw r.error(top, "plant", "a \(kind.rawValue) board needs a [plant] table (the \(kind == .sim ? "simulator" : "plant emulator") runs it)")
        }
        return plant
    }

    /// `[console]`: the technician's UART and its line settings.
    static func consoleTable(_ r: Reader, _ top: Section) throws(BoardFileError) -> ConsoleSpec? {
        var console: ConsoleSpec? = nil
        if let c = try r.optionalTable(top, "console") {
            try r.onlyKeys(c, ["device", "baud", "parity", "stop_bits", "flow_control"])
            var cs = ConsoleSpec(device: try r.string(c, "device"))
            if c.table["baud"] != nil { cs.baud = try r.integer(c, "baud", range: 9600...921_600) }
            if let p = try r.optionalString(c, "parity") {
                guard ["N", "E", "O"].contains(p) else { throw r.error(c, "parity", "'\(p)': expected \"N\", \"E\" or \"O\"") }
                cs.parity = p
            }
            if c.table["stop_bits"] != nil { cs.stopBits = try r.integer(c, "stop_bits", range: 1...2) }
            if let fc = try r.optionalString(c, "flow_control") {
                guard fc == "none" || fc == "rtscts" else { throw r.error(c, "flow_control", "'\(fc)': expected \"none\" or \"rtscts\"") }
                cs.rtsCts = fc == "rtscts"
            }
            console = cs
        }
        return console
    }

    /// `[metering]`: the meter checked against the charger (ChargerCore's Metering.swift; defaults and
    /// sources in docs/standards.md "Metering budget").
    static func meteringTable(_ r: Reader, _ top: Section) throws(BoardFileError) -> MeteringSpec {
        var m = MeteringSpec()
        guard let t = try r.optionalTable(top, "metering") else { return m }
        try r.onlyKeys(t, ["meter_class", "current_accuracy", "voltage_accuracy", "min_energy", "persist", "refuse_sessions"])
        func percent(_ k: String, _ d: Double) throws(BoardFileError) -> Double {
            guard let x = try r.quantity(t, k, .percent) else { return d }
            guard x > 0 && x <= 10 else { throw r.error(t, k, "\(x) % is outside 0...10 % (an accuracy, percent of the reading)") }
            return x
        }
        m.setAccuracy(meterClass: try percent("meter_class", m.meterClass), current: try percent("current_accuracy", m.currentAccuracy),
                      voltage: try percent("voltage_accuracy", m.voltageAccuracy))
        if let e = try r.quantity(t, "min_energy", .energy) {
            guard e >= 100 && e <= 1_000_000 else { throw r.error(t, "min_energy", "\(e) Wh is outside 0.1...1000 kWh") }
            m.minEnergy = WattHours(e)
        }
        m.persist = try r.duration(t, "persist", default: m.persist, range: .s(1)...(.s(3600)))
        m.refuseSessions = try r.optionalBool(t, "refuse_sessions") ?? false
        return m
    }

    /// `[storage]`: where the journal lives and how it rotates.
    static func storageTable(_ r: Reader, _ top: Section) throws(BoardFileError) -> StorageSpec? {
        var storage: StorageSpec? = nil
        if let st = try r.optionalTable(top, "storage") {
            try r.onlyKeys(st, ["journal", "journal_max_kb", "journal_files"])
            var ss = StorageSpec(journal: try r.string(st, "journal"))
            if st.table["journal_max_kb"] != nil { ss.journalMaxKB = try r.integer(st, "journal_max_kb", range: 4...1_048_576) }
            if st.table["journal_files"] != nil { ss.journalFiles = try r.integer(st, "journal_files", range: 2...1000) }
            storage = ss
        }
        return storage
    }

    public static func readFile(_ path: String) -> [UInt8]? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n > 0 { out.append(contentsOf: buf[0..<n]) }
            if n < buf.count { break }
            if out.count > 1 << 20 { errno = EFBIG; return nil }   // a board file is small
        }
        return out
    }

    package static func fnv1a(_ bytes: [UInt8]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// A table and its dotted path in the file (for error messages).
package struct Section {
    package var table: TOMLTable
    package var path: String
    package init(table: TOMLTable, path: String) { self.table = table; self.path = path }
    package func key(_ k: String) -> String { path.isEmpty ? k : (k.isEmpty ? path : "\(path).\(k)") }
}

/// Typed, unit-checked reads with errors naming file, key and why.
package struct Reader {
    package let file: String
    package init(file: String) { self.file = file }

    package func error(_ s: Section, _ key: String, _ why: String) -> BoardFileError {
        BoardFileError(file: file, key: s.key(key), why: why)
    }

    package func onlyKeys(_ s: Section, _ allowed: [String]) throws(BoardFileError) {
        for k in s.table.keys.sorted() where !allowed.contains(k) {
            throw error(s, k, "unknown key (allowed here: \(allowed.joined(separator: ", ")))")
        }
    }

    package func table(_ s: Section, _ k: String) throws(BoardFileError) -> Section {
        guard let t = try optionalTable(s, k) else { throw error(s, k, "missing table [\(s.key(k))]") }
        return t
    }

    package func optionalTable(_ s: Section, _ k: String) throws(BoardFileError) -> Section? {
        guard let v = s.table[k] else { return nil }
        guard let t = v.table else { throw error(s, k, "must be a table, found \(v.type)") }
        return Section(table: t, path: s.key(k))
    }

    package func arrayOfTables(_ s: Section, _ k: String) throws(BoardFileError) -> [Section] {
        guard let v = s.table[k] else { throw error(s, k, "missing [[\(k)]] entries") }
        guard let a = v.array else { throw error(s, k, "must be an array of tables ([[\(k)]]), found \(v.type)") }
        var out: [Section] = []
        for (i, e) in a.enumerated() {
            guard let t = e.table else { throw error(s, "\(k)[\(i)]", "must be a table") }
            out.append(Section(table: t, path: s.key("\(k)[\(i)]")))
        }
        return out
    }

    package func string(_ s: Section, _ k: String) throws(BoardFileError) -> String {
        guard let v = try optionalString(s, k) else { throw error(s, k, "missing (a string is required)") }
        return v
    }

    package func optionalString(_ s: Section, _ k: String) throws(BoardFileError) -> String? {
        guard let v = s.table[k] else { return nil }
        guard let str = v.string else { throw error(s, k, "must be a string, found \(v.type)") }
        return str
    }

    package func optionalBool(_ s: Section, _ k: String) throws(BoardFileError) -> Bool? {
        guard let v = s.table[k] else { return nil }
        guard let b = v.bool else { throw error(s, k, "must be true or false, found \(v.type)") }
        return b
    }

    package func optionalNumber(_ s: Section, _ k: String) throws(BoardFileError) -> Double? {
        guard let v = s.table[k] else { return nil }
        if let i = v.int { return Double(i) }
        if let d = v.double, d.isFinite { return d }
        throw error(s, k, "must be a number, found \(v.type)")
    }

    package func integer(_ s: Section, _ k: String, range: ClosedRange<Int>) throws(BoardFileError) -> Int {
        guard let v = s.table[k] else { throw error(s, k, "missing (an integer is required)") }
        guard let i = v.int else { throw error(s, k, "must be an integer, found \(v.type)") }
        guard range.contains(i) else { throw error(s, k, "\(i) is outside \(range.lowerBound)...\(range.upperBound)") }
        return i
    }

    package func integerArray(_ s: Section, _ k: String) throws(BoardFileError) -> [Int] {
        guard let v = s.table[k] else { throw error(s, k, "missing (a list of gun indices is required)") }
        guard let a = v.array else { throw error(s, k, "must be a list of gun indices, found \(v.type)") }
        var out: [Int] = []
        for e in a {
            guard let i = e.int else { throw error(s, k, "every entry must be an integer gun index") }
            out.append(i)
        }
        return out
    }

    /// Reads "<number> <unit>" (QuantityText: the one parser of quantities); a bare number is refused.
    package func quantity(_ s: Section, _ k: String, _ table: UnitTable) throws(BoardFileError) -> Double? {
        guard let v = s.table[k] else { return nil }
        guard let text = v.string else {
            throw error(s, k, "must be a string with a unit, e.g. \"1 \(table.units.keys.sorted().first ?? "")\" (found \(v.type))")
        }
        switch QuantityText.parse(text, table) {
        case .success(let x): return x
        case .failure(let e): throw error(s, k, e.description)
        }
    }

    package func checked<Q: Quantity>(_ s: Section, _ k: String, _ q: Q, _ range: ClosedRange<Q>) throws(BoardFileError) -> Q {
        guard range.contains(q) else {
            throw error(s, k, "\(q.value) \(Q.symbol) is outside \(range.lowerBound.value)...\(range.upperBound.value) \(Q.symbol)")
        }
        return q
    }

    package func voltage(_ s: Section, _ k: String, range: ClosedRange<Volts>) throws(BoardFileError) -> Volts {
        guard let v = try quantity(s, k, .voltage) else { throw error(s, k, "missing (e.g. \"750 V\")") }
        return try checked(s, k, Volts(v), range)
    }
    package func current(_ s: Section, _ k: String, range: ClosedRange<Amps>) throws(BoardFileError) -> Amps {
        guard let v = try quantity(s, k, .current) else { throw error(s, k, "missing (e.g. \"200 A\")") }
        return try checked(s, k, Amps(v), range)
    }
    package func power(_ s: Section, _ k: String, range: ClosedRange<Watts>) throws(BoardFileError) -> Watts {
        guard let v = try quantity(s, k, .power) else { throw error(s, k, "missing (e.g. \"60 kW\")") }
        return try checked(s, k, Watts(v), range)
    }
    package func temperature(_ s: Section, _ k: String, range: ClosedRange<Celsius>) throws(BoardFileError) -> Celsius {
        guard let v = try optionalTemperature(s, k, range: range) else { throw error(s, k, "missing (e.g. \"70 °C\")") }
        return v
    }
    package func optionalTemperature(_ s: Section, _ k: String, range: ClosedRange<Celsius>) throws(BoardFileError) -> Celsius? {
        guard let v = try quantity(s, k, .temperature) else { return nil }
        return try checked(s, k, Celsius(v), range)
    }
    package func optionalResistance(_ s: Section, _ k: String, range: ClosedRange<Ohms>) throws(BoardFileError) -> Ohms? {
        guard let v = try quantity(s, k, .resistance) else { return nil }
        return try checked(s, k, Ohms(v), range)
    }
    package func ramp(_ s: Section, _ k: String, range: ClosedRange<AmpsPerSecond>) throws(BoardFileError) -> AmpsPerSecond {
        guard let v = try quantity(s, k, .ramp) else { throw error(s, k, "missing (e.g. \"100 A/s\")") }
        return try checked(s, k, AmpsPerSecond(v), range)
    }
    package func duration(_ s: Section, _ k: String, default d: TimeSpan, range: ClosedRange<TimeSpan>) throws(BoardFileError) -> TimeSpan {
        guard let v = try quantity(s, k, .time) else { return d }
        // Checked before it becomes whole microseconds: "1e300 s" trapped there (board-file fuzz target,
        // Fuzz/corpus/board-file/repro-duration-huge).
        guard let dur = TimeSpan.checkedSeconds(v), range.contains(dur) else {
            throw error(s, k, "\(v) s is outside \(range.lowerBound.seconds)...\(range.upperBound.seconds) s")
        }
        return dur
    }
}
