// The station EMS's Modbus TCP server in chargerd (libmodbus's server side), on its own thread, never
// the real-time one. Requests are checked whole against the register map (EMSRegisterMap) before
// anything is applied: a refused write changes nothing and is answered with the Modbus exception that
// says why (01 function, 02 address, 03 value, 0B unit), and logged.
import SiteFile
import ChargerCore
import CModbus
import Grid
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
    private let stopFlag = Atomic<Bool>(false)
    private var thread: pthread_t? = nil
    /// Requests answered, writes applied, requests refused (any thread may read).
    public let answered = Atomic<UInt64>(0)
    public let applied = Atomic<UInt64>(0)
    public let refused = Atomic<UInt64>(0)
    /// The port actually bound (the config's, or the one the kernel chose for port 0 in tests).
    public let boundPort: Int

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
    }

    deinit {
        stop()
        modbus_mapping_free(mapping)
        modbus_free(ctx)
    }

    public func start() {
        let box = Unmanaged.passRetained(self)
        var t = pthread_t()
        pthread_create(&t, nil, { arg in
            let me = Unmanaged<EMSServer>.fromOpaque(arg!).takeRetainedValue()
            me.serve()
            return nil
        }, box.toOpaque())
        thread = t
    }

    public func stop() {
        guard let t = thread else { return }
        stopFlag.store(true, ordering: .releasing)
        pthread_join(t, nil)
        thread = nil
    }

    struct Client { var fd: Int32; var peer: String }

    func serve() {
        var clients: [Client] = []
        let query = UnsafeMutablePointer<UInt8>.allocate(capacity: Int(MODBUS_TCP_MAX_ADU_LENGTH))
        defer {
            query.deallocate()
            for c in clients { close(c.fd) }
            close(listenFD)
        }
        while !stopFlag.load(ordering: .acquiring) {
            var fds = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0)] + clients.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            let n = poll(&fds, nfds_t(fds.count), 100)
            guard n > 0 else { continue }
            // The clients polled (one accepted below is polled from the next round on).
            let polled = clients
            if fds[0].revents & Int16(POLLIN) != 0 {
                var addr = sockaddr_in(), len = socklen_t(MemoryLayout<sockaddr_in>.size)
                let fd = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { accept(listenFD, $0, &len) } }
                if fd >= 0 {
                    var buf = [CChar](repeating: 0, count: 32)
                    var a = addr.sin_addr
                    inet_ntop(AF_INET, &a, &buf, 32)
                    let peer = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    clients.append(Client(fd: fd, peer: peer))
                    hub.log("ems-client", "EMS client \(peer) connected")
                }
            }
            var gone: [Int32] = []
            for (i, c) in polled.enumerated() where fds[i + 1].revents != 0 {
                modbus_set_socket(ctx, c.fd)
                let rc = modbus_receive(ctx, query)
                if rc < 0 {
                    gone.append(c.fd)
                    continue
                }
                if rc > 0 { handle(query, Int(rc), peer: c.peer) }
            }
            for fd in gone {
                if let c = clients.first(where: { $0.fd == fd }) { hub.log("ems-client", "EMS client \(c.peer) disconnected") }
                close(fd)
                clients.removeAll { $0.fd == fd }
            }
        }
    }

    func handle(_ q: UnsafeMutablePointer<UInt8>, _ length: Int, peer: String) {
        let h = Int(modbus_get_header_length(ctx))
        let unit = Int(q[h - 1])
        let fc = q[h]
        func be16(_ i: Int) -> Int { i + 1 < length ? Int(q[i]) << 8 | Int(q[i + 1]) : -1 }
        func refuse(_ r: EMSRefusal) {
            modbus_reply_exception(ctx, q, UInt32(r.code.rawValue))
            refused.add(1, ordering: .relaxed)
            hub.log("ems-refused", "EMS write from \(peer) refused: function \(fc): \(r)")
        }
        guard unit == config.unit || unit == 0xFF else {
            return refuse(EMSRefusal(code: .gatewayTargetFailed, why: "unit \(unit) is not this server's unit \(config.unit)"))
        }
        let isWrite = fc == 0x06 || fc == 0x10
        if isWrite && !config.allow.isEmpty && !config.allow.contains(peer) {
            return refuse(EMSRefusal(code: .illegalFunction, why: "client \(peer) is not on the allow-list (writes refused)"))
        }
        let address = be16(h + 1)
        switch fc {
        case 0x03, 0x04:
            let count = be16(h + 3)
            guard (1...125).contains(count) else { return refuse(EMSRefusal(code: .illegalDataValue, why: "read of \(count) registers (1...125)")) }
            let (ems, image): (EMSState?, [UInt16]) = hub.emsImages(input: fc == 0x04)
            guard address >= 0, address + count <= image.count else {
                return refuse(EMSRefusal(code: .illegalDataAddress, why: "\(fc == 3 ? "holding" : "input") registers \(address)...\(address + count - 1) outside 0...\(image.count - 1)"))
            }
            if fc == 0x03, ems == nil { return refuse(EMSRefusal(code: .illegalFunction, why: "no EMS configured")) }
            let tab = fc == 0x03 ? mapping.pointee.tab_registers! : mapping.pointee.tab_input_registers!
            for (i, v) in image.enumerated() { tab[i] = v }
            modbus_reply(ctx, q, Int32(length), mapping)
            answered.add(1, ordering: .relaxed)
        case 0x06, 0x10:
            var values: [UInt16] = []
            if fc == 0x06 {
                values = [UInt16(truncatingIfNeeded: be16(h + 3))]
            } else {
                let count = be16(h + 3), bytes = length > h + 5 ? Int(q[h + 5]) : -1
                guard (1...123).contains(count), bytes == 2 * count, h + 6 + bytes <= length else {
                    return refuse(EMSRefusal(code: .illegalDataValue, why: "write of \(count) registers with \(bytes) bytes (1...123 registers, 2 bytes each)"))
                }
                for i in 0..<count { values.append(UInt16(truncatingIfNeeded: be16(h + 6 + 2 * i))) }
            }
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
        default:
            refuse(EMSRefusal(code: .illegalFunction, why: "function \(fc) is not served (3, 4, 6 and 16 are)"))
        }
    }
}

extension GridHub {
    /// The holding or input image the EMS reads now.
    public func emsImages(input: Bool) -> (EMSState?, [UInt16]) {
        let s = state, o = observation, f = lastFeed
        if input {
            let kind = s.tou.kind(atSecondOfDay: s.clock.localSecondOfDay(o.at))
            return (s.ems, EMSRegisterMap.inputImage(ems: s.ems, touKind: kind, stationLimit: f.station, stationSource: f.stationSource, observation: o))
        }
        return (s.ems, s.ems.map { EMSRegisterMap.holdingImage($0) } ?? [])
    }

    /// Checks and applies one EMS write, atomically (all or nothing).
    public func emsWrite(address: Int, values: [UInt16]) -> Result<[String], EMSRefusal> {
        let now = observation.at
        return with { s in
            guard let ems = s.ems else { return .failure(EMSRefusal(code: .illegalFunction, why: "no EMS configured")) }
            do {
                let (next, changes) = try EMSRegisterMap.write(ems, address: address, values: values, gridConnection: s.gridConnection, ratings: s.ratings, now: now)
                s.ems = next
                return .success(changes)
            } catch let e as EMSRefusal { return .failure(e) } catch { return .failure(EMSRefusal(code: .illegalDataValue, why: "\(error)")) }
        }
    }
}
