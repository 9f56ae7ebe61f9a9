// The address of an OCPP central system (ws:// or wss://), checked by the site loader and dialled by the
// charge point's WebSocket client.

/// A ws:// or wss:// URL, split.
public struct WebSocketURL: Sendable, Equatable {
    public var secure: Bool
    public var host: String
    public var port: Int
    public var path: String
    public var lastPathComponent: String { String(path.split(separator: "/").last ?? "") }

    public init?(_ text: String) {
        let rest: Substring
        if text.hasPrefix("ws://") { secure = false; rest = text.dropFirst(5) }
        else if text.hasPrefix("wss://") { secure = true; rest = text.dropFirst(6) }
        else { return nil }
        let hostPort = rest.prefix { $0 != "/" }
        path = rest.count > hostPort.count ? String(rest.dropFirst(hostPort.count)) : "/"
        if let colon = hostPort.lastIndex(of: ":") {
            guard let p = Int(hostPort[hostPort.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            host = String(hostPort[..<colon]); port = p
        } else { host = String(hostPort); port = secure ? 443 : 80 }
        guard !host.isEmpty, !host.contains(" ") else { return nil }
    }
}
