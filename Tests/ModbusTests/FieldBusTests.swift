// The field bus (Sources/FieldBus) against pymodbus acting as a rectifier module and as a DC meter: the
// HAL drivers decode what an independent Modbus implementation serves, with the board file's register
// maps (scale, sign, word order, fault bits), and the module receives the loop's commands.
import BoardFile
import ChargerCore
import ChargerHAL
import FieldBus
import Foundation
import Modbus
import Testing

@Suite(.serialized) struct FieldBusAgainstPymodbus {
    @Test func moduleAndMeterDriversTalkToPymodbus() throws {
        // Meter (unit 10, map dc-meter, low word first): 401.23 V, -12.50 A, 123.456 kWh.
        let meter = try Peer.device(["--tcp", "0", "--unit", "10", "--size", "64",
                                     "--input", "0=40123,1=0,2=64286,3=65535,10=57920,11=1,20=0"])
        // Module (unit 1, map rect-30kw): 400.5 V, -20.0 A, 35.5 °C, status on + output fault (bit 2).
        let module = try Peer.device(["--tcp", "0", "--unit", "1", "--size", "64", "--input", "16=4005,17=65336,18=355,19=5"])
        let board = try BoardLoader.load(path: "\(repoRoot)/Boards/bench-60kw-tcp.toml")
        var config = ModbusConfig()
        config.maps = board.modbus.maps
        func bus(_ name: String, _ port: Int) -> ModbusBusSpec {
            ModbusBusSpec(name: name, transport: .tcp(host: "127.0.0.1", port: port), responseTimeout: .ms(500),
                          pollPeriod: .ms(10), faultAfter: 3, keepalive: .ms(200))
        }
        config.buses = [bus("meter", meter.port), bus("module", module.port)]
        let mapIndex = { (n: String) in config.maps.firstIndex { $0.name == n }! }
        config.devices = [ModbusDeviceSpec(role: .meter, index: 0, bus: 0, unit: 10, map: mapIndex("dc-meter")),
                          ModbusDeviceSpec(role: .module, index: 0, bus: 1, unit: 1, map: mapIndex("rect-30kw"))]
        let field = try FieldBus(config: config)
        let clock = LoopClock()
        let meterDriver = ModbusMeter(devices: [field.device(.meter, 0)!], clock: clock)
        let moduleDriver = ModbusModuleBus(devices: [field.device(.module, 0)!], clock: clock, relays: nil)
        // The loop's command before the poller starts: module on, 500 V, 50.5 A.
        var out = ModuleArray<ModuleOutputs>(repeating: ModuleOutputs())
        out[0].enabled = true; out[0].voltage = Volts(500); out[0].current = Amps(50.5)
        moduleDriver.apply(&out, count: 1)
        try field.start()
        defer { field.stop() }
        let end = Date().addingTimeInterval(10)
        while Date() < end && field.devices.contains(where: { $0.readings.read().sequence < 3 }) { usleep(10_000) }

        clock.now = Instant(micros: 5_000_000)
        var gi = GunInputs()
        meterDriver.sample(gun: 0, into: &gi)
        #expect(abs(gi.meterVoltage.value - 401.23) < 1e-9)
        #expect(abs(gi.meterCurrent.value - -12.5) < 1e-9)
        #expect(abs(gi.meterEnergy.value - 123_456) < 1e-6)   // Wh, from 0.001 kWh steps
        #expect(gi.meterSeenAt == clock.now, "a fresh reading is stamped with the cycle that first saw it")
        var ms = ModuleArray<ModuleInputs>(repeating: ModuleInputs())
        moduleDriver.sample(into: &ms, count: 1)
        #expect(abs(ms[0].outputVoltage.value - 400.5) < 1e-9)
        #expect(abs(ms[0].outputCurrent.value - -20) < 1e-9)
        #expect(abs(ms[0].temperature.value - 35.5) < 1e-9)
        #expect(ms[0].faulted, "status bit 2 is in the map's fault mask 0x000E")

        // pymodbus's own client reads what the poller wrote: enable, 500000 mV, 50500 mA (high word first).
        let written = try python("""
        from pymodbus.client import ModbusTcpClient
        c = ModbusTcpClient('127.0.0.1', port=\(module.port)); c.connect()
        print(c.read_holding_registers(0, count=5, device_id=1).registers)
        """)
        #expect(written == "[1, 7, 41248, 0, 50500]")
        let counts = field.device(.meter, 0)!.counts
        #expect(counts.ok > 0 && counts.timeouts == 0 && counts.exceptions == 0)
        #expect(field.report().contains { $0.hasPrefix("modbus meter gun 0 (unit 10): ") })
    }

    @Test func aDeadMeterIsLostAfterTheBoardsLimitAndTheDriverSaysSo() throws {
        let dead = try Peer.device(["--tcp", "0", "--mode", "silent"])
        let board = try BoardLoader.load(path: "\(repoRoot)/Boards/bench-60kw-tcp.toml")
        var config = ModbusConfig()
        config.maps = board.modbus.maps
        config.buses = [ModbusBusSpec(name: "m", transport: .tcp(host: "127.0.0.1", port: dead.port), responseTimeout: .ms(50),
                                      pollPeriod: .ms(10), faultAfter: 3, keepalive: .ms(200))]
        config.devices = [ModbusDeviceSpec(role: .meter, index: 0, bus: 0, unit: 1, map: config.maps.firstIndex { $0.name == "dc-meter" }!)]
        let field = try FieldBus(config: config)
        try field.start()
        defer { field.stop() }
        let end = Date().addingTimeInterval(10)
        while Date() < end && !field.devices[0].counts.lost { usleep(10_000) }
        let c = field.devices[0].counts
        #expect(c.lost && c.lostEvents == 1 && c.timeouts == 3, "\(c)")
        #expect(c.lastError.contains("timed out"), "libmodbus's text: \(c.lastError)")
        let clock = LoopClock()
        var gi = GunInputs()
        ModbusMeter(devices: [field.devices[0]], clock: clock).sample(gun: 0, into: &gi)
        #expect(gi.meterSeenAt == .never, "a lost meter reads as never seen: the core raises E25 at once")
        // A lost device is tried again only every half second (not every 10 ms poll), so live devices on
        // the bus do not starve behind its timeouts: about 4 tries in 2 s rather than about 30.
        usleep(2_000_000)
        #expect(field.devices[0].counts.timeouts < 3 + 8, "\(field.devices[0].counts)")
    }
}

/// An analog input module (the ioLogik E1240's map of the board library) served by pymodbus: the
/// channels become a gun's analog inputs with the board's scale and offset; a channel whose status
/// register says burnout is not used, and its age grows until E36 would stop the gun.
@Suite(.serialized) struct AnalogInputModuleAgainstPymodbus {
    /// One E1240 (the library's map), unit 30, named ai0, alone on a bus polled every 10 ms.
    static func e1240(port: Int) throws -> ModbusConfig {
        var config = ModbusConfig()
        config.maps = [try BoardLoader.libraryMap("iologik-e1240", text: try #require(DeviceLibrary.text("iologik-e1240")))]
        config.buses = [ModbusBusSpec(name: "ai", transport: .tcp(host: "127.0.0.1", port: port), responseTimeout: .ms(500),
                                      pollPeriod: .ms(10), faultAfter: 3, keepalive: .ms(200))]
        var dev = ModbusDeviceSpec(role: .analogIn, index: 0, bus: 0, unit: 30, map: 0)
        dev.label = "ai0"
        config.devices = [dev]
        return config
    }

    @Test func channelsBecomeAnalogInputsAndABurntOutChannelAges() throws {
        // CH0 13107 (4.000 V at a 2:1 divider: CC1 connected), CH1 32768 but status 1 (burnout), CH3
        // 22938 (a -50..150 °C transmitter: 20.0 °C), the other statuses 0.
        let module = try Peer.device(["--tcp", "0", "--unit", "30", "--size", "80", "--input", "0=13107,1=32768,3=22938,61=1"])
        let config = try Self.e1240(port: module.port)
        func channel(_ s: AnalogSignal, _ ch: Int, _ scale: Double, _ offset: Double = 0) -> AnalogInputSpec {
            var a = AnalogInputSpec(signal: s, gun: 0, device: "ai0", channel: ch, scale: scale, offset: offset)
            a.modbusDevice = 0
            return a
        }
        let specs = [channel(.cc1, 0, 20.0 / 65535), channel(.chargerVoltage, 1, 1000.0 / 65535),
                     channel(.gunTemperature, 3, 200.0 / 65535, -16384)]
        let field = try FieldBus(config: config)
        guard let inputs = ModbusAnalogInputs(specs: specs, field: field, config: config) else { Issue.record("no Modbus channels"); return }
        try field.start()
        defer { field.stop() }
        let end = Date().addingTimeInterval(10)
        while Date() < end && field.devices[0].readings.read().sequence < 3 { usleep(10_000) }
        var gi = GunInputs()
        gi.chargerSideVoltage = Volts(-1)
        inputs.sample(gun: 0, into: &gi)
        #expect(abs(gi.cc1.value - 4.0) < 0.001, "\(gi.cc1)")
        #expect(abs(gi.gunTemperature.value - 20.0) < 0.01, "\(gi.gunTemperature)")
        #expect(gi.chargerSideVoltage.value == -1, "a burnt-out channel's value is never used")
        let first = gi.analogAge ?? .zero
        usleep(100_000)
        inputs.sample(gun: 0, into: &gi)
        let later = gi.analogAge ?? .zero
        #expect(later >= first + .ms(90), "the burnt-out channel ages (\(first) → \(later)): E36 judges it")
        let c = field.devices[0].counts
        #expect(c.badChannels >= 3 && c.lastError.contains("channel 1 status 1"), "\(c)")
        #expect(field.report().contains { $0.contains("modbus analog-in ai0 (unit 30)") && $0.contains("channel values refused by their status") })
    }

    @Test func aModuleThatAnswersKeepsTheAgeToAPoll() throws {
        let module = try Peer.device(["--tcp", "0", "--unit", "30", "--size", "80", "--input", "0=13107"])
        let config = try Self.e1240(port: module.port)
        var a = AnalogInputSpec(signal: .cc1, gun: 0, device: "ai0", channel: 0, scale: 20.0 / 65535, offset: 0)
        a.modbusDevice = 0
        let field = try FieldBus(config: config)
        let inputs = try #require(ModbusAnalogInputs(specs: [a], field: field, config: config))
        try field.start()
        defer { field.stop() }
        let end = Date().addingTimeInterval(10)
        while Date() < end && field.devices[0].readings.read().sequence < 3 { usleep(10_000) }
        // The age is what the poller's last good reply left: some polls' worth, never the time since the
        // inputs were made (2.5 s here).
        usleep(2_500_000)
        var gi = GunInputs()
        inputs.sample(gun: 0, into: &gi)
        let age = try #require(gi.analogAge)
        #expect(age < .s(2), "a module that answers every 10 ms: \(age)")
        field.stop()
        usleep(300_000)
        inputs.sample(gun: 0, into: &gi)
        #expect(try #require(gi.analogAge) >= .ms(300), "a stopped poller leaves the values to age")
    }
}
