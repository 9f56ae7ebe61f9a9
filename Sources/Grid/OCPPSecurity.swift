// The payloads of the OCPP 1.6 security extension (security whitepaper, edition 2: certificate
// management, signed firmware, logs, the extended trigger), as Codable values with OCPP's field names.
// Lengths are the whitepaper's; a field over its length is refused with PropertyConstraintViolation by
// the client (GridInterfaces/OCPPSecurity.swift), never truncated.

/// Which store an installed certificate belongs to.
public enum CertificateUse: String, Codable, Sendable, CaseIterable {
    /// Trust anchors for the central system's TLS certificate (profiles 2 and 3) and the charge point's
    /// own certificate (CertificateSigned).
    case CentralSystemRootCertificate
    /// Trust anchors for firmware signing certificates (SignedUpdateFirmware).
    case ManufacturerRootCertificate
}

public enum HashAlgorithm: String, Codable, Sendable, CaseIterable { case SHA256, SHA384, SHA512 }

/// A certificate's identity (whitepaper ed. 2, CertificateHashDataType): hex digests of the issuer's
/// DER name and of the issuer's public key (the subject public key's bits), and the serial number as
/// hex without leading zeros.
public struct CertificateHashData: Codable, Sendable, Equatable, Hashable {
    public var hashAlgorithm: HashAlgorithm
    public var issuerNameHash: String
    public var issuerKeyHash: String
    public var serialNumber: String
    public init(hashAlgorithm: HashAlgorithm, issuerNameHash: String, issuerKeyHash: String, serialNumber: String) {
        self.hashAlgorithm = hashAlgorithm; self.issuerNameHash = issuerNameHash
        self.issuerKeyHash = issuerKeyHash; self.serialNumber = serialNumber
    }
    /// Equal to `o` as the whitepaper compares them (hex case does not matter, nor leading zeros of the serial).
    public func same(as o: CertificateHashData) -> Bool {
        func serial(_ s: String) -> String { String(s.lowercased().drop { $0 == "0" }) }
        return hashAlgorithm == o.hashAlgorithm && issuerNameHash.lowercased() == o.issuerNameHash.lowercased()
            && issuerKeyHash.lowercased() == o.issuerKeyHash.lowercased() && serial(serialNumber) == serial(o.serialNumber)
    }
}

public struct InstallCertificateReq: Codable, Sendable, Equatable {
    public var certificateType: CertificateUse
    public var certificate: String
}
public enum CertificateStatus: String, Codable, Sendable { case Accepted, Rejected, Failed }

public struct GetInstalledCertificateIdsReq: Codable, Sendable, Equatable { public var certificateType: CertificateUse }
public enum GetInstalledCertificateStatus: String, Codable, Sendable { case Accepted, NotFound }
public struct GetInstalledCertificateIdsConf: Codable, Sendable, Equatable {
    public var status: GetInstalledCertificateStatus
    public var certificateHashData: [CertificateHashData]?
    public init(status: GetInstalledCertificateStatus, certificateHashData: [CertificateHashData]?) {
        self.status = status; self.certificateHashData = certificateHashData
    }
}

public struct DeleteCertificateReq: Codable, Sendable, Equatable { public var certificateHashData: CertificateHashData }
public enum DeleteCertificateStatus: String, Codable, Sendable { case Accepted, Failed, NotFound }

/// Charge point to central system: the CSR (PKCS#10, PEM) of a key made on the charge point.
public struct SignCertificateReq: Codable, Sendable, Equatable {
    public var csr: String
    public init(csr: String) { self.csr = csr }
}
// SignCertificate.conf and CertificateSigned.conf are StatusConf<AcceptedRejected> (OCPP16.swift).

public struct CertificateSignedReq: Codable, Sendable, Equatable { public var certificateChain: String }

/// ExtendedTriggerMessage: TriggerMessage's messages but DiagnosticsStatusNotification, with
/// LogStatusNotification and SignChargePointCertificate.
public struct ExtendedTriggerMessageReq: Codable, Sendable, Equatable {
    public var requestedMessage: MessageTrigger
    public var connectorId: Int?
}

public struct SignedFirmware: Codable, Sendable, Equatable {
    public var location: String
    public var retrieveDateTime: String
    public var installDateTime: String?
    public var signingCertificate: String
    /// Base64 of the signature over the downloaded file (SHA-256 with the signing certificate's key).
    public var signature: String
}
public struct SignedUpdateFirmwareReq: Codable, Sendable, Equatable {
    public var retries: Int?
    public var retryInterval: Int?
    public var requestId: Int
    public var firmware: SignedFirmware
}
public enum UpdateFirmwareStatus: String, Codable, Sendable { case Accepted, Rejected, AcceptedCanceled, InvalidCertificate, RevokedCertificate }

/// The steps of a firmware update (OCPP 1.6 §7.25; the whitepaper's SignedFirmwareStatusNotification adds
/// the steps from DownloadScheduled on). An unsigned update (UpdateFirmware) reports only 1.6's own.
public enum FirmwareStatus: String, Codable, Sendable {
    case Downloaded, DownloadFailed, Downloading, Idle, InstallationFailed, Installing, Installed
    case DownloadScheduled, DownloadPaused, InstallRebooting, InstallScheduled, InstallVerificationFailed,
         InvalidSignature, SignatureVerified
}
public struct SignedFirmwareStatusNotificationReq: Codable, Sendable, Equatable {
    public var status: FirmwareStatus
    public var requestId: Int?
    public init(status: FirmwareStatus, requestId: Int?) { self.status = status; self.requestId = requestId }
}

public enum LogType: String, Codable, Sendable { case DiagnosticsLog, SecurityLog }
public struct LogParameters: Codable, Sendable, Equatable {
    public var remoteLocation: String
    public var oldestTimestamp: String?
    public var latestTimestamp: String?
}
public struct GetLogReq: Codable, Sendable, Equatable {
    public var log: LogParameters
    public var logType: LogType
    public var requestId: Int
    public var retries: Int?
    public var retryInterval: Int?
}
public enum LogStatus: String, Codable, Sendable { case Accepted, Rejected, AcceptedCanceled }
public struct GetLogConf: Codable, Sendable, Equatable {
    public var status: LogStatus
    public var filename: String?
    public init(status: LogStatus, filename: String?) { self.status = status; self.filename = filename }
}
public enum UploadLogStatus: String, Codable, Sendable {
    case BadMessage, Idle, NotSupportedOperation, PermissionDenied, Uploaded, UploadFailure, Uploading
}
public struct LogStatusNotificationReq: Codable, Sendable, Equatable {
    public var status: UploadLogStatus
    public var requestId: Int?
    public init(status: UploadLogStatus, requestId: Int?) { self.status = status; self.requestId = requestId }
}

/// The whitepaper's limits on the fields (characters).
public enum SecurityFieldLimits {
    public static let certificate = 5500
    public static let certificateChain = 10_000
    public static let signature = 800
    public static let location = 512
    public static let hash = 128
    public static let serialNumber = 40
    /// CertificateStoreMaxLength: the root certificates of both kinds this charge point keeps.
    public static let certificateStoreMaxLength = 20
    /// CpoName: X.520's upper bound for an organizationName (RFC 5280, ub-organization-name).
    public static let cpoName = 64
}
