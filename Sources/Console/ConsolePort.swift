// Where the console's bytes go: the board's UART (termios: raw, baud, parity, flow control as
// configured), a pseudo-terminal in simulation (its slave path is what the technician opens), or
// standard input/output. Output never blocks the console's thread: it is written non-blocking from a
// bounded buffer, and what a terminal that never reads would pile up beyond it is dropped and counted.
import CConsole
import SystemErrors
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

public struct ConsolePortError: Error, CustomStringConvertible {
    public var description: String
    public var errno: Errno
    init(_ what: String, _ path: String, errno e: Errno) {
        errno = e
        description = "console \(path): \(what): \(e) (\(e.cName))"
    }
}

public enum SerialParity: String, Sendable { case none = "N", even = "E", odd = "O" }

public final class ConsolePort: @unchecked Sendable {
    public let readFD: Int32
    public let writeFD: Int32
    /// What the technician connects to (the UART path, the pty's slave path, or "stdin").
    public let name: String
    public let isPseudoTerminal: Bool
    /// Most output held for a slow terminal; beyond it output is dropped.
    public static let outputLimit = 64 * 1024
    private var pending: [UInt8] = []
    public private(set) var droppedOutput: UInt64 = 0
    private let owns: Bool

    init(readFD: Int32, writeFD: Int32, name: String, pty: Bool, owns: Bool) {
        self.readFD = readFD; self.writeFD = writeFD; self.name = name; isPseudoTerminal = pty; self.owns = owns
    }
    deinit { if owns { close(readFD); if writeFD != readFD { close(writeFD) } } }

    /// A new pseudo-terminal: the console keeps the master; `name` is the slave's path for picocom/screen.
    /// The slave starts raw (no echo, no line buffering, no CR/LF translation), like a UART.
    public static func pseudoTerminal() throws -> ConsolePort {
        let m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard m >= 0 else { throw ConsolePortError("posix_openpt", "/dev/ptmx", errno: Errno(rawValue: errno)) }
        guard grantpt(m) == 0, unlockpt(m) == 0, let p = ptsname(m) else {
            let e = errno; close(m); throw ConsolePortError("grantpt/unlockpt", "/dev/ptmx", errno: Errno(rawValue: e))
        }
        let path = String(cString: p)
        let s = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard s >= 0 else { let e = errno; close(m); throw ConsolePortError("open", path, errno: Errno(rawValue: e)) }
        var t = termios()
        tcgetattr(s, &t)
        cfmakeraw(&t)
        tcsetattr(s, TCSANOW, &t)
        close(s)
        setNonBlocking(m)
        return ConsolePort(readFD: m, writeFD: m, name: path, pty: true, owns: true)
    }

    /// The board's UART: raw 8 data bits, the given baud, parity and stop bits, no flow control unless asked.
    public static func uart(path: String, baud: Int, parity: SerialParity = .none, stopBits: Int = 1, rtsCts: Bool = false) throws -> ConsolePort {
        guard let speed = baudConstant(baud) else { throw ConsolePortError("baud \(baud) is not a standard rate", path, errno: .invalidArgument) }
        let fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw ConsolePortError("open", path, errno: Errno(rawValue: errno)) }
        var t = termios()
        guard tcgetattr(fd, &t) == 0 else { let e = errno; close(fd); throw ConsolePortError("tcgetattr (not a terminal?)", path, errno: Errno(rawValue: e)) }
        cfmakeraw(&t)
        cfsetispeed(&t, speed); cfsetospeed(&t, speed)
        t.c_cflag |= tcflag_t(CLOCAL | CREAD)
        t.c_cflag &= ~tcflag_t(PARENB | PARODD | CSTOPB)
        if parity != .none { t.c_cflag |= tcflag_t(PARENB) }
        if parity == .odd { t.c_cflag |= tcflag_t(PARODD) }
        if stopBits == 2 { t.c_cflag |= tcflag_t(CSTOPB) }
        if rtsCts { t.c_cflag |= tcflag_t(CRTSCTS) } else { t.c_cflag &= ~tcflag_t(CRTSCTS) }
        t.c_iflag &= ~tcflag_t(IXON | IXOFF | IXANY)
        guard tcsetattr(fd, TCSANOW, &t) == 0 else { let e = errno; close(fd); throw ConsolePortError("tcsetattr", path, errno: Errno(rawValue: e)) }
        return ConsolePort(readFD: fd, writeFD: fd, name: path, pty: false, owns: true)
    }

    /// Standard input and output (a terminal or a pipe); a terminal is put in raw mode by the caller's
    /// choice only (chargerd leaves a pipe as it is).
    public static func standardIO() -> ConsolePort {
        setNonBlocking(1)
        return ConsolePort(readFD: 0, writeFD: 1, name: "stdin", pty: false, owns: false)
    }

    static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    static func baudConstant(_ b: Int) -> speed_t? {
        switch b {
        case 9600: speed_t(B9600)
        case 19200: speed_t(B19200)
        case 38400: speed_t(B38400)
        case 57600: speed_t(B57600)
        case 115200: speed_t(B115200)
        case 230400: speed_t(B230400)
        case 460800: speed_t(B460800)
        case 921600: speed_t(B921600)
        default: nil
        }
    }

    public enum ReadResult { case bytes(Int), nothing, disconnected, closed }

    /// Waits up to `timeoutMs` for input (or room for pending output) and reads what came into `buffer`.
    /// A pty with no one attached reports `disconnected` (POLLHUP); standard input at its end, `closed`.
    public func poll(timeoutMs: Int32, into buffer: inout [UInt8]) -> ReadResult {
        var fds = [pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)]
        if !pending.isEmpty && writeFD != readFD { fds.append(pollfd(fd: writeFD, events: Int16(POLLOUT), revents: 0)) }
        else if !pending.isEmpty { fds[0].events |= Int16(POLLOUT) }
        let r = Glibc.poll(&fds, nfds_t(fds.count), timeoutMs)
        if r <= 0 { return .nothing }
        if fds.contains(where: { $0.revents & Int16(POLLOUT) != 0 }) { flush() }
        let re = fds[0].revents
        // A pty whose terminal went away: what it left unread is the old terminal's, not the next one's.
        if isPseudoTerminal && re & Int16(POLLHUP) != 0 { return .disconnected }
        if re & Int16(POLLIN) != 0 {
            let n = buffer.withUnsafeMutableBytes { read(readFD, $0.baseAddress, $0.count) }
            if n > 0 { return .bytes(n) }
            if n == 0 { return isPseudoTerminal ? .disconnected : .closed }
            if errno == EAGAIN || errno == EINTR { return .nothing }
            return isPseudoTerminal ? .disconnected : .closed
        }
        if re & Int16(POLLHUP | POLLERR) != 0 { return isPseudoTerminal ? .disconnected : .closed }
        return .nothing
    }

    /// Queues `bytes` and writes what the terminal takes now; never blocks.
    public func send(_ bytes: [UInt8]) {
        // What the terminal has taken since the last call first (the server calls this every tick, with
        // nothing new too): a queue left full by a flood drained only when new output came, and new
        // output found it full and was dropped, so a console flooded once answered nothing again.
        flush()
        guard !bytes.isEmpty else { return }
        if pending.count + bytes.count > Self.outputLimit {
            droppedOutput += UInt64(bytes.count)
            return
        }
        pending += bytes
        flush()
    }

    /// Drops what is queued (a disconnect: the next technician starts clean).
    public func discardOutput() {
        pending.removeAll()
        guard isPseudoTerminal else { return }
        tcflush(readFD, TCIOFLUSH)
        // What was already handed to the slave side (answers the old terminal never read) sits in the
        // slave's input queue: flush it there too, so the next terminal starts with the banner.
        let s = open(name, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)
        if s >= 0 { tcflush(s, TCIOFLUSH); close(s) }
    }

    public var pendingOutput: Int { pending.count }

    func flush() {
        while !pending.isEmpty {
            let n = pending.withUnsafeBytes { write(writeFD, $0.baseAddress, $0.count) }
            if n > 0 { pending.removeFirst(n); continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EIO { pending.removeAll() }   // pty with no one attached
            return
        }
    }
}
