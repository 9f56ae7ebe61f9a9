// The Modbus side of board files: the shipped bench and real boards load with the maps they document;
// register fields decode and encode with their type, scale and word order; bad Modbus sections are
// refused naming the key and why.
import BoardFile
import ChargerCore
import Foundation
import Testing

@Suite struct ModbusBoards {
    @Test(arguments: ["bench-60kw-tcp", "bench-60kw-rtu", "bench-60kw-can", "cm4-rs485-60kw"])
    func loads(name: String) throws {
        let b = try BoardLoader.load(path: "\(repoRoot)/Boards/\(name).toml")
        #expect(b.modbus.devices.count == 4)
        for m in 0..<2 { #expect(b.modbus.device(.module, m) != nil) }
        #expect(b.modbus.device(.meter, 0)?.unit == 10)
        #expect(b.modbus.device(.imd, 0)?.unit == 20)
        let module = b.modbus.maps.first { $0.name == "rect-30kw" }!
        // One write of enable + both setpoints (registers 0-4), one read of the four measurements.
        #expect(module.writeRuns.count == 1)
        #expect(module.writeRuns[0].address == 0 && module.writeRuns[0].count == 5 && module.writeRuns[0].table == .holding)
        #expect(Set(module.writeRuns[0].fields) == [.enable, .voltageSetpoint, .currentSetpoint])
        #expect(module.readRuns.count == 1 && module.readRuns[0].address == 16 && module.readRuns[0].count == 4)
        #expect(module.faultMask == 0x000E)
        // The IMD's self-test trigger has a write of its own (written on edges only).
        let imd = b.modbus.maps.first { $0.name == "imd-dc" }!
        #expect(imd.writeRuns.map(\.fields) == [[.selftest], [.enable]])
        // The meter reads through the gap between current and energy (≤ 8 registers), in one request.
        let meter = b.modbus.maps.first { $0.name == "dc-meter" }!
        #expect(meter.readRuns.count == 1 && meter.readRuns[0].count == 21)
    }

    @Test func benchBoardsNeedTheirChannelAndRealBoardsTheirWatchdogIsRead() throws {
        let cm4 = try BoardLoader.load(path: "\(repoRoot)/Boards/cm4-rs485-60kw.toml")
        #expect(cm4.watchdog?.device == "/dev/watchdog0" && cm4.watchdog?.timeout == .s(1) && cm4.watchdog?.kick == .ms(100))
        #expect(cm4.analog.count == 5 && cm4.analog.contains { $0.signal == .auxSupply && $0.scale == 0.004 })
        let temp = cm4.analog.first { $0.signal == .gunTemperature }!
        #expect(temp.scale == 0.05 && temp.offset == -1000)
        guard case .rtu(let dev, 115_200, "N", 8, 1, true, false) = cm4.modbus.buses[0].transport else { Issue.record("bus"); return }
        #expect(dev == "/dev/ttyAMA0" && cm4.console?.device == "/dev/ttyGS0")
        let bench = try BoardLoader.load(path: "\(repoRoot)/Boards/bench-60kw-tcp.toml")
        #expect(bench.bench?.channel == "/dev/shm/bench-60kw-tcp")
        #expect(bench.kind == .bench)
    }

    /// The RTU budget of the CM4 board (computed from frame sizes, not measured): 115200 8N1 is 86.8 µs
    /// a character; a module is one read of 4 registers (8 + 13 bytes + 2 × 3.5 gaps = 28 characters) and
    /// one write of 5 (19 + 8 + 7 = 34 characters).
    @Test func rtuWireTimeFromFrameSizes() throws {
        let cm4 = try BoardLoader.load(path: "\(repoRoot)/Boards/cm4-rs485-60kw.toml")
        let t = try #require(cm4.modbus.rtuWireTime(bus: 0))
        let char = 10.0 / 115_200
        // reads: module 2 × 28, meter 8+5+42+7 = 62, IMD 8+5+12+7 = 32 characters
        #expect(abs(t.reads - (2 * 28 + 62 + 32) * char) < 1e-9)
        // writes: module 2 × 34, IMD self-test 9+2+8+7 = 26, IMD enable 26 characters
        #expect(abs(t.writes - (2 * 34 + 26 + 26) * char) < 1e-9)
        // The latency the core allows for: (poll 50 ms + one round) × 2.
        #expect(abs(cm4.modbus.commandLatency.seconds - 2 * (0.050 + t.reads + t.writes)) < 1e-5)
    }
}

@Suite struct RegisterCodec {
    @Test func wordOrderAndSign() {
        let lowFirst = RegisterField(table: .input, address: 0, type: .i32, scale: 0.01, wordOrder: .lowFirst)
        // -12.50 A = -1250 = 0xFFFFFB1E; low word first on the wire.
        #expect(lowFirst.encode(-12.5)! == (0xFB1E, 0xFFFF))
        #expect(lowFirst.decode(0xFB1E, 0xFFFF) == -12.5)
        let highFirst = RegisterField(table: .holding, address: 1, type: .u32, scale: 0.001)
        #expect(highFirst.encode(500)! == (0x0007, 0xA120))   // 500000
        #expect(abs(highFirst.decode(0x0007, 0xA120) - 500) < 1e-9)
        let temp = RegisterField(table: .input, address: 18, type: .i16, scale: 0.1)
        #expect(abs(temp.decode(UInt16(bitPattern: -55)) - -5.5) < 1e-9)
        let f = RegisterField(table: .input, address: 0, type: .f32)
        #expect(f.decode(f.encode(1234.5)!.0, f.encode(1234.5)!.1) == 1234.5)
    }

    @Test func unrepresentableValuesAreNotSent() {
        let u16 = RegisterField(table: .holding, address: 0, type: .u16, scale: 0.1)
        #expect(u16.encode(-1) == nil)          // negative into unsigned
        #expect(u16.encode(6553.6) == nil)      // one step beyond 65535
        #expect(u16.encode(.nan) == nil)
        #expect(u16.encode(.infinity) == nil)
        #expect(u16.encode(6553.5)! == (65535, 0))
    }
}

@Suite struct BadModbusSections {
    static let bus = """

    [[modbus_bus]]
    name = "b"
    transport = "tcp"
    host = "127.0.0.1"
    port = 1502
    """
    static let maps = """

    [modbus_map.m]
    role = "module"
    fault_mask = 2
    enable = { table = "holding", address = 0 }
    voltage_setpoint = { table = "holding", address = 1, type = "u32", scale = "0.001 V" }
    current_setpoint = { table = "holding", address = 3, type = "u32", scale = "0.001 A" }
    voltage = { table = "input", address = 0, scale = "0.1 V" }
    current = { table = "input", address = 1, type = "i16", scale = "0.1 A" }
    temperature = { table = "input", address = 2, type = "i16", scale = "0.1 °C" }
    status = { table = "input", address = 3 }

    [modbus_map.e]
    role = "meter"
    voltage = { table = "input", address = 0, type = "i32", scale = "0.01 V" }
    current = { table = "input", address = 2, type = "i32", scale = "0.01 A" }
    energy = { table = "input", address = 4, type = "u32", scale = "0.001 kWh" }

    [modbus_map.i]
    role = "imd"
    fault_mask = 1
    resistance_plus = { table = "input", address = 0, type = "u32", scale = "1 kΩ" }
    resistance_minus = { table = "input", address = 2, type = "u32", scale = "1 kΩ" }
    status = { table = "input", address = 4 }
    selftest_result = { table = "input", address = 5 }
    selftest = { table = "holding", address = 0 }
    """
    static let devices = """

    [[modbus_device]]
    role = "module"
    module = 0
    bus = "b"
    unit = 1
    map = "m"

    [[modbus_device]]
    role = "module"
    module = 1
    bus = "b"
    unit = 2
    map = "m"

    [[modbus_device]]
    role = "meter"
    gun = 0
    bus = "b"
    unit = 3
    map = "e"

    [[modbus_device]]
    role = "imd"
    gun = 0
    bus = "b"
    unit = 4
    map = "i"

    [bench]
    channel = "/dev/shm/t"
    """
    static var good: String { minimal.replacingFirst("kind = \"sim\"", "kind = \"bench\"") + bus + maps + devices }

    @Test func goodOneLoads() throws {
        let b = try BoardLoader.parse(Self.good, file: "good.toml")
        #expect(b.modbus.devices.count == 4)
    }

    @Test(arguments: [
        ("unit = 2", "unit = 1", "modbus_device[1].unit", "already module 0"),
        ("unit = 3", "unit = 300", "modbus_device[2].unit", "1"),
        ("map = \"e\"", "map = \"m\"", "modbus_device[2].map", "is a module map, not a meter map"),
        ("bus = \"b\"\nunit = 4", "bus = \"x\"\nunit = 4", "modbus_device[3].bus", "no [[modbus_bus]] named 'x'"),
        ("port = 1502", "port = 1502\nbaud = 9600", "modbus_bus[0].baud", "rtu option"),
        ("transport = \"tcp\"", "transport = \"can\"", "modbus_bus[0].transport", "not one of tcp, rtu"),
        ("scale = \"0.01 V\" }", "scale = \"0.01 A\" }", "modbus_map.e.voltage.scale", "not a unit of voltage"),
        ("current = { table = \"input\", address = 1,", "current = { table = \"input\", address = 0,", "modbus_map.m.current", "overlaps"),
        ("selftest = { table = \"holding\"", "selftest = { table = \"input\"", "modbus_map.i.selftest.table", "must be a holding register"),
        ("status = { table = \"input\", address = 3 }", "", "modbus_map.m.status", "missing"),
        ("port = 1502", "port = 1502\nkeepalive = \"10 s\"", "modbus_bus[0].keepalive", "well inside"),
        ("port = 1502", "port = 1502\npoll_period = \"800 ms\"", "modbus_device[0].bus", "too slow"),
    ])
    func refused(_ c: (String, String, String, String)) throws {
        let e = try #require(refusal(Self.good.replacingFirst(c.0, c.1)), "accepted: \(c.1)")
        #expect(e.key == c.2, "\(e)")
        #expect(e.why.contains(c.3), "\(e)")
    }

    @Test func everyDeviceMustBeSomewhere() throws {
        let noImd = Self.good.components(separatedBy: "[[modbus_device]]\nrole = \"imd\"")[0] + "[bench]\nchannel = \"/dev/shm/t\"\n"
        let e2 = try #require(refusal(noImd))
        #expect(e2.why.contains("no imd device for gun 0"), "\(e2)")
    }

    @Test func kindsAndTheirSections() throws {
        let simWithModbus = try #require(refusal(minimal + Self.bus + Self.maps + Self.devices.components(separatedBy: "[bench]")[0]))
        #expect(simWithModbus.why.contains("belong to bench and real boards"), "\(simWithModbus)")
        let benchWithoutChannel = try #require(refusal(Self.good.components(separatedBy: "[bench]")[0]))
        #expect(benchWithoutChannel.key == "bench", "\(benchWithoutChannel)")
        let analogOnBench = try #require(refusal(Self.good + "\n[[analog]]\nsignal = \"cc1\"\ngun = 0\npath = \"/sys/x_raw\"\nscale = \"1 V\"\n"))
        #expect(analogOnBench.why.contains("real boards"), "\(analogOnBench)")
    }

    /// One UART, one user: the CM4 board once had its console and its RS-485 bus both on /dev/ttyAMA0.
    @Test func aSerialPortServesOneUser() throws {
        let rtu = Self.good.replacingFirst("transport = \"tcp\"", "transport = \"rtu\"\ndevice = \"/dev/ttyS1\"\nbaud = 115200")
            .replacingFirst("host = \"127.0.0.1\"\n", "").replacingFirst("port = 1502\n", "")
        _ = try BoardLoader.parse(rtu, file: "rtu.toml")
        let shared = try #require(refusal(rtu + "\n[console]\ndevice = \"/dev/ttyS1\"\n"), "a console on the bus's UART was accepted")
        #expect(shared.key == "modbus_bus" && shared.why.contains("/dev/ttyS1, which [console] already uses"), "\(shared)")
        _ = try BoardLoader.parse(rtu + "\n[console]\ndevice = \"/dev/ttyGS0\"\n", file: "ok.toml")
    }
}

/// `[[can]]`: the car links on CAN. Defaults are GB/T 27930's (250 kbit/s, charger 0x56, BMS 0xF4); a
/// board without one has none; each mistake is refused naming its key.
@Suite struct CANLinks {
    let bench: String = try! String(contentsOfFile: "\(repoRoot)/Boards/bench-60kw-tcp.toml", encoding: .utf8)

    @Test func shippedBoards() throws {
        let can = try BoardLoader.load(path: "\(repoRoot)/Boards/bench-60kw-can.toml")
        #expect(can.can.count == 1)
        let l = try #require(can.can.first)
        #expect(l.gun == 0 && l.interface == "vcan0" && l.bitrate == 250_000 && l.chargerAddress == 0x56 && l.bmsAddress == 0xF4)
        #expect(try BoardLoader.load(path: "\(repoRoot)/Boards/bench-60kw-tcp.toml").can.isEmpty)
        let cm4 = try BoardLoader.load(path: "\(repoRoot)/Boards/cm4-rs485-60kw.toml")
        #expect(cm4.can.map(\.interface) == ["can0"])
    }

    @Test func addressesAndRate() throws {
        let b = try BoardLoader.parse(bench + "\n[[can]]\ngun = 0\ninterface = \"can1\"\nbitrate = 500000\ncharger_address = 0x57\nbms_address = 0xF5\n", file: "b.toml")
        #expect(b.can.first?.bitrate == 500_000 && b.can.first?.chargerAddress == 0x57 && b.can.first?.bmsAddress == 0xF5)
    }

    @Test(arguments: [
        ("gun = 1\ninterface = \"can0\"", "can[0].gun"),
        ("gun = 0\ninterface = \"can/0\"", "can[0].interface"),
        ("gun = 0\ninterface = \"a-name-far-too-long\"", "can[0].interface"),
        ("gun = 0\ninterface = \"\"", "can[0].interface"),
        ("gun = 0\ninterface = \"can0\"\nbitrate = 5", "can[0].bitrate"),
        ("gun = 0\ninterface = \"can0\"\nbms_address = 0x56", "can[0].bms_address"),
        ("gun = 0\ninterface = \"can0\"\nbms_address = 300", "can[0].bms_address"),
        ("gun = 0\ninterface = \"can0\"\nspeed = 250", "can[0].speed"),
        ("interface = \"can0\"", "can[0].gun"),
    ])
    func refused(entry: String, key: String) throws {
        let e = try #require(refusal(bench + "\n[[can]]\n" + entry + "\n"), "\(entry) was taken")
        #expect(e.key == key, "\(e)")
    }

    @Test func oneLinkPerGunAndOneGunPerInterface() throws {
        let twice = try #require(refusal(bench + "\n[[can]]\ngun = 0\ninterface = \"can0\"\n[[can]]\ngun = 0\ninterface = \"can1\"\n"))
        #expect(twice.key == "can[1].gun" && twice.why.contains("can0"), "\(twice)")
        let sim = try #require(refusal(minimal + "\n[[can]]\ngun = 0\ninterface = \"can0\"\n"))
        #expect(sim.why.contains("sim board"), "\(sim)")
    }
}

/// The board library's device files (Boards/devices, docs/boards.md "Device files"): compiled in byte
/// for byte, each a valid register map, the same map whether a board names it or writes it as its own
/// table, and a name that is only ever a name.
@Suite struct DeviceFiles {
    let bench: String = try! String(contentsOfFile: "\(repoRoot)/Boards/bench-60kw-tcp.toml", encoding: .utf8)

    @Test func theCompiledLibraryIsTheDeviceFiles() throws {
        let dir = "\(repoRoot)/Boards/devices"
        let onDisk = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".toml") }
        #expect(onDisk.map { String($0.dropLast(5)) }.sorted() == DeviceLibrary.names)
        #expect(DeviceLibrary.names.count >= 5)
        for name in DeviceLibrary.names {
            var text = try String(contentsOfFile: "\(dir)/\(name).toml", encoding: .utf8)
            while text.hasSuffix("\n") { text.removeLast() }
            #expect(DeviceLibrary.text(name) == text, "Boards/devices/\(name).toml differs from the compiled copy: Tests/cli/device-library.py --write")
        }
    }

    @Test(arguments: DeviceLibrary.names)
    func eachDeviceFileIsARegisterMap(name: String) throws {
        let map = try BoardLoader.libraryMap(name, text: try #require(DeviceLibrary.text(name)))
        #expect(map.name == name)
        #expect(RegisterFieldName.required(map.role).allSatisfy { map.fields[$0] != nil })
        #expect((map.role == .analogIn) == (map.channels != nil), "an analog-in map has channels, no other map has")
    }

    /// Every board that carries Modbus devices names its maps from the library.
    @Test(arguments: ["bench-60kw-tcp", "bench-60kw-rtu", "bench-60kw-can", "bench-v2g-60kw-tcp", "cm4-rs485-60kw", "vm-gpio-sim-60kw"])
    func shippedBoardsNameTheLibrary(board: String) throws {
        let b = try BoardLoader.load(path: "\(repoRoot)/Boards/\(board).toml")
        // The VM board's fourth: its analog input module.
        let n = board == "vm-gpio-sim-60kw" ? 4 : 3
        #expect(b.modbus.libraryMaps.count == n && b.modbus.maps.count == n)
        #expect(Set(b.modbus.maps.map(\.name)) == Set(b.modbus.libraryMaps))
    }

    /// Written into a board as its own [modbus_map.NAME], a device file's text gives the same map; and a
    /// board's own table takes the library's place.
    @Test func theLibraryAndABoardsOwnTableGiveTheSameMap() throws {
        let names = ["rect-30kw", "dc-meter", "imd-dc"]
        let fromLibrary = try BoardLoader.parse(bench, file: "bench.toml")
        #expect(fromLibrary.modbus.libraryMaps == names)
        var own = bench
        for n in names { own += "\n[modbus_map.\(n)]\n" + (DeviceLibrary.text(n) ?? "") + "\n" }
        let fromBoard = try BoardLoader.parse(own, file: "bench.toml")
        #expect(fromBoard.modbus.libraryMaps.isEmpty)
        for n in names {
            #expect(fromBoard.modbus.maps.first { $0.name == n } == fromLibrary.modbus.maps.first { $0.name == n }, "\(n)")
        }
        let meter = try #require(DeviceLibrary.text("dc-meter"))
        #expect(meter.contains("fault_mask = 0x0001"))
        let changed = bench + "\n[modbus_map.dc-meter]\n" + meter.replacingOccurrences(of: "fault_mask = 0x0001", with: "fault_mask = 0x0003") + "\n"
        let b = try BoardLoader.parse(changed, file: "b.toml")
        #expect(b.modbus.maps.first { $0.name == "dc-meter" }?.faultMask == 0x0003)
        #expect(b.modbus.libraryMaps == ["rect-30kw", "imd-dc"])
    }

    /// A map no board table and no device file has is refused naming the key and the library's devices;
    /// a name written as a path is only a name (the library is compiled in: nothing is opened).
    @Test(arguments: ["dc-meter-9000", "../devices/dc-meter", "/etc/passwd", ""])
    func anUnknownDeviceIsRefusedWithTheLibrary(name: String) throws {
        let text = bench.replacingOccurrences(of: "map = \"dc-meter\"", with: "map = \"\(name)\"")
        do {
            _ = try BoardLoader.parse(text, file: "b.toml")
            Issue.record("accepted map '\(name)'")
        } catch {
            #expect(error.key == "modbus_device[2].map", "\(error)")
            #expect(error.why.contains("no device file '\(name)' in the library") && error.why.contains("dc-meter, dc-meter-v2g, imd-dc"), "\(error)")
        }
    }

    /// A device file's errors name the device file and the key.
    @Test func aBadDeviceFileIsNamed() throws {
        let text = try #require(DeviceLibrary.text("imd-dc")).replacingOccurrences(of: "address = 258", with: "address = 256")
        do {
            _ = try BoardLoader.libraryMap("imd-dc", text: text)
            Issue.record("accepted an overlapping map")
        } catch {
            #expect(error.file == "Boards/devices/imd-dc.toml" && error.key == "selftest" && error.why.contains("overlaps 'enable'"), "\(error)")
        }
    }

    /// A board's checksum covers the device files it names (a changed register map is a changed board);
    /// a board that names none keeps the checksum of its own bytes.
    @Test func aBoardsChecksumCoversItsDeviceFiles() throws {
        let path = "\(repoRoot)/Boards/bench-60kw-tcp.toml"
        let bytes = try #require(BoardLoader.readFile(path))
        let b = try BoardLoader.load(path: path)
        #expect(b.checksum != BoardLoader.fnv1a(bytes))
        #expect(b.checksum == BoardLoader.fnv1a(bytes + DeviceLibrary.checksumBytes(["rect-30kw", "dc-meter", "imd-dc"])))
        let simPath = "\(repoRoot)/Boards/sim-60kw.toml"
        #expect(try BoardLoader.load(path: simPath).checksum == BoardLoader.fnv1a(try #require(BoardLoader.readFile(simPath))))
    }
}
