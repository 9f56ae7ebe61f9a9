// File transfers for the central system's maintenance calls (GetDiagnostics' upload; a firmware
// download): HTTP/1.1 PUT (a multipart POST where PUT is refused) and GET, in TLS for https:// (the server's certificate and host name verified
// against the site's CA), and FTP (RFC 959, passive mode, binary) with the user and password the URL
// carries (anonymous otherwise). Blocking, on the caller's thread: the OCPP client runs them on a side
// thread of their own, never on its own loop.
import COpenSSL
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct TransferError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ d: String) { description = d }
}

/// A transfer's URL: http://, https:// or ftp://, with an optional user:password@.
public struct TransferLocation: Sendable, Equatable {
    public enum Scheme: String, Sendable { case http, https, ftp }
    public var scheme: Scheme
    public var host: String
    public var port: Int
    public var path: String
    public var user: String?
    public var password: String?

    /// Nil for anything but a URL this charge point can use. A location with a space or a control
    /// character (raw; or a control character percent-encoded in its user or password, which are decoded) is refused: sent on,
    /// CR LF would add HTTP header lines or FTP commands of the central system's choosing.
    public init?(_ text: String) {
        guard text.utf8.allSatisfy({ $0 > 0x20 && $0 != 0x7F }) else { return nil }
        guard let sep = text.range(of: "://"), let s = Scheme(rawValue: text[..<sep.lowerBound].lowercased()) else { return nil }
        scheme = s
        var rest = String(text[sep.upperBound...])
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        var authority = String(rest[..<slash])
        rest = String(rest[slash...])
        path = rest.isEmpty ? "/" : rest
        if let at = authority.lastIndex(of: "@") {
            let cred = authority[..<at]
            authority = String(authority[authority.index(after: at)...])
            if let c = cred.firstIndex(of: ":") {
                user = String(cred[..<c]).removingPercentEncoding
                password = String(cred[cred.index(after: c)...]).removingPercentEncoding
            } else { user = String(cred).removingPercentEncoding }
        }
        let defaultPort = s == .https ? 443 : s == .http ? 80 : 21
        if let c = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            guard let p = Int(authority[authority.index(after: c)...]), (1...65_535).contains(p) else { return nil }
            port = p
            host = String(authority[..<c])
        } else {
            port = defaultPort
            host = authority
        }
        guard !host.isEmpty else { return nil }
        for decoded in [user, password] {
            guard decoded?.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F }) ?? true else { return nil }
        }
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    }

    /// The path with `name` appended as the last segment (a location is a directory, OCPP 1.6 §6.33).
    func path(appending name: String) -> String { path.hasSuffix("/") ? path + name : path + "/" + name }

    /// The URL without its password (for logs and the journal).
    public var display: String { "\(scheme.rawValue)://\(user.map { "\($0)@" } ?? "")\(host):\(port)\(path)" }
}

/// Runs `attempt` (given its number) until it succeeds, at most `times` times, `interval` seconds apart;
/// the wait is cut short, and no attempt made, once `stopped` says so. True when one succeeded. For the
/// maintenance transfers' retries and retryInterval (OCPP 1.6 §5.8, §5.19).
func retrying(times: Int, interval: Double, stopped: () -> Bool, _ attempt: (Int) -> Bool) -> Bool {
    for n in 1...max(1, times) {
        if stopped() { return false }
        if attempt(n) { return true }
        var slept = 0.0
        while n < times && slept < interval && !stopped() { usleep(100_000); slept += 0.1 }
    }
    return false
}

public enum FileTransfer {
    /// Uploads `data` as `name` into the location (a directory): HTTP(S) PUT of location/name, or FTP STOR.
    /// A web server that does not take PUT there (405 Method Not Allowed, 501 Not Implemented) gets the
    /// file as an HTML form's upload instead: POST of multipart/form-data to the location, the file in the
    /// part "file" with its name (RFC 7578), as upload endpoints of central systems take it.
    public static func upload(_ data: [UInt8], name: String, to loc: TransferLocation, ca: String?, timeout: Double) throws(TransferError) {
        switch loc.scheme {
        case .http, .https:
            let (status, _, _) = try http("PUT", loc, path: loc.path(appending: name), body: data, ca: ca, timeout: timeout, maxBytes: 65_536)
            if status.code == 405 || status.code == 501 {
                let (body, type) = multipart(data, name: name)
                let (posted, _, _) = try http("POST", loc, path: loc.path, body: body, contentType: type, ca: ca, timeout: timeout, maxBytes: 65_536)
                guard (200...299).contains(posted.code) else {
                    throw TransferError("\(loc.display): PUT \(name) answered '\(status.line)', POST answered '\(posted.line)'")
                }
                return
            }
            guard (200...299).contains(status.code) else { throw TransferError("\(loc.display): PUT \(name) answered '\(status.line)'") }
        case .ftp:
            try ftp(loc, timeout: timeout) { (c: FTPControl) throws(TransferError) in
                let data_ = try c.passive()
                try c.command("STOR \(loc.path(appending: name))", expect: [125, 150])
                do { try data_.writeAll(data) } catch { throw TransferError("\(loc.display): sending \(name): \(error)") }
                data_.teardown()
                try c.reply(expect: [226, 250])
            }
        }
    }

    /// Downloads the file at the location (HTTP(S) GET, FTP RETR), at most `maxBytes`.
    public static func download(_ loc: TransferLocation, ca: String?, timeout: Double, maxBytes: Int) throws(TransferError) -> [UInt8] {
        switch loc.scheme {
        case .http, .https:
            let (status, _, body) = try http("GET", loc, path: loc.path, body: nil, ca: ca, timeout: timeout, maxBytes: maxBytes)
            guard (200...299).contains(status.code) else { throw TransferError("\(loc.display): GET answered '\(status.line)'") }
            return body
        case .ftp:
            var out: [UInt8] = []
            try ftp(loc, timeout: timeout) { (c: FTPControl) throws(TransferError) in
                let d = try c.passive()
                try c.command("RETR \(loc.path)", expect: [125, 150])
                out = try readToEnd(d, maxBytes: maxBytes, what: "\(loc.display)")
                try c.reply(expect: [226, 250])
            }
            return out
        }
    }

    // MARK: HTTP/1.1

    struct Status { var code: Int; var line: String }

    /// The head of an HTTP/1.1 answer (RFC 9112 §4-6), read from its bytes without the blank line: the
    /// status, the headers (names lower-cased) and how the body is framed. A Content-Length that is not
    /// one decimal number from 0 to `maxBody` (negative, huge, two that differ) is refused here, before
    /// anything is read or allocated for the body.
    public struct HTTPHead: Sendable, Equatable {
        public enum Body: Sendable, Equatable { case chunked, length(Int), untilClosed }
        public var code: Int
        public var statusLine: String
        public var headers: [String: String]
        public var body: Body

        public static func read(_ bytes: ArraySlice<UInt8>, maxBody: Int, what: String) throws(TransferError) -> HTTPHead {
            let lines = String(decoding: bytes, as: UTF8.self).components(separatedBy: "\r\n")
            let first = lines.first ?? ""
            let parts = first.split(separator: " ", maxSplits: 2)
            guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), parts[1].utf8.count == 3, parts[1].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                  let code = Int(parts[1]), code >= 100 else {
                throw TransferError("\(what): not an HTTP answer: '\(first.prefix(80))'")
            }
            var headers: [String: String] = [:]
            var lengths: Set<String> = []
            for l in lines.dropFirst() {
                guard let c = l.firstIndex(of: ":") else { continue }
                let name = l[..<c].lowercased(), value = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
                if name == "content-length" { lengths.insert(value) }
                headers[name] = value
            }
            var body = Body.untilClosed
            if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
                body = .chunked
            } else if let text = lengths.first {
                guard lengths.count == 1, !text.isEmpty, text.utf8.count <= 19, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let n = Int(text)
                else {
                    throw TransferError("\(what): a Content-Length that does not read: '\(lengths.sorted().joined(separator: ", ").prefix(60))'")
                }
                guard n <= maxBody else { throw TransferError("\(what): \(n) bytes, over the \(maxBody) allowed") }
                body = .length(n)
            }
            return HTTPHead(code: code, statusLine: first, headers: headers, body: body)
        }
    }

    static func open(_ host: String, _ port: Int, secure: Bool, ca: String?, timeout: Double, what: String) throws(TransferError) -> NetStream {
        do { return try NetStream(host: host, port: port, secure: secure, tls: TLSFiles(ca: ca, cert: nil, key: nil), timeout: timeout, peer: what) }
        catch { throw TransferError("\(what): \(error)") }
    }

    /// A multipart/form-data body (RFC 7578) with one part, "file", holding `data` as `name`; and its
    /// Content-Type with the boundary (random, checked absent from the data).
    static func multipart(_ data: [UInt8], name: String) -> (body: [UInt8], contentType: String) {
        var boundary: String
        repeat {
            var r = [UInt8](repeating: 0, count: 12)
            _ = RAND_bytes(&r, 12)
            boundary = "chargerd-" + r.map { String(format: "%02x", $0) }.joined()
        } while find(data, Array(boundary.utf8)) != nil
        let safe = name.filter { $0 != "\"" && $0 != "\r" && $0 != "\n" }
        let head = "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(safe)\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        return (Array(head.utf8) + data + Array("\r\n--\(boundary)--\r\n".utf8), "multipart/form-data; boundary=\(boundary)")
    }

    static func http(_ method: String, _ loc: TransferLocation, path: String, body: [UInt8]?, contentType: String = "application/octet-stream",
                     ca: String?, timeout: Double, maxBytes: Int) throws(TransferError) -> (Status, [String: String], [UInt8]) {
        let s = try open(loc.host, loc.port, secure: loc.scheme == .https, ca: ca, timeout: timeout, what: loc.display)
        defer { s.teardown() }
        let hostHeader = loc.port == (loc.scheme == .https ? 443 : 80) ? loc.host : "\(loc.host):\(loc.port)"
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: chargerd\r\nConnection: close\r\n"
        if let u = loc.user { head += "Authorization: Basic " + Data("\(u):\(loc.password ?? "")".utf8).base64EncodedString() + "\r\n" }
        if let body { head += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n" }
        head += "\r\n"
        do {
            try s.writeAll(Array(head.utf8) + (body ?? []))
        } catch { throw TransferError("\(loc.display): sending the request: \(error)") }
        // The head of the answer.
        let deadline = Date().addingTimeInterval(timeout)
        var end: Int? = nil
        while end == nil {
            guard Date() < deadline else { throw TransferError("\(loc.display): no answer within \(Int(timeout)) s") }
            do { _ = try s.fill(timeoutMs: 200) } catch { throw TransferError("\(loc.display): \(error)") }
            guard s.inbox.count <= 65_536 else { throw TransferError("\(loc.display): the answer's head is over 64 kB") }
            if let r = find(s.inbox, [13, 10, 13, 10]) { end = r }
        }
        let answer = try HTTPHead.read(s.inbox[0..<end!], maxBody: maxBytes, what: loc.display)
        s.inbox.removeFirst(end! + 4)
        var out: [UInt8] = []
        if method != "HEAD" {
            switch answer.body {
            case .chunked:
                out = try dechunk(try readToEnd(s, maxBytes: maxBytes * 2 + 65_536, what: loc.display), maxBytes: maxBytes, what: loc.display)
            case .length(let n):
                out = try readToEnd(s, maxBytes: n, what: loc.display, exactly: n)
            case .untilClosed:
                out = try readToEnd(s, maxBytes: maxBytes, what: loc.display)
            }
        }
        return (Status(code: answer.code, line: answer.statusLine), answer.headers, out)
    }

    /// Where `needle` first starts in `hay` at or after `from` (no copy: a 20 MB chunked body is searched
    /// chunk by chunk).
    static func find(_ hay: [UInt8], _ needle: [UInt8], from: Int = 0) -> Int? {
        guard !needle.isEmpty, hay.count >= needle.count, from <= hay.count - needle.count else { return nil }
        outer: for i in from...(hay.count - needle.count) {
            for j in 0..<needle.count where hay[i + j] != needle[j] { continue outer }
            return i
        }
        return nil
    }

    /// What the stream gives until the peer closes (or `exactly` bytes), at most `maxBytes`.
    static func readToEnd(_ s: NetStream, maxBytes: Int, what: String, exactly: Int? = nil) throws(TransferError) -> [UInt8] {
        let deadline = Date().addingTimeInterval(600)
        while true {
            if let n = exactly, s.inbox.count >= n { return Array(s.inbox.prefix(n)) }
            guard s.inbox.count <= maxBytes else { throw TransferError("\(what): over the \(maxBytes) bytes allowed") }
            guard Date() < deadline else { throw TransferError("\(what): the transfer took over 10 min") }
            do { _ = try s.fill(timeoutMs: 1000) } catch {
                // The peer closed: the end of the body (unless a length said more).
                if let n = exactly, s.inbox.count < n { throw TransferError("\(what): closed after \(s.inbox.count) of \(n) bytes") }
                return s.inbox
            }
        }
    }

    /// A chunked body (RFC 9112 §7.1) made whole; at most `maxBytes`.
    public static func dechunk(_ raw: [UInt8], maxBytes: Int, what: String) throws(TransferError) -> [UInt8] {
        var out: [UInt8] = [], i = 0
        while true {
            guard let e = find(raw, [13, 10], from: i) else { throw TransferError("\(what): a chunked body cut short") }
            let sizeText = String(decoding: raw[i..<e], as: UTF8.self).split(separator: ";").first.map(String.init) ?? ""
            let digits = sizeText.trimmingCharacters(in: .whitespaces)
            // At most 15 hex digits: a size a peer chose never overflows the sums below.
            guard digits.utf8.count <= 15, digits.utf8.allSatisfy({ $0 < 0x80 && Character(Unicode.Scalar($0)).isHexDigit }),
                  let n = Int(digits, radix: 16) else { throw TransferError("\(what): a chunk size that does not read") }
            i = e + 2
            if n == 0 { return out }
            guard n <= maxBytes - out.count else { throw TransferError("\(what): over the \(maxBytes) bytes allowed") }
            guard n <= raw.count - i else { throw TransferError("\(what): a chunked body cut short") }
            out += raw[i..<(i + n)]
            guard out.count <= maxBytes else { throw TransferError("\(what): over the \(maxBytes) bytes allowed") }
            i += n + 2
        }
    }

    // MARK: FTP (RFC 959)

    final class FTPControl {
        let s: NetStream
        let loc: TransferLocation
        init(_ s: NetStream, _ loc: TransferLocation) { self.s = s; self.loc = loc }

        /// The next reply (a multi-line one whole): its code and text.
        func reply(expect: [Int]) throws(TransferError) {
            let (code, text) = try read()
            guard expect.contains(code) else { throw TransferError("\(loc.display): the FTP server answered '\(code) \(text.prefix(120))'") }
        }

        func read() throws(TransferError) -> (Int, String) {
            let deadline = Date().addingTimeInterval(60)
            var reader = FTPReplyReader()
            while true {
                switch try reader.take(&s.inbox, what: loc.display) {
                case .reply(let code, let text): return (code, text)
                case .more: break
                }
                guard Date() < deadline else { throw TransferError("\(loc.display): no FTP reply within 60 s") }
                do { _ = try s.fill(timeoutMs: 500) } catch { throw TransferError("\(loc.display): \(error)") }
            }
        }

        func command(_ c: String, expect: [Int]) throws(TransferError) {
            do { try s.writeAll(Array((c + "\r\n").utf8)) } catch { throw TransferError("\(loc.display): \(error)") }
            try reply(expect: expect)
        }

        /// PASV: the data connection, to the control connection's host (the address a server behind
        /// NAT advertises is often not reachable) at the port it names.
        func passive() throws(TransferError) -> NetStream {
            do { try s.writeAll(Array("PASV\r\n".utf8)) } catch { throw TransferError("\(loc.display): \(error)") }
            let (code, text) = try read()
            guard code == 227, let open = text.firstIndex(of: "("), let close = text.firstIndex(of: ")") else {
                throw TransferError("\(loc.display): PASV answered '\(code) \(text.prefix(80))'")
            }
            guard open < close, let port = FTPReplyReader.passivePort(text[text.index(after: open)..<close]) else {
                throw TransferError("\(loc.display): PASV answer '\(text.prefix(80))' does not read")
            }
            return try FileTransfer.open(loc.host, port, secure: false, ca: nil, timeout: 10, what: loc.display + " (data)")
        }
    }

    static func ftp(_ loc: TransferLocation, timeout: Double, _ body: (FTPControl) throws(TransferError) -> Void) throws(TransferError) {
        let s = try open(loc.host, loc.port, secure: false, ca: nil, timeout: timeout, what: loc.display)
        defer { s.teardown() }
        let c = FTPControl(s, loc)
        try c.reply(expect: [220])
        do { try s.writeAll(Array("USER \(loc.user ?? "anonymous")\r\n".utf8)) } catch { throw TransferError("\(loc.display): \(error)") }
        let (code, text) = try c.read()
        if code == 331 { try c.command("PASS \(loc.password ?? "chargerd@")", expect: [230]) }
        else if code != 230 { throw TransferError("\(loc.display): USER answered '\(code) \(text.prefix(80))'") }
        try c.command("TYPE I", expect: [200])
        try body(c)
        try? c.command("QUIT", expect: [221])
    }
}

/// FTP replies (RFC 959 §4.2) read from the control connection's bytes: "NNN text" is a reply, "NNN-" begins
/// a multi-line one that ends with "NNN ". Bounded: a line over 8 kB or a reply of over 64 lines is
/// refused, so that a server cannot make the client buffer without end.
public struct FTPReplyReader: Sendable {
    public static let maxLine = 8_192
    public static let maxLines = 64
    var first: String? = nil
    var lines = 0
    public init() {}

    public enum Step: Sendable, Equatable { case more, reply(code: Int, text: String) }

    /// Takes whole lines off the front of `inbox` until a reply is complete.
    public mutating func take(_ inbox: inout [UInt8], what: String) throws(TransferError) -> Step {
        while true {
            guard let e = FileTransfer.find(inbox, [13, 10]) else {
                guard inbox.count <= Self.maxLine else { throw TransferError("\(what): an FTP reply line over \(Self.maxLine) bytes") }
                return .more
            }
            guard e <= Self.maxLine else { throw TransferError("\(what): an FTP reply line over \(Self.maxLine) bytes") }
            let line = Array(inbox[0..<e])
            inbox.removeFirst(e + 2)
            lines += 1
            guard lines <= Self.maxLines else { throw TransferError("\(what): an FTP reply of over \(Self.maxLines) lines") }
            let digits = line.count >= 3 && line[0..<3].allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
            let text = String(decoding: line, as: UTF8.self)
            if first == nil {
                guard digits else { throw TransferError("\(what): not an FTP reply: '\(text.prefix(80))'") }
                first = text
            }
            guard digits, line.count == 3 || line[3] == 0x20, line[0..<3].elementsEqual(first!.utf8.prefix(3)) else { continue }
            let code = Int(line[0]  - 0x30) * 100 + Int(line[1] - 0x30) * 10 + Int(line[2] - 0x30)
            defer { first = nil; lines = 0 }
            return .reply(code: code, text: String(first!.dropFirst(4)))
        }
    }

    /// The data port of a PASV answer's "h1,h2,h3,h4,p1,p2" (RFC 959 §4.1.2): nil unless six numbers of
    /// 0-255 and a port of 1-65535.
    public static func passivePort(_ text: Substring) -> Int? {
        let n = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard n.count == 6 else { return nil }
        var v: [Int] = []
        for x in n {
            guard (1...3).contains(x.utf8.count), x.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let i = Int(x), i <= 255 else { return nil }
            v.append(i)
        }
        let port = v[4] * 256 + v[5]
        return port >= 1 ? port : nil
    }
}
