// The bench channel in Swift: the controller's side (HAL drivers that read the plant's inputs and write
// the controller's outputs, as GPIO and analog drivers do on a real board) and the emulator's side.
// The C layout and the seqlock live in CBenchChannel; HIL/README.md documents both.
import CBenchChannel
import ChargerCore
import ChargerHAL
import RealTime
#if canImport(Glibc)
import Glibc
#endif

public struct BenchChannelError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var why: String
    public var description: String { "bench channel \(path): \(why)" }
}

public final class BenchChannel: @unchecked Sendable {
    public let path: String
    public let guns: Int
    public let modules: Int
    let c: UnsafeMutablePointer<bc_channel>
    private let owner: Bool

    static var vehicleBytes: Int { MemoryLayout<VehicleMessages>.size }
    static var chargerBytes: Int { MemoryLayout<ChargerMessages>.size }

    private init(path: String, c: UnsafeMutablePointer<bc_channel>, guns: Int, modules: Int, owner: Bool) {
        self.path = path; self.c = c; self.guns = guns; self.modules = modules; self.owner = owner
    }

    deinit {
        if !owner { bc_store32(&c.pointee.header.controller_attached, 0) }
        bc_unmap(c)
        if owner { unlink(path) }
    }

    /// The emulator's side: creates (or replaces) the channel file.
    public static func create(path: String, guns: Int, modules: Int, speed: Double) throws(BenchChannelError) -> BenchChannel {
        try checkSizes(path: path, guns: guns, modules: modules)
        guard let p = bc_map(path, 1) else {
            throw BenchChannelError(path: path, why: "cannot create it (\(String(cString: strerror(errno))))")
        }
        p.pointee.header.version = BC_VERSION
        p.pointee.header.guns = UInt32(guns)
        p.pointee.header.modules = UInt32(modules)
        p.pointee.header.vehicle_bytes = UInt32(vehicleBytes)
        p.pointee.header.charger_bytes = UInt32(chargerBytes)
        p.pointee.header.speed = speed
        p.pointee.header.emulator_pid = getpid()
        var none = [Int8](repeating: -1, count: modules)
        bc_put_matrix(p, &none, modules)
        // The magic last: a controller that sees it sees a complete header.
        withUnsafeMutablePointer(to: &p.pointee.header.magic) {
            $0.withMemoryRebound(to: Int64.self, capacity: 1) { bc_store64($0, Int64(bitPattern: BC_MAGIC)) }
        }
        return BenchChannel(path: path, c: p, guns: guns, modules: modules, owner: true)
    }

    /// The controller's side: opens the emulator's channel and checks it describes this board.
    public static func open(path: String, guns: Int, modules: Int) throws(BenchChannelError) -> BenchChannel {
        try checkSizes(path: path, guns: guns, modules: modules)
        guard let p = bc_map(path, 0) else {
            let e = errno
            throw BenchChannelError(path: path, why: e == ENOENT ? "does not exist: start the plant emulator first (charger-plant --board FILE)"
                                                               : "cannot open it (\(String(cString: strerror(e))))")
        }
        let h = p.pointee.header
        var why: String? = nil
        if h.magic != BC_MAGIC { why = "not a bench channel (bad magic), or the emulator is still starting" }
        else if h.version != BC_VERSION { why = "version \(h.version), this build speaks \(BC_VERSION)" }
        else if h.guns != UInt32(guns) || h.modules != UInt32(modules) {
            why = "the emulator runs \(h.guns) gun(s) and \(h.modules) module(s); this board has \(guns) and \(modules)"
        } else if h.vehicle_bytes != UInt32(vehicleBytes) || h.charger_bytes != UInt32(chargerBytes) {
            why = "car-link payloads differ in size (emulator and chargerd built from different sources)"
        }
        if let why { bc_unmap(p); throw BenchChannelError(path: path, why: why) }
        bc_store32(&p.pointee.header.controller_attached, 1)
        return BenchChannel(path: path, c: p, guns: guns, modules: modules, owner: false)
    }

    static func checkSizes(path: String, guns: Int, modules: Int) throws(BenchChannelError) {
        guard guns >= 1 && guns <= Int(BC_MAX_GUNS), modules >= 1 && modules <= Int(BC_MAX_MODULES) else {
            throw BenchChannelError(path: path, why: "at most \(BC_MAX_GUNS) guns and \(BC_MAX_MODULES) modules")
        }
        guard _isPOD(VehicleMessages.self), _isPOD(ChargerMessages.self),
              vehicleBytes <= Int(BC_MESSAGE_BYTES), chargerBytes <= Int(BC_MESSAGE_BYTES) else {
            throw BenchChannelError(path: path, why: "car-link messages do not fit the channel (\(vehicleBytes)/\(chargerBytes) bytes)")
        }
    }

    // MARK: The clock (lockstep)

    public var speed: Double { c.pointee.header.speed }
    public var tick: UInt32 { bc_load32(&c.pointee.header.tick) }
    public var acknowledged: UInt32 { bc_load32(&c.pointee.header.ack) }
    public var plantNow: Instant { Instant(micros: bc_load64(&c.pointee.header.plant_now_us)) }
    public var controllerAttached: Bool { bc_load32(&c.pointee.header.controller_attached) != 0 }
    public var emulatorPID: Int32 { c.pointee.header.emulator_pid }
    /// Controller: tells the emulator it is gone (also done when the channel is released).
    public func detach() { bc_store32(&c.pointee.header.controller_attached, 0) }

    /// Emulator: the plant reached `now`; tick `tick` is ready for the controller.
    public func publishTick(_ tick: UInt32, now: Instant) {
        bc_store64(&c.pointee.header.plant_now_us, now.micros)
        bc_store32(&c.pointee.header.tick, tick)
        bc_wake(&c.pointee.header.tick)
    }
    /// Controller: waits for a tick other than `seen`; false on timeout.
    public func waitTick(after seen: UInt32, timeoutMicros: Int64) -> Bool {
        if tick != seen { return true }
        _ = bc_wait(&c.pointee.header.tick, seen, timeoutMicros)
        return tick != seen
    }
    /// Controller: tick `t`'s outputs are written.
    public func acknowledge(_ t: UInt32) {
        bc_store32(&c.pointee.header.ack, t)
        bc_wake(&c.pointee.header.ack)
    }
    /// Emulator: waits until the controller acknowledged tick `t`; false on timeout.
    public func waitAcknowledged(_ t: UInt32, timeoutMicros: Int64) -> Bool {
        let deadline = monotonicNanos() / 1000 + timeoutMicros
        while true {
            let a = acknowledged
            if a == t { return true }
            let left = deadline - monotonicNanos() / 1000
            if left <= 0 { return false }
            _ = bc_wait(&c.pointee.header.ack, a, left)
        }
    }

    // MARK: Emulator side

    public func publish(gun g: Int, inputs i: GunInputs, imdAlarm: Bool) {
        var v = bc_gun_in(cc1_volts: i.cc1.value, charger_side_volts: i.chargerSideVoltage.value,
                          vehicle_side_volts: i.vehicleSideVoltage.value, gun_temperature_c: i.gunTemperature.value,
                          aux_supply_volts: i.auxSupply.value,
                          lock_feedback: i.lockConfirmed ? 1 : 0, k1_aux: i.k1Closed ? 1 : 0, k2_aux: i.k2Closed ? 1 : 0,
                          k3k4_aux: i.k3k4Closed ? 1 : 0, rcd_trip: i.groundFaultTrip ? 1 : 0, pe_ok: i.peContinuity ? 1 : 0,
                          ground_test_state: i.groundDetectorTest.rawValue, imd_alarm: imdAlarm ? 1 : 0)
        bc_put_gun_in(c, Int32(g), &v)
    }
    public func publish(station estop: Bool, door: Bool, mains: Bool) {
        var v = bc_station_in(estop: estop ? 1 : 0, door: door ? 1 : 0, mains: mains ? 1 : 0, pad: (0, 0, 0, 0, 0))
        bc_put_station_in(c, &v)
    }
    public func publish(gun g: Int, vehicle m: VehicleMessages) {
        var m = m
        withUnsafeBytes(of: &m) { bc_put_vehicle(c, Int32(g), $0.baseAddress, $0.count) }
    }
    /// The controller's outputs of gun `g` (nil before it wrote any).
    public func outputs(gun g: Int) -> GunOutputs? {
        var v = bc_gun_out()
        guard bc_get_gun_out(c, Int32(g), &v) == 1 else { return nil }
        var o = GunOutputs()
        o.closeK1K2 = v.k1k2 != 0; o.closeK3K4 = v.k3k4 != 0; o.lock = v.lock_motor != 0; o.discharge = v.discharge != 0
        o.lamp = Lamp(rawValue: v.lamp) ?? .fault; o.groundDetectorTest = v.ground_test != 0
        return o
    }
    public func chargerMessages(gun g: Int) -> ChargerMessages? {
        var m = ChargerMessages()
        let ok = withUnsafeMutableBytes(of: &m) { bc_get_charger(c, Int32(g), $0.baseAddress, $0.count) }
        return ok == 1 ? m : nil
    }
    /// Module → gun relays as the controller set them (-1: none).
    public func matrix() -> [Int8] {
        var v = [Int8](repeating: -1, count: modules)
        _ = bc_get_matrix(c, &v, modules)
        return v
    }

    // MARK: Controller side (called from the control loop: no allocation)

    func read(gun g: Int, into i: inout GunInputs) {
        var v = bc_gun_in()
        guard bc_get_gun_in(c, Int32(g), &v) == 1 else { return }
        i.cc1 = Volts(v.cc1_volts)
        i.chargerSideVoltage = Volts(v.charger_side_volts)
        i.vehicleSideVoltage = Volts(v.vehicle_side_volts)
        i.gunTemperature = Celsius(v.gun_temperature_c)
        i.auxSupply = Volts(v.aux_supply_volts)
        i.lockConfirmed = v.lock_feedback != 0
        i.k1Closed = v.k1_aux != 0; i.k2Closed = v.k2_aux != 0; i.k3k4Closed = v.k3k4_aux != 0
        i.groundFaultTrip = v.rcd_trip != 0
        i.peContinuity = v.pe_ok != 0
        i.groundDetectorTest = SelfTestState(rawValue: v.ground_test_state) ?? .failed
        i.imdAlarm = v.imd_alarm != 0
    }
    func write(gun g: Int, _ o: GunOutputs) {
        var v = bc_gun_out(k1k2: o.closeK1K2 ? 1 : 0, k3k4: o.closeK3K4 ? 1 : 0, lock_motor: o.lock ? 1 : 0,
                           discharge: o.discharge ? 1 : 0, lamp: o.lamp.rawValue, ground_test: o.groundDetectorTest ? 1 : 0, pad: (0, 0))
        bc_put_gun_out(c, Int32(g), &v)
    }
    func readStation(into i: inout StationInputs) {
        var v = bc_station_in()
        guard bc_get_station_in(c, &v) == 1 else { return }
        i.emergencyStop = v.estop != 0; i.doorOpen = v.door != 0; i.mainsPresent = v.mains != 0
    }
    func readVehicle(gun g: Int, into m: inout VehicleMessages) {
        var copy = VehicleMessages()
        let ok = withUnsafeMutableBytes(of: &copy) { bc_get_vehicle(c, Int32(g), $0.baseAddress, $0.count) }
        if ok == 1 { m = copy }
    }
    func writeCharger(gun g: Int, _ m: ChargerMessages) {
        var m = m
        withUnsafeBytes(of: &m) { bc_put_charger(c, Int32(g), $0.baseAddress, $0.count) }
    }
    func writeMatrix(_ v: UnsafePointer<Int8>, count: Int) { bc_put_matrix(c, v, count) }
}

// MARK: The controller's drivers on a bench board (GPIO, analog and the car link, through the channel)

public final class ChannelFrontEnd: GunFrontEnd {
    let channel: BenchChannel
    public init(_ channel: BenchChannel) { self.channel = channel }
    public func sample(gun g: Int, into i: inout GunInputs) { channel.read(gun: g, into: &i) }
    public func apply(gun g: Int, _ o: GunOutputs) { channel.write(gun: g, o) }
}

/// Station inputs; while the emulator is stalled (`stalled` set by the loop) the e-stop reads pressed,
/// the safe reading of a bench whose plant stopped answering.
public final class ChannelSignals: StationSignals {
    let channel: BenchChannel
    public var stalled = false
    public init(_ channel: BenchChannel) { self.channel = channel }
    public func sample(into i: inout StationInputs) {
        channel.readStation(into: &i)
        if stalled { i.emergencyStop = true }
    }
}

public final class ChannelVehicleLink: VehicleLink {
    let channel: BenchChannel
    public init(_ channel: BenchChannel) { self.channel = channel }
    public func receive(gun g: Int, into m: inout VehicleMessages) { channel.readVehicle(gun: g, into: &m) }
    public func transmit(gun g: Int, _ m: ChargerMessages) { channel.writeCharger(gun: g, m) }
}

/// The module → gun matrix relays of a bench board.
public final class ChannelMatrix: MatrixRelays {
    let channel: BenchChannel
    private let state: UnsafeMutablePointer<Int8>
    public init(_ channel: BenchChannel) {
        self.channel = channel
        state = .allocate(capacity: channel.modules)
        state.initialize(repeating: -1, count: channel.modules)
    }
    deinit { state.deallocate() }
    public func set(module m: Int, gun: Int8) { state[m] = gun }
    public func commit() { channel.writeMatrix(state, count: channel.modules) }
}
