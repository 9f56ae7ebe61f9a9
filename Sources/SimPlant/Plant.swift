// The mocked board: a physical model of the station run in virtual time, behind the HAL protocols,
// with a back door for tests to inject faults (as Zephyr's gpio_emul).
import BoardFile
import ChargerCore
import ChargerHAL

/// Plant parameters of a simulated board (the board file's [plant] table).
public struct PlantParameters: Sendable, Equatable {
    public var contactorCloseDelay: TimeSpan
    public var contactorOpenDelay: TimeSpan
    public var lockTime: TimeSpan
    /// Module current loop time constant (first-order).
    public var moduleTimeConstant: TimeSpan
    /// Module output voltage time constant with no load on the bus.
    public var busTimeConstant: TimeSpan
    /// Output discharge (bleeder) time constant; natural self-discharge otherwise.
    public var dischargeTimeConstant: TimeSpan
    public var selfDischargeTimeConstant: TimeSpan = .s(20)
    public var ambient: Celsius
    /// Connector temperature rise at rated current in steady state, and its thermal time constant.
    public var thermalRiseAtRated: Celsius
    public var thermalTimeConstant: TimeSpan
    /// Insulation resistance of a healthy gun + cable + car.
    public var insulation: Ohms
    /// IMD: measurement refresh period and self-test duration.
    public var imdPeriod: TimeSpan
    public var imdSelfTestTime: TimeSpan
    /// A module that stops hearing from the controller switches itself off after this long.
    public var moduleSelfOffAfter: TimeSpan = .s(15)
    /// The DC meter's starting current: below it a meter registers nothing, so a zero error (`meter-offset`)
    /// counts only while at least this much flows (IEC 62053-41's no-load and starting-current tests;
    /// 1 A stands for a meter of a few hundred amperes).
    public var meterStartingCurrent = Amps(1)

    /// The plant of a board's `[plant]` table (its defaults are the board file's).
    public init(_ s: PlantSpec) {
        contactorCloseDelay = s.contactorCloseDelay; contactorOpenDelay = s.contactorOpenDelay; lockTime = s.lockTime
        moduleTimeConstant = s.moduleTimeConstant; busTimeConstant = s.busTimeConstant; dischargeTimeConstant = s.dischargeTimeConstant
        ambient = s.ambient; thermalRiseAtRated = s.thermalRiseAtRated; thermalTimeConstant = s.thermalTimeConstant
        insulation = s.insulation; imdPeriod = s.imdPeriod; imdSelfTestTime = s.imdSelfTestTime
    }
}

/// One contactor (coil command, main contacts, auxiliary mirror contact).
public struct SimContactor: Sendable {
    public var commanded = false
    public var closed = false
    var changeAt: Instant = .never
    public var welded = false
    public var failsToClose = false
    mutating func command(_ c: Bool, now: Instant, params: PlantParameters) {
        if c != commanded { commanded = c; changeAt = now + (c ? params.contactorCloseDelay : params.contactorOpenDelay) }
    }
    mutating func advance(now: Instant) {
        guard closed != commanded, now >= changeAt else { return }
        if commanded && failsToClose { return }
        if !commanded && welded { return }
        closed = commanded
    }
}

public struct SimGun: Sendable {
    public var k1 = SimContactor(), k2 = SimContactor(), k3k4 = SimContactor()
    public var lockCommanded = false
    public var locked = false
    var lockChangeAt: Instant = .never
    public var lockJammed = false
    public var chargerSide: Volts = .zero
    public var vehicleSide: Volts = .zero
    public var current: Amps = .zero
    public var discharge = false
    public var temperature = Celsius(25)
    public var temperatureOffset = Celsius(0)
    /// The meter's two registers: energy into the car (import) and out of it (export, V2G).
    public var energy: WattHours = .zero
    public var exportEnergy: WattHours = .zero
    public var meterSilent = false
    public var meterSeenAt: Instant = .never
    /// A meter that is wrong (issue 37's scenarios): its own register, counting the import times `meterGain`
    /// from the moment an error was injected (nil: the register is the true energy).
    public var meterRegister: WattHours? = nil
    public var meterGain = 1.0
    /// A current the meter adds to what flows (a zero error), counted while current flows above its
    /// starting current (a meter registers nothing at no load), and a gain error that grows by
    /// `meterDrift` (a fraction) an hour from `meterDriftSince`.
    public var meterOffset = Amps.zero
    public var meterDrift = 0.0
    public var meterDriftSince = Instant.never
    public var insulation = Ohms(20_000_000)
    public var imdEnabled = false
    public var imdSelfTest: SelfTestState = .idle
    var imdSelfTestCommand = false
    var imdSelfTestAt: Instant = .never
    public var imdSelfTestFails = false
    public var imdSilent = false
    public var imdReading = Ohms(.infinity)
    public var imdSeenAt: Instant = .never
    var imdNextAt: Instant = .zero
    public var groundFault = false
    /// The earth-fault detector's self-test: a working one trips its relay for the test's duration.
    public var groundTest: SelfTestState = .idle
    var groundTestCommand = false
    var groundTestAt: Instant = .never
    public var groundTestFails = false
    public var peLost = false
    public var cc1Override: Volts? = nil
    /// The 12 V auxiliary supply's output (a failing or overloaded supply: injection `aux=V`).
    public var auxSupplyVolts = Volts(12.0)
    /// A runaway module holding the bus at this voltage (over-voltage injection).
    public var forcedVoltage: Volts? = nil
    /// A short or a module ignoring its setpoint: the gun current is held at this value while K1/K2 are closed.
    public var forcedCurrent: Amps? = nil
    public var car: SimCar? = nil
    public var rx = VehicleMessages()
    public var tx = ChargerMessages()
    public init() {}

    /// The car in place, if one is attached (no copy of it in and out).
    @inline(__always) mutating func withCar(_ body: (inout SimCar) -> Void) {
        if car != nil { body(&car!) }
    }
    /// The car with the link's two directions, all in place.
    @inline(__always) mutating func withCarAndLink(_ body: (inout SimCar, borrowing ChargerMessages, inout VehicleMessages) -> Void) {
        if car != nil { body(&car!, tx, &rx) }
    }
}

public struct SimModule: Sendable {
    public var enabled = false
    public var gun: Int8 = -1
    public var voltageSetpoint: Volts = .zero
    public var currentSetpoint: Amps = .zero
    public var current: Amps = .zero
    public var temperature = Celsius(30)
    public var failed = false
    public var silent = false
    public var seenAt: Instant = .never
    public init() {}
}

/// The whole simulated station. Single-threaded: the runtime advances it between control cycles.
public final class Plant {
    public let spec: StationSpec
    public let params: PlantParameters
    /// Each module's envelope (from the board file).
    let moduleSpecs: [ModuleSpec]
    public private(set) var now: Instant { _read { yield store.pointee.scalars.now } _modify { yield &store.pointee.scalars.now } }
    public var emergencyStop: Bool { _read { yield store.pointee.scalars.emergencyStop } _modify { yield &store.pointee.scalars.emergencyStop } }
    public var doorOpen: Bool { _read { yield store.pointee.scalars.doorOpen } _modify { yield &store.pointee.scalars.doorOpen } }
    public var mainsPresent: Bool { _read { yield store.pointee.scalars.mainsPresent } _modify { yield &store.pointee.scalars.mainsPresent } }

    /// The guns and modules live in storage this object owns and frees. They are read and written
    /// millions of times per simulated hour by the simulated drivers; through a pointer those accesses
    /// skip Swift's dynamic exclusivity bookkeeping (a quarter of a cycle, measured with perf). The
    /// plant is single-threaded: only the simulation's cycle touches it.
    private let store: UnsafeMutablePointer<(modules: [SimModule], scalars: StationScalars)>
    /// The guns, a fixed count for the plant's life, in a buffer of their own: the simulated drivers reach
    /// a gun several times a cycle, and an element access through an array checked its uniqueness each
    /// time (5 % of a campaign's instructions, measured with callgrind). Every access checks its index
    /// as an array's would (a buffer's own check is in debug builds only).
    let gunStore: UnsafeMutableBufferPointer<SimGun>
    /// The station-wide state, in the same storage (read every cycle by the simulated drivers).
    struct StationScalars {
        var now: Instant = .zero
        var emergencyStop = false
        var doorOpen = false
        var mainsPresent = true
    }
    /// The guns in place (`plant.guns[g].x = y` writes the plant's gun, no copy of the array).
    public var guns: SimGuns { SimGuns(plant: self, base: gunStore) }
    public var modules: [SimModule] {
        _read { yield store.pointee.modules }
        _modify { yield &store.pointee.modules }
    }
    deinit {
        store.deinitialize(count: 1); store.deallocate()
        _ = gunStore.deinitialize(); gunStore.deallocate()
    }

    public init(spec: StationSpec, params: PlantParameters) {
        self.spec = spec
        self.params = params
        moduleSpecs = (0..<spec.moduleCount).map { spec.modules[$0] }
        var g = SimGun()
        g.temperature = params.ambient
        g.insulation = params.insulation
        store = .allocate(capacity: 1)
        store.initialize(to: (modules: Array(repeating: SimModule(), count: spec.moduleCount), scalars: StationScalars()))
        gunStore = .allocate(capacity: spec.gunCount)
        gunStore.initialize(repeating: g)
    }

    /// Gun `g` in place: one exclusive access for a whole batch of reads or writes, no copy.
    @inline(__always)
    public func withGun(_ g: Int, _ body: (inout SimGun) -> Void) {
        precondition(g >= 0 && g < gunStore.count, "gun index out of range")
        body(&gunStore[g])
    }

    /// All modules in place, one exclusive access (the plant emulator's register writes).
    @inline(__always)
    public func withModules(_ body: (inout [SimModule]) -> Void) { body(&modules) }

    /// All modules in place as a buffer (the simulated drivers, every cycle: no uniqueness check per element).
    @inline(__always)
    func withModuleBuffer(_ body: (UnsafeMutableBufferPointer<SimModule>) -> Void) {
        store.pointee.modules.withUnsafeMutableBufferPointer { body($0) }
    }

    /// Plugs a car into gun `g` (it arrives at `profile.plugAt`).
    public func attach(car: CarProfile, gun g: Int) { guns[g].car = SimCar(profile: car) }

    /// Advances the physics by `dt` to `now + dt`.
    public func advance(by dt: TimeSpan) {
        now = now + dt
        let h = dt.seconds
        let now = self.now, params = self.params
        // Through buffer pointers: an element write through the arrays checks their uniqueness each time.
        store.pointee.modules.withUnsafeMutableBufferPointer { modules in
            for m in modules.indices {
                if !modules[m].silent { modules[m].seenAt = now }
                else if now - modules[m].seenAt >= params.moduleSelfOffAfter { modules[m].enabled = false }
            }
            for g in gunStore.indices {
                Self.advanceGun(&gunStore[g], g, h, modules, now: now, params: params, gun: spec.guns[g], moduleSpecs: moduleSpecs)
            }
            // A module whose matrix relay connects it to no gun has no circuit: no current. (Its current used
            // to stay at its last value, and a module handed back to a gun later looked moved under load;
            // exploration seed 102058.)
            for m in modules.indices where modules[m].gun < 0 { modules[m].current = .zero }
        }
    }

    // Long: one gun's physics for one tick in causal order (contactors and lock, the modules' and the car's
    // current, meter, connector temperature, IMD, RCD, BMS), on the gun's storage in place; split, each part
    // would take the same in-place storage and parameters
    /// One gun's physics, on the gun's storage in place.
    private static func advanceGun(_ gun: inout SimGun, _ g: Int, _ h: Double, _ modules: UnsafeMutableBufferPointer<SimModule>,
                                   now: Instant, params: PlantParameters, gun gs: GunSpec, moduleSpecs: [ModuleSpec]) {
        gun.k1.advance(now: now); gun.k2.advance(now: now); gun.k3k4.advance(now: now)
        if gun.lockCommanded != gun.locked && now >= gun.lockChangeAt && !gun.lockJammed { gun.locked = gun.lockCommanded }

        // Modules on this gun's bus.
        var iSet = Amps.zero
        var vSet = Volts.zero
        var anyOn = false
        for m in modules.indices where modules[m].gun == Int8(g) && modules[m].enabled && !modules[m].failed {
            // Each module stays inside its own envelope whatever it is asked: voltage range, current
            // limit, and constant power above the corner voltage.
            // In reverse (V2G), a bidirectional module within its reverse envelope; a rectifier that only
            // charges cannot take current from the car at all.
            let envelope = moduleSpecs[m]
            let sp = modules[m].currentSetpoint
            iSet += sp >= .zero ? min(sp, envelope.currentCapability(at: gun.chargerSide))
                                : max(sp, -envelope.reverseCapability(at: gun.chargerSide))
            vSet = max(vSet, min(modules[m].voltageSetpoint, envelope.maxVoltage))
            anyOn = true
        }
        let tauBus = params.busTimeConstant.seconds
        let tauDis = (gun.discharge ? params.dischargeTimeConstant : params.selfDischargeTimeConstant).seconds
        let kClosed = gun.k1.closed && gun.k2.closed
        var carClosed = false
        var ocv = Volts.zero
        var rInt = Ohms(0.05)
        // The car is read and moved in place (`withCar`: reading `gun.car!.ocv` copied the whole car).
        let locked = gun.locked
        gun.withCar { car in
            car.movePlug(now: now, locked: locked)
            carClosed = car.contactorsClosed && car.plug == .connected
            ocv = car.ocv
            rInt = car.profile.internalResistance
        }

        var i = gun.current
        if kClosed && carClosed {
            // Charging: the modules are a current source with a voltage ceiling into the battery.
            let wasOpen = gun.vehicleSide.value < ocv.value - 20 || gun.chargerSide < ocv - Volts(20)
            if wasOpen {
                // Closing across a difference: the inrush the meter sees in this instant.
                i = Amps(max(0, gun.chargerSide.value - ocv.value) / rInt.value)
            }
            var target = Amps.zero
            if anyOn && iSet < .zero {
                // Reverse (V2G): the modules are a current sink from the battery, whatever the voltage demand.
                target = iSet
            } else if anyOn {
                target = max(.zero, min(iSet, (vSet - ocv) / rInt.value > .zero ? Amps((vSet - ocv).value / rInt.value) : .zero))
            }
            let a = min(1, h / params.moduleTimeConstant.seconds)
            if !wasOpen { i = i + (target - i) * a }
            if !anyOn { i = i * (1 - a) }
            if abs(i.value) < 1e-6 { i = .zero }
            let v = ocv + i * rInt
            gun.chargerSide = v
            gun.vehicleSide = v
            // The battery takes the charge.
            gun.withCar { car in
                let ah = car.profile.capacity.value / car.profile.nominalVoltage.value
                car.soc = max(0, min(100, car.soc + i.value * h / 3600 / ah * 100))
            }
        } else {
            i = i * max(0, 1 - h / params.moduleTimeConstant.seconds)
            if abs(i.value) < 0.01 { i = .zero }
            // The charger-side bus (and the cable when K1/K2 are closed) follows the modules or decays.
            var bus = gun.chargerSide
            if anyOn && !gun.discharge { bus = bus + (vSet - bus) * min(1, h / tauBus) }
            else { bus = bus * max(0, 1 - h / tauDis) }
            gun.chargerSide = bus
            if kClosed {
                gun.vehicleSide = bus
            } else if carClosed {
                gun.vehicleSide = ocv
            } else {
                // Cable discharges through the car's input and the IMD.
                gun.vehicleSide = gun.vehicleSide * max(0, 1 - h / 0.2)
            }
            if kClosed && anyOn { i = min(iSet, Amps(0.01)) }   // leakage + IMD during the cable check
        }
        if let f = gun.forcedVoltage { gun.chargerSide = f; if kClosed { gun.vehicleSide = f } }
        if let f = gun.forcedCurrent, kClosed { i = f }
        gun.current = i
        // Share the gun current among the modules that deliver it. A forced (runaway) current comes from
        // the gun's modules whatever they were told, and their own readings show it: current from nowhere
        // would leave a controller whose meter is silent blind to it (found by the fault campaign).
        // A module that switched itself off (or was switched off) carries none of it while another one runs
        // (exploration seed 6969: a module off for 20 s still showed half a runaway current); with none
        // running, the gun's modules carry it all.
        var delivering = 0, running = 0
        if gun.forcedCurrent != nil && kClosed {
            for m in modules.indices where modules[m].gun == Int8(g) && !modules[m].failed {
                delivering += 1
                if modules[m].enabled { running += 1 }
            }
        }
        for m in modules.indices where modules[m].gun == Int8(g) {
            if running > 0 {
                modules[m].current = modules[m].failed || !modules[m].enabled ? .zero : i / Double(running)
            } else if delivering > 0 {
                modules[m].current = modules[m].failed ? .zero : i / Double(delivering)
            } else if modules[m].enabled && !modules[m].failed && iSet.value != 0 {
                modules[m].current = i * (modules[m].currentSetpoint.value / iSet.value)
            } else { modules[m].current = modules[m].current * max(0, 1 - h / params.moduleTimeConstant.seconds) }
        }

        // Meter.
        if i >= .zero {
            gun.energy += gun.vehicleSide * i * TimeSpan.seconds(h)
            if let r = gun.meterRegister {
                let counted = i > params.meterStartingCurrent ? max(.zero, i + gun.meterOffset) : i
                let drift = gun.meterDrift == 0 ? 0 : gun.meterDrift * (now - gun.meterDriftSince).seconds / 3600
                gun.meterRegister = r + gun.vehicleSide * counted * TimeSpan.seconds(h) * (gun.meterGain + drift)
            }
        }
        else { gun.exportEnergy += gun.vehicleSide * (-i) * TimeSpan.seconds(h) }
        if !gun.meterSilent { gun.meterSeenAt = now }

        // Connector temperature: heating with I², cooling towards ambient (first order).
        let rated = min(gs.maxCurrent, gs.connectorCurrent).value
        let rise = params.thermalRiseAtRated.value * (i.value / rated) * (i.value / rated)
        let tau = params.thermalTimeConstant.seconds
        let tEq = params.ambient.value + rise
        gun.temperature = Celsius(gun.temperature.value + (tEq - gun.temperature.value) * min(1, h / tau))

        // IMD: refreshes its reading periodically while enabled; self-test on a rising edge.
        if gun.imdSelfTestCommand && gun.imdSelfTest != .running && gun.imdSelfTest != .passed && gun.imdSelfTest != .failed {
            gun.imdSelfTest = .running
            gun.imdSelfTestAt = now
        }
        if gun.imdSelfTest == .running && now - gun.imdSelfTestAt >= params.imdSelfTestTime {
            gun.imdSelfTest = gun.imdSelfTestFails ? .failed : .passed
        }
        if !gun.imdSelfTestCommand && gun.imdSelfTest != .running { gun.imdSelfTest = .idle }
        if now >= gun.imdNextAt {
            gun.imdNextAt = now + params.imdPeriod
            if !gun.imdSilent {
                gun.imdReading = gun.imdEnabled && (kClosed || gun.chargerSide > Volts(50)) ? gun.insulation : Ohms(.infinity)
                gun.imdSeenAt = now
            }
        }

        // Earth-fault detector self-test (200 ms; a failing detector never trips).
        if gun.groundTestCommand && gun.groundTest == .idle { gun.groundTest = .running; gun.groundTestAt = now }
        if gun.groundTest == .running && now - gun.groundTestAt >= .ms(200) {
            gun.groundTest = gun.groundTestFails ? .failed : .passed
        }
        if !gun.groundTestCommand && gun.groundTest != .running { gun.groundTest = .idle }

        // The car's BMS (the charger's messages read in place: `gun.tx` and the car are disjoint parts).
        if gun.car != nil {
            let k3k4 = gun.k3k4.closed, terminal = gun.vehicleSide
            var powered = false
            gun.withCarAndLink { car, tx, rx in
                car.powered = k3k4 && car.plug == .connected
                car.bms(now: now, tx: tx, terminal: terminal, current: i, rx: &rx)
                powered = car.powered
            }
            if !powered { gun.rx = VehicleMessages() }
        }
    }

    // MARK: Fault injection (the back door)

    public enum Injection: Sendable, Equatable {
        case emergencyStop(Bool)
        case door(Bool)
        case mains(Bool)
        case groundFault(gun: Int)
        case groundDetectorSelfTestFails(gun: Int)
        case peLoss(gun: Int)
        case insulation(gun: Int, Ohms)
        case imdSelfTestFails(gun: Int)
        case imdSilent(gun: Int)
        case meterSilent(gun: Int)
        /// The meter's register counts `factor` times the energy from now on (1.02: a +2 % gain error).
        case meterGain(gun: Int, Double)
        /// The meter's register starts again from zero (a replaced meter, a reset).
        case meterReset(gun: Int)
        case meterOffset(gun: Int, Amps)
        case meterDrift(gun: Int, Double)
        case moduleFail(Int)
        case moduleSilent(Int)
        case weld(gun: Int, contactor: Int)
        case failToClose(gun: Int, contactor: Int)
        case lockJam(gun: Int)
        case gunTemperatureOffset(gun: Int, Celsius)
        case overVoltage(gun: Int, Volts)
        case overCurrent(gun: Int, Amps)
        case cc1(gun: Int, Volts?)
        case auxSupply(gun: Int, Volts)
        case latchPressed(gun: Int)
        case bmsSilent(gun: Int, Bool)
        case bmsStop(gun: Int)
        case bmsPause(gun: Int, Bool)
        /// V2G: the driver (or the car) withdraws the car's discharge offer.
        case v2gWithdraw(gun: Int)
        /// The driver takes the gun out and leaves (once the lock lets go; before the session if it is
        /// not locked yet).
        case unplug(gun: Int)
    }

    public func inject(_ f: Injection) {
        switch f {
        case .emergencyStop(let on): emergencyStop = on
        case .door(let open): doorOpen = open
        case .mains(let present): mainsPresent = present
        case .groundFault(let g): guns[g].groundFault = true
        case .groundDetectorSelfTestFails(let g): guns[g].groundTestFails = true
        case .peLoss(let g): guns[g].peLost = true
        case .insulation(let g, let r): guns[g].insulation = r
        case .imdSelfTestFails(let g): guns[g].imdSelfTestFails = true
        case .imdSilent(let g): guns[g].imdSilent = true
        case .meterSilent(let g): guns[g].meterSilent = true
        case .meterGain(let g, let f): guns[g].meterRegister = guns[g].meterRegister ?? guns[g].energy; guns[g].meterGain = f
        case .meterReset(let g): guns[g].meterRegister = .zero
        case .meterOffset(let g, let a): guns[g].meterRegister = guns[g].meterRegister ?? guns[g].energy; guns[g].meterOffset = a
        case .meterDrift(let g, let d):
            guns[g].meterRegister = guns[g].meterRegister ?? guns[g].energy
            guns[g].meterDrift = d; guns[g].meterDriftSince = now
        case .moduleFail(let m): modules[m].failed = true
        case .moduleSilent(let m): modules[m].silent = true
        case .weld(let g, let k): if k == 1 { guns[g].k1.welded = true } else { guns[g].k2.welded = true }
        case .failToClose(let g, let k): if k == 1 { guns[g].k1.failsToClose = true } else { guns[g].k2.failsToClose = true }
        case .lockJam(let g): guns[g].lockJammed = true
        case .gunTemperatureOffset(let g, let t): guns[g].temperatureOffset = t
        case .overVoltage(let g, let v): guns[g].forcedVoltage = v
        case .overCurrent(let g, let a): guns[g].forcedCurrent = a
        case .cc1(let g, let v): guns[g].cc1Override = v
        case .auxSupply(let g, let v): guns[g].auxSupplyVolts = v
        case .latchPressed(let g): guns[g].cc1Override = Standard.cc1Unplugged
        case .bmsSilent(let g, let on): guns[g].car?.silent = on
        case .bmsStop(let g): guns[g].car?.ownFault = true
        case .bmsPause(let g, let p): guns[g].car?.pauseRequested = p
        case .v2gWithdraw(let g): if guns[g].car != nil && guns[g].car!.v2gWithdrawnAt == nil { guns[g].car!.v2gWithdrawnAt = now }
        case .unplug(let g): guns[g].car?.unplugRequested = true
        }
    }

    /// Clears the conditions an operator can clear (e-stop released, door shut, RCD reset...).
    public func clearInjections() {
        emergencyStop = false; doorOpen = false; mainsPresent = true
        for g in guns.indices {
            guns[g].groundFault = false; guns[g].groundTestFails = false; guns[g].peLost = false; guns[g].insulation = params.insulation
            guns[g].imdSelfTestFails = false; guns[g].imdSilent = false; guns[g].meterSilent = false
            guns[g].temperatureOffset = Celsius(0); guns[g].forcedVoltage = nil; guns[g].forcedCurrent = nil; guns[g].cc1Override = nil
            guns[g].auxSupplyVolts = Volts(12.0)
            guns[g].lockJammed = false
        }
        for m in modules.indices { modules[m].failed = false; modules[m].silent = false }
    }

    /// What a technician's repair adds to clearing: welded or stuck contactors replaced.
    public func repair() {
        // A runaway current ends with the repair (the module that held it is replaced): what flows then is
        // what the modules deliver, not the forced value decaying over the modules' time constant (which
        // read as a few milliseconds above the gun's rating once no longer forced: V2G campaign seed 175).
        let forced = guns.map { $0.forcedCurrent != nil }
        clearInjections()
        for g in guns.indices {
            if forced[g] { guns[g].current = .zero }
            // A replaced contactor follows its coil at once (a welded one was closed against it).
            guns[g].k1.welded = false; guns[g].k2.welded = false
            guns[g].k1.closed = guns[g].k1.commanded; guns[g].k2.closed = guns[g].k2.commanded
            guns[g].k1.failsToClose = false; guns[g].k2.failsToClose = false
        }
    }
}

// MARK: HAL conformances (the mocked board's drivers)

public final class SimFrontEnd: GunFrontEnd {
    let plant: Plant
    public init(_ plant: Plant) { self.plant = plant }
    public func sample(gun g: Int, into i: inout GunInputs) {
        plant.withGun(g) { p in
            i.cc1 = p.cc1Override ?? p.car?.cc1 ?? Standard.cc1Unplugged
            i.lockConfirmed = p.locked
            i.k1Closed = p.k1.closed
            i.k2Closed = p.k2.closed
            i.k3k4Closed = p.k3k4.closed
            // Measured at the gun side of K3/K4: the supply's output while they are closed.
            i.auxSupply = p.k3k4.closed ? p.auxSupplyVolts : .zero
            i.chargerSideVoltage = p.chargerSide
            i.vehicleSideVoltage = p.vehicleSide
            i.gunTemperature = p.temperature + p.temperatureOffset
            i.groundFaultTrip = p.groundFault || (p.groundTest == .running && !p.groundTestFails)
            i.groundDetectorTest = p.groundTest
            i.peContinuity = !p.peLost
        }
    }
    public func apply(gun g: Int, _ o: GunOutputs) {
        let now = plant.now
        let params = plant.params
        plant.withGun(g) { gun in
            gun.k1.command(o.closeK1K2, now: now, params: params)
            gun.k2.command(o.closeK1K2, now: now, params: params)
            gun.k3k4.command(o.closeK3K4, now: now, params: params)
            if o.lock != gun.lockCommanded {
                gun.lockCommanded = o.lock
                gun.lockChangeAt = now + params.lockTime
            }
            gun.discharge = o.discharge
            gun.groundTestCommand = o.groundDetectorTest
        }
    }
}

public final class SimSignals: StationSignals {
    let plant: Plant
    public init(_ plant: Plant) { self.plant = plant }
    public func sample(into i: inout StationInputs) {
        i.emergencyStop = plant.emergencyStop
        i.doorOpen = plant.doorOpen
        i.mainsPresent = plant.mainsPresent
    }
}

public final class SimModuleBus: PowerModuleBus {
    let plant: Plant
    public init(_ plant: Plant) { self.plant = plant }
    public func sample(into ms: inout ModuleArray<ModuleInputs>, count: Int) {
        let guns = plant.gunStore
        plant.withModuleBuffer { modules in
            for m in 0..<count {
                let p = modules[m]
                if p.silent { continue }   // stale values, old timestamp
                ms[m].outputCurrent = p.current
                // A module on no gun, or on a gun this plant does not have, has no bus to measure.
                ms[m].outputVoltage = p.gun >= 0 && Int(p.gun) < guns.count ? guns[Int(p.gun)].chargerSide : .zero
                ms[m].temperature = p.temperature
                ms[m].faulted = p.failed
                ms[m].seenAt = p.seenAt
            }
        }
    }
    public func apply(_ ms: inout ModuleArray<ModuleOutputs>, count: Int) {
        plant.withModuleBuffer { modules in
            for m in 0..<count where !modules[m].silent {
                modules[m].enabled = ms[m].enabled
                modules[m].gun = ms[m].gun
                modules[m].voltageSetpoint = ms[m].voltage
                modules[m].currentSetpoint = ms[m].current
            }
        }
    }
}

public final class SimMeter: EnergyMeter {
    let plant: Plant
    public init(_ plant: Plant) { self.plant = plant }
    public func sample(gun g: Int, into i: inout GunInputs) {
        plant.withGun(g) { p in
            guard !p.meterSilent else { return }
            i.meterVoltage = p.vehicleSide
            i.meterCurrent = p.current
            // The meter's register resolution is 0.001 kWh.
            i.meterEnergy = WattHours(((p.meterRegister ?? p.energy).value).rounded(.down))
            i.meterExportEnergy = WattHours((p.exportEnergy.value).rounded(.down))
            i.meterSeenAt = p.meterSeenAt
        }
    }
}

public final class SimIMD: InsulationMonitor {
    let plant: Plant
    public init(_ plant: Plant) { self.plant = plant }
    public func sample(gun g: Int, into i: inout GunInputs) {
        plant.withGun(g) { p in
        guard !p.imdSilent else { return }
        i.insulation = p.imdReading
        // The simulated IMD reports through its reading; its alarm relay is not modelled separately.
        i.imdAlarm = false
        i.imdSelfTest = p.imdSelfTest
        i.imdSeenAt = p.imdSeenAt
        }
    }
    public func apply(gun g: Int, enable: Bool, selfTest: Bool) {
        plant.withGun(g) { gun in
            gun.imdEnabled = enable
            gun.imdSelfTestCommand = selfTest
        }
    }
}

public final class SimVehicleLink: VehicleLink {
    let plant: Plant
    public init(_ plant: Plant) { self.plant = plant }
    public func receive(gun g: Int, into m: inout VehicleMessages) { plant.withGun(g) { m = $0.rx } }
    public func transmit(gun g: Int, _ tx: ChargerMessages) { plant.withGun(g) { $0.tx = tx } }
}

extension Plant {
    /// The mocked board's devices, each behind its HAL protocol.
    public func devices() -> BoardDevices {
        BoardDevices(frontEnd: SimFrontEnd(self), signals: SimSignals(self), modules: SimModuleBus(self),
                     meter: SimMeter(self), imd: SimIMD(self), vehicle: SimVehicleLink(self))
    }
}

/// The plant's guns, read and written in place. It keeps its plant alive while it is held.
public struct SimGuns: RandomAccessCollection {
    let plant: Plant
    let base: UnsafeMutableBufferPointer<SimGun>
    public var startIndex: Int { 0 }
    public var endIndex: Int { base.count }
    public subscript(g: Int) -> SimGun {
        get { precondition(g >= 0 && g < base.count, "gun index out of range"); return base[g] }
        nonmutating _modify { precondition(g >= 0 && g < base.count, "gun index out of range"); yield &base[g] }
    }
}
