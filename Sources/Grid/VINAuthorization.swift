// Plug and charge by the car's VIN (即插即充; docs/grid.md "Authorization by VIN"): how the site authorizes
// sessions, the VIN as the car sent it in BRM read with care (the bytes come from outside), the idTag that
// carries it to OCPP, and the masked form the journal and the console show.

import ChargerCore

/// A way a session may be authorized, as the site file names it (`[ocpp] authorize`).
public enum AuthorizationMethod: String, Sendable, CaseIterable, Codable {
    /// The car's VIN from BRM, checked against the local list, the cache or the central system.
    case vin
    /// An idTag presented at the plug (a card, the app's QR code read by the charger).
    case idtag
    /// A RemoteStartTransaction from the central system.
    case remote
}

/// The VIN a car sent in BRM (GB/T 27930-2015: 17 ASCII bytes; ISO 3779's alphabet: digits and capitals
/// without I, O and Q).
public enum VINReading: Sendable, Equatable {
    /// The short BRM, or the VIN's bytes all zero or all 0xFF: the car sent none.
    case absent
    /// Bytes that are not a VIN: what was wrong (the bytes shown as hexadecimal, never as text).
    case malformed(String)
    case valid(String)

    /// Reads 17 bytes from the car. Nothing from them reaches a String unless every byte is in the VIN
    /// alphabet.
    public init(_ bytes: InlineArray<17, UInt8>) {
        var zeros = 0, ones = 0
        for i in 0..<17 {
            if bytes[i] == 0 { zeros += 1 }
            if bytes[i] == 0xFF { ones += 1 }
        }
        if zeros == 17 || ones == 17 { self = .absent; return }
        var text = ""
        for i in 0..<17 {
            let b = bytes[i]
            guard VINReading.allowed(b) else {
                var hex = ""
                for j in 0..<17 { hex += String(bytes[j], radix: 16, uppercase: true).leftPadded(to: 2) }
                self = .malformed("byte \(i + 1) is 0x\(String(b, radix: 16, uppercase: true).leftPadded(to: 2)), not a VIN character (\(hex))")
                return
            }
            text.unicodeScalars.append(Unicode.Scalar(b))
        }
        self = .valid(text)
    }

    static func allowed(_ b: UInt8) -> Bool { BRM.isVINByte(b) }

    /// A VIN written by a person (a site's list, `--car vin=`): nil when it is not 17 VIN characters.
    public static func parse(_ text: String) -> String? {
        let u = Array(text.utf8)
        guard u.count == 17, u.allSatisfy(allowed) else { return nil }
        return text
    }
}

public enum VINIdentity {
    /// The idTag that carries a VIN to OCPP 1.6 (CiString20): "VIN" and the 17 characters, exactly 20. A
    /// card's idTag never has this form in practice (cards are hexadecimal UIDs); the prefix tells an
    /// operator's back office that the car, not a card, asked.
    public static let prefix = "VIN"
    public static func idTag(_ vin: String) -> String { prefix + vin }

    /// The VIN as the journal and the console show it unless the site allows the whole: the maker (WMI,
    /// 3 characters) and the serial's last 4, the rest starred ("LSV**********1234"). The VIN is personal
    /// data (docs/security.md "The VIN").
    public static func masked(_ vin: String) -> String { BRM.maskedVIN(vin) }

    /// How a VIN is shown: masked, or whole where the site says so.
    public static func shown(_ vin: String, whole: Bool) -> String { whole ? vin : masked(vin) }
}

extension String {
    func leftPadded(to n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}

/// Who authorized a session: the method and the identity as the journal shows it (a VIN masked unless the
/// site allows the whole, an idTag as presented).
public struct SessionIdentity: Sendable, Equatable {
    public var method: AuthorizationMethod
    public var identity: String
    public init(method: AuthorizationMethod, identity: String) { self.method = method; self.identity = identity }
}

/// An authorization decision for the journal (kind `authorization`): the gun, the method, the identity as
/// shown, the verdict (`accepted`, `refused`, `refused-fallback`) and why.
public struct AuthorizationRecord: Sendable, Equatable {
    public var gun: Int
    public var method: AuthorizationMethod
    public var identity: String
    public var verdict: String
    public var why: String
    public init(gun: Int, method: AuthorizationMethod, identity: String, verdict: String, why: String) {
        self.gun = gun; self.method = method; self.identity = identity; self.verdict = verdict; self.why = why
    }
}

/// What the charge point does with a car's VIN (docs/grid.md "Authorization by VIN"): accept it, refuse it,
/// or ask the central system. A pure function of the reading, the local list and cache, whether the
/// central system is reachable and the OCPP settings, shared by the OCPP client and the HIL runner.
public enum VINDecision: Sendable, Equatable {
    case accept(tag: String, why: String)
    /// `identity`: the VIN's idTag when there is one (nil: none, or not a VIN).
    case refuse(tag: String?, why: String)
    case ask(tag: String)

    public static func decide(_ reading: VINReading, local: LocalAuthorization, atMillis: Int64, online: Bool, settings s: OCPPSettings)
        -> VINDecision
    {
        let vin: String
        switch reading {
        case .absent: return .refuse(tag: nil, why: "the car sent no VIN (short BRM)")
        case .malformed(let why): return .refuse(tag: nil, why: "the car's VIN is not one: \(why)")
        case .valid(let v): vin = v
        }
        let tag = VINIdentity.idTag(vin)
        let verdict = local.verdict(tag, atMillis: atMillis, listEnabled: s.localAuthListEnabled, cacheEnabled: s.authorizationCacheEnabled)
        if online {
            if s.localPreAuthorize, case .accepted(let src) = verdict { return .accept(tag: tag, why: "the \(src.rawValue) (LocalPreAuthorize)") }
            return .ask(tag: tag)
        }
        switch verdict {
        case .accepted(let src) where s.localAuthorizeOffline: return .accept(tag: tag, why: "the \(src.rawValue), offline (LocalAuthorizeOffline)")
        case .accepted(let src): return .refuse(tag: tag, why: "offline, and LocalAuthorizeOffline is false (known to the \(src.rawValue))")
        case .unknown where s.allowOfflineTxForUnknownId: return .accept(tag: tag, why: "no one, offline and unknown (AllowOfflineTxForUnknownId)")
        case .unknown: return .refuse(tag: tag, why: "offline and unknown to the local list and the cache")
        case .refused(let st, let src): return .refuse(tag: tag, why: "\(st.rawValue) in the \(src.rawValue), offline")
        }
    }
}
