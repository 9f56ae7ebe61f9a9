// The console's own thread: polls the port, feeds the session, writes what it answers; never touches the
// control loop but through the session's view and command queue. A pty with no terminal attached is
// polled every 100 ms; a terminal that attaches gets the banner, one that goes away is logged out.
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public final class ConsoleServer: @unchecked Sendable {
    public let port: ConsolePort
    public let session: ConsoleSession
    private let stopFlag = Atomic<Bool>(false)
    private var thread: Thread? = nil
    private let finished = Atomic<Bool>(false)
    /// Bytes read, over-long/garbage bytes dropped by the line editor, output dropped for a slow terminal.
    public let bytesIn = Atomic<UInt64>(0)

    public init(port: ConsolePort, session: ConsoleSession) { self.port = port; self.session = session }

    public func start() {
        let t = Thread { [self] in run() }
        t.name = "console"
        t.stackSize = 1 << 20
        thread = t
        t.start()
    }

    public func stop() {
        stopFlag.store(true, ordering: .releasing)
        var waited = 0
        while !finished.load(ordering: .acquiring) && waited < 200 { usleep(5_000); waited += 1 }
    }

    func run() {
        defer { finished.store(true, ordering: .releasing) }
        var buffer = [UInt8](repeating: 0, count: 512)
        var attached = !port.isPseudoTerminal
        if attached { port.send(session.banner()) }
        while !stopFlag.load(ordering: .acquiring) {
            switch port.poll(timeoutMs: 100, into: &buffer) {
            case .bytes(let n):
                if !attached { attached = true; port.send(session.banner()) }
                bytesIn.add(UInt64(n), ordering: .relaxed)
                // A flood is handled in slices: the session's answer is queued (bounded) after each.
                port.send(session.input(buffer[0..<n]))
            case .nothing:
                if !attached { attached = true; port.send(session.banner()) }
            case .disconnected:
                if attached { session.disconnected(); port.discardOutput(); attached = false }
                usleep(100_000)
                continue
            case .closed:
                return
            }
            port.send(session.tick())
        }
    }
}
