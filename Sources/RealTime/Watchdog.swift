// The board's hardware watchdog (the Linux watchdog API, /dev/watchdogN): opened at start, which arms
// it; kicked by the control loop only while the loop meets its deadlines and the supervisor is
// healthy; disarmed by an orderly exit (the magic close). A loop that hangs or stops kicking lets it
// run out, and the board resets with every relay driver de-energised.
import CRealTime
import SystemErrors
import SystemPackage

public struct WatchdogError: Error, CustomStringConvertible {
    public var path: String
    public var errno: Errno
    public var description: String { "watchdog \(path): \(errno) (\(errno.cName))" + (errno == .noSuchFileOrDirectory ? "; load the board's watchdog driver (or softdog)" : "") }
}

public final class HardwareWatchdog: @unchecked Sendable {
    public let path: String
    /// The timeout the device runs with, seconds (after setting the board's).
    public let timeoutSeconds: Int
    private var fd: Int32
    /// Kicks that failed (counted by the loop's thread).
    public private(set) var kickErrors: UInt64 = 0

    /// Opens (arms) the device and sets `timeout` when given.
    public init(path: String, timeout: Int?) throws(WatchdogError) {
        self.path = path
        let r = rt_watchdog_open(path, Int32(timeout ?? 0))
        guard r >= 0 else { throw WatchdogError(path: path, errno: Errno(rawValue: -r)) }
        fd = r
        let t = rt_watchdog_timeout(r)
        timeoutSeconds = t > 0 ? Int(t) : (timeout ?? 0)
    }

    /// One kick (one ioctl; the loop's thread).
    @inline(__always)
    public func kick() {
        if fd >= 0 && rt_watchdog_kick(fd) != 0 { kickErrors &+= 1 }
    }

    /// The orderly exit: disarmed and closed.
    public func disarm() { rt_watchdog_disarm(fd); fd = -1 }

    /// Closed without disarming: it runs out (a controller that must not go on).
    public func abandon() { rt_watchdog_abandon(fd); fd = -1 }
}
