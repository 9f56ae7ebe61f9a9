// The station EMS's Modbus TCP server in chargerd (libmodbus's server side), on its own thread, never
// the real-time one. Requests are checked whole against the register map (EMSRegisterMap) before
// anything is applied: a refused write changes nothing and is answered with the Modbus exception that
// says why (01 function, 02 address, 03 value, 0B unit), and logged.
import SiteFile
import ChargerCore
import CModbus
import Grid
import RealTime
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public struct EMSServerError: Error, CustomStringConvertible {
    public var description: String
}

public final class EMSServer: @unchecked Sendable {
    public let config: EMSServerConfig
    let hub: GridHub
    let ctx: OpaquePointer
    let listenFD: Int32
    let mapping: UnsafeMutablePointer<modbus_mapping_t>
    let gunCount: Int
    private let thread = SideThread()
    /// Requests answered, writes applied, requests refused (any thread may read).
    public let answered = Atomic<UInt64>(0)
    public let applied = Atomic<UInt64>(0)
    public let refused = Atomic<UInt64>(0)
    /// The port actually bound (the config's, or the one the kernel chose for port 0 in tests).
    public let boundPort: Int
    /// Connections served at once: the site's `max_clients`, lowered where the process's descriptor
    /// limit would not leave `reservedDescriptors` for the journal, OCPP, the console and the buses.
    public let maxClients: Int
    public static let reservedDescriptors = 32
    /// Said once at start when `max_clients` had to be lowered.
    public private(set) var warning: String? = nil
    /// A descriptor held in reserve: when the process has none left, it is given up to accept and close
    /// the waiting connection (which otherwise stays queued and wakes the poll at once, forever).
    private var spareFD: Int32 = -1

    /// Binds and listens at once, so a port in use is an error at start, not later.
    public init(config: EMSServerConfig, hub: GridHub) throws(EMSServerError) {
        self.config = config
        self.hub = hub
        gunCount = hub.state.gunCount
        guard let c = modbus_new_tcp(config.address, Int32(config.port)) else {
            throw EMSServerError(description: "EMS server: cannot make a Modbus TCP context for \(config.address):\(config.port)")
        }
        ctx = c
        let fd = modbus_tcp_listen(c, 8)
        guard fd >= 0 else {
            let why = String(cString: modbus_strerror(errno))
            modbus_free(c)
            throw EMSServerError(description: "EMS server: cannot listen on \(config.address):\(config.port): \(why)")
        }
        listenFD = fd
        var addr = sockaddr_in(), len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        boundPort = Int(UInt16(bigEndian: addr.sin_port))
        let holding = EMSRegisterMap.holdingCount(gunCount: gunCount), input = EMSRegisterMap.inputCount(gunCount: gunCount)
        guard let m = modbus_mapping_new_start_address(0, 0, 0, 0, 0, UInt32(holding), 0, UInt32(input)) else {
            close(fd); modbus_free(c)
            throw EMSServerError(description: "EMS server: cannot allocate the register mapping")
        }
        mapping = m
        var lim = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &lim)
        let room = Int(min(lim.rlim_cur, 1 << 20)) - Self.reservedDescriptors
        if config.maxClients > room {
            maxClients = max(1, room)
            warning = "EMS server: max_clients \(config.maxClients) lowered to \(maxClients): the process may hold \(lim.rlim_cur) descriptors and keeps \(Self.reservedDescriptors) for the journal, OCPP, the console and the buses"
        } else { maxClients = config.maxClients }
        spareFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
    }

    deinit {
        stop()
        modbus_mapping_free(mapping)
        modbus_free(ctx)
        if spareFD >= 0 { close(spareFD) }
    }

    public func start() { _ = thread.start(stackBytes: 1 << 20) { self.serve() } }

    public func stop() { thread.stop() }

    /// One connection: its requests are framed here from the MBAP header (never by libmodbus's blocking
    /// receive, which one client trickling bytes held for as long as it liked: issue 21 §1).
    struct Client {
        var fd: Int32
        var peer: String
        /// On the write allow-list: a host that is not cannot crowd it out.
        var privileged: Bool
        var buffer: [UInt8] = []
        /// When the request being received began (its first byte), 0: none.
        var requestStart: Int64 = 0
        var lastActivity: Int64
    }

    /// Connections closed, by reason (any thread may read): a request not whole within the deadline,
    /// idle past the idle timeout, evicted for a newcomer, refused at accept (every slot held by
    /// clients it may not evict), a frame that is not Modbus TCP, an accept that failed.
    public let slowClosed = Atomic<UInt64>(0)
    public let idleClosed = Atomic<UInt64>(0)
    public let evicted = Atomic<UInt64>(0)
    public let refusedConnections = Atomic<UInt64>(0)
    public let badFrames = Atomic<UInt64>(0)
    public let acceptErrors = Atomic<UInt64>(0)
    /// Clients connected now.
    public let connected = Atomic<Int>(0)

    /// The connection counters, for the console's grid view and the journal.
    public var connectionReport: String {
        "EMS server: \(connected.load(ordering: .relaxed)) of \(maxClients) clients; closed: \(slowClosed.load(ordering: .relaxed)) slow, "
            + "\(idleClosed.load(ordering: .relaxed)) idle, \(evicted.load(ordering: .relaxed)) evicted, \(refusedConnections.load(ordering: .relaxed)) refused at accept, "
            + "\(badFrames.load(ordering: .relaxed)) not Modbus TCP; \(acceptErrors.load(ordering: .relaxed)) accept errors"
    }

    enum CloseReason { case gone, slow, idle, evicted, badFrame }
    private func count(_ r: CloseReason) {
        switch r {
        case .gone: break
        case .slow: slowClosed.add(1, ordering: .relaxed)
        case .idle: idleClosed.add(1, ordering: .relaxed)
        case .evicted: evicted.add(1, ordering: .relaxed)
        case .badFrame: badFrames.add(1, ordering: .relaxed)
        }
    }

    static func nowNanos() -> Int64 { monotonicNanos() }

    // Long: the server thread's one poll loop (accept, read, answer, evict), whose per-client state every step
    // shares
    func serve() {
        var clients: [Client] = []
        let query = UnsafeMutablePointer<UInt8>.allocate(capacity: Int(MODBUS_TCP_MAX_ADU_LENGTH))
        var chunk = [UInt8](repeating: 0, count: Int(MODBUS_TCP_MAX_ADU_LENGTH))
        _ = fcntl(listenFD, F_SETFL, fcntl(listenFD, F_GETFL) | O_NONBLOCK)
        // A deeper accept queue than libmodbus's 8: a burst of connections waits there for the next round
        // instead of having its SYNs dropped (and retried by the clients a second later).
        _ = listen(listenFD, 128)
        let deadline = Int64(config.requestDeadline.micros) * 1000, idle = Int64(config.idleTimeout.micros) * 1000
        defer {
            query.deallocate()
            for c in clients { close(c.fd) }
            connected.store(0, ordering: .relaxed)
            close(listenFD)
        }
        func drop(_ i: Int, _ reason: CloseReason, _ why: String) {
            hub.log("ems-client", "EMS client \(clients[i].peer) \(why)")
            count(reason)
            close(clients[i].fd)
            clients.remove(at: i)
            connected.store(clients.count, ordering: .relaxed)
        }
        while !thread.stopAsked {
            var fds = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)] + clients.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            let n = poll(&fds, nfds_t(fds.count), 100)
            let now = Self.nowNanos()
            if n > 0 {
                // Requests first, from the clients polled (newcomers are polled from the next round on).
                var closing: [(Int32, CloseReason, String)] = []
                for i in (0..<clients.count).reversed() where fds[i + 1].revents != 0 {
                    let got = read(clients[i].fd, &chunk, chunk.count - clients[i].buffer.count)
                    if got == 0 { closing.append((clients[i].fd, .gone, "disconnected")); continue }
                    if got < 0 {
                        if errno == EAGAIN || errno == EINTR { continue }
                        closing.append((clients[i].fd, .gone, "disconnected (\(String(cString: strerror(errno))))")); continue
                    }
                    if clients[i].buffer.isEmpty { clients[i].requestStart = now }
                    clients[i].buffer += chunk[0..<got]
                    clients[i].lastActivity = now
                    // Every whole request in the buffer: MBAP header (transaction, protocol 0, length, unit).
                    while clients[i].buffer.count >= 7 {
                        let b = clients[i].buffer
                        let protocolID = Int(b[2]) << 8 | Int(b[3]), length = Int(b[4]) << 8 | Int(b[5])
                        guard protocolID == 0, (2...254).contains(length) else {
                            closing.append((clients[i].fd, .badFrame, "sent a frame that is not Modbus TCP (protocol \(protocolID), length \(length)): closed"))
                            break
                        }
                        guard b.count >= 6 + length else { break }
                        for k in 0..<(6 + length) { query[k] = b[k] }
                        modbus_set_socket(ctx, clients[i].fd)
                        handle(query, 6 + length, peer: clients[i].peer)
                        clients[i].buffer.removeFirst(6 + length)
                        clients[i].requestStart = clients[i].buffer.isEmpty ? 0 : now
                    }
                }
                for (fd, reason, why) in closing { if let i = clients.firstIndex(where: { $0.fd == fd }) { drop(i, reason, why) } }
                // Newcomers. Beyond `maxClients` one takes the slot of the client idle longest, where
                // it may: an allow-listed host's slot only for another allow-listed host.
                if fds[0].revents & Int16(POLLIN) != 0 {
                    for c in acceptAll(now: now) {
                        if clients.count >= maxClients {
                            let victim = clients.indices.filter { c.privileged || !clients[$0].privileged }.min {
                                clients[$0].lastActivity < clients[$1].lastActivity
                            }
                            guard let v = victim else {
                                refusedConnections.add(1, ordering: .relaxed)
                                hub.log("ems-client", "EMS client \(c.peer) refused: all \(maxClients) slots held by allow-listed clients")
                                close(c.fd)
                                continue
                            }
                            drop(v, .evicted, "closed for a newcomer (idle longest of \(maxClients))")
                        }
                        clients.append(c)
                        connected.store(clients.count, ordering: .relaxed)
                        hub.log("ems-client", "EMS client \(c.peer) connected")
                    }
                }
            }
            // A request trickled past its deadline, or a client silent past the idle timeout.
            for i in (0..<clients.count).reversed() {
                if clients[i].requestStart != 0 && now - clients[i].requestStart > deadline {
                    drop(i, .slow, "did not send a whole request within \(config.requestDeadline.seconds) s: closed")
                } else if now - clients[i].lastActivity > idle {
                    drop(i, .idle, "idle for \(Int(config.idleTimeout.seconds)) s: closed")
                }
            }
        }
    }

    /// Takes the pending connections (up to 64 a round), non-blocking, with their peers.
    private func acceptAll(now: Int64) -> [Client] {
        var out: [Client] = []
        for _ in 0..<64 {
            var addr = sockaddr_in(), len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let fd = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(listenFD, $0, &len) } }
            if fd < 0 {
                let e = errno
                if e != EAGAIN && e != EINTR {
                    acceptErrors.add(1, ordering: .relaxed)
                    var refused = ""
                    if (e == EMFILE || e == ENFILE) && spareFD >= 0 {
                        // Out of descriptors: give up the spare one to take the connection off the queue and
                        // close it, then hold a spare again.
                        close(spareFD)
                        let taken = accept(listenFD, nil, nil)
                        if taken >= 0 { close(taken); refusedConnections.add(1, ordering: .relaxed); refused = "; the connection was refused" }
                        spareFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
                    }
                    hub.log("ems-client", "EMS server: cannot accept a connection: \(String(cString: strerror(e)))\(e == EMFILE || e == ENFILE ? " (no file descriptor left)" : "")\(refused)")
                    if e == EMFILE || e == ENFILE { usleep(10_000) }   // never a busy loop on a full process
                }
                break
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            var buf = [CChar](repeating: 0, count: 32)
            var a = addr.sin_addr
            inet_ntop(AF_INET, &a, &buf, 32)
            let peer = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            out.append(Client(fd: fd, peer: peer, privileged: !config.allow.isEmpty && config.allow.contains(peer), lastActivity: now))
        }
        return out
    }

    func handle(_ q: UnsafeMutablePointer<UInt8>, _ length: Int, peer: String) {
        let h = Int(modbus_get_header_length(ctx))
        let unit = Int(q[h - 1])
        let fc = q[h]
        func refuse(_ r: EMSRefusal) {
            modbus_reply_exception(ctx, q, UInt32(r.code.rawValue))
            refused.add(1, ordering: .relaxed)
            hub.log("ems-refused", "EMS request from \(peer) refused: function \(fc): \(r)")
        }
        guard unit == config.unit || unit == 0xFF else {
            return refuse(EMSRefusal(code: .gatewayTargetFailed, why: "unit \(unit) is not this server's unit \(config.unit)"))
        }
        let isWrite = fc == 0x06 || fc == 0x10
        if isWrite && !config.allow.isEmpty && !config.allow.contains(peer) {
            return refuse(EMSRefusal(code: .illegalFunction, why: "client \(peer) is not on the allow-list (writes refused)"))
        }
        if !isWrite && !config.readAllow.isEmpty && !config.readAllow.contains(peer) {
            return refuse(EMSRefusal(code: .illegalFunction, why: "client \(peer) is not on the read allow-list (reads refused)"))
        }
        let request: EMSRequest
        switch EMSRequest.parse(pdu: Array(UnsafeBufferPointer(start: q + h, count: max(0, length - h)))[...]) {
        case .failure(let r): return refuse(r)
        case .success(let r): request = r
        }
        switch request {
        case .read(let input, let address, let count):
            let (ems, image): (EMSState?, [UInt16]) = hub.emsImages(input: input)
            guard address + count <= image.count else {
                return refuse(EMSRefusal(code: .illegalDataAddress, why: "\(input ? "input" : "holding") registers \(address)...\(address + count - 1) outside 0...\(image.count - 1)"))
            }
            if !input, ems == nil { return refuse(EMSRefusal(code: .illegalFunction, why: "no EMS configured")) }
            let tab = input ? mapping.pointee.tab_input_registers! : mapping.pointee.tab_registers!
            for (i, v) in image.enumerated() { tab[i] = v }
            modbus_reply(ctx, q, Int32(length), mapping)
            answered.add(1, ordering: .relaxed)
        case .write(let address, let values):
            let result = hub.emsWrite(address: address, values: values)
            switch result {
            case .failure(let r): return refuse(r)
            case .success(let changes):
                // The reply echoes the request; libmodbus also stores the values in the mapping, which
                // holds the applied image (reads refill it from the hub anyway).
                let tab = mapping.pointee.tab_registers!
                for (i, v) in hub.emsImages(input: false).1.enumerated() { tab[i] = v }
                modbus_reply(ctx, q, Int32(length), mapping)
                answered.add(1, ordering: .relaxed)
                applied.add(1, ordering: .relaxed)
                for c in changes { hub.log("ems-write", "EMS \(peer): \(c)") }
            }
        }
    }
}
