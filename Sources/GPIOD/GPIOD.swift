// GPIO through libgpiod v1 (Debian's libgpiod-dev 1.6): the board's named lines on their chips, each
// requested with the consumer name "chargerd", outputs starting in their safe (inactive) state.
// Every C call is wrapped here with a typed error carrying the operation, chip, line and errno.
import BoardFile
import CGPIOD
import SystemErrors
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// libgpiod's version string (1.6.3 on Debian 12).
public func gpiodVersion() -> String { String(cString: gpiod_version_string()) }

/// A failed libgpiod call, with what was being done, on which chip and line, and errno.
public struct GPIOError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Operation: String, Sendable {
        case openChip = "open GPIO chip", getLine = "get line", request = "request line", setValue = "set line", getValue = "read line"
    }
    public var operation: Operation
    public var chip: String
    public var line: Int?
    /// The signal the line carries ("k1k2 gun 0"), when known.
    public var signal: String?
    public var errno: Errno
    /// The consumer that holds the line (as gpioinfo shows it), when a request found it taken.
    public var holder: String? = nil

    public init(operation: Operation, chip: String, line: Int?, signal: String?, errno: Errno) {
        self.operation = operation; self.chip = chip; self.line = line; self.signal = signal; self.errno = errno
    }

    public var description: String {
        let what = line.map { "\(operation.rawValue) \(chip):\($0)\(signal.map { " (\($0))" } ?? "")" } ?? "\(operation.rawValue) '\(chip)'"
        var s = "gpio: cannot \(what): \(errno) (\(errno.cName))"
        switch (operation, errno) {
        case (.openChip, .noSuchFileOrDirectory):
            s += "; this machine has no GPIO chip '\(chip)' (see ls /dev/gpiochip*). To run without the hardware, use a sim- board, e.g. --board Boards/sim-60kw.toml"
        case (.openChip, .permissionDenied), (.request, .permissionDenied):
            s += "; the user needs access to /dev/\(chip) (the gpio group, or a udev rule)"
        case (.request, .resourceBusy):
            s += holder.map { "; held by \"\($0)\" (gpioinfo \(chip) shows it): stop that program or free the line" }
                ?? "; another program holds this line (gpioinfo \(chip) shows its consumer)"
        default: break
        }
        return s
    }
}

/// An open chip (closed with the last reference).
public final class GPIOChip {
    let handle: OpaquePointer
    public let name: String

    /// Opens a chip by name (gpiochip0) or path (/dev/gpiochip0): gpiod_chip_open_lookup.
    public init(_ name: String) throws(GPIOError) {
        errno = 0
        guard let h = gpiod_chip_open_lookup(name) else {
            throw GPIOError(operation: .openChip, chip: name, line: nil, signal: nil, errno: Errno(c: errno) ?? .noSuchFileOrDirectory)
        }
        handle = h
        self.name = name
    }
    deinit { gpiod_chip_close(handle) }

    /// Lines on the chip (gpiod_chip_num_lines).
}

/// One requested line (released with the last reference).
public final class GPIOLine {
    let chip: GPIOChip
    let handle: OpaquePointer
    public let spec: GPIOLineSpec

    /// Requests the line: an output starts inactive (its safe state); active-low lines are inverted by
    /// libgpiod (GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW), so `true` always means "active".
    public init(chip: GPIOChip, spec: GPIOLineSpec, consumer: String = "chargerd") throws(GPIOError) {
        self.chip = chip
        self.spec = spec
        errno = 0
        guard let h = gpiod_chip_get_line(chip.handle, UInt32(spec.line)) else {
            throw GPIOError(operation: .getLine, chip: chip.name, line: spec.line, signal: spec.name, errno: Errno(c: errno) ?? .invalidArgument)
        }
        let flags = spec.active == .low ? Int32(GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW) : 0
        let r = spec.isOutput ? gpiod_line_request_output_flags(h, consumer, flags, 0)
                              : gpiod_line_request_input_flags(h, consumer, flags)
        guard r == 0 else {
            throw GPIOError(operation: .request, chip: chip.name, line: spec.line, signal: spec.name, errno: Errno(rawValue: errno))
        }
        handle = h
    }
    deinit { gpiod_line_release(handle) }

    public func set(_ active: Bool) throws(GPIOError) {
        guard gpiod_line_set_value(handle, active ? 1 : 0) == 0 else {
            throw GPIOError(operation: .setValue, chip: chip.name, line: spec.line, signal: spec.name, errno: Errno(rawValue: errno))
        }
    }

    public func get() throws(GPIOError) -> Bool {
        let v = gpiod_line_get_value(handle)
        guard v >= 0 else {
            throw GPIOError(operation: .getValue, chip: chip.name, line: spec.line, signal: spec.name, errno: Errno(rawValue: errno))
        }
        return v == 1
    }
}

/// Every line of a board's GPIO map, requested at start; outputs in their safe state until driven,
/// and back in it by `makeSafe()` (normal exit, SIGTERM/SIGINT, loop stopped).
public final class GPIOBank {
    public let lines: [GPIOLine]

    /// Opens each chip once and requests every line. The first failure is thrown and nothing stays
    /// requested (lines and chips are released with their objects).
    public init(map: [GPIOLineSpec], consumer: String = "chargerd") throws(GPIOError) {
        var chips: [String: GPIOChip] = [:]
        var lines: [GPIOLine] = []
        for spec in map {
            let chip: GPIOChip
            if let c = chips[spec.chip] { chip = c } else { chip = try GPIOChip(spec.chip); chips[spec.chip] = chip }
            lines.append(try GPIOLine(chip: chip, spec: spec, consumer: consumer))
        }
        self.lines = lines
    }

    /// Every output inactive, which is the de-energised state the hardware makes safe: contactors and
    /// K3/K4 open, lock motor off (the lock holds mechanically), lamps off, matrix relays open, and the
    /// output bleeder discharging (boards wire it normally closed: `active` opens it). Returns the errors
    /// of lines that could not be set (every line is tried).
    @discardableResult
    public func makeSafe() -> [GPIOError] {
        var errors: [GPIOError] = []
        for l in lines where l.spec.isOutput {
            do { try l.set(false) } catch { errors.append(error) }
        }
        return errors
    }
}
