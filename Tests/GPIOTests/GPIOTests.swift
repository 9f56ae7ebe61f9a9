// The libgpiod backend on a machine without GPIO (CI, this VM): it links and runs, and the error a user
// gets names the chip and says what to do. The board's GPIO map is validated on load.
import BoardFile
import ChargerCore
import GPIOD
import IIO
import Testing
#if canImport(Glibc)
import Glibc
#endif

let repoRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)
    return parts.joined(separator: "/")
}()

@Suite struct GPIOBackend {
    @Test func linksAgainstLibgpiodV1() {
        #expect(gpiodVersion().hasPrefix("1."), "libgpiod \(gpiodVersion()): the v1 API is required")
    }

    @Test func missingChipNamesTheChipAndSuggestsASimBoard() {
        do {
            _ = try GPIOChip("gpiochip97")
            Issue.record("gpiochip97 opened")
        } catch {
            #expect(error.operation == .openChip && error.chip == "gpiochip97" && error.errno == .noSuchFileOrDirectory)
            #expect(error.description.contains("cannot open GPIO chip 'gpiochip97'"))
            #expect(error.description.contains("use a sim- board, e.g. --board Boards/sim-60kw.toml"))
        }
    }

    /// The real board's whole map, as chargerd requests it: on a machine without its chip the first
    /// line's chip is named, and nothing is left requested.
    @Test func realBoardOnAMachineWithoutItsChip() throws {
        let b = try BoardLoader.load(path: "\(repoRoot)/Boards/cm4-rs485-60kw.toml")
        guard access("/dev/gpiochip0", F_OK) != 0 else { return }  // a machine with the chip: nothing to prove
        do {
            _ = try GPIOBank(map: b.gpio)
            Issue.record("opened")
        } catch {
            #expect(error.chip == "gpiochip0")
            #expect(error.description.contains("sim- board"))
        }
    }
}

@Suite struct GPIOMapInBoardFiles {
    @Test func cm4BoardMap() throws {
        let b = try BoardLoader.load(path: "\(repoRoot)/Boards/cm4-rs485-60kw.toml")
        #expect(b.kind == .real && b.plant == nil)
        #expect(b.gpio.count == 17)
        let k1k2 = try #require(b.gpio.first { $0.signal == .k1k2 })
        #expect(k1k2.chip == "gpiochip0" && k1k2.line == 17 && k1k2.isOutput && k1k2.active == .high && k1k2.gun == 0)
        let estop = try #require(b.gpio.first { $0.signal == .emergencyStop })
        #expect(estop.gun == nil && !estop.isOutput && estop.active == .low && estop.debounce == .ms(2))
        #expect(b.gpio.first { $0.signal == .rcdTest }?.line == 4)
        #expect(b.runtime.missLimit == 3 && b.runtime.cpu == 3)
        // The sim boards carry no GPIO map: their signals are the plant's.
        #expect(try BoardLoader.load(path: "\(repoRoot)/Boards/sim-60kw.toml").gpio.isEmpty)
    }

    static let base = try! String(contentsOfFile: "\(repoRoot)/Boards/cm4-rs485-60kw.toml", encoding: .utf8)

    @Test(arguments: [
        ("signal = \"k1k2\"", "signal = \"k9\"", "gpio[0].signal", "'k9' is not a known signal"),
        ("line = 27\ndirection = \"output\"", "line = 27\ndirection = \"input\"", "gpio[1].direction", "k3k4 is an output of the controller, not an input"),
        ("line = 27", "line = 17", "gpio[1].line", "gpiochip0:17 is already used by k1k2 gun 0"),
        ("signal = \"k3k4\"", "signal = \"k1k2\"", "gpio[1].signal", "k1k2 gun 0 is mapped twice"),
        ("signal = \"estop\"\nchip", "signal = \"estop\"\ngun = 0\nchip", "gpio[15].gun", "station signal: no gun"),
        ("line = 22\ndirection = \"output\"\nactive = \"high\"", "line = 22\ndirection = \"output\"\nactive = \"up\"", "gpio[2].active", "'up' is not one of high, low"),
        ("line = 17", "line = 4096", "gpio[0].line", "outside 0...1023"),
        ("line = 17\ndirection = \"output\"\nactive = \"high\"", "line = 17\ndirection = \"output\"\nactive = \"high\"\ndebounce = \"2 ms\"",
         "gpio[0].debounce", "k1k2 is an output: only inputs are debounced"),
        ("active = \"low\"\ndebounce = \"2 ms\"", "active = \"low\"\ndebounce = \"2 s\"", "gpio[12].debounce", "outside"),
        ("active = \"low\"\ndebounce = \"2 ms\"", "active = \"low\"\ndebounce = \"2\"", "gpio[12].debounce", "no unit"),
        ("gun = 0\nchip = \"gpiochip0\"\nline = 24", "gun = 3\nchip = \"gpiochip0\"\nline = 24", "gpio[8].gun", "outside 0...0"),
        // [[analog]]: a filter longer than its signal's rules allow, the two ways of naming a channel mixed.
        ("scale = \"0.003 V\"\nfilter = \"1 ms\"", "scale = \"0.003 V\"\nfilter = \"5 ms\"", "analog[0].filter", "longer than cc1 allows (2.0 ms)"),
        ("channel = 1\nscale = \"0.25 V\"", "channel = 1\nscale = \"0.25 V\"\nfilter = \"2 ms\"", "analog[1].filter", "longer than charger-voltage allows"),
        ("channel = 0\n", "channel = 0\npath = \"/sys/bus/iio/devices/iio:device0/in_voltage0_raw\"\n", "analog[0].path", "either path or device and channel"),
        ("channel = 4\n", "channel = 64\n", "analog[4].channel", "outside 0...63"),
        ("device = \"mcp3208\"\nchannel = 3", "device = \"iio:device0/x\"\nchannel = 3", "analog[3].device", "not an IIO device name"),
    ])
    func badEntries(from: String, to: String, key: String, why: String) {
        let text = Self.base.replacingOccurrences(of: from, with: to, options: [], range: Self.base.range(of: from))
        #expect(text != Self.base)
        do {
            _ = try BoardLoader.parse(text, file: "cm4.toml")
            Issue.record("accepted \(to)")
        } catch {
            #expect(error.key == key, "\(error)")
            #expect(error.why.contains(why), "\(error)")
        }
    }

    /// A real board must map what safety needs: every gun's contactors, mirrors, lock, RCD; the e-stop.
    @Test func realBoardWithoutSafetyLinesIsRefused() throws {
        let entry = "[[gpio]]\nsignal = \"rcd-trip\"\ngun = 0\nchip = \"gpiochip0\"\nline = 20\ndirection = \"input\"\nactive = \"low\"\ndebounce = \"2 ms\"\n\n"
        let text = Self.base.replacingOccurrences(of: entry, with: "")
        #expect(text != Self.base)
        do {
            _ = try BoardLoader.parse(text, file: "cm4.toml")
            Issue.record("accepted a board without its RCD line")
        } catch {
            #expect(error.description == "cm4.toml: gpio: gun 0 has no 'rcd-trip' line")
        }
    }
}

/// A gun whose earth-fault detector tests itself needs the line that starts the test.
@Test func selfTestWithoutItsLineIsRefused() throws {
    let base = GPIOMapInBoardFiles.base
    let entry = "[[gpio]]\nsignal = \"rcd-test\"\ngun = 0\nchip = \"gpiochip0\"\nline = 4\ndirection = \"output\"\nactive = \"high\"\n\n"
    let text = base.replacingOccurrences(of: entry, with: "")
    #expect(text != base)
    do {
        _ = try BoardLoader.parse(text, file: "cm4.toml")
        Issue.record("accepted a self-testing gun without its rcd-test line")
    } catch {
        #expect(error.description == "cm4.toml: gpio: gun 0 has ground_detector_self_test = true but no 'rcd-test' line to start the test")
    }
    // Without the self-test the line is not needed.
    _ = try BoardLoader.parse(text.replacingOccurrences(of: "ground_detector_self_test = true", with: "ground_detector_self_test = false"), file: "cm4.toml")
}

/// The front end's debounce, sample by sample (plain values: no chip needed).
@Suite struct Debounce {
    @Test func aNewLevelMustHoldItsCycles() {
        var d = DebouncedInput(holdCycles: 2)
        d.take(true, edgeSeen: false); #expect(!d.state)
        d.take(true, edgeSeen: false); #expect(!d.state)
        d.take(true, edgeSeen: false); #expect(d.state)           // held 3 samples: taken
        d.take(false, edgeSeen: false); d.take(true, edgeSeen: false)
        #expect(d.state)                                          // a one-sample glitch changes nothing
        var now = DebouncedInput(holdCycles: 0)
        now.take(true, edgeSeen: false); #expect(now.state)       // no debounce: the next sample
    }

    @Test func aTripIsTakenAtOnceAndOnlyItsReleaseWaits() {
        var t = DebouncedInput(holdCycles: 3, trip: true)
        t.take(true, edgeSeen: false); #expect(t.state)           // active: at once
        t.take(false, edgeSeen: false); #expect(t.state)
        t.take(false, edgeSeen: false); t.take(false, edgeSeen: false); #expect(t.state)
        t.take(false, edgeSeen: false); #expect(!t.state)         // released after holding 4 samples
        // A pulse shorter than a cycle: the line reads inactive again, but the kernel saw the edge.
        t.take(false, edgeSeen: true); #expect(t.state)
        // An ordinary input would miss it.
        var plain = DebouncedInput(holdCycles: 0)
        plain.take(false, edgeSeen: true); #expect(!plain.state)
    }

    /// A pulse shorter than the kernel's handler latency comes back as two edges of the inactive kind:
    /// still a trip. A genuine release (inactive edge after an active level) is not one.
    @Test func tripEdgesOfTheWrongKindStillShowThePulse() {
        // Active high, line inactive: a proper pulse (rising, falling).
        var a = TripEdge.take(rising: true, activeHigh: true, wasActive: false)
        #expect(a.active && a.tripSeen)
        a = TripEdge.take(rising: false, activeHigh: true, wasActive: a.active)
        #expect(!a.active && !a.tripSeen)                          // its release: no new trip
        // The same pulse reported as two falling edges.
        var b = TripEdge.take(rising: false, activeHigh: true, wasActive: false)
        #expect(!b.active && b.tripSeen)
        b = TripEdge.take(rising: false, activeHigh: true, wasActive: b.active)
        #expect(b.tripSeen)
        // Active low (a normally closed e-stop chain): the rising edge is the release.
        #expect(!TripEdge.take(rising: true, activeHigh: false, wasActive: true).tripSeen)
        #expect(TripEdge.take(rising: true, activeHigh: false, wasActive: false).tripSeen)
        #expect(TripEdge.take(rising: false, activeHigh: false, wasActive: false).tripSeen)
    }
}

/// The analog front end on the IIO sysfs ABI: a directory tree with the files an IIO ADC driver has (no
/// IIO device exists on this machine), read by the sampler as it reads /sys/bus/iio/devices/iio:deviceN.
@Suite struct AnalogInputs {
    /// A tree like /sys/bus/iio/devices: iio:device0 another driver, iio:device1 the board's ADC.
    func tree() -> String {
        let root = NSTemporaryDirectoryPath() + "/iio-root-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        for d in ["", "/iio:device0", "/iio:device1", "/trigger0"] { mkdir(root + d, 0o755) }
        FileManagerLite.put(root + "/iio:device0/name", "ads1015\n")
        FileManagerLite.put(root + "/iio:device1/name", "mcp3208\n")
        FileManagerLite.put(root + "/iio:device1/in_voltage2_raw", "1000\n")
        return root
    }

    @Test func aChannelIsFoundByItsDevicesName() throws {
        let root = tree()
        let s = try IIOSampler(specs: [AnalogInputSpec(signal: .vehicleVoltage, gun: 0, device: "mcp3208", channel: 2, scale: 0.25, offset: 0)],
                               every: .ms(1), iioRoot: root)
        #expect(s.paths == [root + "/iio:device1/in_voltage2_raw"])
        var i = GunInputs()
        s.sample(gun: 0, into: &i)
        #expect(abs(i.vehicleSideVoltage.value - 250) < 1e-9)
        // No device of that name: the start stops, naming what there is.
        #expect {
            try IIOSampler(
                specs: [AnalogInputSpec(signal: .cc1, gun: 0, device: "mcp3008", channel: 0, scale: 1, offset: 0)], every: .ms(1), iioRoot: root)
        }
            throws: { "\($0)".contains("device 'mcp3008'") && "\($0)".contains("no IIO device has that name (devices: iio:device0 'ads1015', iio:device1 'mcp3208')") }
        // Two of them: ambiguous, refused.
        mkdir(root + "/iio:device2", 0o755)
        FileManagerLite.put(root + "/iio:device2/name", "mcp3208\n")
        #expect {
            try IIOSampler(
                specs: [AnalogInputSpec(signal: .cc1, gun: 0, device: "mcp3208", channel: 2, scale: 1, offset: 0)], every: .ms(1), iioRoot: root)
        }
            throws: { "\($0)".contains("2 devices have that name") }
    }

    /// The board's `filter`: a first-order low-pass at the sampling period, from the first sample on.
    @Test func theFilterIsAFirstOrderLowPass() throws {
        let root = tree()
        let path = root + "/iio:device1/in_voltage2_raw"
        FileManagerLite.put(path, "0\n")
        let tau = TimeSpan.ms(4)
        let s = try IIOSampler(specs: [AnalogInputSpec(signal: .auxSupply, gun: 0, path: path, scale: 0.004, offset: 0, filter: tau)], every: .ms(1))
        FileManagerLite.put(path, "3000\n")                    // a step to 12 V
        let a = 1 - exp(-1.0 / 4.0)
        var i = GunInputs()
        for k in 1...12 {
            s.sampleOnce()
            s.sample(gun: 0, into: &i)
            #expect(abs(i.auxSupply.value - 12 * (1 - pow(1 - a, Double(k)))) < 1e-9, "round \(k)")
        }
        // After one time constant (4 rounds) 63 % of the step, as a first-order filter has.
        #expect(abs(12 * (1 - pow(1 - a, 4)) - 12 * (1 - exp(-1))) < 1e-9)
    }

    /// The age the core judges (E36): the oldest value the board maps on the gun, growing while nothing is
    /// read or while one channel keeps failing; nil on a gun with none mapped. (A lower bound only: a sleep
    /// lasts at least as long as asked.)
    @Test func theOldestMappedValueGivesTheGunsAnalogAge() throws {
        let dir = NSTemporaryDirectoryPath() + "/iio-age-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        mkdir(dir, 0o755)
        FileManagerLite.put(dir + "/cc1", "2000\n")
        FileManagerLite.put(dir + "/v", "1600\n")
        let s = try IIOSampler(specs: [AnalogInputSpec(signal: .cc1, gun: 0, path: dir + "/cc1", scale: 0.003, offset: 0),
                                       AnalogInputSpec(signal: .chargerVoltage, gun: 0, path: dir + "/v", scale: 0.25, offset: 0)],
                               every: .ms(1))
        var i = GunInputs(), other = GunInputs()
        s.sample(gun: 0, into: &i)
        s.sample(gun: 1, into: &other)
        #expect(i.analogAge != nil && other.analogAge == nil)
        usleep(30_000)
        s.sample(gun: 0, into: &i)
        #expect(i.analogAge! >= .ms(30), "nothing read for 30 ms: \(i.analogAge!.seconds) s")
        // One channel failing: the gun's age is that channel's, however fresh the other.
        FileManagerLite.put(dir + "/v", "garbage\n")
        s.sampleOnce()
        s.sample(gun: 0, into: &i)
        #expect(i.analogAge! >= .ms(30) && s.readErrors == 1)
    }

    @Test func sysfsNumbers() {
        func parse(_ s: String) -> Double? { Array(s.utf8).withUnsafeBytes { parseSysfsNumber($0) } }
        #expect(parse("2048\n") == 2048)
        #expect(parse("-17\n") == -17)
        #expect(parse("0.250\n") == 0.25)
        #expect(parse("") == nil && parse("\n") == nil && parse("12a\n") == nil)
    }

    @Test func channelsAreScaledAndReachTheGunsInputs() throws {
        let dir = NSTemporaryDirectoryPath() + "/iio-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        mkdir(dir, 0o755)
        func write(_ name: String, _ text: String) { FileManagerLite.put(dir + "/" + name, text) }
        write("in_voltage0_raw", "2000\n")      // CC1 through 1:3: 2000 × 3 mV = 6 V
        write("in_voltage1_raw", "1600\n")      // charger side: 1600 × 0.25 V = 400 V
        write("in_voltage3_raw", "1500\n")      // PT1000 transmitter: (1500 − 1000) × 0.05 °C = 25 °C
        write("in_voltage4_raw", "3010\n")      // 12 V auxiliary supply through 1:4: 3010 × 4 mV = 12.04 V
        let specs = [AnalogInputSpec(signal: .cc1, gun: 0, path: dir + "/in_voltage0_raw", scale: 0.003, offset: 0),
                     AnalogInputSpec(signal: .chargerVoltage, gun: 0, path: dir + "/in_voltage1_raw", scale: 0.25, offset: 0),
                     AnalogInputSpec(signal: .gunTemperature, gun: 0, path: dir + "/in_voltage3_raw", scale: 0.05, offset: -1000),
                     AnalogInputSpec(signal: .auxSupply, gun: 0, path: dir + "/in_voltage4_raw", scale: 0.004, offset: 0)]
        let s = try IIOSampler(specs: specs, every: .ms(1))
        var i = GunInputs()
        let untouched = i.vehicleSideVoltage
        s.sample(gun: 0, into: &i)
        #expect(abs(i.cc1.value - 6) < 1e-9 && abs(i.chargerSideVoltage.value - 400) < 1e-9 && abs(i.gunTemperature.value - 25) < 1e-9)
        #expect(abs(i.auxSupply.value - 12.04) < 1e-9)
        #expect(i.vehicleSideVoltage == untouched)          // not mapped: left as it was
        // A new value is seen after the next round; a file that stops reading keeps the last value.
        write("in_voltage1_raw", "3000\n")
        s.sampleOnce()
        s.sample(gun: 0, into: &i)
        #expect(abs(i.chargerSideVoltage.value - 750) < 1e-9)
        write("in_voltage1_raw", "garbage\n")
        s.sampleOnce()
        s.sample(gun: 0, into: &i)
        #expect(abs(i.chargerSideVoltage.value - 750) < 1e-9 && s.readErrors == 1)
        // A channel that does not exist stops the start, naming the file.
        do {
            _ = try IIOSampler(specs: [AnalogInputSpec(signal: .cc1, gun: 0, path: dir + "/in_voltage9_raw", scale: 1, offset: 0)], every: .ms(1))
            Issue.record("opened a missing channel")
        } catch {
            #expect(error.description.contains("in_voltage9_raw: cannot open it"))
        }
    }
}

func NSTemporaryDirectoryPath() -> String { String(cString: getenv("TMPDIR") ?? strdup("/tmp")) }

enum FileManagerLite {
    static func put(_ path: String, _ text: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = text.withCString { write(fd, $0, strlen($0)) }
        close(fd)
    }
}
