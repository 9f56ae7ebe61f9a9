// Local authorization (OCPP 1.6 edition 2, §3.5): the Local Authorization List the central system sends
// (SendLocalList, full or differential, versioned; §5.15) and the Authorization Cache the charge point
// keeps of the idTagInfo the central system answered (§3.5.2). Pure values: the OCPP client asks for a
// verdict when an idTag is presented and stores the whole as JSON in its state directory.

/// SendLocalList (§6.51) and GetLocalListVersion (§6.31).
public struct AuthorizationData: Codable, Sendable, Equatable {
    public var idTag: String
    public var idTagInfo: IdTagInfo?
    public init(idTag: String, idTagInfo: IdTagInfo?) { self.idTag = idTag; self.idTagInfo = idTagInfo }
}
public enum UpdateType: String, Codable, Sendable { case Differential, Full }
public enum UpdateStatus: String, Codable, Sendable { case Accepted, Failed, NotSupported, VersionMismatch }
public struct SendLocalListReq: Codable, Sendable, Equatable {
    public var listVersion: Int
    public var localAuthorizationList: [AuthorizationData]?
    public var updateType: UpdateType
    public init(listVersion: Int, localAuthorizationList: [AuthorizationData]?, updateType: UpdateType) {
        self.listVersion = listVersion; self.localAuthorizationList = localAuthorizationList; self.updateType = updateType
    }
}
public struct GetLocalListVersionReq: Codable, Sendable, Equatable {}
public struct GetLocalListVersionConf: Codable, Sendable, Equatable {
    public var listVersion: Int
    public init(listVersion: Int) { self.listVersion = listVersion }
}

public struct LocalAuthorization: Codable, Sendable, Equatable {
    /// LocalAuthListMaxLength and SendLocalListMaxLength (§9.2): entries the list holds, and one
    /// SendLocalList may carry. The cache's own bound (the least recently used entry makes room).
    public static let listMaxLength = 1000
    public static let sendListMaxLength = 250
    public static let cacheMaxLength = 1000

    /// 0: no list (never sent, or cleared by a full update of version 0).
    public private(set) var listVersion = 0
    /// Keyed by the idTag folded to lower case (IdToken is a case-insensitive CiString20, §7.28).
    public private(set) var list: [String: AuthorizationData] = [:]
    public struct Cached: Codable, Sendable, Equatable {
        public var idTag: String
        public var info: IdTagInfo
        /// Station time (epoch ms) the central system last said this.
        public var at: Int64
    }
    public private(set) var cache: [String: Cached] = [:]

    public init() {}

    public enum Source: String, Sendable { case list = "local list", cache = "authorization cache" }
    public enum Verdict: Sendable, Equatable {
        case accepted(Source)
        /// Known, and not Accepted (Blocked, Invalid, ConcurrentTx, or Expired: its expiryDate has passed).
        case refused(AuthorizationStatus, Source)
        /// In neither the list nor the cache.
        case unknown
    }

    static func fold(_ tag: String) -> String { tag.lowercased() }

    /// What the list (first: it takes precedence, §3.5.3) and then the cache say of `tag` at `nowMillis`.
    public func verdict(_ tag: String, atMillis now: Int64, listEnabled: Bool, cacheEnabled: Bool) -> Verdict {
        func judge(_ info: IdTagInfo, _ s: Source) -> Verdict {
            if let e = info.expiryDate {
                // An expiry date that does not parse is taken as passed (the safe side).
                guard let ms = Timestamp.parse(e), ms > now else { return .refused(.Expired, s) }
            }
            return info.status == .Accepted ? .accepted(s) : .refused(info.status, s)
        }
        let k = Self.fold(tag)
        if listEnabled, let e = list[k], let info = e.idTagInfo { return judge(info, .list) }
        if cacheEnabled, let c = cache[k] { return judge(c.info, .cache) }
        return .unknown
    }

    /// The parentIdTag the list (first) or the cache gives `tag`, if any.
    public func parent(of tag: String, listEnabled: Bool, cacheEnabled: Bool) -> String? {
        let k = Self.fold(tag)
        if listEnabled, let p = list[k]?.idTagInfo?.parentIdTag { return p }
        if cacheEnabled, let p = cache[k]?.info.parentIdTag { return p }
        return nil
    }

    /// Applies a SendLocalList. A full update replaces the list; a differential one adds or replaces the
    /// entries with an idTagInfo and removes those without, and must carry a version above the list's
    /// (VersionMismatch otherwise). Failed, with nothing changed, when the message or the resulting
    /// list is longer than allowed, names an idTag twice, a full update lacks an idTagInfo, an expiry
    /// date does not parse, or the version is negative. The second value says why, for the log.
    public mutating func apply(_ r: SendLocalListReq) -> (UpdateStatus, String) {
        let entries = r.localAuthorizationList ?? []
        guard r.listVersion >= 0 else { return (.Failed, "listVersion \(r.listVersion) is negative") }
        guard entries.count <= Self.sendListMaxLength else {
            return (.Failed, "\(entries.count) entries, above SendLocalListMaxLength \(Self.sendListMaxLength)")
        }
        var seen = Set<String>()
        for e in entries {
            guard e.idTag.utf8.count <= 20, !e.idTag.isEmpty else { return (.Failed, "idTag '\(e.idTag.prefix(40))' is not an IdToken (1-20 characters)") }
            guard seen.insert(Self.fold(e.idTag)).inserted else { return (.Failed, "idTag \(e.idTag) appears twice") }
            if let d = e.idTagInfo?.expiryDate, Timestamp.parse(d) == nil {
                return (.Failed, "idTag \(e.idTag): expiryDate '\(d.prefix(40))' is not a date")
            }
        }
        var next = list
        switch r.updateType {
        case .Full:
            if let e = entries.first(where: { $0.idTagInfo == nil }) { return (.Failed, "full update: idTag \(e.idTag) has no idTagInfo") }
            next = [:]
            for e in entries { next[Self.fold(e.idTag)] = e }
        case .Differential:
            guard r.listVersion > listVersion else {
                return (.VersionMismatch, "differential update of version \(r.listVersion), the list is at \(listVersion)")
            }
            for e in entries {
                if e.idTagInfo != nil { next[Self.fold(e.idTag)] = e } else { next[Self.fold(e.idTag)] = nil }
            }
        }
        guard next.count <= Self.listMaxLength else {
            return (.Failed, "the list would hold \(next.count) entries, above LocalAuthListMaxLength \(Self.listMaxLength)")
        }
        list = next
        listVersion = r.listVersion
        return (.Accepted, "\(r.updateType.rawValue) update to version \(r.listVersion): \(list.count) idTag(s) in the list")
    }

    /// Keeps what the central system answered about `tag` (Authorize, StartTransaction, StopTransaction).
    /// When full, the entry heard of longest ago makes room.
    public mutating func remember(_ tag: String, _ info: IdTagInfo, atMillis now: Int64) {
        let k = Self.fold(tag)
        if cache[k] == nil && cache.count >= Self.cacheMaxLength,
           let oldest = cache.min(by: { $0.value.at < $1.value.at })?.key {
            cache[oldest] = nil
        }
        cache[k] = Cached(idTag: tag, info: info, at: now)
    }

    /// ClearCache (§5.4): the cache is emptied; the list stays.
    public mutating func clearCache() { cache = [:] }
}
