// The analog front end of a real board: Linux IIO channels through the sysfs ABI every IIO ADC driver
// has (`in_voltageN_raw`; the board file gives the quantity of one raw step at the divider or amplifier
// input, and the raw offset, so IIO's own `_scale`/`_offset` files are not read).
//
// Where sampling happens: on a thread of its own, never on the loop. A sysfs read of an SPI ADC is a
// system call that waits for the conversion and the bus (tens to hundreds of µs, and unbounded when the
// SPI controller is busy); the loop must never wait for it. The sampler reads every channel each
// `every` (the loop's period by default), with pread on descriptors opened once, converts, and publishes
// one fixed-size frame through a triple buffer; the loop copies the newest frame (wait-free, no
// allocation, no system call). A channel whose read fails keeps its last value and is counted; the
// frame says how old each value is, so a stalled sampler is visible.
import BoardFile
import ChargerCore
import RealTime
import SystemErrors
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

public struct IIOError: Error, CustomStringConvertible {
    public var path: String
    public var why: String
    public var description: String { "analog input \(path): \(why)" }
}

/// One frame of every analog value: per gun, cc1, charger side, vehicle side, gun temperature, 12 V
/// auxiliary supply (V, V, V, °C, V), with the monotonic time each was last read (0: never).
public struct AnalogFrame: BitwiseCopyable, Sendable {
    public static let signals = 5
    /// Capacity.guns (12) × signals.
    public var values: InlineArray<60, Double> = InlineArray(repeating: .nan)
    public var readAtNanos: InlineArray<60, Int64> = InlineArray(repeating: 0)
    public init() {}
    @inlinable static func slot(_ gun: Int, _ s: AnalogSignal) -> Int {
        let k: Int
        switch s {
        case .cc1: k = 0
        case .chargerVoltage: k = 1
        case .vehicleVoltage: k = 2
        case .gunTemperature: k = 3
        case .auxSupply: k = 4
        }
        return gun * signals + k
    }
}

/// Parses a sysfs attribute's text: an integer (or a decimal) and a newline.
public func parseSysfsNumber(_ bytes: UnsafeRawBufferPointer) -> Double? {
    var value = 0.0, sign = 1.0, scale = 0.0, digits = 0
    var i = 0
    while i < bytes.count, bytes[i] == 0x20 { i += 1 }
    if i < bytes.count, bytes[i] == 0x2D { sign = -1; i += 1 }
    while i < bytes.count {
        let b = bytes[i]
        if b >= 0x30 && b <= 0x39 {
            value = value * 10 + Double(b - 0x30); digits += 1
            if scale > 0 { scale *= 10 }
        } else if b == 0x2E && scale == 0 { scale = 1 }
        else if b == 0x0A || b == 0x00 { break }
        else { return nil }
        i += 1
    }
    guard digits > 0 else { return nil }
    return sign * (scale > 0 ? value / scale : value)
}

public final class IIOSampler: @unchecked Sendable {
    public let specs: [AnalogInputSpec]
    /// Each channel's file, as given or found by its device's name.
    public let paths: [String]
    /// Each channel's low-pass step, 1 - exp(-period / time constant) (1: no filter).
    private let alphas: [Double]
    /// Which slots of the frame the board maps (`AnalogFrame.slot`).
    private let mapped: InlineArray<60, Bool>
    private let fds: [Int32]
    private let every: Int64
    private let storage = TripleBufferStorage(initial: AnalogFrame())
    private var frame = AnalogFrame()
    private let thread = SideThread()
    /// Reads that failed (the sampler's thread), and the last one's reason.
    public private(set) var readErrors: UInt64 = 0
    public private(set) var lastError = ""
    public private(set) var rounds: UInt64 = 0
    /// SCHED_FIFO priority of the sampling thread (0: the normal scheduler), and the errno of its refusal
    /// (0: granted or not asked). The core stops a gun whose values age past `analog_max_age` (E36), so
    /// the sampler must not wait behind the board's other work: one below the loop on a real board.
    private let priority: Int32
    public private(set) var fifoRefused: Int32 = 0

    /// Finds each channel named by device and number under `iioRoot`, opens every channel's file and
    /// reads it once (a device or file that cannot be found or read stops the start).
    public init(specs: [AnalogInputSpec], every: TimeSpan, priority: Int32 = 0, iioRoot: String = "/sys/bus/iio/devices") throws(IIOError) {
        self.specs = specs
        self.priority = priority
        self.every = max(100_000, every.micros * 1000)
        var paths: [String] = []
        for s in specs { paths.append(try Self.resolve(s, root: iioRoot)) }
        self.paths = paths
        let period = Double(self.every)
        alphas = specs.map { s in s.filter.micros > 0 ? 1 - exp(-period / Double(s.filter.micros * 1000)) : 1 }
        var mapped = InlineArray<60, Bool>(repeating: false)
        for s in specs { mapped[AnalogFrame.slot(s.gun, s.signal)] = true }
        self.mapped = mapped
        var fds: [Int32] = []
        for (s, path) in zip(specs, paths) {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                let e = Errno(rawValue: errno)
                for f in fds { close(f) }
                throw IIOError(path: path, why: "cannot open it: \(e) (\(e.cName)); is the ADC's IIO driver loaded (ls /sys/bus/iio/devices)?\(s.device.map { " (device '\($0)' channel \(s.channel ?? 0))" } ?? "")")
            }
            fds.append(fd)
        }
        self.fds = fds
        for i in specs.indices where readOne(i) == false {
            for f in fds { close(f) }
            throw IIOError(path: paths[i], why: "cannot read a number from it (\(lastError))")
        }
        storage.buffer.write(frame)
    }

    deinit { stop(); for f in fds { close(f) } }

    /// The channel's file: as given, or `in_voltageN_raw` of the one IIO device whose `name` is the
    /// board's `device` (none, or two, stop the start naming what was found).
    static func resolve(_ s: AnalogInputSpec, root: String) throws(IIOError) -> String {
        guard let name = s.device, let channel = s.channel else { return s.path }
        var found: [String] = [], names: [String] = []
        if let d = opendir(root) {
            while let e = readdir(d) {
                let entry = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard entry.hasPrefix("iio:device") else { continue }
                let dir = root + "/" + entry
                let fd = open(dir + "/name", O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { continue }
                var buf = [UInt8](repeating: 0, count: 64)
                let n = read(fd, &buf, 63)
                close(fd)
                var end = max(0, n)
                while end > 0 && (buf[end - 1] == 0x0A || buf[end - 1] == 0x20 || buf[end - 1] == 0x09) { end -= 1 }
                let text = String(decoding: buf[0..<end], as: UTF8.self)
                names.append("\(entry) '\(text)'")
                if text == name { found.append(dir) }
            }
            closedir(d)
        }
        guard found.count == 1 else {
            let seen = names.isEmpty ? "none" : names.sorted().joined(separator: ", ")
            throw IIOError(path: "\(root) (device '\(name)')", why: found.isEmpty
                ? "no IIO device has that name (devices: \(seen)); is its driver loaded?"
                : "\(found.count) devices have that name (\(found.sorted().joined(separator: ", "))): name the channel by path instead")
        }
        return found[0] + "/in_voltage\(channel)_raw"
    }

    /// Reads channel `i` into the frame: false when the read or the number failed.
    @discardableResult
    func readOne(_ i: Int) -> Bool {
        let s = specs[i]
        return withUnsafeTemporaryAllocation(byteCount: 32, alignment: 1) { buf -> Bool in
            let n = pread(fds[i], buf.baseAddress, 31, 0)
            guard n > 0, let raw = parseSysfsNumber(UnsafeRawBufferPointer(rebasing: buf[0..<n])) else {
                readErrors &+= 1
                lastError = n < 0 ? "\(Errno(rawValue: errno))" : "not a number"
                return false
            }
            let slot = AnalogFrame.slot(s.gun, s.signal)
            let value = (raw + s.offset) * s.scale
            // First-order low-pass (the board's `filter`), from the first sample on.
            let a = alphas[i]
            frame.values[slot] = a < 1 && frame.readAtNanos[slot] != 0 ? frame.values[slot] + a * (value - frame.values[slot]) : value
            frame.readAtNanos[slot] = monotonicNanos()
            return true
        }
    }

    /// One round: every channel read, one frame published.
    public func sampleOnce() {
        for i in specs.indices { readOne(i) }
        rounds &+= 1
        storage.buffer.write(frame)
    }

    public func start() {
        _ = thread.start(stackBytes: 256 * 1024) { self.run() }
    }

    public func stop() { thread.stop() }

    func run() {
        if priority > 0 {
            var p = sched_param()
            p.sched_priority = priority
            fifoRefused = pthread_setschedparam(pthread_self(), SCHED_FIFO, &p)
        }
        var next = monotonicNanos()
        while !thread.stopAsked {
            sampleOnce()
            next += every
            let now = monotonicNanos()
            if next < now { next = now }          // behind: no burst of catch-up reads
            sleepUntil(nanos: next)
        }
    }

    /// The loop's side: the newest values of gun `g` into its inputs (those the board maps).
    public func sample(gun g: Int, into i: inout GunInputs) {
        let f = storage.buffer.read()
        let base = g * AnalogFrame.signals
        if f.readAtNanos[base] != 0 { i.cc1 = Volts(f.values[base]) }
        if f.readAtNanos[base + 1] != 0 { i.chargerSideVoltage = Volts(f.values[base + 1]) }
        if f.readAtNanos[base + 2] != 0 { i.vehicleSideVoltage = Volts(f.values[base + 2]) }
        if f.readAtNanos[base + 3] != 0 { i.gunTemperature = Celsius(f.values[base + 3]) }
        if f.readAtNanos[base + 4] != 0 { i.auxSupply = Volts(f.values[base + 4]) }
        // The age of the oldest value the board maps on this gun (the core's E36 judges it): a stalled
        // sampler, or a channel that stopped reading, ages while the values stay as they were.
        var oldest = Int64.max
        for k in 0..<AnalogFrame.signals where mapped[base + k] { oldest = min(oldest, f.readAtNanos[base + k]) }
        if oldest != .max { i.analogAge = TimeSpan(micros: max(0, monotonicNanos() - oldest) / 1000) }
    }
}
