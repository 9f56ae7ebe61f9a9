// systemd's notify protocol (sd_notify(3)), without libsystemd: datagrams of "KEY=VALUE" lines to the
// socket named by $NOTIFY_SOCKET (a path, or '@' for the abstract namespace). READY=1 once the loop
// runs, STATUS= with the guns' states, WATCHDOG=1 at half of $WATCHDOG_USEC while the loop advances,
// STOPPING=1 on the way out. Without $NOTIFY_SOCKET every call does nothing.
import ChargerCore
import LoopContract
import RealTime
#if canImport(Glibc)
import Glibc
#endif

package final class ServiceNotifier {
    private let fd: Int32
    private var address = sockaddr_un()
    private var length: socklen_t = 0
    /// Half the service manager's watchdog interval (0: no watchdog asked for).
    package let watchdogEveryNanos: Int64
    private var nextWatchdog: Int64 = 0
    private var lastCycles: UInt64 = .max
    package private(set) var sent = 0

    package init() {
        let env = getenv("NOTIFY_SOCKET").map { String(cString: $0) } ?? ""
        var usec: Int64 = 0
        if let w = getenv("WATCHDOG_USEC"), let v = Int64(String(cString: w)), v > 0 {
            // WATCHDOG_PID, when set, names the process the watchdog is for.
            if let p = getenv("WATCHDOG_PID"), let pid = Int32(String(cString: p)), pid != getpid() { usec = 0 } else { usec = v }
        }
        watchdogEveryNanos = usec * 1000 / 2
        guard !env.isEmpty, env.utf8.count < MemoryLayout.size(ofValue: address.sun_path) else { fd = -1; return }
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(env.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }   // the abstract namespace
        withUnsafeMutableBytes(of: &address.sun_path) { p in for (i, b) in bytes.enumerated() { p[i] = b } }
        length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
    }

    deinit { if fd >= 0 { close(fd) } }

    package var enabled: Bool { fd >= 0 }

    /// One notification (several lines at once are fine).
    package func send(_ text: String) {
        guard fd >= 0 else { return }
        var a = address
        let n = text.withCString { s in
            withUnsafePointer(to: &a) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, s, strlen(s), Int32(MSG_NOSIGNAL), $0, length) }
            }
        }
        if n >= 0 { sent += 1 }
    }

    /// Called often by the run's main thread: a watchdog ping when one is due and the loop has advanced
    /// since the last (a hung loop stops the pings, and systemd restarts the service), and the status
    /// every 2 s.
    package func tick(cycles: UInt64, status: @autoclosure () -> String) {
        guard fd >= 0 else { return }
        let now = monotonicNanos()
        var lines: [String] = []
        if watchdogEveryNanos > 0 && now >= nextWatchdog {
            nextWatchdog = now + watchdogEveryNanos
            if cycles != lastCycles { lastCycles = cycles; lines.append("WATCHDOG=1") }
        }
        if now >= nextStatus { nextStatus = now + 2_000_000_000; lines.append("STATUS=" + status()) }
        if !lines.isEmpty { send(lines.joined(separator: "\n")) }
    }
    private var nextStatus: Int64 = 0
}

/// The STATUS= text: each gun's state, and the faults raised so far.
package func serviceStatus(phases: [SessionPhase], faults: Int) -> String {
    phases.enumerated().map { "gun\($0.offset) \($0.element.name)" }.joined(separator: ", ") + (faults > 0 ? "; \(faults) fault(s) raised" : "")
}
