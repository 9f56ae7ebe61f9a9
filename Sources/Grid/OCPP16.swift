// OCPP 1.6J as types: the RPC frames of OCPP-J 1.6 §4 (CALL, CALLRESULT, CALLERROR), the actions of
// OCPP 1.6 edition 2 §6 and the payloads this charge point sends and answers, as Codable values with
// OCPP's JSON field names. The charge point (OCPPChargePoint) reads and writes only these;
// a payload that does not decode is answered with the CALLERROR code that says why (never a crash).
import Foundation

// MARK: JSON as a value

/// Any JSON value, for the frame's envelope and for payloads not yet decoded to their type.
public enum JSONValue: Codable, Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let i = try? c.decode(Int64.self) { self = .int(i) }
        else if let d = try? c.decode(Double.self) { self = .double(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .int(let i): try c.encode(i)
        case .double(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// Parses JSON text (any top-level value) nested at most `maxDepth` deep: the depth is counted on
    /// the bytes before anything decodes, since decoding recurses once per level (350 levels overflowed
    /// a side thread's stack).
    public init(json text: String, maxDepth: Int = JSONValue.maxDepth) throws {
        let bytes = Data(text.utf8)
        if let depth = JSONValue.nesting(bytes, above: maxDepth) { throw JSONTooDeep(depth: depth, limit: maxDepth) }
        self = try JSONDecoder().decode(JSONValue.self, from: bytes)
    }

    /// JSON's equality: a number is a number (RFC 8259 §6 has no integer type and expects IEEE 754
    /// doubles for interoperability), so an integer and a double are equal when the integer, as a
    /// double, is that double. A double that prints as an integer reads back as `.int` (JSONEncoder
    /// writes 92233720368547758.008 as 92233720368547760, and 92233720368575487.008 as
    /// 9.223372036857549e+16, which reads back as the integer 92233720368575490): without this a
    /// payload passed on is "changed" by a round trip that changed nothing (the ocpp fuzz target's
    /// long run, docs/fuzzing.md).
    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.int(let x), .int(let y)): return x == y
        case (.double(let x), .double(let y)): return x == y
        case (.int(let x), .double(let y)), (.double(let y), .int(let x)): return Double(x) == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)): return x == y
        default: return false
        }
    }

    /// Arrays and objects nested deeper than this are refused (OCPP 1.6's deepest payload,
    /// SetChargingProfile inside its frame, is 6 deep).
    public static let maxDepth = 32

    /// The nesting depth of JSON text once it passes `limit` (nil when it never does): brackets inside
    /// strings (escapes included) do not count. Not a validator: text that is not JSON is the decoder's.
    public static func nesting<C: Collection>(_ bytes: C, above limit: Int) -> Int? where C.Element == UInt8 {
        var depth = 0, inString = false, escaped = false
        for b in bytes {
            if inString {
                if escaped { escaped = false } else if b == 0x5C { escaped = true } else if b == 0x22 { inString = false }
                continue
            }
            switch b {
            case 0x22: inString = true
            case 0x5B, 0x7B:
                depth += 1
                if depth > limit { return depth }
            case 0x5D, 0x7D: depth -= 1
            default: break
            }
        }
        return nil
    }

    /// The value as a `T`. A field that is missing, null, of the wrong JSON type or out of its type's
    /// range throws the DecodingError that names it by its path (JSONValueDecoder.swift).
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try T(from: JSONValueDecoder(value: self, codingPath: []))
    }

    /// Compact JSON text with sorted keys.
    public var text: String { OCPPJSON.text(self) ?? "null" }

    /// The compact JSON text (sorted keys) of any Encodable value; nil when it cannot be encoded.
    public static func encoded(_ v: some Encodable) -> String? { OCPPJSON.text(v) }
}

/// JSON nested deeper than the reader takes.
public struct JSONTooDeep: Error, CustomStringConvertible, Sendable {
    public var depth: Int
    public var limit: Int
    public var description: String { "nested more than \(limit) deep" }
}

enum OCPPJSON {
    static func text(_ v: some Encodable) -> String? {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? e.encode(v)).map { String(decoding: $0, as: UTF8.self) }
    }
}

// MARK: the RPC framework (OCPP-J 1.6 §4.1-4.2)

/// The actions of OCPP 1.6 (edition 2, §6), by feature profile. An action not in this list is
/// answered NotImplemented; one in it that this charge point does not handle, NotSupported (§4.2.3).
public enum OCPPAction: String, CaseIterable, Codable, Sendable {
    // Core
    case Authorize, BootNotification, ChangeAvailability, ChangeConfiguration, ClearCache, DataTransfer,
         GetConfiguration, Heartbeat, MeterValues, RemoteStartTransaction, RemoteStopTransaction, Reset,
         StartTransaction, StatusNotification, StopTransaction, UnlockConnector
    // Firmware management
    case DiagnosticsStatusNotification, FirmwareStatusNotification, GetDiagnostics, UpdateFirmware
    // Local authorization list management
    case GetLocalListVersion, SendLocalList
    // Reservation
    case CancelReservation, ReserveNow
    // Smart charging
    case ClearChargingProfile, GetCompositeSchedule, SetChargingProfile
    // Remote trigger
    case TriggerMessage
    // The security extension (OCPP 1.6 security whitepaper, edition 2)
    case CertificateSigned, DeleteCertificate, ExtendedTriggerMessage, GetInstalledCertificateIds, GetLog,
         InstallCertificate, LogStatusNotification, SecurityEventNotification, SignCertificate,
         SignedFirmwareStatusNotification, SignedUpdateFirmware

    /// The 28 messages of OCPP 1.6 edition 2 itself (§6), without the security extension's.
    public static let core16: [OCPPAction] = Array(allCases.prefix(28))
}

/// The retries and retryInterval of a maintenance transfer (GetDiagnostics, UpdateFirmware, GetLog,
/// SignedUpdateFirmware): OCPP gives them no upper bound, this charge point does (docs/security.md), so
/// that no value a central system sends (9223372036854775807 is a valid OCPP integer) reaches
/// arithmetic: negative values are refused, larger ones taken at the bound.
public struct TransferRetries: Sendable, Equatable {
    public var retries: Int
    public var interval: Int
    /// At most this many retries (11 attempts in all).
    public static let maxRetries = 10
    /// At most this long between attempts, seconds (one hour).
    public static let maxInterval = 3_600

    /// Nil when either is negative; each above its bound is taken at the bound.
    public init?(retries: Int?, retryInterval: Int?) {
        let r = retries ?? 0, i = retryInterval ?? 0
        guard r >= 0, i >= 0 else { return nil }
        self.retries = min(r, Self.maxRetries)
        self.interval = min(i, Self.maxInterval)
    }
    /// What was taken at a bound, for the log ("" when nothing was).
    public static func clampNote(retries: Int?, retryInterval: Int?) -> String {
        var n: [String] = []
        if let r = retries, r > maxRetries { n.append("retries \(r) taken as \(maxRetries)") }
        if let i = retryInterval, i > maxInterval { n.append("retryInterval \(i) taken as \(maxInterval) s") }
        return n.joined(separator: ", ")
    }
    /// Attempts in all (1 + retries): at most 11.
    public var attempts: Int { 1 + retries }
    /// Whether stored values are within the bounds as they are (a state file is outside input too).
    public static func within(retries: Int, interval: Int) -> Bool {
        (0...maxRetries).contains(retries) && (0...maxInterval).contains(interval)
    }
}

/// GetDiagnostics (OCPP 1.6 §5.8, §6.33): the location is a directory to upload into.
public struct GetDiagnosticsReq: Codable, Sendable, Equatable {
    public var location: String
    public var retries: Int?
    public var retryInterval: Int?
    public var startTime: String?
    public var stopTime: String?
}
public struct GetDiagnosticsConf: Codable, Sendable, Equatable {
    public var fileName: String?
    public init(fileName: String?) { self.fileName = fileName }
}

/// UpdateFirmware (OCPP 1.6 §5.19, §6.67).
public struct UpdateFirmwareReq: Codable, Sendable, Equatable {
    public var location: String
    public var retries: Int?
    public var retrieveDate: String
    public var retryInterval: Int?
}
public struct UpdateFirmwareConf: Codable, Sendable, Equatable { public init() {} }

/// SecurityEventNotification (security whitepaper ed. 2, §4.6): the events the whitepaper lists that this
/// charge point detects.
public struct SecurityEventNotificationReq: Codable, Sendable, Equatable {
    public var type: String
    public var timestamp: String
    public var techInfo: String?
    public init(type: String, timestamp: String, techInfo: String? = nil) { self.type = type; self.timestamp = timestamp; self.techInfo = techInfo }
}

/// CALLERROR codes (OCPP-J 1.6 §4.2.3; "Occurence" is spelled as 1.6 spells it).
public enum CallErrorCode: String, Codable, Sendable {
    case NotImplemented, NotSupported, InternalError, ProtocolError, SecurityError, FormationViolation,
         PropertyConstraintViolation, OccurenceConstraintViolation, TypeConstraintViolation, GenericError

    /// The code for a payload that did not decode, and a sentence naming the field.
    public static func of(_ error: any Error) -> (code: CallErrorCode, text: String) {
        guard let d = error as? DecodingError else { return (.FormationViolation, "\(error)") }
        func path(_ p: [any CodingKey], _ last: (any CodingKey)? = nil) -> String {
            let keys = (p + (last.map { [$0] } ?? [])).map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.isEmpty ? "payload" : keys.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
        }
        switch d {
        case .keyNotFound(let k, let c): return (.OccurenceConstraintViolation, "\(path(c.codingPath, k)) is required")
        case .valueNotFound(_, let c): return (.OccurenceConstraintViolation, "\(path(c.codingPath)) must not be null")
        case .typeMismatch(let t, let c): return (.TypeConstraintViolation, "\(path(c.codingPath)) must be \(jsonType(t))")
        case .dataCorrupted(let c): return (.PropertyConstraintViolation, "\(path(c.codingPath)): \(c.debugDescription)")
        @unknown default: return (.FormationViolation, "\(d)")
        }
    }

    static func jsonType(_ t: Any.Type) -> String {
        switch t {
        case is String.Type: return "a string"
        case is Int.Type, is Int64.Type, is Int32.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        case is Bool.Type: return "a boolean"
        default: return String(describing: t).hasPrefix("Array") ? "an array" : "an object"
        }
    }
}

/// One OCPP-J message as it arrives: [2, id, action, payload] | [3, id, payload] | [4, id, code, text, details].
public enum OCPPFrame: Sendable, Equatable {
    case call(id: String, action: String, payload: JSONValue)
    case result(id: String, payload: JSONValue)
    case error(id: String, code: String, text: String)

    /// Why a text is not a frame; `callId` is set when the text is a CALL whose id could be read (it is
    /// answered with a FormationViolation), nil when nothing can be answered.
    public struct Malformed: Error, Sendable, Equatable { public var callId: String?; public var why: String }

    public static func parse(_ text: String) -> Result<OCPPFrame, Malformed> {
        let v: JSONValue
        do { v = try JSONValue(json: text) } catch let e as JSONTooDeep {
            return .failure(Malformed(callId: nil, why: "JSON \(e)"))
        } catch { return .failure(Malformed(callId: nil, why: "not JSON")) }
        guard case .array(let a) = v, a.count >= 3 else { return .failure(Malformed(callId: nil, why: "not an array of 3 or more")) }
        guard case .int(let type) = a[0] else { return .failure(Malformed(callId: nil, why: "the message type is not a number")) }
        guard case .string(let id) = a[1] else { return .failure(Malformed(callId: nil, why: "the message id is not a string")) }
        switch type {
        case 2:
            guard a.count == 4, case .string(let action) = a[2] else {
                return .failure(Malformed(callId: id, why: "a CALL is [2, id, action, payload]"))
            }
            guard case .object = a[3] else { return .failure(Malformed(callId: id, why: "the payload of \(action) is not an object")) }
            return .success(.call(id: id, action: action, payload: a[3]))
        case 3:
            return .success(.result(id: id, payload: a[2]))
        case 4:
            guard case .string(let code) = a[2] else { return .failure(Malformed(callId: nil, why: "a CALLERROR without its code")) }
            var text = ""
            if a.count > 3, case .string(let s) = a[3] { text = s }
            return .success(.error(id: id, code: code, text: text))
        default:
            return .failure(Malformed(callId: nil, why: "message type \(type) is not 2, 3 or 4"))
        }
    }

    /// The text of a CALL.
    public static func call(id: String, action: OCPPAction, payload: some Encodable) -> String? {
        OCPPJSON.text(Envelope(head: [.int(2), .string(id), .string(action.rawValue)], payload: payload))
    }
    /// The text of a CALLRESULT.
    public static func result(id: String, payload: some Encodable) -> String? {
        OCPPJSON.text(Envelope(head: [.int(3), .string(id)], payload: payload))
    }
    /// The text of a CALLERROR (details: an empty object).
    public static func error(id: String, code: CallErrorCode, text: String) -> String? {
        OCPPJSON.text(Envelope(head: [.int(4), .string(id), .string(code.rawValue), .string(text)], payload: JSONValue.object([:])))
    }

    struct Envelope<P: Encodable>: Encodable {
        var head: [JSONValue]
        var payload: P
        func encode(to encoder: any Encoder) throws {
            var c = encoder.unkeyedContainer()
            for h in head { try c.encode(h) }
            try c.encode(payload)
        }
    }
}

// MARK: shared types (OCPP 1.6 §7)

public enum AuthorizationStatus: String, Codable, Sendable { case Accepted, Blocked, Expired, Invalid, ConcurrentTx }
public struct IdTagInfo: Codable, Sendable, Equatable {
    public var status: AuthorizationStatus
    public var expiryDate: String?
    public var parentIdTag: String?
    public init(status: AuthorizationStatus, expiryDate: String? = nil, parentIdTag: String? = nil) {
        self.status = status; self.expiryDate = expiryDate; self.parentIdTag = parentIdTag
    }
}
public enum RegistrationStatus: String, Codable, Sendable { case Accepted, Pending, Rejected }
public enum ChargePointStatus: String, Codable, Sendable {
    case Available, Preparing, Charging, SuspendedEV, SuspendedEVSE, Finishing, Reserved, Unavailable, Faulted
}
public enum ChargePointErrorCode: String, Codable, Sendable {
    case ConnectorLockFailure, EVCommunicationError, GroundFailure, HighTemperature, InternalError, LocalListConflict,
         NoError, OtherError, OverCurrentFailure, OverVoltage, PowerMeterFailure, PowerSwitchFailure, ReaderFailure,
         ResetFailure, UnderVoltage, WeakSignal
}
public enum StopTransactionReason: String, Codable, Sendable {
    case EmergencyStop, EVDisconnected, HardReset, Local, Other, PowerLoss, Reboot, Remote, SoftReset, UnlockCommand, DeAuthorized
}
public struct SampledValue: Codable, Sendable, Equatable {
    public var value: String
    public var context: String?
    public var format: String?
    public var measurand: String?
    public var phase: String?
    public var location: String?
    public var unit: String?
    public init(value: String, context: String? = nil, measurand: String? = nil, location: String? = nil, unit: String? = nil) {
        self.value = value; self.context = context; self.measurand = measurand; self.location = location; self.unit = unit
    }
}
public struct MeterValue: Codable, Sendable, Equatable {
    public var timestamp: String
    public var sampledValue: [SampledValue]
    public init(timestamp: String, sampledValue: [SampledValue]) { self.timestamp = timestamp; self.sampledValue = sampledValue }
}
/// An answer that is only a status.
public struct StatusConf<S: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var status: S
    public init(_ status: S) { self.status = status }
}
public enum AcceptedRejected: String, Codable, Sendable { case Accepted, Rejected }

// MARK: what the charge point sends (and what comes back)

public struct BootNotificationReq: Codable, Sendable, Equatable {
    public var chargePointVendor: String
    public var chargePointModel: String
    public var chargePointSerialNumber: String?
    public var firmwareVersion: String?
    public init(chargePointVendor: String, chargePointModel: String, chargePointSerialNumber: String?, firmwareVersion: String?) {
        self.chargePointVendor = chargePointVendor; self.chargePointModel = chargePointModel
        self.chargePointSerialNumber = chargePointSerialNumber; self.firmwareVersion = firmwareVersion
    }
}
public struct BootNotificationConf: Codable, Sendable, Equatable {
    public var status: RegistrationStatus
    public var currentTime: String
    public var interval: Int
}
public struct HeartbeatReq: Codable, Sendable, Equatable { public init() {} }
public struct HeartbeatConf: Codable, Sendable, Equatable { public var currentTime: String }
public struct AuthorizeReq: Codable, Sendable, Equatable {
    public var idTag: String
    public init(idTag: String) { self.idTag = idTag }
}
public struct AuthorizeConf: Codable, Sendable, Equatable { public var idTagInfo: IdTagInfo }
public struct StartTransactionReq: Codable, Sendable, Equatable {
    public var connectorId: Int
    public var idTag: String
    public var meterStart: Int
    public var reservationId: Int?
    public var timestamp: String
    public init(connectorId: Int, idTag: String, meterStart: Int, timestamp: String) {
        self.connectorId = connectorId; self.idTag = idTag; self.meterStart = meterStart; self.timestamp = timestamp
    }
}
public struct StartTransactionConf: Codable, Sendable, Equatable {
    public var idTagInfo: IdTagInfo
    public var transactionId: Int
}
public struct StopTransactionReq: Codable, Sendable, Equatable {
    public var idTag: String?
    public var meterStop: Int
    public var timestamp: String
    public var transactionId: Int
    public var reason: StopTransactionReason?
    public var transactionData: [MeterValue]?
    public init(idTag: String?, meterStop: Int, timestamp: String, transactionId: Int, reason: StopTransactionReason?) {
        self.idTag = idTag; self.meterStop = meterStop; self.timestamp = timestamp; self.transactionId = transactionId; self.reason = reason
    }
}
public struct StopTransactionConf: Codable, Sendable, Equatable { public var idTagInfo: IdTagInfo? }
public struct MeterValuesReq: Codable, Sendable, Equatable {
    public var connectorId: Int
    public var transactionId: Int?
    public var meterValue: [MeterValue]
    public init(connectorId: Int, transactionId: Int?, meterValue: [MeterValue]) {
        self.connectorId = connectorId; self.transactionId = transactionId; self.meterValue = meterValue
    }
}
public struct MeterValuesConf: Codable, Sendable, Equatable {}
public struct StatusNotificationReq: Codable, Sendable, Equatable {
    public var connectorId: Int
    public var errorCode: ChargePointErrorCode
    public var info: String?
    public var status: ChargePointStatus
    public var timestamp: String?
    /// CiString50: the charge point's own code for the error (ours: the fault code, "E34-metering-deviation").
    public var vendorErrorCode: String?
    public init(connectorId: Int, errorCode: ChargePointErrorCode, status: ChargePointStatus, timestamp: String?,
                info: String? = nil, vendorErrorCode: String? = nil) {
        self.connectorId = connectorId; self.errorCode = errorCode; self.status = status; self.timestamp = timestamp
        self.info = info; self.vendorErrorCode = vendorErrorCode
    }
}
public struct StatusNotificationConf: Codable, Sendable, Equatable {}

// MARK: what the central system asks (and the answers)

public struct RemoteStartTransactionReq: Codable, Sendable, Equatable {
    public var connectorId: Int?
    public var idTag: String
    public var chargingProfile: ChargingProfile?
}
public struct RemoteStopTransactionReq: Codable, Sendable, Equatable { public var transactionId: Int }
public struct SetChargingProfileReq: Codable, Sendable, Equatable {
    public var connectorId: Int
    public var csChargingProfiles: ChargingProfile
}
public enum ChargingProfileStatus: String, Codable, Sendable { case Accepted, Rejected, NotSupported }
public struct ClearChargingProfileReq: Codable, Sendable, Equatable {
    public var id: Int?
    public var connectorId: Int?
    public var chargingProfilePurpose: ProfilePurpose?
    public var stackLevel: Int?
}
public enum ClearChargingProfileStatus: String, Codable, Sendable { case Accepted, Unknown }
public struct GetCompositeScheduleReq: Codable, Sendable, Equatable {
    public var connectorId: Int
    public var duration: Int
    public var chargingRateUnit: RateUnit?
    /// The longest window answered, seconds (31 days): a duration from the central system never reaches
    /// the schedule's millisecond arithmetic or its day-by-day walk unbounded.
    public static let maxDuration = 31 * 86_400
    /// Why the request's duration is refused (PropertyConstraintViolation), nil when it is taken.
    public var durationProblem: String? {
        (1...Self.maxDuration).contains(duration) ? nil : "duration must be 1...\(Self.maxDuration) s (31 days), not \(duration)"
    }
}
public struct GetCompositeScheduleConf: Codable, Sendable, Equatable {
    public var status: AcceptedRejected
    public var connectorId: Int?
    public var scheduleStart: String?
    public var chargingSchedule: ChargingSchedule?
    public init(status: AcceptedRejected, connectorId: Int? = nil, scheduleStart: String? = nil, chargingSchedule: ChargingSchedule? = nil) {
        self.status = status; self.connectorId = connectorId; self.scheduleStart = scheduleStart; self.chargingSchedule = chargingSchedule
    }
}
public struct ChangeConfigurationReq: Codable, Sendable, Equatable {
    public var key: String
    public var value: String
}
public enum ConfigurationStatus: String, Codable, Sendable { case Accepted, Rejected, RebootRequired, NotSupported }
public enum AvailabilityType: String, Codable, Sendable { case Inoperative, Operative }
public struct ChangeAvailabilityReq: Codable, Sendable, Equatable {
    public var connectorId: Int
    public var type: AvailabilityType
}
public enum AvailabilityStatus: String, Codable, Sendable { case Accepted, Rejected, Scheduled }
public struct GetConfigurationReq: Codable, Sendable, Equatable { public var key: [String]? }
/// DataTransfer (OCPP 1.6 §6.17): a vendor's own message; its id and data are the vendor's.
public struct DataTransferReq: Codable, Sendable, Equatable {
    public var vendorId: String
    public var messageId: String?
    public var data: String?
}
public enum DataTransferStatus: String, Codable, Sendable { case Accepted, Rejected, UnknownMessageId, UnknownVendorId }
public struct DataTransferConf: Codable, Sendable, Equatable {
    public var status: DataTransferStatus
    public var data: String?
    public init(status: DataTransferStatus, data: String? = nil) { self.status = status; self.data = data }
}
/// ClearCache (OCPP 1.6 §5.4): an empty request.
public struct ClearCacheReq: Codable, Sendable, Equatable {}
public struct KeyValue: Codable, Sendable, Equatable {
    public var key: String
    public var readonly: Bool
    public var value: String?
    public init(key: String, readonly: Bool, value: String?) { self.key = key; self.readonly = readonly; self.value = value }
}
public struct GetConfigurationConf: Codable, Sendable, Equatable {
    public var configurationKey: [KeyValue]?
    public var unknownKey: [String]?
    public init(configurationKey: [KeyValue]?, unknownKey: [String]?) { self.configurationKey = configurationKey; self.unknownKey = unknownKey }
}

// MARK: remote trigger (OCPP 1.6 §5.17)

/// The messages a central system may trigger: TriggerMessage's six, and the two only
/// ExtendedTriggerMessage (security whitepaper) asks for.
public enum MessageTrigger: String, Codable, Sendable, CaseIterable {
    case BootNotification, DiagnosticsStatusNotification, FirmwareStatusNotification, Heartbeat, MeterValues, StatusNotification
    case LogStatusNotification, SignChargePointCertificate
}
public struct TriggerMessageReq: Codable, Sendable, Equatable {
    public var requestedMessage: MessageTrigger
    public var connectorId: Int?
    public init(requestedMessage: MessageTrigger, connectorId: Int?) { self.requestedMessage = requestedMessage; self.connectorId = connectorId }
}
public enum TriggerMessageStatus: String, Codable, Sendable { case Accepted, Rejected, NotImplemented }
/// DiagnosticsStatusNotification (§6.18) and FirmwareStatusNotification (§6.26; FirmwareStatus is in
/// OCPPSecurity.swift with the signed update's steps).
public enum DiagnosticsStatus: String, Codable, Sendable { case Idle, Uploaded, UploadFailed, Uploading }
public struct DiagnosticsStatusNotificationReq: Codable, Sendable, Equatable {
    public var status: DiagnosticsStatus
    public init(status: DiagnosticsStatus) { self.status = status }
}
public struct FirmwareStatusNotificationReq: Codable, Sendable, Equatable {
    public var status: FirmwareStatus
    public init(status: FirmwareStatus) { self.status = status }
}

// MARK: Reset (OCPP 1.6 §5.14)

public enum ResetType: String, Codable, Sendable { case Hard, Soft }
public struct ResetReq: Codable, Sendable, Equatable { public var type: ResetType }

// MARK: UnlockConnector (OCPP 1.6 §5.18)

public struct UnlockConnectorReq: Codable, Sendable, Equatable { public var connectorId: Int }
public enum UnlockStatus: String, Codable, Sendable { case Unlocked, UnlockFailed, NotSupported }
