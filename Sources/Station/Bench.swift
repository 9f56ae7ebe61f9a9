// chargerd on a bench board: the controller's Modbus devices are real Modbus slaves (the plant
// emulator's, over TCP or RTU through libmodbus), its GPIO, analog inputs and car link come through the
// bench channel. One control cycle per plant tick, in lockstep with the emulator.
import BenchChannel
import BoardFile
import CANLink
import ChargerCore
import ChargerHAL
import StationLoop
import LoopContract
import FieldBus
import RealTime
#if canImport(Glibc)
import Glibc
#endif

package struct BenchRun {
    package var board: Board
    package var statusInterval: Double
    package var maxTime: Double
    /// Stop after this many sessions ended (0: run until --max-time or a signal).
    package var sessions: Int
    package var actions: [ScheduledCommand]
    /// The journal and the technician's console.
    package var desk: OperatorDesk
    /// The site's grid interfaces (EMS server, OCPP client, time of use), if a site file was given.
    package var grid: GridDesk? = nil
    /// Print the summary's JSON on the last line (--json).
    package var json = false
    /// --can-log: the candump log of the car links.
    package var canLog: String? = nil

    package init(board: Board, statusInterval: Double, maxTime: Double, sessions: Int, actions: [ScheduledCommand], desk: OperatorDesk) {
        self.board = board; self.statusInterval = statusInterval; self.maxTime = maxTime; self.sessions = sessions
        self.actions = actions; self.desk = desk
    }

    /// Runs until the sessions are done, --max-time of plant time, or SIGINT/SIGTERM. Exit status:
    /// 0 sessions ended without a fault; 1 a fault latched; 2 the bench could not start; 4 timed out.
    package func run() -> Int32 {
        let channel: BenchChannel
        do { channel = try BenchChannel.open(path: board.bench!.channel, guns: board.spec.gunCount, modules: board.spec.moduleCount) } catch {
            fail("board '\(board.name)': \(error)")
        }
        let field = startFieldBus(board)
        let silent = field.awaitFirstReadings()
        print("chargerd: board \(board.name) (\(board.path), checksum \(board.checksum)), bench channel \(channel.path) (emulator at \(fmtSpeed(channel.speed))), \(field.devices.count - silent.count)/\(field.devices.count) Modbus devices answered")
        for d in silent { print("chargerd: warning: \(d.name) has not answered: \(d.counts.lastError.isEmpty ? "no reply yet" : d.counts.lastError)") }
        fflush(nil)
        let spec = benchSpec(speed: channel.speed)
        let clock = LoopClock()
        let drivers = field.drivers(spec: spec, clock: clock, relays: ChannelMatrix(channel))
        let signals = ChannelSignals(channel)
        // Guns with [[can]] talk to their car on the wire; the plant's car model still follows the charger's
        // broadcast through the channel (what a bench's battery emulator does with its contactors).
        let can = openCANLinks(board: board, clock: clock, logPath: canLog, desk: desk, cleanup: { field.stop() })
        let vehicle: any VehicleLink =
            can.map { RoutedVehicleLink(can: $0, fallback: ChannelVehicleLink(channel), guns: spec.gunCount, mirrorToFallback: true) }
            ?? ChannelVehicleLink(channel)
        let devices = BoardDevices(frontEnd: ChannelFrontEnd(channel), signals: signals, modules: drivers.modules,
                                   meter: drivers.meter, imd: drivers.imd, vehicle: vehicle)
        let statusEvery = statusInterval > 0 ? UInt64(max(1, (statusInterval / spec.period.seconds).rounded())) : 0
        let loop = HardwareLoop(spec: spec, devices: devices, clock: clock, statusEvery: statusEvery)
        loop.restoreLatched(desk.latchedAtStart)
        desk.attach(loop: loop, field: field, grid: grid, can: can,
                    rt: { "bench board: the loop runs in lockstep with the plant emulator's ticks (\(loop.cycles) cycles)" })
        grid?.ocpp?.speedFactor = max(1, channel.speed)
        grid?.start()

        let sup = Supervisor(loop: loop, desk: desk, grid: grid, guns: spec.gunCount)
        sup.sessions = sessions
        sup.end = .zero + .seconds(maxTime)
        // The loop runs on this thread: each gun's figures are sampled at every drain.
        sup.sample = { loop.status(gun: $0) }
        sup.ready()
        var driver = LockstepDriver(channel: channel, loop: loop, signals: signals, actions: actions)
        let ending = sup.run(&driver)
        sup.stopping()
        sup.drain()
        let tally = sup.tally
        // The last word: every output safe, sent to the modules by the pollers' final round.
        loop.forceSafeOutputs()
        grid?.shutdown()
        can?.stop()
        if let can { print(canReport(can)) }
        desk.shutdown(at: clock.now)
        field.stop()
        channel.detach()
        for g in 0..<spec.gunCount { print(loop.status(gun: g).line) }
        for line in field.report() { print(line) }
        print("bench: \(tally.ended) session(s) ended at \(fmt(channel.plantNow.seconds, 3)) s of plant time, energy by the meter: \(tally.energyText)")
        tally.printFaults()
        if ending == .driverGone { writeStderr("chargerd: the plant emulator (pid \(channel.emulatorPID)) is gone\n") }
        return tally.finish(board: board.name, loop: loop, duration: channel.plantNow.seconds, timedOut: ending == .timedOut,
                            sessions: sessions, json: json, broken: ending == .driverGone)
    }

    /// The board's spec for a run at the emulator's speed. The bus runs in wall time, the plant at the
    /// emulator's speed: a command's way through the bus takes `speed` times longer in plant time (at
    /// 'max' the lockstep rate). Likewise the comm timeouts bound how long the bus may be silent in
    /// wall time, as on a real charger; in plant time that is `speed` times longer (without this a
    /// 200 ms stall of a loaded machine is a second of plant time at 5x, and a module is "lost"). A
    /// device the poller counts lost (fault_after failures, wall time) is lost at once either way.
    package func benchSpec(speed: Double) -> StationSpec {
        var spec = board.spec
        let k = max(1, speed)
        spec.commandLatency = .seconds(board.modbus.commandLatency.seconds * k)
        print("chargerd: command latency through the bus \(fmt(board.modbus.commandLatency.seconds * 1000, 1)) ms (\(fmt(spec.commandLatency.seconds * 1000, 0)) ms of plant time)")
        spec.moduleCommTimeout = .seconds(board.spec.moduleCommTimeout.seconds * k)
        spec.meterCommTimeout = .seconds(board.spec.meterCommTimeout.seconds * k)
        spec.imdCommTimeout = .seconds(board.spec.imdCommTimeout.seconds * k)
        // A reading's age counts the same way: the bus delivers readings in wall time.
        spec.readingMaxAge = .seconds(board.spec.readingMaxAge.seconds * k)
        if k > 1 {
            print("chargerd: comm timeouts \(fmt(board.spec.moduleCommTimeout.seconds, 1)) / \(fmt(board.spec.meterCommTimeout.seconds, 1)) / \(fmt(board.spec.imdCommTimeout.seconds, 1)) s of bus silence (module / meter / IMD) = \(fmt(spec.moduleCommTimeout.seconds, 1)) / \(fmt(spec.meterCommTimeout.seconds, 1)) / \(fmt(spec.imdCommTimeout.seconds, 1)) s of plant time")
        }
        return spec
    }
}

/// A bench board's cycles: one control cycle per plant tick, in lockstep with the emulator, on the
/// supervisor's thread. A plant that stops ticking for 1 s of wall time gets safe outputs and a pressed
/// e-stop input, so the next cycle latches it (a reset is needed); an emulator that is gone ends the run.
package struct LockstepDriver: LoopDriver {
    package let channel: BenchChannel
    package let loop: HardwareLoop
    package let signals: ChannelSignals
    /// The scripted operator actions (--inject), given when the plant's clock reaches them.
    package var actions: [ScheduledCommand]
    package var seen: UInt32 = 0
    package var index: UInt64 = 0
    package var stalledSince: Int64? = nil
    /// Whether the last advance ran a cycle.
    package var ran = false
    package let gridEvery: UInt64

    package init(channel: BenchChannel, loop: HardwareLoop, signals: ChannelSignals, actions: [ScheduledCommand]) {
        self.channel = channel; self.loop = loop; self.signals = signals; self.actions = actions
        gridEvery = UInt64(max(1, (0.1 / loop.spec.period.seconds).rounded()))
    }

    package var now: Instant { channel.plantNow }
    package var cycles: UInt64 { index }

    package mutating func advance(_ s: Supervisor) -> Bool {
        ran = false
        guard channel.waitTick(after: seen, timeoutMicros: 100_000) else {
            let now = monotonicNanos()
            let since = stalledSince ?? now
            stalledSince = since
            if now - since > 1_000_000_000, !signals.stalled {
                signals.stalled = true
                loop.forceSafeOutputs()
                print("chargerd: the plant emulator stopped ticking at \(fmt(channel.plantNow.seconds, 3)) s: outputs forced safe")
                fflush(nil)
            }
            if now - since > 1_000_000_000, kill(channel.emulatorPID, 0) != 0 && errno == ESRCH { return false }
            return true
        }
        stalledSince = nil
        let t = channel.tick
        seen = t
        let now = channel.plantNow
        for i in actions.indices where !actions[i].done && now >= actions[i].at {
            actions[i].done = true
            print("[\(fmt(now.seconds, 3).leftPad(10)) s] operator: \(actions[i].text)")
            loop.commands.queue.push(actions[i].command)
        }
        loop.cycle(now: now, index: index)
        index += 1
        ran = true
        signals.stalled = false
        channel.acknowledge(t)
        return true
    }

    /// Every 100 ms of plant time, on the cycle that ran.
    package mutating func gridDue() -> Bool { ran && (index - 1) % gridEvery == 0 }
    package func drainDue() -> Bool { ran && index % 64 == 0 }
}

/// The Modbus devices of a board (bench or real), started; a board that cannot start them exits 2.
package func startFieldBus(_ board: Board, analogPriority: Int32 = 0) -> FieldBus {
    do {
        let field = try FieldBus(config: board.modbus, analogPriority: analogPriority)
        try field.start()
        return field
    } catch { fail("board '\(board.name)': \(error)") }
}

extension FieldBus {
    /// Waits up to `seconds` for every device to be read once (or counted lost), so the core's comm
    /// timeouts start from devices that answer; returns the ones that have not answered.
    package func awaitFirstReadings(seconds: Double = 3) -> [FieldDevice] {
        let waitUntil = monotonicNanos() + Int64(seconds * 1e9)
        while monotonicNanos() < waitUntil && devices.contains(where: { $0.readings.read().sequence == 0 && !$0.counts.lost }) {
            sleepUntil(nanos: monotonicNanos() + 5_000_000)
        }
        return devices.filter { $0.readings.read().sequence == 0 }
    }
}

extension OperatorDesk {
    /// The console on a hardware loop's view and commands, with the field bus's counters.
    package func attach(loop: HardwareLoop, field: FieldBus, grid: GridDesk?, can: SocketCANLink? = nil, rt: @escaping () -> String) {
        attach(view: loop.view.buffer, commands: loop.commands.queue, rt: rt,
               comm: { field.report().joined(separator: "\n") },
               moduleComm: { m in
                   guard let c = field.device(.module, m)?.counts else { return "-" }
                   let errors = c.timeouts + c.badReplies + c.exceptions + c.connectionErrors
                   return "\(errors) of \(c.exchanges)" + (c.lost ? " LOST" : "")
               }, grid: grid.map { g in { g.consoleText() } }, can: can.map { c in { canReport(c) } })
    }
}

package func fmtSpeed(_ s: Double) -> String { s > 0 ? "\(fmt(s, 1))x" : "max speed" }
