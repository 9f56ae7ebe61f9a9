// charger-plant: the plant emulator of a bench board. It runs the simulated plant (rectifier modules,
// DC meter, IMD, contactors, lock, the car) and serves its Modbus devices as real Modbus slaves, TCP on
// the board's host:port and RTU on a serial line or pseudo-terminal, with the register maps the board
// file describes. What a real board carries on GPIO, analog inputs and CAN goes through the bench
// channel (HIL/README.md "The bench channel"), in lockstep with chargerd's control cycles.
import ArgumentParser
import BenchChannel
import CANLink
import BoardFile
import ChargerCore
import ChargerHAL
import ChargerRuntime
import LoopContract
import RealTime
import SimPlant
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

struct CommFault {
    var role: DeviceRole
    var index: Int
    var behaviour: CommBehaviour
    var at: Instant
    var text: String
    var done = false

    /// `module:N=MODE@TIME`, `meter:G=MODE@TIME`, `imd:G=MODE@TIME`; MODE silent, exception, garbage,
    /// slow=MS, normal.
    static func parse(_ text: String, spec: StationSpec) throws(ValidationError) -> CommFault {
        func bad(_ why: String) -> ValidationError { ValidationError("--comm-fault '\(text)': \(why)") }
        guard let atSign = text.lastIndex(of: "@"), let eq = text.firstIndex(of: "="), eq < atSign else {
            throw bad("expected DEVICE=MODE@TIME, e.g. module:0=silent@60s, meter:0=slow=300ms@90s")
        }
        let device = text[..<eq], mode = String(text[text.index(after: eq)..<atSign])
        let timeText = String(text[text.index(after: atSign)...])
        guard case .success(let seconds) = QuantityText.parse(timeText, .time), seconds >= 0 else {
            throw bad("'\(timeText)' is not a time (90s, 5min, 1500ms)")
        }
        let parts = device.split(separator: ":")
        guard parts.count == 2, let role = DeviceRole(rawValue: String(parts[0])), let index = Int(parts[1]) else {
            throw bad("device '\(device)' is not module:N, meter:GUN or imd:GUN")
        }
        let count = role == .module ? spec.moduleCount : spec.gunCount
        guard index >= 0 && index < count else { throw bad("\(role.rawValue) \(index) does not exist (0...\(count - 1))") }
        guard let b = CommBehaviour(mode) else { throw bad("mode '\(mode)' is not one of silent, exception, garbage, slow=MS, normal") }
        return CommFault(role: role, index: index, behaviour: b, at: Instant(micros: Int64((seconds * 1e6).rounded())), text: text)
    }
}

struct ChargerPlant: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "charger-plant",
        abstract: "The plant on the other side of a board: a bench board's simulated plant, or a real board's contactor supply.",
        subcommands: [Serve.self, CoilSupply.self], defaultSubcommand: Serve.self)
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Plant emulator for a bench board: the simulated plant and car, its Modbus devices served over TCP and RTU (the default).",
        discussion: """
        Start it first, then `chargerd --board SAME-BOARD`. The plant waits for chargerd to attach to the \
        bench channel, then runs one plant period per control cycle, paced to --speed times wall time.
        Plant injections (--inject WHAT[:GUN][=VALUE]@TIME): the plant's entries of chargerd's list; \
        imd-silent, meter-silent and module-silent=N silence the device on the wire.
        """)

    @Option(name: .long, help: "Bench board file (kind = \"bench\").")
    var board: String

    @Option(name: .long, help: "Car on gun 0 (chargerd's --car syntax; a bench board has a default one, a real board's lines with --sim none).")
    var car: String?

    @Option(name: .long, parsing: .singleValue, help: "A car on another gun: 'GUN:PROFILE' (repeatable).")
    var carOn: [String] = []

    @Option(name: .long, help: "Plant seconds per wall second, or 'max' (lockstep with chargerd only).")
    var speed: String = "1"

    @Option(name: .long, parsing: .singleValue, help: "Serve an RTU bus on this serial line or pty (the other end of the board's device): BUS=PATH, or PATH when the board has one RTU bus (repeatable).")
    var serveRtu: [String] = []

    @Option(name: .long, parsing: .singleValue, help: "A plant fault or action: WHAT[:GUN][=VALUE]@TIME, or @usr2 with --sim: when SIGUSR2 comes (repeatable).")
    var inject: [String] = []

    @Option(name: .long, parsing: .singleValue, help: "Make a device misbehave on the wire: module:N|meter:G|imd:G=silent|exception|garbage|slow=MS|normal@TIME (repeatable).")
    var commFault: [String] = []

    @Flag(name: .long, help: "Exit when the chargerd that attached detaches.")
    var once = false

    @Flag(name: .long, help: "The simulated cars' BMS talk on the board's CAN interfaces ([[can]]); without it a CAN gun's BMS is another program on the wire (HIL/peers/gbt_bms.py) and the car model follows the charger's broadcast through the channel.")
    var bmsOnCan = false

    @Option(name: .long, help: "Stop after this much plant time, in seconds.")
    var maxTime: Double = 24 * 3600

    @Option(name: .long, help: "A real board's lines on gpio-sim: the directory holding its sim_gpioN (the plant drives them, in wall time, in the bench channel's place).")
    var sim: String?

    @Flag(name: .long, help: "With --sim: the cars' plug-at and the --inject and --comm-fault times count from SIGUSR1 (send it once chargerd's loop runs), not from the plant's start.")
    var plugOnSignal = false

    @Option(name: .long, help: "With --sim: how often the plant reads and sets the lines, in ms (1...20; its physics still steps every 1 ms).")
    var step: Int = 2

    mutating func run() throws {
        let loaded: Board
        do { loaded = try BoardLoader.load(path: board) } catch { fail("board file: \(error)") }
        if let sim { return serveLines(loaded, sim: sim) }
        guard loaded.kind == .bench, let bench = loaded.bench, let params = loaded.plant else {
            fail("board '\(loaded.name)' is a \(loaded.kind.rawValue) board; the emulator runs bench boards (kind = \"bench\", with [bench] and [plant])")
        }
        let spec = loaded.spec
        var factor: Double? = nil
        if speed.lowercased() != "max" {
            guard let f = Double(speed), f > 0, f <= 1000 else { fail("--speed '\(speed)': expected a factor 0 < K ≤ 1000, or 'max'") }
            factor = f
        }
        let plant = Plant(spec: spec, params: PlantParameters(params))
        attachCars(plant, spec: spec)
        var script = PlantScript(injections: plantInjections(spec: spec), faults: [])
        for text in commFault { do { script.faults.append(try CommFault.parse(text, spec: spec)) } catch { fail(error.message) } }
        let served = serveBuses(loaded.modbus, spec: spec)

        let channel: BenchChannel
        do { channel = try BenchChannel.create(path: bench.channel, guns: spec.gunCount, modules: spec.moduleCount, speed: factor ?? 0) } catch {
            fail("\(error)")
        }
        installSignalHandlers()

        let bridge = PlantBridge(plant: plant, channel: channel, banks: served.banks, spec: spec)
        if bmsOnCan { startCarsOnCan(loaded, bridge) }
        bridge.publish()
        channel.publishTick(1, now: plant.now)
        print("charger-plant: ready: board \(loaded.name), channel \(bench.channel), \(served.endpoints.joined(separator: ", ")), speed \(factor.map { "\(fmt($0, 1))x" } ?? "max")")
        fflush(nil)

        // Nothing moves until a controller is there: a car plugged in at 2 s must find one.
        while !channel.controllerAttached && !stopRequested { usleep(5_000) }
        if !stopRequested { print("charger-plant: controller attached"); fflush(nil) }

        let late = runPlant(plant, bridge: bridge, channel: channel, banks: served.banks, script: &script, factor: factor, spec: spec)
        usleep(100_000)   // the controller's last commands, sent as it stops
        stopServing(bridge, served, at: plant.now)
        print("charger-plant: stopped at \(fmt(plant.now.seconds, 3)) s; controller late \(late) times")
        printPlantTruth(plant, banks: served.banks)
    }

    /// A real board on gpio-sim's lines (--sim): the plant in wall time, the lines read and set every
    /// --step ms and the physics advanced by the time since in 1 ms pieces, its devices served on the
    /// board's own buses, its analog channels on the analog input modules among them.
    func serveLines(_ loaded: Board, sim: String) {
        guard loaded.kind == .real else { fail("--sim: board '\(loaded.name)' is a \(loaded.kind.rawValue) board; --sim drives a real board's lines (kind = \"real\")") }
        guard speed == "1" else { fail("--sim: the plant runs in wall time beside a real board's loop (no --speed)") }
        let spec = loaded.spec
        let plant = Plant(spec: spec, params: PlantParameters(loaded.plant ?? PlantSpec()))
        // On a real board's lines a car comes only when given (--car, --car-on): without one the lines
        // rest, and a test drives them by hand (a bench board's plant has a default car).
        let withCar = car != nil || !carOn.isEmpty
        var carsDue = plugOnSignal && withCar
        if plugOnSignal { signal(SIGUSR1) { _ in plugRequested.store(true, ordering: .releasing) } }
        else if withCar { attachCars(plant, spec: spec) }
        signal(SIGUSR2) { _ in injectRequested.store(true, ordering: .releasing) }
        var script = PlantScript(injections: plantInjections(spec: spec), faults: [])
        script.onSignal = plantInjections(spec: spec, onSignal: true)
        for text in commFault { do { script.faults.append(try CommFault.parse(text, spec: spec)) } catch { fail(error.message) } }
        let lines: SimLines
        do { lines = try SimLines(board: loaded, dir: sim) } catch { fail(error.message) }
        for i in script.injections + script.onSignal {
            if case .plant(let p) = i.action, let missing = lines.missingLine(for: p) {
                fail("--inject '\(i.text)': board '\(loaded.name)' has no \(missing) line, so the plant cannot show it to chargerd")
            }
        }
        let served = serveBuses(loaded.modbus, spec: spec)
        installSignalHandlers()
        let bridge = PlantBridge(plant: plant, channel: nil, lines: lines, banks: served.banks, spec: spec,
                                 analog: loaded.analog, modbus: loaded.modbus)
        if bmsOnCan { startCarsOnCan(loaded, bridge) }
        bridge.publish()
        let ai = loaded.analog.filter { $0.modbusDevice != nil }.count
        print("charger-plant: ready: board \(loaded.name), lines on \(sim) (\(loaded.gpio.count)), \(served.endpoints.joined(separator: ", ")), \(ai) analog channel\(ai == 1 ? "" : "s") on Modbus, wall time")
        fflush(nil)
        let end = Instant.zero + .seconds(maxTime)
        guard (1...20).contains(step) else { fail("--step \(step): expected 1...20 ms") }
        let wake = Int64(step) * 1_000_000, piece: Int64 = 1_000_000
        var last = monotonicNanos(), steps: UInt64 = 0, lateSteps = 0, worstLate: Int64 = 0
        var lamps = ""
        while !stopRequested && plant.now < end {
            var next = last + wake
            var ts = timespec(tv_sec: Int(next / 1_000_000_000), tv_nsec: Int(next % 1_000_000_000))
            _ = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil)
            let now = monotonicNanos()
            // The physics keeps to the wall clock in 1 ms pieces: a late wake-up is caught up (at most a
            // second's worth; more and the guest was stopped, not slow).
            var pieces = max(1, min(1000, (now - last) / piece))
            if now - last > 2 * wake { lateSteps += 1; worstLate = max(worstLate, now - last - wake) }
            next = last + pieces * piece
            if injectRequested.exchange(false, ordering: .acquiring) {
                script.signalled(at: plant.now)
                print("[\(stamp(plant.now))] SIGUSR2: the injections given @usr2 are due")
            }
            if carsDue && plugRequested.load(ordering: .acquiring) {
                carsDue = false
                attachCars(plant, spec: spec, from: plant.now)
                script.count(from: plant.now)
                print("[\(stamp(plant.now))] SIGUSR1: the cars plug in at their plug-at, and the injections come at their times, from now")
            }
            script.applyDue(plant, banks: served.banks)
            bridge.applyControllerOutputs()
            while pieces > 0 { plant.advance(by: .ms(1)); pieces -= 1 }
            bridge.publish()
            last = next > now ? now : next
            steps &+= 1
            for line in bridge.takeNotes() { print("[\(stamp(plant.now))] \(line)") }
            if steps % 16 == 0 { printRefusals(served.banks, at: plant.now) }
            if steps % UInt64(500 / step) == 0 {
                let l = lines.lamps(gun: 0)
                if l != lamps { print("[\(stamp(plant.now))] gun 0 lamps \(l)"); lamps = l }
            }
            if steps % UInt64(1000 / step) == 0 { fflush(nil) }
        }
        stopServing(bridge, served, at: plant.now)
        print("charger-plant: stopped at \(fmt(plant.now.seconds, 3)) s; \(steps) steps, \(lateSteps) late (the latest \(fmt(Double(worstLate) / 1e6, 1)) ms); coil supply fell \(lines.supplyFalls) time(s) (\(lines.blindGaps) samples of the pump too late to judge it); line I/O errors \(lines.ioErrors)\(lines.lastError.isEmpty ? "" : " (last: \(lines.lastError))")")
        printPlantTruth(plant, banks: served.banks)
    }

    /// The end of a run: the cars off the wire with their counts, the last refusals, the servers stopped.
    func stopServing(_ bridge: PlantBridge, _ served: (banks: [DeviceRole: [Int: RegisterBank]], servers: [BusServer], endpoints: [String]),
                     at now: Instant) {
        for (g, car) in bridge.canCars.sorted(by: { $0.key < $1.key }) {
            car.stop()
            let c = car.counts.withLock { $0 }
            print("charger-plant: gun \(g) car on CAN: \(c.sent) frames sent, \(c.received) received, \(c.transfers) transfers, \(c.aborted) aborted, \(c.timedOut) timed out, \(c.sendErrors) send errors")
        }
        printRefusals(served.banks, at: now)
        for s in served.servers { s.running.store(false, ordering: .relaxed) }
    }

    /// --bms-on-can: each [[can]] gun's simulated BMS on its interface.
    func startCarsOnCan(_ loaded: Board, _ bridge: PlantBridge) {
        guard !loaded.can.isEmpty else { fail("--bms-on-can: board '\(loaded.name)' has no [[can]] link") }
        for l in loaded.can {
            do {
                let car = try SocketCANCar(spec: l)
                try car.start()
                bridge.canCars[l.gun] = car
            } catch { fail("\(error)") }
            print("charger-plant: gun \(l.gun)'s car talks GB/T 27930 on \(l.interface) (BMS 0x\(String(l.bmsAddress, radix: 16, uppercase: true)))")
        }
    }

    /// The cars of --car and --car-on, plugged at their profiles' times (counted from `from`).
    func attachCars(_ plant: Plant, spec: StationSpec, from: Instant = .zero) {
        for (g, var profile) in carProfiles(spec: spec) {
            profile.plugAt = profile.plugAt + (from - .zero)
            plant.attach(car: profile, gun: g)
        }
    }

    func carProfiles(spec: StationSpec) -> [(Int, CarProfile)] {
        do {
            var out = [(0, try car.map { try CarProfile.parse($0) } ?? CarProfile())]
            for c in carOn {
                guard let colon = c.firstIndex(of: ":"), let g = Int(c[..<colon]), g >= 0, g < spec.gunCount else {
                    fail("--car-on '\(c)': expected GUN:PROFILE with GUN 0...\(spec.gunCount - 1)")
                }
                out.append((g, try CarProfile.parse(String(c[c.index(after: colon)...]))))
            }
            return out
        } catch { fail("\(error)") }
    }

    /// --inject: plant faults at a time only (operator actions go to chargerd).
    /// `WHAT@usr2` (with --sim): held back until SIGUSR2 comes (a harness sends it on an event it saw);
    /// PlantScript.onSignal has them.
    func plantInjections(spec: StationSpec, onSignal: Bool = false) -> [ScheduledInjection] {
        if sim == nil, let t = inject.first(where: { $0.hasSuffix("@usr2") }) {
            fail("--inject '\(t)': @usr2 belongs to --sim (a bench plant runs in lockstep with chargerd: give a time)")
        }
        var injections: [ScheduledInjection] = []
        for text in inject where text.hasSuffix("@usr2") == onSignal {
            do { injections.append(try InjectionParser.parse(onSignal ? String(text.dropLast(5)) + "@0s" : text, spec: spec)) } catch { fail("\(error)") }
            if onSignal { injections[injections.count - 1].text = text }
            guard case .plant = injections.last!.action, case .at = injections.last!.time else {
                fail("--inject '\(text)': only plant faults at a time belong to the emulator; operator actions (reset, stop, setpoints) go to chargerd")
            }
        }
        return injections
    }

    /// The devices' register banks and a server per bus: TCP on the board's host:port, RTU on the line
    /// --serve-rtu names.
    func serveBuses(_ config: ModbusConfig, spec: StationSpec) -> (
        banks: [DeviceRole: [Int: RegisterBank]], servers: [BusServer], endpoints: [String]
    ) {
        var banks: [DeviceRole: [Int: RegisterBank]] = [.module: [:], .meter: [:], .imd: [:], .analogIn: [:]]
        var servers: [BusServer] = []
        var endpoints: [String] = []
        var rtuPaths: [String: String] = [:]
        let rtuBuses = config.buses.filter { if case .rtu = $0.transport { true } else { false } }
        for s in serveRtu {
            if let eq = s.firstIndex(of: "="), !s.hasPrefix("/") { rtuPaths[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
            else if rtuBuses.count == 1 { rtuPaths[rtuBuses[0].name] = s }
            else { fail("--serve-rtu '\(s)': the board has \(rtuBuses.count) RTU buses; name one: BUS=PATH") }
        }
        for (b, bus) in config.buses.enumerated() {
            var list: [RegisterBank] = []
            for d in config.devices where d.bus == b {
                let bank = RegisterBank(spec: d, map: config.maps[d.map])
                if d.role == .module {
                    bank.limits = [.voltageSetpoint: spec.modules[d.index].maxVoltage.value, .currentSetpoint: spec.modules[d.index].maxCurrent.value,
                                   .reverseCurrentSetpoint: spec.modules[d.index].reverseMaxCurrent.value, .direction: 1]
                }
                banks[d.role]![d.index] = bank
                list.append(bank)
            }
            let server = BusServer(name: bus.name, banks: list)
            servers.append(server)
            switch bus.transport {
            case .tcp(let host, let port):
                if let e = server.serveTCP(host: host, port: port) { fail("bus '\(bus.name)': \(e)") }
                endpoints.append("\(bus.name) tcp \(host):\(port) (\(list.count) devices)")
            case .rtu(let device, let baud, _, _, _, _, _):
                guard let path = rtuPaths[bus.name] else {
                    fail("bus '\(bus.name)' is RTU on \(device): give the emulator the other end of that line with --serve-rtu \(bus.name)=PATH (e.g. a socat pty pair)")
                }
                if let e = server.serveRTU(path: path, baud: baud) { fail("bus '\(bus.name)': \(e)") }
                endpoints.append("\(bus.name) rtu \(path) for \(device) (\(list.count) devices)")
            }
        }
        for name in rtuPaths.keys where !rtuBuses.contains(where: { $0.name == name }) { fail("--serve-rtu: the board has no RTU bus '\(name)'") }
        return (banks, servers, endpoints)
    }

    /// One plant period per tick until the time is up, a signal, or (with --once) the controller
    /// detaches; paced to --speed times wall time. Returns how many ticks the controller was late.
    func runPlant(_ plant: Plant, bridge: PlantBridge, channel: BenchChannel, banks: [DeviceRole: [Int: RegisterBank]],
                  script: inout PlantScript, factor: Double?, spec: StationSpec) -> Int {
        let end = Instant.zero + .seconds(maxTime)
        var tick: UInt32 = 1
        var late = 0
        var wasAttached = true
        let startWall = monotonicMicros()
        var nextPace = Instant.zero
        while !stopRequested && plant.now < end {
            let attached = channel.controllerAttached
            if attached && !channel.waitAcknowledged(tick, timeoutMicros: 200_000) {
                late += 1
                if late == 1 || late % 100 == 0 { print("[\(stamp(plant.now))] controller did not acknowledge tick \(tick) within 200 ms (\(late) times): the plant runs on") }
            }
            if wasAttached && !attached {
                print("[\(stamp(plant.now))] controller detached")
                if once { break }
            }
            wasAttached = attached
            script.applyDue(plant, banks: banks)
            bridge.applyControllerOutputs()
            plant.advance(by: spec.period)
            bridge.publish()
            tick &+= 1
            channel.publishTick(tick, now: plant.now)
            for line in bridge.takeNotes() { print("[\(stamp(plant.now))] \(line)") }
            if tick % 16 == 0 { printRefusals(banks, at: plant.now) }
            if let factor, plant.now >= nextPace {
                nextPace = plant.now + .ms(10)
                let due = startWall + Int64(Double(plant.now.micros) / factor)
                let ahead = due - monotonicMicros()
                if ahead > 0 { usleep(UInt32(ahead)) }
            }
            if tick % 1000 == 0 { fflush(nil) }
        }
        return late
    }

    func printRefusals(_ banks: [DeviceRole: [Int: RegisterBank]], at now: Instant) {
        for (role, list) in banks { for (i, b) in list { for r in b.takeRefusals() { print("[\(stamp(now))] \(role == .module ? "module \(i)" : "\(role.rawValue) gun \(i)"): \(r)") } } }
    }

    /// The plant's own truth at the end, for benches and tests: what the controller left energised.
    func printPlantTruth(_ plant: Plant, banks: [DeviceRole: [Int: RegisterBank]]) {
        for (g, p) in plant.guns.enumerated() {
            print("charger-plant: gun \(g): K1 \(p.k1.closed ? "closed" : "open"), K2 \(p.k2.closed ? "closed" : "open"), \(fmt(p.current.value, 1)) A, \(fmt(p.vehicleSide.value, 1)) V at the car, lock \(p.locked ? "locked" : "open"), meter \(fmt(p.energy.value / 1000, 3)) kWh" + (p.exportEnergy > .zero ? ", exported \(fmt(p.exportEnergy.value / 1000, 3)) kWh" : ""))
        }
        for (m, mod) in plant.modules.enumerated() {
            print("charger-plant: module \(m): \(mod.enabled ? "on" : "off"), \(fmt(mod.current.value, 1)) A")
        }
        for role in [DeviceRole.module, .meter, .imd] {
            for (i, bank) in banks[role]!.sorted(by: { $0.key < $1.key }) {
                let t = bank.tables.withLock { ($0.requests, $0.writes) }
                print("charger-plant: \(role == .module ? "module \(i)" : "\(role.rawValue) gun \(i)") (unit \(bank.spec.unit)): \(t.0) requests answered, \(t.1) writes")
            }
        }
        fflush(nil)
    }
}

/// The plant faults (--inject) and wire faults (--comm-fault) of a run, each applied once at its time.
struct PlantScript {
    var injections: [ScheduledInjection]
    var faults: [CommFault]

    /// The injections given `@usr2` (--sim), held back until SIGUSR2.
    var onSignal: [ScheduledInjection] = []

    /// SIGUSR2 came: the `@usr2` injections are due now.
    mutating func signalled(at now: Instant) {
        for var i in onSignal { i.time = .at(now); injections.append(i) }
        onSignal.removeAll()
    }

    /// Every time counted from `origin` instead of the plant's start (--plug-on-signal).
    mutating func count(from origin: Instant) {
        let d = origin - .zero
        for i in injections.indices { if case .at(let t) = injections[i].time { injections[i].time = .at(t + d) } }
        for i in faults.indices { faults[i].at = faults[i].at + d }
    }

    mutating func applyDue(_ plant: Plant, banks: [DeviceRole: [Int: RegisterBank]]) {
        for i in injections.indices where !injections[i].done {
            guard case .at(let t) = injections[i].time, plant.now >= t, case .plant(let p) = injections[i].action else { continue }
            injections[i].done = true
            print("[\(stamp(plant.now))] inject \(injections[i].text)")
            switch p {
            case .imdSilent(let g): banks[.imd]![g]!.behaviour = .silent
            case .meterSilent(let g): banks[.meter]![g]!.behaviour = .silent
            case .moduleSilent(let m): banks[.module]![m]!.behaviour = .silent
            default: plant.inject(p)
            }
        }
        for i in faults.indices where !faults[i].done && plant.now >= faults[i].at {
            faults[i].done = true
            banks[faults[i].role]![faults[i].index]!.behaviour = faults[i].behaviour
            print("[\(stamp(plant.now))] comm \(faults[i].text)")
        }
    }
}

/// Moves values between the plant, the register banks and the bench channel, once per plant period.
final class PlantBridge {
    let plant: Plant
    let channel: BenchChannel?
    let banks: [DeviceRole: [Int: RegisterBank]]
    let spec: StationSpec
    let frontEnd: SimFrontEnd
    let imd: SimIMD
    var lastWrites: [UInt64]
    var lastCommandAt: [Instant]
    var selfOff: [Bool]
    var notes: [String] = []
    /// Guns whose simulated BMS is on the CAN wire (--bms-on-can).
    var canCars: [Int: SocketCANCar] = [:]

    /// A real board's kernel lines (`--sim`) in the channel's place, with its [[analog]] channels on
    /// analog input modules the plant serves.
    let lines: SimLines?
    let analog: [AnalogInputSpec]
    let modbus: ModbusConfig
    /// The coil supply as the lines last showed it; the guns whose contactors were closed when it fell.
    var supply = true
    var watchOpening: [Int] = []
    var supplyFellAt = Instant.zero
    /// Each gun's K1/K2 as last seen closed, with the current they carried and the most they carried
    /// within the last 50 ms (--sim: their opening noted).
    var wasClosed: [(closed: Bool, amps: Double, recent: Double, recentAt: Instant)] = []

    init(plant: Plant, channel: BenchChannel?, lines: SimLines? = nil, banks: [DeviceRole: [Int: RegisterBank]], spec: StationSpec,
         analog: [AnalogInputSpec] = [], modbus: ModbusConfig = ModbusConfig()) {
        self.plant = plant; self.channel = channel; self.lines = lines; self.banks = banks; self.spec = spec
        self.analog = analog; self.modbus = modbus
        supply = lines == nil
        frontEnd = SimFrontEnd(plant); imd = SimIMD(plant)
        lastWrites = Array(repeating: 0, count: spec.moduleCount)
        lastCommandAt = Array(repeating: .zero, count: spec.moduleCount)
        selfOff = Array(repeating: false, count: spec.moduleCount)
    }

    func takeNotes() -> [String] { defer { notes.removeAll() }; return notes }

    /// Every opening of K1/K2, timed from chargerd's last write (the pump's last edge): by its line, or by
    /// the supply; with the current it carried (or, when none, the most of the 50 ms before).
    func noteOpenings(_ lines: SimLines, now: Instant) {
        if wasClosed.count != spec.gunCount { wasClosed = Array(repeating: (false, 0, 0, .zero), count: spec.gunCount) }
        for g in 0..<spec.gunCount {
            let p = plant.guns[g]
            let closed = p.k1.closed || p.k2.closed
            if wasClosed[g].closed && !closed {
                let line = lines.outputs(gun: g, supply: true).closeK1K2
                let when = "\(fmt(Double(lines.sinceEdge(now: monotonicNanos())) / 1e6, 1)) ms after the pump's last edge (\(line ? "the coil supply down" : "their line inactive"))"
                if wasClosed[g].amps >= 1 {
                    notes.append("gun \(g): K1/K2 opened carrying \(fmt(wasClosed[g].amps, 1)) A, \(when)")
                } else if wasClosed[g].recent >= 1 {
                    // The current stopped just before: a dead controller's released lines let the car's
                    // auxiliary supply (K3/K4) go too, and the car opened its own contactors first.
                    notes.append("gun \(g): K1/K2 opened with no current, \(when); \(fmt(wasClosed[g].recent, 1)) A within the 50 ms before")
                } else {
                    notes.append("gun \(g): K1/K2 opened with no current")   // a stop that ramped the current down first
                }
            }
            let amps = closed ? p.current.value : 0
            var (recent, recentAt) = (wasClosed[g].recent, wasClosed[g].recentAt)
            if amps >= recent || now - recentAt > .ms(50) { (recent, recentAt) = (amps, now) }
            wasClosed[g] = (closed, amps, recent, recentAt)
        }
    }

    /// What the controller wrote (channel outputs, car messages, matrix; module and IMD registers).
    func applyControllerOutputs() {
        let now = plant.now
        if let lines {
            let was = supply
            supply = lines.supplyUp(now: monotonicNanos())
            // What a dead (or stalled) controller leaves: the supply falls, and every closed contactor opens
            // in its opening time; a supply back sooner leaves them closed (a coil's dropout takes that long).
            if was && !supply {
                let closed = plant.guns.enumerated().filter { $0.element.k1.closed || $0.element.k2.closed }
                notes.append("coil supply fell (the pump's last edge \(fmt(Double(lines.sinceEdge(now: monotonicNanos())) / 1e6, 1)) ms ago)"
                             + (closed.isEmpty ? "; no contactor closed" : closed.map { "; gun \($0.offset): K1/K2 closed carrying \(fmt($0.element.current.value, 1)) A, opening" }.joined()))
                watchOpening = closed.map(\.offset)
                supplyFellAt = now
            }
            if !was && supply && !watchOpening.isEmpty {
                notes.append("coil supply back after \(fmt((now - supplyFellAt).seconds * 1000, 1)) ms: "
                             + watchOpening.map { g in "gun \(g)'s K1/K2 \(plant.guns[g].k1.closed || plant.guns[g].k2.closed ? "held" : "had opened")" }.joined(separator: ", "))
                watchOpening.removeAll()
            }
            for g in watchOpening where !plant.guns[g].k1.closed && !plant.guns[g].k2.closed {
                notes.append("gun \(g): K1 and K2 open \(fmt((now - supplyFellAt).seconds * 1000, 1)) ms after the coil supply fell, \(fmt(plant.guns[g].current.value, 1)) A")
                watchOpening.removeAll { $0 == g }
            }
            noteOpenings(lines, now: now)
        }
        for g in 0..<spec.gunCount {
            if let o = channel?.outputs(gun: g) ?? lines?.outputs(gun: g, supply: supply) { frontEnd.apply(gun: g, o) }
            if let car = canCars[g] {
                let m = car.chargerMessages()
                plant.withGun(g) { $0.tx = m }
            } else if let m = channel?.chargerMessages(gun: g) { plant.withGun(g) { $0.tx = m } }
            if let b = banks[.imd]?[g] {
                imd.apply(gun: g, enable: (b.value(.enable) ?? 1) != 0, selfTest: (b.value(.selftest) ?? 0) != 0)
            }
        }
        // On kernel lines a module stays on its one gun (SimLines refuses matrix relays).
        let matrix = channel?.matrix() ?? (0..<spec.moduleCount).map { m in
            let mask = spec.modules[m].gunMask
            return mask.nonzeroBitCount == 1 ? Int8(mask.trailingZeroBitCount) : -1
        }
        for m in 0..<spec.moduleCount {
            guard let b = banks[.module]?[m] else { continue }
            let writes = b.writeCount
            if writes != lastWrites[m] {
                lastWrites[m] = writes; lastCommandAt[m] = now
                if selfOff[m] { selfOff[m] = false; notes.append("module \(m) hears the controller again") }
            }
            // The module's own watchdog: no command for module_self_off_time and it switches off.
            let lapsed = now - lastCommandAt[m] > spec.moduleSelfOffTime
            if lapsed && !selfOff[m] { selfOff[m] = true; notes.append("module \(m): no command for \(fmt(spec.moduleSelfOffTime.seconds, 1)) s: switched itself off") }
            let enable = !lapsed && (b.value(.enable) ?? 0) != 0
            // V2G: a bidirectional module in reverse (direction 1) takes its reverse setpoint from the car.
            let reverse = (b.value(.direction) ?? 0) != 0
            let v = b.value(.voltageSetpoint) ?? 0, i = reverse ? -(b.value(.reverseCurrentSetpoint) ?? 0) : (b.value(.currentSetpoint) ?? 0)
            plant.withModules { ms in
                ms[m].enabled = enable
                ms[m].gun = matrix[m]
                ms[m].voltageSetpoint = Volts(v)
                ms[m].currentSetpoint = Amps(i)
            }
        }
    }

    /// The plant's state into the channel and the registers.
    func publish() {
        var station = StationInputs()
        SimSignals(plant).sample(into: &station)
        channel?.publish(station: station.emergencyStop, door: station.doorOpen, mains: station.mainsPresent)
        let guns = plant.guns
        for g in 0..<spec.gunCount {
            var gi = GunInputs()
            frontEnd.sample(gun: g, into: &gi)
            station.guns[g] = gi
            channel?.publish(gun: g, inputs: gi, imdAlarm: false)
            channel?.publish(gun: g, vehicle: guns[g].rx)
            canCars[g]?.publish(guns[g].rx)
            let p = guns[g]
            banks[.meter]?[g]?.publish([(.voltage, p.vehicleSide.value), (.current, p.current.value),
                                        (.energy, p.energy.value.rounded(.down)), (.exportEnergy, p.exportEnergy.value.rounded(.down)), (.status, 0)])
            if let b = banks[.imd]?[g] {
                let code: Double
                switch p.imdSelfTest {
                case .idle: code = 0
                case .running: code = Double(b.map.selftestRunning)
                case .passed: code = Double(b.map.selftestPassed)
                case .failed: code = Double(b.map.selftestFailed)
                }
                b.publish([(.resistancePlus, p.imdReading.value), (.resistanceMinus, p.imdReading.value), (.status, 0), (.selftestResult, code)])
            }
        }
        if let lines {
            lines.publish(station: station)
            publishAnalog(station)
        }
        let modules = plant.modules
        for m in 0..<spec.moduleCount {
            let mod = modules[m]
            let v = mod.gun >= 0 ? guns[Int(mod.gun)].chargerSide : .zero
            let status = (mod.enabled ? 1.0 : 0) + (mod.failed ? 2 : 0)
            banks[.module]?[m]?.publish([
                (.voltage, v.value), (.current, mod.current.value), (.temperature, mod.temperature.value), (.status, status),
            ])
        }
    }
}

extension PlantBridge {
    /// The board's [[analog]] channels on analog input modules: each value as the module's raw step
    /// ((value / scale) − offset, the inverse of the controller's reading).
    func publishAnalog(_ station: StationInputs) {
        var raw: [Int: [Double]] = [:]
        for a in analog {
            guard let m = a.modbusDevice, let ch = a.channel, let bank = banks[.analogIn]?[modbus.devices[m].index] else { continue }
            let gi = station.guns[a.gun]
            let v: Double
            switch a.signal {
            case .cc1: v = gi.cc1.value
            case .chargerVoltage: v = gi.chargerSideVoltage.value
            case .vehicleVoltage: v = gi.vehicleSideVoltage.value
            case .gunTemperature: v = gi.gunTemperature.value
            case .auxSupply: v = gi.auxSupply.value.isNaN ? 0 : gi.auxSupply.value
            }
            let n = bank.map.channels?.count ?? 0
            var list = raw[modbus.devices[m].index] ?? Array(repeating: 0, count: n)
            if ch < n { list[ch] = v / a.scale - a.offset }
            raw[modbus.devices[m].index] = list
        }
        for (i, list) in raw { banks[.analogIn]?[i]?.publishChannels(raw: list, status: []) }
    }
}

func stamp(_ t: Instant) -> String { fmt(t.seconds, 3).leftPad(10) + " s" }

/// The wall clock of the pacing, in µs: the runtime's one monotonic clock.
func monotonicMicros() -> Int64 { monotonicNanos() / 1000 }

/// SIGINT or SIGTERM: set from a signal handler, read by the main thread's loop, so an atomic (a lock-free
/// store is async-signal-safe).
private let stopFlag = Atomic<Bool>(false)
/// SIGUSR1 with --plug-on-signal: the cars' plug-at starts counting. SIGUSR2: the `@usr2` injections.
let plugRequested = Atomic<Bool>(false)
let injectRequested = Atomic<Bool>(false)
nonisolated var stopRequested: Bool {
    get { stopFlag.load(ordering: .acquiring) }
    set { stopFlag.store(newValue, ordering: .releasing) }
}
func installSignalHandlers() {
    signal(SIGINT) { _ in stopRequested = true }
    signal(SIGTERM) { _ in stopRequested = true }
    signal(SIGPIPE, SIG_IGN)
}

func fail(_ message: String) -> Never {
    var bytes = Array("charger-plant: \(message)\n".utf8)
    _ = write(2, &bytes, bytes.count)
    exit(2)
}

ChargerPlant.main()
