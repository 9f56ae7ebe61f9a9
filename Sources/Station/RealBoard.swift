// chargerd on a real board: the GPIO front end on the kernel's GPIO character device, the Modbus devices
// through libmodbus, the hardware watchdog, and the control loop on the cyclic executive in wall-clock
// time (SCHED_FIFO, its CPU, locked memory from the board's [runtime]), and the car links on SocketCAN
// ([[can]]). A gun without a [[can]] link has no car link: a car plugged in gets no handshake and its
// session stops (E17), safely.
import BoardFile
import CANLink
import ChargerCore
import ChargerHAL
import StationLoop
import FieldBus
import GPIOD
import IIO
import LoopContract
import RealTime
#if canImport(Glibc)
import Glibc
#endif

/// A real board's front end: the digital lines (GPIO) and, where the board maps them, the analog inputs
/// (IIO, sampled off the loop; analog input modules, polled by the field bus).
package final class RealFrontEnd: GunFrontEnd {
    package let gpio: GPIOFrontEnd
    package let analog: IIOSampler?
    package let modules: ModbusAnalogInputs?
    package init(gpio: GPIOFrontEnd, analog: IIOSampler?, modules: ModbusAnalogInputs? = nil) {
        self.gpio = gpio; self.analog = analog; self.modules = modules
    }
    package func sample(gun g: Int, into i: inout GunInputs) {
        gpio.sample(gun: g, into: &i)
        // Each source sets the age of what it maps; the oldest of the two is the gun's.
        i.analogAge = nil
        analog?.sample(gun: g, into: &i)
        modules?.sample(gun: g, into: &i)
    }
    package func apply(gun g: Int, _ o: GunOutputs) { gpio.apply(gun: g, o) }
    package func flush() { gpio.flush() }
}

/// The car link of a gun the board puts on no CAN interface: nothing is ever received.
package final class NoVehicleLink: VehicleLink {
    package func receive(gun: Int, into messages: inout VehicleMessages) {}
    package func transmit(gun: Int, _ messages: ChargerMessages) {}
}

package struct RealBoardRun {
    package var board: Board
    /// The GPIO front end, its lines requested (outputs safe) before anything else was opened.
    package var front: GPIOFrontEnd
    package var statusInterval: Double
    package var maxTime: Double
    package var sessions: Int
    package var json: Bool
    package var desk: OperatorDesk
    package var grid: GridDesk? = nil
    /// --can-log: the candump log of the car links.
    package var canLog: String? = nil

    package init(board: Board, front: GPIOFrontEnd, statusInterval: Double, maxTime: Double, sessions: Int, json: Bool, desk: OperatorDesk) {
        self.board = board; self.front = front; self.statusInterval = statusInterval; self.maxTime = maxTime; self.sessions = sessions
        self.json = json; self.desk = desk
    }

    /// Runs until SIGINT/SIGTERM, --max-time of wall time, or the sessions are done. Exit status as on
    /// every board: 0, 1 a fault ended a session, 2 the board could not start, 4 timed out.
    // Long: the start in its order (analog sampler, field bus, CAN, watchdog armed last, the loop), each
    // failure making the outputs safe and undoing what was started before it
    package func run() -> Int32 {
        let spec = board.spec
        var analog: IIOSampler? = nil
        let iio = board.analog.filter { $0.modbusDevice == nil }
        if !iio.isEmpty {
            // One below the loop's SCHED_FIFO priority: a sampler behind the board's other work ages the values (E36).
            let priority = board.runtime.priority > 1 ? board.runtime.priority - 1 : 0
            do { analog = try IIOSampler(specs: iio, every: spec.period, priority: priority) } catch {
                front.makeSafe()
                fail("board '\(board.name)' (\(board.path)): \(error)")
            }
            analog?.start()
        }
        // A bus with analog input modules polls one below the loop too (its values feed E36).
        let field = startFieldBus(board, analogPriority: board.runtime.priority > 1 ? board.runtime.priority - 1 : 0)
        let silent = field.awaitFirstReadings()
        var watchdog: HardwareWatchdog? = nil
        let clock = LoopClock()
        let drivers = field.drivers(spec: spec, clock: clock, relays: front)
        let can = openCANLinks(board: board, clock: clock, logPath: canLog, desk: desk,
                               cleanup: { front.makeSafe(); watchdog?.disarm(); analog?.stop(); field.stop() })
        let vehicle: any VehicleLink =
            can.map { RoutedVehicleLink(can: $0, fallback: NoVehicleLink(), guns: spec.gunCount, mirrorToFallback: false) } ?? NoVehicleLink()
        // Armed last, just before the loop that kicks it: the setup above (the first readings, the CAN
        // links) takes what it takes on a slow or loaded board, and none of it may eat into the timeout.
        if let w = board.watchdog {
            do { watchdog = try HardwareWatchdog(path: w.device, timeout: w.timeout.map { Int($0.seconds.rounded(.up)) }) } catch {
                front.makeSafe(); can?.stop(); analog?.stop(); field.stop()
                fail("board '\(board.name)' (\(board.path)): \(error)")
            }
        }
        let devices = BoardDevices(
            frontEnd: RealFrontEnd(gpio: front, analog: analog, modules: ModbusAnalogInputs(specs: board.analog, field: field, config: board.modbus)),
            signals: front, modules: drivers.modules, meter: drivers.meter,
            imd: drivers.imd, vehicle: vehicle)
        let period = board.loopSettings.periodNanos
        let statusEvery = statusInterval > 0 ? UInt64(max(1, (statusInterval * 1e9 / Double(period)).rounded())) : 0
        let loop = HardwareLoop(spec: spec, devices: devices, clock: clock, statusEvery: statusEvery,
                                kick: watchdog.map { w in { w.kick() } }, kickEvery: board.watchdog?.kick ?? .ms(100))
        loop.restoreLatched(desk.latchedAtStart)
        let executive = CyclicExecutive(settings: board.loopSettings, body: loop)
        desk.attach(loop: loop, field: field, grid: grid, can: can, rt: { rtText(executive.statistics()) + "\n" + front.report })
        grid?.start()
        let grant: RealTimeGrant
        do { grant = try executive.start() } catch {
            front.makeSafe(); watchdog?.disarm(); field.stop()
            fail("\(error)")
        }
        if let w = grant.warning { writeStderr("chargerd: warning: \(w)\n") }
        if board.emulated {
            print("chargerd: warning: board \(board.name) runs under emulation ([board] emulated = true): its analog values may be \(fmt(spec.analogMaxAge.seconds * 1000, 0)) ms old before E36, where a charger's may be 50 ms (docs/standards.md \"Analog inputs that stop\"); never a charger's board file")
        }
        let sched = grant.fifo ? "SCHED_FIFO \(board.runtime.priority)" : "SCHED_OTHER"
        print("chargerd: board \(board.name) (\(board.path), checksum \(board.checksum)), real-time loop every \(fmt(Double(period) / 1e6, 3)) ms, \(sched)\(grant.pinnedCPU.map { " on CPU \($0)" } ?? ""), memory \(grant.memoryLocked ? "locked" : "not locked"); \(front.specs.count) GPIO lines, \(field.devices.count - silent.count)/\(field.devices.count) Modbus devices answered" + (watchdog.map { ", watchdog \($0.path) (\($0.timeoutSeconds) s)" } ?? ", no watchdog"))
        for d in silent { print("chargerd: warning: \(d.name) has not answered: \(d.counts.lastError.isEmpty ? "no reply yet" : d.counts.lastError)") }
        if board.can.count < spec.gunCount {
            let bare = (0..<spec.gunCount).filter { g in !board.can.contains { $0.gun == g } }
            print("chargerd: gun\(bare.count > 1 ? "s" : "") \(bare.map(String.init).joined(separator: ", ")) ha\(bare.count > 1 ? "ve" : "s") no car link ([[can]]): a car plugged in gets no handshake")
        }
        fflush(nil)

        let sup = Supervisor(loop: loop, desk: desk, grid: grid, guns: spec.gunCount)
        sup.sessions = sessions
        if maxTime.isFinite { sup.end = .zero + .seconds(maxTime) }
        sup.ready()
        // Station time is the monotonic clock's since the loop started (the orderly stop's bound, --max-time).
        let started = monotonicNanos()
        var driver = ExecutiveDriver(cycles: { executive.cycles }, now: { Instant(micros: (monotonicNanos() - started) / 1000) })
        let timedOut = sup.run(&driver) == .timedOut
        sup.stopping("stopping: outputs safe, watchdog disarmed")
        executive.requestStop()
        executive.join()            // the body's loopStopped forced every output safe
        front.makeSafe()
        watchdog?.disarm()          // an orderly exit: the magic close
        analog?.stop()
        can?.stop()
        sup.drain()
        let tally = sup.tally
        grid?.shutdown()
        desk.shutdown(at: clock.now)
        field.stop()
        report(loop: loop, field: field, can: can, analog: analog, executive: executive)
        tally.printFaults()
        return tally.finish(board: board.name, loop: loop, duration: clock.now.seconds, timedOut: timedOut, sessions: sessions, json: json)
    }

    /// What the technician reads after the run: each gun's last status, the field bus's, GPIO's, the car
    /// links' and the analog inputs' counters, the loop's timing.
    func report(loop: HardwareLoop, field: FieldBus, can: SocketCANLink?, analog: IIOSampler?, executive: CyclicExecutive) {
        for g in 0..<board.spec.gunCount { print(loop.status(gun: g).line) }
        for line in field.report() { print(line) }
        print(front.report)
        if let can { print(canReport(can)) }
        if let analog {
            print("analog: \(analog.specs.count) IIO channel\(analog.specs.count == 1 ? "" : "s"), \(analog.rounds) rounds, \(analog.readErrors) failed reads"
                  + (analog.lastError.isEmpty ? "" : " (last: \(analog.lastError))")
                  + (analog.fifoRefused == 0 ? "" : "; the sampler's SCHED_FIFO was refused (\(String(cString: strerror(analog.fifoRefused)))): its values may age (E36)"))
        }
        print("loop: " + executive.statistics().line)
    }
}
