// The plant on the other side of a real board's kernel lines (`charger-plant serve --sim DIR`): the
// board's GPIO lines are a gpio-sim chip in the qemu guest. The plant reads the outputs chargerd drives
// from each line's `value` file and sets the inputs it drives through each line's `pull` file, as wires
// would: a contactor's aux contact follows its coil after its close time (a welded one never opens), the
// lock's feedback follows its motor after the lock time, the RCD's relay trips on a fault or its test.
// The coils' supply is the board's charge pump ([contactor_supply]): a coil is energised only while its
// line is active and the pump line toggled within the hold.
//
// An input is written only when the plant's value of it changes (and once at the start), so a test may
// drive a line by hand (a welded contact with K1/K2 open, an e-stop) and it stays so until the plant's
// own physics moves it.
import ArgumentParser
import BoardFile
import ChargerCore
import RealTime
import SimPlant
#if canImport(Glibc)
import Glibc
#endif

final class SimLines {
    struct Output { let spec: GPIOLineSpec; let fd: Int32 }
    struct Input { let spec: GPIOLineSpec; let fd: Int32; var written: Bool? }
    let dir: String
    private let outputs: [Output]
    private var inputs: [Input]
    /// The coil supply's hold (ns) and the pump's line; nil on a board without one (the coils always fed).
    private let hold: Int64?
    private let pump: Output?
    private var pumpLevel: Bool? = nil
    private var pumpEdgeAt: Int64 = 0
    private var lastSample: Int64 = 0
    /// Samples of the pump that came too late to see its edges (counted as an edge each).
    private(set) var blindGaps = 0
    private(set) var supplyFalls = 0
    private var supplyWasUp = false
    /// Reads and writes of the sysfs files that failed (a chip taken away), and the last one's reason.
    private(set) var ioErrors = 0
    private(set) var lastError = ""

    init(board: Board, dir: String) throws(ValidationError) {
        self.dir = dir
        let chips = Set(board.gpio.map(\.chip))
        guard chips.count == 1 else {
            throw ValidationError("--sim: board '\(board.name)' has its lines on \(chips.count) chips (\(chips.sorted().joined(separator: ", "))); the plant drives one gpio-sim chip")
        }
        guard !board.gpio.contains(where: { $0.signal == .matrix }) else {
            throw ValidationError("--sim: board '\(board.name)' switches modules between guns with matrix relays; the plant on kernel lines models fixed modules only")
        }
        func open(_ spec: GPIOLineSpec, _ file: String, _ mode: Int32) throws(ValidationError) -> Int32 {
            let path = "\(dir)/sim_gpio\(spec.line)/\(file)"
            let fd = Glibc.open(path, mode | O_CLOEXEC)
            guard fd >= 0 else { throw ValidationError("--sim: cannot open \(path) (\(spec.name)): \(String(cString: strerror(errno)))") }
            return fd
        }
        var outs: [Output] = [], ins: [Input] = []
        for l in board.gpio {
            if l.isOutput { outs.append(Output(spec: l, fd: try open(l, "value", O_RDONLY))) }
            else { ins.append(Input(spec: l, fd: try open(l, "pull", O_WRONLY), written: nil)) }
        }
        outputs = outs.filter { $0.spec.signal != .coilPump }
        inputs = ins
        pump = outs.first { $0.spec.signal == .coilPump }
        hold = board.contactorSupply.map { $0.hold.micros * 1000 }
    }

    deinit {
        for o in outputs { close(o.fd) }
        for i in inputs { close(i.fd) }
        if let pump { close(pump.fd) }
    }

    /// The line's level as chargerd drives it (physical: true = high), nil when it cannot be read.
    private func level(_ fd: Int32) -> Bool? {
        var buf: (UInt8, UInt8) = (0, 0)
        let n = withUnsafeMutableBytes(of: &buf) { pread(fd, $0.baseAddress, 2, 0) }
        guard n >= 1 else { failed("read: \(String(cString: strerror(errno)))"); return nil }
        return buf.0 == UInt8(ascii: "1")
    }

    private func failed(_ why: String) {
        ioErrors += 1
        lastError = why
    }

    /// The coil supply, judged now: up while the pump toggled within the hold. Call once a plant step.
    /// The plant sees the pump only when it samples the line: after a gap of more than a third of the
    /// hold between samples (the plant itself starved), an unchanged level may hide an even number of
    /// edges, so the gap counts as an edge; a dead controller's supply then falls the gap later.
    func supplyUp(now: Int64) -> Bool {
        guard let pump, let hold else { return true }
        let v = level(pump.fd)
        if let v, v != pumpLevel {
            if pumpLevel != nil { pumpEdgeAt = now }
            pumpLevel = v
        } else if pumpEdgeAt > 0 && lastSample > 0 && now - lastSample > hold / 3 {
            pumpEdgeAt = now
            blindGaps += 1
        }
        lastSample = now
        let up = pumpEdgeAt > 0 && now - pumpEdgeAt <= hold
        if supplyWasUp && !up { supplyFalls += 1 }
        supplyWasUp = up
        return up
    }

    /// The input line a plant fault shows itself on, when the board has none ("mains", say); nil when the
    /// board has it, or the fault travels elsewhere (Modbus, CAN, the analog module, the plant).
    func missingLine(for injection: Plant.Injection) -> String? {
        let needed: GPIOSignal
        switch injection {
        case .emergencyStop: needed = .emergencyStop
        case .door: needed = .door
        case .mains: needed = .mains
        case .groundFault: needed = .rcdTrip
        case .peLoss: needed = .peMonitor
        case .lockJam: needed = .lockFeedback
        case .weld, .failToClose: needed = .k1Aux
        default: return nil
        }
        return inputs.contains { $0.spec.signal == needed } ? nil : needed.rawValue
    }

    /// Nanoseconds since the pump's last edge.
    func sinceEdge(now: Int64) -> Int64 { pumpEdgeAt > 0 ? now - pumpEdgeAt : 0 }

    /// What chargerd drives on gun `g`'s lines; the coils only while the supply is up.
    func outputs(gun g: Int, supply: Bool) -> GunOutputs {
        var o = GunOutputs()
        for out in outputs where out.spec.gun == g || out.spec.gun == nil {
            guard let high = level(out.fd) else { continue }
            let active = high == (out.spec.active == .high)
            switch out.spec.signal {
            case .k1k2: o.closeK1K2 = active && supply
            case .k3k4: o.closeK3K4 = active && supply
            case .lockMotor: o.lock = active
            case .discharge: o.discharge = active
            case .rcdTest: o.groundDetectorTest = active
            default: break
            }
        }
        return o
    }

    /// The lamps chargerd shows on gun `g` ("green", "blue", "red" lit), for the plant's log.
    func lamps(gun g: Int) -> String {
        var lit: [String] = []
        for out in outputs where out.spec.gun == g {
            guard let high = level(out.fd), high == (out.spec.active == .high) else { continue }
            switch out.spec.signal {
            case .lampGreen: lit.append("green")
            case .lampBlue: lit.append("blue")
            case .lampRed: lit.append("red")
            default: break
            }
        }
        return lit.isEmpty ? "off" : lit.joined(separator: "+")
    }

    /// Sets the input lines from the plant's truth: each written only when its value changes.
    func publish(station: StationInputs) {
        for k in inputs.indices {
            let value: Bool
            if let g = inputs[k].spec.gun {
                let i = station.guns[g]
                switch inputs[k].spec.signal {
                case .k1Aux: value = i.k1Closed
                case .k2Aux: value = i.k2Closed
                case .k3k4Aux: value = i.k3k4Closed
                case .lockFeedback: value = i.lockConfirmed
                case .rcdTrip: value = i.groundFaultTrip
                case .imdAlarm: value = i.imdAlarm
                case .peMonitor: value = i.peContinuity
                default: continue
                }
            } else {
                switch inputs[k].spec.signal {
                case .emergencyStop: value = station.emergencyStop
                case .door: value = station.doorOpen
                case .mains: value = station.mainsPresent
                default: continue
                }
            }
            guard inputs[k].written != value else { continue }
            let high = value == (inputs[k].spec.active == .high)
            let text = high ? "pull-up" : "pull-down"
            let n = text.withCString { pwrite(inputs[k].fd, $0, strlen($0), 0) }
            if n < 0 { failed("write \(inputs[k].spec.name): \(String(cString: strerror(errno)))"); continue }
            _ = ftruncate(inputs[k].fd, off_t(n))   // a plain file standing in for sysfs (sysfs ignores it)
            inputs[k].written = value
        }
    }
}
