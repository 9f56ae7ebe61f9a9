// chargerd on a bench board: the controller's Modbus devices are real Modbus slaves (the plant
// emulator's, over TCP or RTU through libmodbus), its GPIO, analog inputs and car link come through the
// bench channel. One control cycle per plant tick, in lockstep with the emulator.
import BenchChannel
import BoardFile
import ChargerCore
import ChargerHAL
import ChargerRuntime
import LoopContract
import FieldBus
import RealTime
#if canImport(Glibc)
import Glibc
#endif

struct BenchRun {
    var board: Board
    var statusInterval: Double
    var maxTime: Double
    /// Stop after this many sessions ended (0: run until --max-time or a signal).
    var sessions: Int
    var actions: [ScheduledInjection]
    /// The journal and the technician's console.
    var desk: OperatorDesk
    /// The site's grid interfaces (EMS server, OCPP client, time of use), if a site file was given.
    var grid: GridDesk? = nil

    /// Runs until the sessions are done, --max-time of plant time, or SIGINT/SIGTERM. Exit status:
    /// 0 sessions ended without a fault; 1 a fault latched; 2 the bench could not start; 4 timed out.
    func run() -> Int32 {
        var spec = board.spec
        let channel: BenchChannel
        do { channel = try BenchChannel.open(path: board.bench!.channel, guns: spec.gunCount, modules: spec.moduleCount) } catch {
            fail("board '\(board.name)': \(error)")
        }
        let field: FieldBus
        do {
            field = try FieldBus(config: board.modbus)
            try field.start()
        } catch { fail("board '\(board.name)': \(error)") }

        // Every device read once before the first cycle (or the reason it was not), so the core's
        // communication timeouts start from devices that answer.
        let waitUntil = monotonicNanos() + 3_000_000_000
        while monotonicNanos() < waitUntil && field.devices.contains(where: { $0.readings.read().sequence == 0 && !$0.counts.lost }) {
            sleepUntil(nanos: monotonicNanos() + 5_000_000)
        }
        let silent = field.devices.filter { $0.readings.read().sequence == 0 }
        print("chargerd: board \(board.name) (\(board.path), checksum \(board.checksum)), bench channel \(channel.path) (emulator at \(fmtSpeed(channel.speed))), \(field.devices.count - silent.count)/\(field.devices.count) Modbus devices answered")
        for d in silent { print("chargerd: warning: \(d.name) has not answered: \(d.counts.lastError.isEmpty ? "no reply yet" : d.counts.lastError)") }
        fflush(nil)

        // The bus runs in wall time, the plant at the emulator's speed: a command's way through the bus
        // takes `speed` times longer in plant time (at 'max' the lockstep rate, measured below).
        spec.commandLatency = .seconds(board.modbus.commandLatency.seconds * max(1, channel.speed))
        print("chargerd: command latency through the bus \(fmt(board.modbus.commandLatency.seconds * 1000, 1)) ms (\(fmt(spec.commandLatency.seconds * 1000, 0)) ms of plant time)")
        // Likewise a reading's age: the board's comm timeouts bound how long the bus may be silent, in
        // wall time as on a real charger; in plant time that is `speed` times longer. Without this a
        // 200 ms stall of a loaded machine is a second of plant time at 5x, and a module is "lost".
        // A device the poller counts lost (fault_after failures, wall time) is lost at once either way.
        let k = max(1, channel.speed)
        spec.moduleCommTimeout = .seconds(board.spec.moduleCommTimeout.seconds * k)
        spec.meterCommTimeout = .seconds(board.spec.meterCommTimeout.seconds * k)
        spec.imdCommTimeout = .seconds(board.spec.imdCommTimeout.seconds * k)
        // A reading's age counts the same way: the bus delivers readings in wall time.
        spec.readingMaxAge = .seconds(board.spec.readingMaxAge.seconds * k)
        if k > 1 {
            print("chargerd: comm timeouts \(fmt(board.spec.moduleCommTimeout.seconds, 1)) / \(fmt(board.spec.meterCommTimeout.seconds, 1)) / \(fmt(board.spec.imdCommTimeout.seconds, 1)) s of bus silence (module / meter / IMD) = \(fmt(spec.moduleCommTimeout.seconds, 1)) / \(fmt(spec.meterCommTimeout.seconds, 1)) / \(fmt(spec.imdCommTimeout.seconds, 1)) s of plant time")
        }
        let clock = LoopClock()
        let matrix = ChannelMatrix(channel)
        let drivers = field.drivers(spec: spec, clock: clock, relays: matrix)
        let signals = ChannelSignals(channel)
        let devices = BoardDevices(frontEnd: ChannelFrontEnd(channel), signals: signals, modules: drivers.modules,
                                   meter: drivers.meter, imd: drivers.imd, vehicle: ChannelVehicleLink(channel))
        let statusEvery = statusInterval > 0 ? UInt64(max(1, (statusInterval / spec.period.seconds).rounded())) : 0
        let loop = HardwareLoop(spec: spec, devices: devices, clock: clock, statusEvery: statusEvery)
        loop.restoreLatched(desk.latchedAtStart)
        desk.attach(view: loop.view.buffer, commands: loop.commands.queue,
                    rt: { "bench board: the loop runs in lockstep with the plant emulator's ticks (\(loop.cycles) cycles)" },
                    comm: { field.report().joined(separator: "\n") },
                    moduleComm: { m in
                        guard let c = field.device(.module, m)?.counts else { return "-" }
                        let errors = c.timeouts + c.badReplies + c.exceptions + c.connectionErrors
                        return "\(errors) of \(c.exchanges)" + (c.lost ? " LOST" : "")
                    }, grid: grid.map { g in { g.consoleText() } })
        grid?.ocpp?.speedFactor = max(1, channel.speed)
        grid?.start()
        let gridEvery = UInt64(max(1, (0.1 / spec.period.seconds).rounded()))

        var actions = self.actions
        var seen: UInt32 = 0
        var index: UInt64 = 0
        var ended = 0
        var faults: [FaultRecord] = []
        var lastPhase = [SessionPhase](repeating: .unplugged, count: spec.gunCount)
        var energyAtStart = [Double?](repeating: nil, count: spec.gunCount)
        var delivered = [Double](repeating: 0, count: spec.gunCount)
        var stalledSince: Int64? = nil
        var timedOut = false
        var emulatorGone = false
        let end = Instant.zero + .seconds(maxTime)
        let meters = (0..<spec.gunCount).map { field.device(.meter, $0)! }

        func drain() {
            while let e = loop.events.queue.pop() {
                printEvent(e)
                desk.record(e)
                grid?.loopEvent(e)
                switch e {
                case .fault(let r) where r.clearedAt == nil: faults.append(r)
                case .phase(let g, let p, _):
                    let gi = Int(g)
                    let energy = meters[gi].readings.read().energy
                    if p == .charging && energyAtStart[gi] == nil { energyAtStart[gi] = energy }
                    // A session ends when it finishes, or when the car leaves before it could.
                    if p == .finished || (p == .unplugged && lastPhase[gi] != .finished && lastPhase[gi] != .unplugged) {
                        ended += 1
                        if let e0 = energyAtStart[gi] { delivered[gi] += energy - e0; energyAtStart[gi] = nil }
                    }
                    lastPhase[gi] = p
                default: break
                }
            }
            fflush(nil)
        }

        while !stopRequested {
            if !channel.waitTick(after: seen, timeoutMicros: 100_000) {
                // No tick: the plant is paused or gone. After 1 s of wall time the outputs go safe and
                // the e-stop input reads pressed, so the next cycle latches it (a reset is needed).
                let now = monotonicNanos()
                if stalledSince == nil { stalledSince = now }
                if let s = stalledSince, now - s > 1_000_000_000, !signals.stalled {
                    signals.stalled = true
                    loop.forceSafeOutputs()
                    print("chargerd: the plant emulator stopped ticking at \(fmt(channel.plantNow.seconds, 3)) s: outputs forced safe")
                    fflush(nil)
                }
                if let s = stalledSince, now - s > 1_000_000_000, kill(channel.emulatorPID, 0) != 0 && errno == ESRCH {
                    emulatorGone = true
                    break
                }
                continue
            }
            stalledSince = nil
            let t = channel.tick
            seen = t
            let now = channel.plantNow
            for i in actions.indices where !actions[i].done {
                guard case .at(let at) = actions[i].time, now >= at else { continue }
                actions[i].done = true
                print("[\(fmt(now.seconds, 3).leftPad(10)) s] operator: \(actions[i].text)")
                switch actions[i].action {
                case .reset(let g): loop.commands.queue.push(.reset(gun: Int8(g)))
                case .stop(let g): loop.commands.queue.push(.stop(gun: Int8(g)))
                case .stationSetpoint(let p): loop.commands.queue.push(.stationSetpoint(p))
                case .gunSetpoint(let g, let p): loop.commands.queue.push(.gunSetpoint(gun: Int8(g), p))
                case .plant: break
                }
            }
            loop.cycle(now: now, index: index)
            if let grid, index % gridEvery == 0 { loop.grid.buffer.write(grid.tick(view: loop.gridView.buffer.read())) }
            index += 1
            signals.stalled = false
            channel.acknowledge(t)
            if index % 64 == 0 { drain() }
            if sessions > 0 && ended >= sessions { break }
            if now >= end { timedOut = true; break }
        }
        drain()
        // The last word: every output safe, sent to the modules by the pollers' final round.
        loop.forceSafeOutputs()
        grid?.shutdown()
        desk.shutdown(at: clock.now)
        field.stop()
        channel.detach()
        for g in 0..<spec.gunCount { print(loop.status(gun: g).line) }
        for line in field.report() { print(line) }
        let energy = (0..<spec.gunCount).map { "gun\($0) \(fmt(delivered[$0] / 1000, 3)) kWh" }.joined(separator: ", ")
        print("bench: \(ended) session(s) ended at \(fmt(channel.plantNow.seconds, 3)) s of plant time, energy by the meter: \(energy)")
        if faults.isEmpty { print("faults: none") }
        for r in faults {
            print("fault: \(r.gun < 0 ? "station" : "gun\(r.gun)")\(r.module >= 0 ? " module \(r.module)" : "") \(r.code.name) at \(fmt(r.raisedAt.seconds, 3)) s (\(r.reaction.name)), value \(fmt(r.value, 3))")
        }
        fflush(nil)
        if emulatorGone { writeStderr("chargerd: the plant emulator (pid \(channel.emulatorPID)) is gone\n"); return 1 }
        if let f = faults.first, !stopRequested {
            writeStderr("chargerd: session did not end normally: \(f.code.name) at \(fmt(f.raisedAt.seconds, 3)) s (\(f.reaction.name))\n")
            return 1
        }
        if timedOut && sessions > 0 { writeStderr("chargerd: \(ended) of \(sessions) session(s) ended within --max-time\n"); return 4 }
        return 0
    }
}

func fmtSpeed(_ s: Double) -> String { s > 0 ? "\(fmt(s, 1))x" : "max speed" }

/// One loop event as a console line (real-time and bench modes).
func printEvent(_ e: LoopEvent) {
    switch e {
    case .status(let s): print(s.line)
    case .phase(let g, let p, let at): print("[\(fmt(at.seconds, 3).leftPad(10)) s] gun\(g) \(p.name)")
    case .fault(let r):
        let gun = r.gun < 0 ? "station" : "gun\(r.gun)"
        if let c = r.clearedAt { print("[\(fmt(c.seconds, 3).leftPad(10)) s] \(gun) cleared \(r.code.name)") }
        else { print("[\(fmt(r.raisedAt.seconds, 3).leftPad(10)) s] \(gun) FAULT \(r.code.name) (\(r.reaction.name)), value \(fmt(r.value, 1))") }
    case .overrun(let n, let at): print("[\(fmt(at.seconds, 3).leftPad(10)) s] loop missed \(n) deadlines in a row: outputs forced safe")
    case .session: break   // the journal's
    }
}
