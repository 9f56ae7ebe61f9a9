// The charge point's OCPP configuration keys (OCPP 1.6 edition 2, §9): every key of the Core,
// LocalAuthListManagement, Reservation and SmartCharging profiles that this charge point has, each with its type and
// range. A key the central system may set is only writable where the charge point does what it says;
// a value the charge point cannot honour is Rejected (ChangeConfiguration, §5.3). Keys the edition marks
// optional and that say nothing here (BlinkRepeat, LightIntensity, MaxEnergyOnInvalidId,
// MinimumStatusDuration, the *MaxLength keys of the CSL lists) are absent, which
// GetConfiguration reports as unknown and ChangeConfiguration as NotSupported.

/// A measurand this charge point samples (OCPP 1.6 §7.31), with its unit and location.
public enum Measurand: String, CaseIterable, Codable, Sendable {
    case energy = "Energy.Active.Import.Register"
    case power = "Power.Active.Import"
    case current = "Current.Import"
    case voltage = "Voltage"
    case offered = "Power.Offered"
    case soc = "SoC"

    public var unit: String {
        switch self {
        case .energy: "Wh"
        case .power, .offered: "W"
        case .current: "A"
        case .voltage: "V"
        case .soc: "Percent"
        }
    }
    public var location: String { self == .soc ? "EV" : "Outlet" }

    /// A comma-separated list of measurands; a refusal naming the first one this charge point does not sample.
    public static func list(_ text: String) -> Result<[Measurand], ConfigurationRefusal> {
        var out: [Measurand] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: true) {
            let name = part.trimmedSpaces()
            guard let m = Measurand(rawValue: name) else { return .failure(ConfigurationRefusal("'\(name.prefix(60))' is not a measurand this charge point samples")) }
            if !out.contains(m) { out.append(m) }
        }
        return .success(out)
    }
    static func text(_ l: [Measurand]) -> String { l.map(\.rawValue).joined(separator: ",") }
}

extension StringProtocol {
    /// Without leading and trailing spaces.
    func trimmedSpaces() -> String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}

/// Why a ChangeConfiguration value was not taken (logged; the answer is Rejected).
public struct ConfigurationRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// The writable configuration of the OCPP client, typed. Seconds are whole seconds as OCPP has them.
public struct OCPPSettings: Sendable, Equatable {
    public var heartbeatInterval: Int
    public var meterValueSampleInterval: Int
    public var connectionTimeOut: Int
    /// Clock-aligned meter values every this many seconds of the station's clock (0: none).
    public var clockAlignedDataInterval = 0
    public var meterValuesSampledData: [Measurand] = [.energy, .power, .current, .voltage, .offered, .soc]
    public var meterValuesAlignedData: [Measurand] = [.energy]
    /// Values carried in StopTransaction's transactionData: sampled at the start and the end, and the
    /// clock-aligned ones taken during the transaction.
    public var stopTxnSampledData: [Measurand] = []
    public var stopTxnAlignedData: [Measurand] = []
    public var authorizeRemoteTxRequests = false
    public var localAuthorizeOffline = true
    public var localPreAuthorize = false
    public var allowOfflineTxForUnknownId = false
    public var authorizationCacheEnabled = true
    public var localAuthListEnabled = true
    public var stopTransactionOnInvalidId = true
    public var transactionMessageAttempts = 3
    public var transactionMessageRetryInterval = 60
    public var resetRetries = 1
    public var connectorPhaseRotation = "0.NotApplicable"
    /// WebSocket pings every this many seconds (0: none); a ping not answered by the next one ends the
    /// connection (a half-open TCP connection found, not waited out).
    public var webSocketPingInterval = 0
    /// The security extension's CpoName: the organizationName of the charge point certificate's CSR.
    public var cpoName = ""

    public init(heartbeatInterval: Int, meterValueSampleInterval: Int, connectionTimeOut: Int) {
        self.heartbeatInterval = heartbeatInterval
        self.meterValueSampleInterval = meterValueSampleInterval
        self.connectionTimeOut = connectionTimeOut
    }

    /// What the charge point is, for the read-only keys.
    public struct Facts: Sendable {
        public var connectors: Int
        public var featureProfiles: String
        public var maxStackLevel: Int
        public var maxPeriods: Int
        public var maxProfiles: Int
        public var securityProfile: Int
        public init(connectors: Int, featureProfiles: String, maxStackLevel: Int, maxPeriods: Int, maxProfiles: Int, securityProfile: Int = 0) {
            self.connectors = connectors; self.featureProfiles = featureProfiles
            self.maxStackLevel = maxStackLevel; self.maxPeriods = maxPeriods; self.maxProfiles = maxProfiles
            self.securityProfile = securityProfile
        }
    }

    /// Every key, in the order GetConfiguration lists them; `writable` false for the read-only ones.
    public static let keys: [(name: String, writable: Bool)] = [
        ("AllowOfflineTxForUnknownId", true), ("AuthorizationCacheEnabled", true), ("AuthorizeRemoteTxRequests", true),
        ("ClockAlignedDataInterval", true), ("ConnectionTimeOut", true), ("ConnectorPhaseRotation", true),
        ("GetConfigurationMaxKeys", false), ("HeartbeatInterval", true), ("LocalAuthorizeOffline", true),
        ("LocalPreAuthorize", true), ("MeterValuesAlignedData", true), ("MeterValuesSampledData", true),
        ("MeterValueSampleInterval", true), ("NumberOfConnectors", false), ("ResetRetries", true),
        ("StopTransactionOnEVSideDisconnect", true), ("StopTransactionOnInvalidId", true), ("StopTxnAlignedData", true),
        ("StopTxnSampledData", true), ("SupportedFeatureProfiles", false), ("TransactionMessageAttempts", true),
        ("TransactionMessageRetryInterval", true), ("UnlockConnectorOnEVSideDisconnect", true), ("WebSocketPingInterval", true),
        // LocalAuthListManagement
        ("LocalAuthListEnabled", true), ("LocalAuthListMaxLength", false), ("SendLocalListMaxLength", false),
        // Reservation
        ("ReserveConnectorZeroSupported", false),
        // The security extension: the key is write-only (GetConfiguration lists it without its value)
        ("AdditionalRootCertificateCheck", false), ("AuthorizationKey", true), ("CertificateSignedMaxChainSize", false),
        ("CertificateStoreMaxLength", false), ("CpoName", true), ("SecurityProfile", true),
        // SmartCharging
        ("ChargeProfileMaxStackLevel", false), ("ChargingScheduleAllowedChargingRateUnit", false),
        ("ChargingScheduleMaxPeriods", false), ("MaxChargingProfilesInstalled", false),
    ]

    /// The key's value as GetConfiguration gives it; nil for a key this charge point does not have.
    public func value(_ key: String, _ f: Facts) -> String? {
        func b(_ x: Bool) -> String { x ? "true" : "false" }
        switch key {
        case "AllowOfflineTxForUnknownId": return b(allowOfflineTxForUnknownId)
        case "AuthorizationCacheEnabled": return b(authorizationCacheEnabled)
        case "AuthorizeRemoteTxRequests": return b(authorizeRemoteTxRequests)
        case "ClockAlignedDataInterval": return String(clockAlignedDataInterval)
        case "ConnectionTimeOut": return String(connectionTimeOut)
        case "ConnectorPhaseRotation": return connectorPhaseRotation
        case "GetConfigurationMaxKeys": return String(Self.keys.count)
        case "HeartbeatInterval": return String(heartbeatInterval)
        case "LocalAuthorizeOffline": return b(localAuthorizeOffline)
        case "LocalPreAuthorize": return b(localPreAuthorize)
        case "MeterValuesAlignedData": return Measurand.text(meterValuesAlignedData)
        case "MeterValuesSampledData": return Measurand.text(meterValuesSampledData)
        case "MeterValueSampleInterval": return String(meterValueSampleInterval)
        case "NumberOfConnectors": return String(f.connectors)
        case "ResetRetries": return String(resetRetries)
        case "StopTransactionOnEVSideDisconnect": return "true"
        case "StopTransactionOnInvalidId": return b(stopTransactionOnInvalidId)
        case "StopTxnAlignedData": return Measurand.text(stopTxnAlignedData)
        case "StopTxnSampledData": return Measurand.text(stopTxnSampledData)
        case "SupportedFeatureProfiles": return f.featureProfiles
        case "TransactionMessageAttempts": return String(transactionMessageAttempts)
        case "TransactionMessageRetryInterval": return String(transactionMessageRetryInterval)
        case "UnlockConnectorOnEVSideDisconnect": return "true"
        case "WebSocketPingInterval": return String(webSocketPingInterval)
        case "LocalAuthListEnabled": return b(localAuthListEnabled)
        case "LocalAuthListMaxLength": return String(LocalAuthorization.listMaxLength)
        case "SendLocalListMaxLength": return String(LocalAuthorization.sendListMaxLength)
        case "ReserveConnectorZeroSupported": return "false"
        case "SecurityProfile": return String(f.securityProfile)
        case "AdditionalRootCertificateCheck": return "false"
        case "CertificateSignedMaxChainSize": return String(SecurityFieldLimits.certificateChain)
        case "CertificateStoreMaxLength": return String(SecurityFieldLimits.certificateStoreMaxLength)
        case "CpoName": return cpoName
        case "ChargeProfileMaxStackLevel": return String(f.maxStackLevel)
        case "ChargingScheduleAllowedChargingRateUnit": return "Current,Power"
        case "ChargingScheduleMaxPeriods": return String(f.maxPeriods)
        case "MaxChargingProfilesInstalled": return String(f.maxProfiles)
        default: return nil
        }
    }

    /// Sets a writable key from its text (ChangeConfiguration, or the stored configuration at start).
    /// The refusal names what was wrong; a key this charge point does not have, or a read-only one, is
    /// the caller's to answer (NotSupported, Rejected).
    public mutating func set(_ key: String, _ text: String, connectors: Int) -> Result<Void, ConfigurationRefusal> {
        let v = text.trimmedSpaces()
        func int(_ range: ClosedRange<Int>, unit: String = "s") -> Result<Int, ConfigurationRefusal> {
            guard let x = Int(v), range.contains(x) else {
                return .failure(ConfigurationRefusal("\(key) is a whole number \(range.lowerBound)...\(range.upperBound)\(unit.isEmpty ? "" : " " + unit), not '\(v.prefix(40))'"))
            }
            return .success(x)
        }
        func bool() -> Result<Bool, ConfigurationRefusal> {
            switch v.lowercased() {
            case "true": return .success(true)
            case "false": return .success(false)
            default: return .failure(ConfigurationRefusal("\(key) is true or false, not '\(v.prefix(40))'"))
            }
        }
        func assign<T>(_ r: Result<T, ConfigurationRefusal>, _ apply: (inout OCPPSettings, T) -> Void) -> Result<Void, ConfigurationRefusal> {
            r.map { apply(&self, $0) }
        }
        switch key {
        case "AllowOfflineTxForUnknownId": return assign(bool()) { $0.allowOfflineTxForUnknownId = $1 }
        case "AuthorizationCacheEnabled": return assign(bool()) { $0.authorizationCacheEnabled = $1 }
        case "AuthorizeRemoteTxRequests": return assign(bool()) { $0.authorizeRemoteTxRequests = $1 }
        case "ClockAlignedDataInterval": return assign(int(0...86_400)) { $0.clockAlignedDataInterval = $1 }
        case "ConnectionTimeOut": return assign(int(1...86_400)) { $0.connectionTimeOut = $1 }
        case "ConnectorPhaseRotation": return assign(Self.phaseRotation(v, connectors: connectors)) { $0.connectorPhaseRotation = $1 }
        case "HeartbeatInterval": return assign(int(1...86_400)) { $0.heartbeatInterval = $1 }
        case "LocalAuthorizeOffline": return assign(bool()) { $0.localAuthorizeOffline = $1 }
        case "LocalPreAuthorize": return assign(bool()) { $0.localPreAuthorize = $1 }
        case "MeterValuesAlignedData": return assign(Measurand.list(v)) { $0.meterValuesAlignedData = $1 }
        case "MeterValuesSampledData": return assign(Measurand.list(v)) { $0.meterValuesSampledData = $1 }
        case "MeterValueSampleInterval": return assign(int(0...86_400)) { $0.meterValueSampleInterval = $1 }
        case "ResetRetries": return assign(int(0...10, unit: "")) { $0.resetRetries = $1 }
        case "StopTransactionOnEVSideDisconnect", "UnlockConnectorOnEVSideDisconnect":
            // A DC session always ends when the car's side is disconnected (the connection confirm opens:
            // GB/T 18487.1, docs/standards.md): only "true" describes this charge point.
            return bool().flatMap { $0 ? .success(()) : .failure(ConfigurationRefusal("\(key) cannot be false: a DC session ends when the car's side is disconnected")) }
        case "StopTransactionOnInvalidId": return assign(bool()) { $0.stopTransactionOnInvalidId = $1 }
        case "StopTxnAlignedData": return assign(Measurand.list(v)) { $0.stopTxnAlignedData = $1 }
        case "StopTxnSampledData": return assign(Measurand.list(v)) { $0.stopTxnSampledData = $1 }
        case "TransactionMessageAttempts": return assign(int(1...10, unit: "")) { $0.transactionMessageAttempts = $1 }
        case "TransactionMessageRetryInterval": return assign(int(0...3_600)) { $0.transactionMessageRetryInterval = $1 }
        case "WebSocketPingInterval": return assign(int(0...3_600)) { $0.webSocketPingInterval = $1 }
        case "LocalAuthListEnabled": return assign(bool()) { $0.localAuthListEnabled = $1 }
        case "CpoName":
            guard v.count <= SecurityFieldLimits.cpoName, !v.contains(where: { $0.isNewline }) else {
                return .failure(ConfigurationRefusal("CpoName is one line of at most \(SecurityFieldLimits.cpoName) characters (an X.509 organizationName)"))
            }
            cpoName = v
            return .success(())
        default: return .failure(ConfigurationRefusal("\(key.prefix(60)) is not a writable key of this charge point"))
        }
    }

    /// ConnectorPhaseRotation (§9.1.8): "connector.rotation" items; a DC connector's is NotApplicable,
    /// Unknown also allowed; the rotations of an AC connector are refused (no AC connector here).
    static func phaseRotation(_ v: String, connectors: Int) -> Result<String, ConfigurationRefusal> {
        var items: [String] = []
        for part in v.split(separator: ",") {
            let item = part.trimmedSpaces()
            let pair = item.split(separator: ".", maxSplits: 1)
            guard pair.count == 2, let c = Int(pair[0]), (0...connectors).contains(c), pair[1] == "NotApplicable" || pair[1] == "Unknown" else {
                return .failure(ConfigurationRefusal("ConnectorPhaseRotation item '\(item.prefix(40))' is not CONNECTOR.NotApplicable or CONNECTOR.Unknown with a connector 0...\(connectors) (DC connectors have no phase rotation)"))
            }
            items.append(item)
        }
        guard !items.isEmpty else { return .failure(ConfigurationRefusal("ConnectorPhaseRotation is empty")) }
        return .success(items.joined(separator: ","))
    }

    /// Writable keys the OCPP client sets and keeps itself, not through `set` (the AuthorizationKey is
    /// write-only and stored apart; the security profile is only raised, with its prerequisites checked).
    public static let clientKeys: Set<String> = ["AuthorizationKey", "SecurityProfile"]

    /// The writable keys' values as stored (a ChangeConfiguration survives a restart, §5.3), but the
    /// client's own.
    public func stored(_ f: Facts) -> [String: String] {
        var out: [String: String] = [:]
        for k in Self.keys where k.writable && !Self.clientKeys.contains(k.name) { out[k.name] = value(k.name, f) }
        return out
    }
}
