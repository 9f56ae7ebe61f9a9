// A WebSocket client (RFC 6455) over a blocking TCP socket, optionally in TLS (OpenSSL 3): what an OCPP
// 1.6J charge point needs and no more. Text messages, fragmented or not; pings answered; close
// handshake; the subprotocol checked; the server's certificate and name verified on wss://.
import Grid
import COpenSSL
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct WebSocketError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

/// TLS settings for wss:// (security profiles 2 and 3 of the OCPP security whitepaper).
public struct TLSFiles: Sendable {
    /// CA files trusted for the server's certificate (the site's, the installed central system roots);
    /// none: the system's CAs.
    public var cas: [String]
    public var cert: String?
    public var key: String?
    public init(ca: String?, roots: String? = nil, cert: String?, key: String?) {
        cas = [ca, roots].compactMap { $0 }; self.cert = cert; self.key = key
    }
}

/// A TCP connection, in TLS when asked (the server's certificate and host name verified): the bytes under
/// the WebSocket and under the file transfers (GetDiagnostics' upload, a firmware download).
final class NetStream {
    private(set) var fd: Int32
    var ssl: OpaquePointer? = nil
    var sslCtx: OpaquePointer? = nil
    /// Bytes read and not yet taken.
    var inbox: [UInt8] = []
    var open = false
    let peer: String

    /// Connects (and does TLS when `secure`); throws with what failed.
    init(host: String, port: Int, secure: Bool, tls: TLSFiles, timeout: Double, peer: String) throws(WebSocketError) {
        self.peer = peer
        fd = try Self.tcpConnect(host: host, port: port, timeout: timeout)
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        do {
            if secure { try startTLS(host: host, tls: tls) }
        } catch {
            teardown()
            throw error
        }
        open = true
    }

    deinit { teardown() }

    func teardown() {
        if let ssl { SSL_shutdown(ssl); SSL_free(ssl) }
        if let sslCtx { SSL_CTX_free(sslCtx) }
        ssl = nil; sslCtx = nil
        // Once only: a second close(2) of the same number could close a descriptor another thread
        // has opened since.
        if fd >= 0 { Glibc.close(fd); fd = -1 }
        open = false
    }

    /// Why a socket could not be made, in words a technician can act on.
    public static func socketError(_ e: Int32) -> String {
        "cannot make a socket: \(String(cString: strerror(e)))" + (e == EMFILE || e == ENFILE ? " (no file descriptor left)" : "")
    }

    static func tcpConnect(host: String, port: Int, timeout: Double) throws(WebSocketError) -> Int32 {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>? = nil
        let rc = getaddrinfo(host, String(port), &hints, &res)
        guard rc == 0, let first = res else { throw WebSocketError("cannot resolve \(host): \(String(cString: gai_strerror(rc)))") }
        defer { freeaddrinfo(res) }
        var lastError = "no address"
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            ai = a.pointee.ai_next
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
            guard fd >= 0 else {
                // Say why: a process out of descriptors must not read as a host with no address.
                lastError = socketError(errno)
                continue
            }
            let flags = fcntl(fd, F_GETFL)
            _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
            var r = connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen)
            if r != 0 && errno == EINPROGRESS {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                if poll(&p, 1, Int32(timeout * 1000)) == 1 {
                    var err: Int32 = 0, len = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
                    r = err == 0 ? 0 : -1
                    errno = err
                } else { errno = ETIMEDOUT }
            }
            if r == 0 {
                _ = fcntl(fd, F_SETFL, flags)
                return fd
            }
            lastError = String(cString: strerror(errno))
            Glibc.close(fd)
        }
        throw WebSocketError("cannot connect to \(host):\(port): \(lastError)")
    }

    static func sslErrors() -> String { Crypto.errors() }

    func startTLS(host: String, tls: TLSFiles) throws(WebSocketError) {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw WebSocketError("TLS: \(Self.sslErrors())") }
        sslCtx = ctx
        _ = copenssl_min_tls12(ctx)
        for ca in tls.cas {
            guard SSL_CTX_load_verify_locations(ctx, ca, nil) == 1 else { throw WebSocketError("TLS: cannot load CA file \(ca): \(Self.sslErrors())") }
        }
        if tls.cas.isEmpty { SSL_CTX_set_default_verify_paths(ctx) }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        if let cert = tls.cert, let key = tls.key {
            guard SSL_CTX_use_certificate_chain_file(ctx, cert) == 1 else { throw WebSocketError("TLS: cannot load certificate \(cert): \(Self.sslErrors())") }
            guard SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 else { throw WebSocketError("TLS: cannot load key \(key): \(Self.sslErrors())") }
            guard SSL_CTX_check_private_key(ctx) == 1 else { throw WebSocketError("TLS: key \(key) does not match certificate \(cert)") }
        }
        guard let s = SSL_new(ctx) else { throw WebSocketError("TLS: \(Self.sslErrors())") }
        ssl = s
        SSL_set_fd(s, fd)
        _ = copenssl_set_sni(s, host)
        guard SSL_set1_host(s, host) == 1 else { throw WebSocketError("TLS: cannot set the expected host name \(host)") }
        if SSL_connect(s) != 1 {
            let verify = SSL_get_verify_result(s)
            let why = verify != X509_V_OK ? "certificate verification failed: " + String(cString: X509_verify_cert_error_string(verify)) : Self.sslErrors()
            throw WebSocketError("TLS handshake with \(host) failed: \(why)")
        }
    }

    // MARK: raw bytes

    func writeAll(_ bytes: [UInt8]) throws(WebSocketError) {
        var off = 0
        while off < bytes.count {
            let n: Int = bytes.withUnsafeBytes { b in
                if let ssl { return Int(SSL_write(ssl, b.baseAddress! + off, Int32(bytes.count - off))) }
                return Glibc.send(fd, b.baseAddress! + off, bytes.count - off, Int32(MSG_NOSIGNAL))
            }
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                open = false
                throw WebSocketError("send to \(peer) failed: \(ssl != nil ? Self.sslErrors() : String(cString: strerror(errno)))")
            }
            off += n
        }
    }

    /// Reads what is there (waiting at most `timeoutMs`); false on timeout; throws when the peer is gone.
    func fill(timeoutMs: Int32) throws(WebSocketError) -> Bool {
        if ssl == nil || SSL_pending(ssl) == 0 {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, timeoutMs)
            if r == 0 { return false }
            if r < 0 { if errno == EINTR { return false }; throw WebSocketError("poll: \(String(cString: strerror(errno)))") }
        }
        var buf = [UInt8](repeating: 0, count: 16_384)
        let n: Int = buf.withUnsafeMutableBytes { b in
            if let ssl { return Int(SSL_read(ssl, b.baseAddress, Int32(b.count))) }
            return recv(fd, b.baseAddress, b.count, 0)
        }
        if n <= 0 {
            if n < 0 && (errno == EAGAIN || errno == EINTR) && ssl == nil { return false }
            open = false
            throw WebSocketError("connection to \(peer) closed\(n < 0 ? ": \(ssl != nil ? Self.sslErrors() : String(cString: strerror(errno)))" : "")")
        }
        inbox.append(contentsOf: buf[0..<n])
        return true
    }
}

public final class WebSocketConnection {
    let stream: NetStream
    private var upgraded = false
    public var open: Bool { upgraded && stream.open }
    public let protocolName: String
    public let peer: String
    var inbox: [UInt8] {
        get { stream.inbox }
        _modify { yield &stream.inbox }
    }

    /// Connects, does TLS (wss) and the HTTP upgrade; throws with what failed.
    /// `headers`: more header lines for the upgrade request (an Authorization for HTTP Basic).
    public init(url: WebSocketURL, subprotocol: String, tls: TLSFiles, timeout: Double, headers: [String] = []) throws(WebSocketError) {
        peer = "\(url.secure ? "wss" : "ws")://\(url.host):\(url.port)\(url.path)"
        protocolName = subprotocol
        stream = try NetStream(host: url.host, port: url.port, secure: url.secure, tls: tls, timeout: timeout, peer: peer)
        do {
            try handshake(url: url, subprotocol: subprotocol, headers: headers)
        } catch {
            stream.teardown()
            throw error
        }
        upgraded = true
    }

    /// Why a socket could not be made, in words a technician can act on.
    public static func socketError(_ e: Int32) -> String { NetStream.socketError(e) }

    func writeAll(_ bytes: [UInt8]) throws(WebSocketError) { try stream.writeAll(bytes) }
    func fill(timeoutMs: Int32) throws(WebSocketError) -> Bool { try stream.fill(timeoutMs: timeoutMs) }

    func handshake(url: WebSocketURL, subprotocol: String, headers: [String]) throws(WebSocketError) {
        var nonce = [UInt8](repeating: 0, count: 16)
        guard RAND_bytes(&nonce, 16) == 1 else { throw WebSocketError("no random bytes for the handshake key") }
        let key = Data(nonce).base64EncodedString()
        let hostHeader = (url.port == (url.secure ? 443 : 80)) ? url.host : "\(url.host):\(url.port)"
        let request = "GET \(url.path) HTTP/1.1\r\nHost: \(hostHeader)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
            "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: \(subprotocol)\r\n" +
            headers.map { $0 + "\r\n" }.joined() + "\r\n"
        try writeAll(Array(request.utf8))
        let deadline = Date().addingTimeInterval(10)
        var headerEnd: Int? = nil
        while headerEnd == nil {
            guard Date() < deadline else { throw WebSocketError("no HTTP upgrade answer from \(peer)") }
            _ = try fill(timeoutMs: 200)
            if inbox.count > 16_384 { throw WebSocketError("HTTP upgrade answer from \(peer) too long") }
            if inbox.count >= 4 {
                for i in 0...(inbox.count - 4) where inbox[i] == 13 && inbox[i + 1] == 10 && inbox[i + 2] == 13 && inbox[i + 3] == 10 {
                    headerEnd = i; break
                }
            }
        }
        let text = String(decoding: inbox[0..<headerEnd!], as: UTF8.self)
        inbox.removeFirst(headerEnd! + 4)
        let lines = text.components(separatedBy: "\r\n")
        guard let status = lines.first, status.hasPrefix("HTTP/1.1 101") else {
            throw WebSocketError("\(peer) refused the WebSocket upgrade: '\(lines.first ?? "")'")
        }
        var headers: [String: String] = [:]
        for l in lines.dropFirst() {
            guard let c = l.firstIndex(of: ":") else { continue }
            headers[l[..<c].lowercased().trimmingCharacters(in: .whitespaces)] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
        }
        var digest = [UInt8](repeating: 0, count: 20)
        let material = Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8)
        SHA1(material, material.count, &digest)
        let expected = Data(digest).base64EncodedString()
        guard headers["sec-websocket-accept"] == expected else { throw WebSocketError("\(peer): Sec-WebSocket-Accept is wrong (not a WebSocket server?)") }
        guard headers["sec-websocket-protocol"] == subprotocol else {
            throw WebSocketError("\(peer) did not agree to the subprotocol \(subprotocol) (answered '\(headers["sec-websocket-protocol"] ?? "none")')")
        }
    }

    // MARK: frames (Grid/WebSocketFrame.swift reads and writes them)

    typealias Opcode = WebSocketFrame.Opcode
    /// RFC 6455 §7.4.1 close codes used here.
    public enum CloseCode {
        public static let normal: UInt16 = 1000
        /// §7.4.1: the endpoint received a frame it will not take (too big, reserved bits).
        public static let protocolError: UInt16 = 1002
        public static let tooBig: UInt16 = 1009
        /// Reported when a close frame carries no code (never sent).
        static let noStatus = 1005
    }

    /// The largest message taken (the site's `ocpp.max_message_bytes`, 1 MiB by default): a frame
    /// announcing more is refused on its header, before its bytes are read.
    public var maxMessageBytes = WebSocketFrame.defaultMaxPayload {
        didSet { assembly = WebSocketMessageAssembly(maxBytes: maxMessageBytes) }
    }
    var assembly = WebSocketMessageAssembly()

    func sendFrame(opcode: Opcode, payload: [UInt8]) throws(WebSocketError) {
        var mask = [UInt8](repeating: 0, count: 4)
        _ = RAND_bytes(&mask, 4)
        try writeAll(WebSocketFrame(opcode: opcode, payload: payload).encoded(mask: (mask[0], mask[1], mask[2], mask[3])))
    }

    public func send(text: String) throws(WebSocketError) {
        guard open else { throw WebSocketError("not connected") }
        try sendFrame(opcode: .text, payload: Array(text.utf8))
    }

    /// Pongs received on this connection (the answer to `ping`, RFC 6455 §5.5.3).
    public private(set) var pongs = 0

    /// A ping (RFC 6455 §5.5.2; OCPP 1.6's WebSocketPingInterval): the peer answers with a pong.
    public func ping() throws(WebSocketError) {
        guard open else { throw WebSocketError("not connected") }
        try sendFrame(opcode: .ping, payload: Array("chargerd".utf8))
    }

    /// Ends the connection over a frame or message it will not take: a close with `code`, then throws.
    func refuse(_ why: String, code: UInt16) throws(WebSocketError) -> Never {
        try? sendFrame(opcode: .close, payload: [UInt8(code >> 8), UInt8(code & 0xFF)])
        inbox.removeAll()
        stream.teardown()
        throw WebSocketError("\(peer) sent \(why): connection closed")
    }

    /// The next text message, waiting at most `timeoutMs`; nil on timeout. Pings are answered here;
    /// a close frame is answered and ends the connection (throws); so does a frame refused on its
    /// header (too big, reserved bits or opcode, a bad control frame) or a message over the limit.
    public func receive(timeoutMs: Int32) throws(WebSocketError) -> String? {
        var waited = false
        while true {
            switch WebSocketFrame.read(inbox[...], maxPayload: maxMessageBytes) {
            case .refused(let why, let tooBig):
                try refuse(why, code: tooBig ? CloseCode.tooBig : CloseCode.protocolError)
            case .frame(let f, let used):
                inbox.removeFirst(used)
                switch f.opcode {
                case .ping: try sendFrame(opcode: .pong, payload: f.payload)
                case .pong: pongs += 1
                case .close:
                    try? sendFrame(opcode: .close, payload: Array(f.payload.prefix(2)))
                    stream.open = false
                    let code = f.payload.count >= 2 ? Int(f.payload[0]) << 8 | Int(f.payload[1]) : CloseCode.noStatus
                    throw WebSocketError("\(peer) closed the connection (code \(code))")
                case .text, .continuation, .binary:
                    switch assembly.take(f) {
                    case .more: break
                    case .message(let m): return String(decoding: m, as: UTF8.self)
                    case .refused(let why, let tooBig): try refuse(why, code: tooBig ? CloseCode.tooBig : CloseCode.protocolError)
                    }
                }
                continue
            case .incomplete:
                break
            }
            // The first wait is the caller's; the rest of a frame already begun gets a short one.
            if !(try fill(timeoutMs: waited ? 20 : timeoutMs)) { return nil }
            waited = true
        }
    }

    /// Sends a close frame (normal closure) and drops the connection.
    public func close(code: UInt16 = CloseCode.normal) {
        if open { try? sendFrame(opcode: .close, payload: [UInt8(code >> 8), UInt8(code & 0xFF)]) }
        stream.teardown()
    }
}
