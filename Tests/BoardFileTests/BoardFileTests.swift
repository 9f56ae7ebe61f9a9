// Board files: every shipped board loads; bad files are refused naming the file, the key and why.
import BoardFile
import ChargerCore
import Testing

let repoRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3)   // Tests/BoardFileTests/BoardFileTests.swift
    return parts.joined(separator: "/")
}()

let minimal = """
[board]
name = "t"
kind = "sim"
grid_limit = "80 kW"

[[gun]]
rated_power = "60 kW"
max_voltage = "750 V"
min_voltage = "200 V"
max_current = "200 A"
connector_current = "200 A"
cooling = "natural"
derating_start = "70 °C"
derating_end = "90 °C"
trip_temperature = "95 °C"
ramp_up = "50 A/s"
stop_ramp = "200 A/s"

[[modules]]
count = 2
rated_power = "30 kW"
max_voltage = "750 V"
min_voltage = "150 V"
max_current = "100 A"
guns = [0]

[plant]
"""

func refusal(_ text: String) -> BoardFileError? {
    do { _ = try BoardLoader.parse(text, file: "bad.toml"); return nil } catch { return error }
}

@Suite struct ShippedBoards {
    @Test(arguments: ["sim-60kw", "sim-dual-360kw", "sim-hpc-480kw", "sim-mcs-1mw", "sim-v2g-60kw"])
    func loads(name: String) throws {
        let b = try BoardLoader.load(path: "\(repoRoot)/Boards/\(name).toml")
        #expect(b.name == name)
        #expect(b.kind == .sim)
        #expect(b.plant != nil)
        #expect(b.checksum.count == 16)
        #expect(b.spec.period == .ms(1))
    }

    /// The figures the issue names for each board.
    @Test func boardFigures() throws {
        let a = try BoardLoader.load(path: "\(repoRoot)/Boards/sim-60kw.toml").spec
        #expect(a.gunCount == 1 && a.moduleCount == 2)
        #expect(a.guns[0].ratedPower == .kW(60) && a.guns[0].maxVoltage == Volts(750) && a.guns[0].maxCurrent == Amps(200))
        #expect(a.guns[0].cooling == .natural)
        let d = try BoardLoader.load(path: "\(repoRoot)/Boards/sim-dual-360kw.toml").spec
        #expect(d.gunCount == 2 && d.moduleCount == 12 && d.gridLimit == .kW(300))
        #expect(d.guns[1].maxCurrent == Amps(250) && d.guns[1].maxVoltage == Volts(1000))
        #expect(d.modules[11].gunMask == 0b11, "matrix: every module can serve both guns")
        let h = try BoardLoader.load(path: "\(repoRoot)/Boards/sim-hpc-480kw.toml").spec
        #expect(h.moduleCount == 12 && h.modules[0].ratedPower == .kW(40) && h.guns[0].maxCurrent == Amps(800))
        #expect(h.guns[0].cooling == .liquid)
        let m = try BoardLoader.load(path: "\(repoRoot)/Boards/sim-mcs-1mw.toml").spec
        #expect(m.moduleCount == 25 && m.guns[0].maxVoltage == Volts(1250) && m.guns[0].maxCurrent >= Amps(1000))
        // V2G: bidirectional modules, 15 kW both ways; the other boards' rectifiers only charge.
        let v = try BoardLoader.load(path: "\(repoRoot)/Boards/sim-v2g-60kw.toml").spec
        #expect(v.gunCount == 2 && v.moduleCount == 4 && v.gridLimit == .kW(60))
        #expect(v.modules[3].bidirectional && v.modules[3].reversePower == .kW(15) && v.modules[3].reverseMaxCurrent == Amps(50))
        #expect(v.modules[0].reverseCapability(at: Volts(600)) == Amps(25), "15 kW at 600 V")
        #expect(!a.modules[0].bidirectional && a.modules[0].reverseCapability(at: Volts(400)) == .zero)
    }

    /// The V2G bench board: its modules' map carries the direction and the reverse setpoint, its meter's
    /// the export register; a map with only one of the pair, or a bidirectional module whose map has
    /// neither, is refused with the key.
    @Test func bidirectionalModulesNeedTheirRegisters() throws {
        let path = "\(repoRoot)/Boards/bench-v2g-60kw-tcp.toml"
        let b = try BoardLoader.load(path: path)
        let config = b.modbus
        let module = config.maps[try #require(config.device(.module, 0)).map]
        #expect(module.fields[.direction] != nil && module.fields[.reverseCurrentSetpoint] != nil)
        #expect(config.maps[try #require(config.device(.meter, 0)).map].fields[.exportEnergy] != nil)
        #expect(b.spec.modules[0].bidirectional)
        #expect(config.libraryMaps == ["rect-30kw-v2g", "dc-meter-v2g", "imd-dc"])
        // The library's module map written into the board as its own table (which takes the library's
        // place), less one register or both.
        let text = String(decoding: try #require(BoardLoader.readFile(path)), as: UTF8.self)
        let library = try #require(DeviceLibrary.text("rect-30kw-v2g"))
        func own(_ map: String) -> String { text + "\n[modbus_map.rect-30kw-v2g]\n" + map + "\n" }
        let direction = "direction = { table = \"holding\", address = 5, type = \"u16\" }\n"
        let reverse = "reverse_current_setpoint = { table = \"holding\", address = 6, type = \"u32\", scale = \"0.001 A\" }\n"
        #expect(library.contains(direction) && library.contains(reverse))
        let half = try #require(refusal(own(library.replacingFirst(direction, ""))))
        #expect(half.key == "modbus_map.rect-30kw-v2g.direction" && half.why.contains("both direction and reverse_current_setpoint"), "\(half)")
        let e = try #require(refusal(own(library.replacingFirst(direction, "").replacingFirst(reverse, ""))))
        #expect(e.key == "modbus_device" && e.why.contains("module 0 is bidirectional"), "\(e)")
    }

    /// A module's reverse rating: both keys or neither, each within the forward rating.
    @Test func reverseRatingIsCheckedAgainstTheForwardOne() throws {
        let both = minimal.replacingFirst("guns = [0]", "reverse_power = \"20 kW\"\nreverse_current = \"60 A\"\nguns = [0]")
        let b = try BoardLoader.parse(both, file: "v2g.toml")
        #expect(b.spec.modules[1].reversePower == .kW(20) && b.spec.modules[1].reverseMaxCurrent == Amps(60))
        let a = try #require(refusal(minimal.replacingFirst("guns = [0]", "reverse_power = \"20 kW\"\nguns = [0]")))
        #expect(a.key == "modules[0].reverse_current" && a.why.contains("missing"))
        let c = try #require(refusal(minimal.replacingFirst("guns = [0]", "reverse_power = \"40 kW\"\nreverse_current = \"60 A\"\nguns = [0]")))
        #expect(c.key == "modules[0].reverse_power", "above the 30 kW forward rating: \(c)")
        let d = try #require(refusal(minimal.replacingFirst("guns = [0]", "reverse_power = \"20 kW\"\nreverse_current = \"150 A\"\nguns = [0]")))
        #expect(d.key == "modules[0].reverse_current", "above the 100 A forward rating: \(d)")
    }

    @Test func minimalParses() throws {
        let b = try BoardLoader.parse(minimal, file: "min.toml")
        #expect(b.spec.guns[0].rampUp == AmpsPerSecond(50))
        #expect(b.spec.contactorCloseTimeout == .ms(200), "default when [limits] is absent")
        #expect(b.spec.contactorOpeningTime == .ms(30), "default when [limits] is absent")
    }

    /// The contactor's opening time (datasheet) moves an escalated shutdown's command earlier; it must be
    /// well inside the shortest row of the fault-reaction table (100 ms).
    @Test func contactorOpeningTime() throws {
        let ok = try BoardLoader.parse(minimal + "\n[limits]\ncontactor_opening_time = \"15 ms\"\n", file: "b.toml")
        #expect(ok.spec.contactorOpeningTime == .ms(15))
        let slow = try #require(refusal(minimal + "\n[limits]\ncontactor_opening_time = \"150 ms\"\n"))
        #expect(slow.key == "limits.contactor_opening_time")
        let bare = try #require(refusal(minimal + "\n[limits]\ncontactor_opening_time = 15\n"))
        #expect(bare.key == "limits.contactor_opening_time")
    }

    /// How old a reading may be and still count as the current now (standards.md "Fault reactions"):
    /// 100 ms by default, the shortest row; refused outside 1 ms...1 s and without a unit.
    @Test func readingMaxAge() throws {
        #expect(try BoardLoader.parse(minimal, file: "b.toml").spec.readingMaxAge == .ms(100))
        let ok = try BoardLoader.parse(minimal + "\n[limits]\nreading_max_age = \"40 ms\"\n", file: "b.toml")
        #expect(ok.spec.readingMaxAge == .ms(40))
        let old = try #require(refusal(minimal + "\n[limits]\nreading_max_age = \"2 s\"\n"))
        #expect(old.key == "limits.reading_max_age")
        let bare = try #require(refusal(minimal + "\n[limits]\nreading_max_age = 40\n"))
        #expect(bare.key == "limits.reading_max_age")
    }

    /// A meter or module bus polled too slowly for reading_max_age is refused: its readings would never
    /// count as the current now (the stop and the uncommanded-current check would be blind).
    @Test func busTooSlowForReadingMaxAge() throws {
        let text = try String(contentsOfFile: "\(repoRoot)/Boards/bench-60kw-tcp.toml", encoding: .utf8)
        #expect(try BoardLoader.parse(text, file: "bench.toml").spec.readingMaxAge == .ms(100))
        let slow = text.replacingOccurrences(of: "poll_period = \"10 ms\"", with: "poll_period = \"80 ms\"")
        #expect(slow != text)
        let e = try #require(refusal(slow))
        #expect(e.why.contains("reading_max_age"), "\(e)")
        #expect(try BoardLoader.parse(slow.replacingOccurrences(of: "[limits]", with: "[limits]\nreading_max_age = \"200 ms\""),
                                      file: "bench.toml").spec.readingMaxAge == .ms(200))
    }
}

@Suite struct BadBoardFiles {
    @Test func missingFile() {
        do { _ = try BoardLoader.load(path: "/nonexistent/board.toml"); Issue.record("loaded a missing file") }
        catch { #expect(error.description.contains("/nonexistent/board.toml") && error.description.contains("cannot read")) }
    }

    @Test func directoryIsNotABoard() {
        do { _ = try BoardLoader.load(path: repoRoot + "/Boards"); Issue.record("loaded a directory") }
        catch { #expect(error.why == "not a regular file") }
    }

    @Test func syntaxErrorNamesLineAndColumn() throws {
        let e = try #require(refusal("[board]\nname = \n"))
        #expect(e.file == "bad.toml")
        #expect(e.why.contains("line 2"))
    }

    @Test func unknownKey() throws {
        let e = try #require(refusal(minimal.replacingFirst("cooling = \"natural\"", "cooling = \"natural\"\nmax_voltag = \"750 V\"")))
        #expect(e.key == "gun[0].max_voltag")
        #expect(e.why.contains("unknown key"))
    }

    @Test func missingKey() throws {
        let e = try #require(refusal(minimal.replacingFirst("max_current = \"200 A\"\n", "")))
        #expect(e.key == "gun[0].max_current")
        #expect(e.why.contains("missing"))
    }

    @Test func wrongUnit() throws {
        let e = try #require(refusal(minimal.replacingFirst("max_voltage = \"750 V\"", "max_voltage = \"750 A\"")))
        #expect(e.key == "gun[0].max_voltage")
        #expect(e.why.contains("'A' is not a unit of voltage"))
    }

    @Test func bareNumberHasNoUnit() throws {
        let e = try #require(refusal(minimal.replacingFirst("max_voltage = \"750 V\"", "max_voltage = 750")))
        #expect(e.key == "gun[0].max_voltage")
        #expect(e.why.contains("with a unit"))
    }

    @Test func impossibleValues() throws {
        let a = try #require(refusal(minimal.replacingFirst("min_voltage = \"200 V\"", "min_voltage = \"800 V\"")))
        #expect(a.key == "gun[0].min_voltage" && a.why.contains("below max_voltage"))
        let b = try #require(refusal(minimal.replacingFirst("derating_end = \"90 °C\"", "derating_end = \"60 °C\"")))
        #expect(b.key == "gun[0].derating_end")
        let c = try #require(refusal(minimal.replacingFirst("rated_power = \"60 kW\"", "rated_power = \"600 kW\"")))
        #expect(c.key == "gun[0].rated_power" && c.why.contains("exceeds"))
        let d = try #require(refusal(minimal.replacingFirst("guns = [0]", "guns = [3]")))
        #expect(d.key == "modules[0].guns" && d.why.contains("gun 3 does not exist"))
        let e = try #require(refusal(minimal.replacingFirst("count = 2", "count = 65")))
        #expect(e.key == "modules[0].count")
    }

    /// standards.md: demand followed at ≥ 20 A/s, normal stop ramp ≥ 100 A/s: a board may not go below.
    @Test func rampsBelowTheStandardAreRefused() throws {
        let a = try #require(refusal(minimal.replacingFirst("ramp_up = \"50 A/s\"", "ramp_up = \"10 A/s\"")))
        #expect(a.key == "gun[0].ramp_up" && a.why.contains("outside 20"))
        let b = try #require(refusal(minimal.replacingFirst("stop_ramp = \"200 A/s\"", "stop_ramp = \"50 A/s\"")))
        #expect(b.key == "gun[0].stop_ramp")
    }

    @Test func kindAndPlant() throws {
        let a = try #require(refusal(minimal.replacingFirst("kind = \"sim\"", "kind = \"simulated\"")))
        #expect(a.key == "board.kind")
        let b = try #require(refusal(minimal.replacingFirst("[plant]", "")))
        #expect(b.key == "plant" && b.why.contains("sim board needs"))
        let c = try #require(refusal(minimal.replacingFirst("[plant]", "[plant]\nlock_time = \"fast\"")))
        #expect(c.key == "plant.lock_time")
    }

    @Test func wrongTypes() throws {
        let a = try #require(refusal(minimal.replacingFirst("count = 2", "count = \"two\"")))
        #expect(a.key == "modules[0].count" && a.why.contains("integer"))
        let b = try #require(refusal(minimal.replacingFirst("[board]", "board = 3\n[x]")))
        #expect(!b.description.isEmpty)
    }
}

extension String {
    func replacingFirst(_ a: String, _ b: String) -> String {
        guard let r = range(of: a) else { return self }
        return replacingCharacters(in: r, with: b)
    }
}

/// The board-file and site-file fuzz targets found toml++ asserting (SIGABRT, in release builds too) on a
/// table header whose key begins with something other than a key character; the guard names the place.
/// Issue 37: `[metering]`, the meter checked against the charger: the budget from the accuracies
/// (root-sum-square), the defaults without the table, and each bad value refused by name.
@Suite struct MeteringTable {
    @Test func accuraciesMakeTheBudget() throws {
        let d = try BoardLoader.parse(minimal, file: "t.toml").spec.metering
        #expect(d == MeteringSpec() && abs(d.budgetPercent - 1.5) < 1e-12 && !d.refuseSessions)
        let m = try BoardLoader.parse(minimal + "\n[metering]\nmeter_class = \"0.5 %\"\ncurrent_accuracy = \"0.5 %\"\nvoltage_accuracy = \"0.2 %\"\n"
                                      + "min_energy = \"2 kWh\"\npersist = \"30 s\"\nrefuse_sessions = true\n", file: "t.toml").spec.metering
        #expect(abs(m.budgetPercent - (0.25 + 0.25 + 0.04).squareRoot()) < 1e-12)
        #expect(m.minEnergy == .kWh(2) && m.persist == .s(30) && m.refuseSessions)
    }

    @Test func badValuesAreRefusedByName() throws {
        for (line, words) in [("meter_class = \"0 %\"", "meter_class"), ("meter_class = \"12 %\"", "outside 0...10 %"),
                              ("current_accuracy = 1", "current_accuracy"), ("voltage_accuracy = \"1 V\"", "voltage_accuracy"),
                              ("min_energy = \"10 Wh\"", "outside 0.1...1000 kWh"), ("persist = \"0 s\"", "persist"),
                              ("refuse_sessions = \"yes\"", "true or false"), ("class = \"1 %\"", "class")] {
            let e = try #require(refusal(minimal + "\n[metering]\n" + line + "\n"), "\(line)")
            #expect(e.description.contains(words), "\(line): \(e)")
        }
    }
}

@Suite struct TOMLGuardTests {
    @Test func headersToml11WouldAbortOnAreRefusedWithTheirPlace() {
        for bad in ["[`]", "[[`]]", "[\n", "[ \u{FFFD}un]", "name = 1\n[\u{FFFD}]", "[ [x]]", "x = [ } ]", "x = [1, }]", "x = [\n # c\n }]", "x = { a = [ } ] }", "x = [[}]]"] {
            #expect(TOMLGuard.check(bad) != nil, "\(bad.debugDescription)")
            #expect(throws: BoardFileError.self) { try BoardLoader.parse(bad, file: "x.toml") }
        }
        #expect(TOMLGuard.check("a = 1\n[`]")?.line == 2)
        #expect(TOMLGuard.check("a = 1\né = 2")?.why.contains("outside ASCII") == true)
    }

    /// The site-file target's long run: a date (or ten characters shaped like one) then a space, one
    /// digit and the value's end made toml++ assert reading on for a time of day.
    @Test func aDateThenOneDigitIsRefused() {
        for bad in ["ds = [8--------b 8 ins$#\u{0}\u{15}\n", "d = 2024-01-01 1\n", "d = [2024-01-01 1]", "d = 2024-01-01 1,", "d = 2_024-01-01 7 # x", "ds= 8-------\u{07}b 7\u{0C}\u{0C}$", "d = 2024-01-01 1\u{0B}"] {
            #expect(TOMLGuard.check(bad)?.why.contains("a date followed by a space and one digit") == true, "\(bad.debugDescription)")
            #expect(throws: BoardFileError.self) { try BoardLoader.parse(bad, file: "x.toml") }
        }
        for good in ["d = 2024-01-01 12:00:00\n", "d = 2024-01-01\n", "d = 2024-01-01 1", "n = [1234567890, 1]", "s = \"2024-01-01 1 \""] {
            #expect(TOMLGuard.check(good) == nil, "\(good.debugDescription)")
        }
    }

    @Test func validTOMLPassesStringsCommentsAndArraysOfArraysIncluded() {
        for good in ["x = [\n  [1, 2],\n  [3]\n]\n[a]\ny = 1", "a = \"é [`]\"  # °C [`]\n", "[[m]]\n[\"q k\".b]\n", "x = '''\n[`]\n'''\n", "t = { a = [ [1] ] }\n[ b ]", "x = [ \"}\", '}' ]\ny = { a = [1], b = { c = 2 } }"] {
            #expect(TOMLGuard.check(good) == nil, "\(good.debugDescription)")
        }
    }
}

/// The contactor coils' charge-pumped supply (docs/boards.md "The contactor supply"): its hold covers the
/// loop's jitter and, with the contactors' opening time, keeps a dead controller's contactors within
/// `Standard.deadControllerDisconnect` (docs/standards.md "A controller that dies").
@Suite struct ContactorSupplyTable {
    let vm: String = (try? String(contentsOfFile: "\(repoRoot)/Boards/vm-gpio-sim-60kw.toml", encoding: .utf8)) ?? ""
    let table = "[contactor_supply]\nkind = \"charge-pump\"\nhold = \"200 ms\"\n"
    let line = "[[gpio]]\nsignal = \"coil-pump\"\nchip = \"charger-io\"\nline = 17\ndirection = \"output\"\nactive = \"high\"\n"

    @Test func theVMBoardHasOne() throws {
        let b = try BoardLoader.parse(vm, file: "vm.toml")
        #expect(b.contactorSupply == ContactorSupplySpec(hold: .ms(200)))
        #expect(b.gpio.first { $0.signal == .coilPump }?.line == 17)
        #expect(b.gpio.first { $0.signal == .coilPump }?.gun == nil, "a station output")
        #expect(b.emulated && b.contactorSupply!.hold + b.spec.contactorOpeningTime <= Standard.deadControllerDisconnect * 4,
                "an emulated board's bound")
    }

    @Test func aHoldInsideTheLoopsJitterIsRefused() throws {
        // 20 ms is two of the board's 10 ms periods: a late cycle or two would drop the coils under load.
        let e = try #require(refusal(vm.replacingOccurrences(of: "hold = \"200 ms\"", with: "hold = \"20 ms\"")))
        #expect(e.key == "contactor_supply.hold" && e.why.contains("three"), "\(e)")
    }

    @Test func aHoldPastTheDeadControllersBoundIsRefused() throws {
        // The VM board as a charger's (not emulated, a charger's analog bound): 80 ms and the contactors'
        // 30 ms are 110 ms, past the 100 ms a dead controller's contactors may stay closed.
        let charger = vm.replacingOccurrences(of: "emulated = true\n", with: "")
            .replacingOccurrences(of: "analog_max_age = \"300 ms\"", with: "analog_max_age = \"50 ms\"")
            .replacingOccurrences(of: "hold = \"200 ms\"", with: "hold = \"80 ms\"")
        let e = try #require(refusal(charger))
        #expect(e.key == "contactor_supply.hold" && e.why.contains("100"), "\(e)")
        // The same hold passes with faster contactors.
        let fast = charger.replacingOccurrences(of: "[limits]\n", with: "[limits]\ncontactor_opening_time = \"20 ms\"\n")
        #expect(try BoardLoader.parse(fast, file: "fast.toml").contactorSupply?.hold == .ms(80))
        // An emulated board's four times the bound: 380 ms and 30 ms are past 400 ms.
        let slow = try #require(refusal(vm.replacingOccurrences(of: "hold = \"200 ms\"", with: "hold = \"380 ms\"")))
        #expect(slow.key == "contactor_supply.hold" && slow.why.contains("four times"), "\(slow)")
    }

    @Test func eachNeedsTheOther() throws {
        let noTable = try #require(refusal(vm.replacingOccurrences(of: table, with: "")))
        #expect(noTable.key == "contactor_supply" && noTable.why.contains("coil-pump"), "\(noTable)")
        let noLine = try #require(refusal(vm.replacingOccurrences(of: line, with: "")))
        #expect(noLine.why.contains("coil-pump"), "\(noLine)")
        let relay = try #require(refusal(vm.replacingOccurrences(of: "kind = \"charge-pump\"", with: "kind = \"relay\"")))
        #expect(relay.key == "contactor_supply.kind", "\(relay)")
        let gun = try #require(refusal(vm.replacingOccurrences(of: "signal = \"coil-pump\"\n", with: "signal = \"coil-pump\"\ngun = 0\n")))
        #expect(gun.key.hasSuffix("gun") && gun.why.contains("station signal"), "\(gun)")
    }
}

/// `analog_max_age` (docs/standards.md "Analog inputs that stop"): 20 ms, or three periods of a slower loop;
/// never under three periods, never over the CC1 row's 50 ms.
@Suite struct AnalogMaxAge {
    @Test func defaultsAndBounds() throws {
        #expect(try BoardLoader.parse(minimal, file: "b.toml").spec.analogMaxAge == .ms(20))
        // The VM board without its own value (and without the analog channels that need a longer one).
        var vm = try String(contentsOfFile: "\(repoRoot)/Boards/vm-gpio-sim-60kw.toml", encoding: .utf8)
        vm = String(vm[..<vm.range(of: "# An analog input module (Moxa")!.lowerBound])
        vm = vm.replacingOccurrences(of: "analog_max_age = \"300 ms\"\n", with: "")
        #expect(try BoardLoader.parse(vm, file: "vm.toml").spec.analogMaxAge == .ms(30), "a 10 ms loop: three periods")
        let short = try #require(refusal(vm.replacingOccurrences(of: "[limits]\n", with: "[limits]\nanalog_max_age = \"25 ms\"\n")))
        #expect(short.key == "limits.analog_max_age" && short.why.contains("three"), "\(short)")
        let long = try #require(refusal(minimal + "\n[limits]\nanalog_max_age = \"60 ms\"\n"))
        #expect(long.key == "limits.analog_max_age", "\(long)")
        #expect(try BoardLoader.parse(minimal + "\n[limits]\nanalog_max_age = \"5 ms\"\n", file: "b.toml").spec.analogMaxAge == .ms(5))
    }

    /// An emulated board (the VM board under qemu's software emulation) may take up to 500 ms; no other.
    @Test func onlyAnEmulatedBoardMayTakeMore() throws {
        let vm = try String(contentsOfFile: "\(repoRoot)/Boards/vm-gpio-sim-60kw.toml", encoding: .utf8)
        let b = try BoardLoader.parse(vm, file: "vm.toml")
        #expect(b.emulated && b.spec.analogMaxAge == .ms(300))
        let real = try #require(refusal(vm.replacingOccurrences(of: "emulated = true\n", with: "")))
        #expect(real.key == "limits.analog_max_age" && real.why.contains("emulated = true"), "\(real)")
        let far = try #require(refusal(vm.replacingOccurrences(of: "analog_max_age = \"300 ms\"", with: "analog_max_age = \"600 ms\"")))
        #expect(far.key == "limits.analog_max_age", "\(far)")
        let sim = try #require(refusal(minimal.replacingOccurrences(of: "kind = \"sim\"\n", with: "kind = \"sim\"\nemulated = true\n")))
        #expect(sim.key == "board.emulated", "\(sim)")
        #expect(try !BoardLoader.parse(minimal, file: "b.toml").emulated)
    }
}

/// `[[analog]] source = "modbus"`: a channel of an analog input module ([[modbus_device]] role
/// "analog-in", named) of the board; each mistake named by key.
@Suite struct AnalogInputModules {
    static let vm = "\(repoRoot)/Boards/vm-gpio-sim-60kw.toml"
    func load(_ edit: (String) -> String) throws -> Board {
        let text = edit(try String(contentsOfFile: Self.vm, encoding: .utf8))
        return try BoardLoader.parse(text, file: "vm-edited.toml")
    }
    func error(_ edit: (String) -> String) -> String {
        do { _ = try load(edit); return "" } catch { return "\(error)" }
    }

    @Test func theVMBoardsChannelsAreOnItsModule() throws {
        let b = try load { $0 }
        let ai = try #require(b.modbus.devices.firstIndex { $0.role == .analogIn })
        #expect(b.modbus.devices[ai].label == "ai0" && b.modbus.devices[ai].name == "analog-in ai0")
        #expect(b.modbus.maps[b.modbus.devices[ai].map].channels == {
            var c = AnalogChannels(table: .input, address: 0, count: 8, type: .u16); c.statusTable = .input; c.statusAddress = 60; return c }())
        #expect(b.analog.count == 5 && b.analog.allSatisfy { $0.modbusDevice == ai })
        #expect(b.analog.map { $0.channel ?? -1 } == [0, 1, 2, 3, 4])
        // Its poll is not a module's or a meter's: the command latency is the plant bus's.
        #expect(b.modbus.commandLatency == (TimeSpan.ms(20) + .ms(4)) * 2)
    }

    @Test func mistakesAreNamed() {
        #expect(error { $0.replacingOccurrences(of: "device = \"ai0\"\nchannel = 0", with: "device = \"ai9\"\nchannel = 0") }
            .contains("no [[modbus_device]] role \"analog-in\" named 'ai9' (analog-in devices: ai0)"))
        #expect(error { $0.replacingOccurrences(of: "device = \"ai0\"\nchannel = 4", with: "device = \"ai0\"\nchannel = 8") }
            .contains("channel"))
        #expect(error { $0.replacingOccurrences(of: "channel = 0\nscale", with: "channel = 0\nfilter = \"1 ms\"\nscale") }
            .contains("filtered by its module"))
        #expect(error { $0.replacingOccurrences(of: "poll_period = \"20 ms\"\nfault_after = 3\nkeepalive = \"200 ms\"\n\n# Register", with: "poll_period = \"200 ms\"\nfault_after = 3\nkeepalive = \"200 ms\"\n\n# Register") }
            .contains("polled every 200.0 ms: too slow for [limits] analog_max_age of 300.0 ms (E36); at most half of it"))
        #expect(error { $0.replacingOccurrences(of: "role = \"analog-in\"\nname = \"ai0\"", with: "role = \"analog-in\"\ngun = 0") }
            .contains("an analog-in device has a name, not a gun"))
        #expect(error { $0.replacingOccurrences(of: "source = \"modbus\"\ndevice = \"ai0\"\nchannel = 0", with: "source = \"spi\"\ndevice = \"ai0\"\nchannel = 0") }
            .contains("'spi' is not one of iio, modbus"))
    }

    @Test func anAnalogInMapIsChecked() {
        func map(_ text: String) -> String {
            do { _ = try BoardLoader.libraryMap("x", text: text); return "" } catch { return "\(error)" }
        }
        #expect(map("role = \"analog-in\"\n").contains("missing: an analog-in map needs channels"))
        #expect(map("role = \"analog-in\"\nchannels = { address = 0, count = 17 }\n").contains("count"))
        #expect(map("role = \"analog-in\"\nchannels = { address = 0, count = 8, type = \"f32\" }\n").contains("not one of u16, i16"))
        #expect(map("role = \"analog-in\"\nchannels = { address = 0, count = 8 }\nchannel_status = { address = 4 }\n").contains("overlap"))
        #expect(map("role = \"analog-in\"\nchannels = { address = 0, count = 8 }\nvoltage = { address = 9, scale = \"1 V\" }\n").contains("channels and channel_status only"))
        #expect(map("role = \"meter\"\nchannels = { address = 0, count = 8 }\n").contains("only an analog-in map has channels"))
    }
}

/// `ground_detector_release` (docs/standards.md "Residual current / earth"): 300 ms by default, a board's
/// device's own within 0-2 s, and only where the detector tests itself.
@Suite struct GroundDetectorRelease {
    @Test func defaultBoundsAndItsPrerequisite() throws {
        let gun = "stop_ramp = \"200 A/s\"\n"
        #expect(try BoardLoader.parse(minimal, file: "b.toml").spec.guns[0].groundDetectorRelease == .ms(300))
        let own = minimal.replacingOccurrences(of: gun, with: gun + "ground_detector_self_test = true\nground_detector_release = \"450 ms\"\n")
        #expect(try BoardLoader.parse(own, file: "b.toml").spec.guns[0].groundDetectorRelease == .ms(450))
        let long = try #require(refusal(own.replacingOccurrences(of: "450 ms", with: "3 s")))
        #expect(long.key == "gun[0].ground_detector_release", "\(long)")
        let alone = try #require(refusal(minimal.replacingOccurrences(of: gun, with: gun + "ground_detector_release = \"100 ms\"\n")))
        #expect(alone.key == "gun[0].ground_detector_release" && alone.why.contains("ground_detector_self_test = true"), "\(alone)")
    }
}
