// The OCPP 1.6J charge point as a state machine (issue 34): a frame from the central system, a loop
// event or a turn of the client's thread, and the time, go in; the charge point's state changes and what
// it must do comes out as plain values (ChargePointEffect: a frame to send, a journal line, a state file to
// store, a restart). No socket, file, thread or clock here: GridInterfaces' OCPPClient is the transport
// that carries the effects out, and the tests drive this with plain values (Tests/OCPPChargePointTests).
//
// Connectors are the guns (connector N = gun N-1; connector 0 the whole station).
// - Boot, heartbeat at the central system's interval, a StatusNotification per connector on change.
// - Authorization: an idTag presented at the plug (Authorize) or a RemoteStartTransaction; until then a
//   plugged car waits unlocked (the core's `authorized` input). Free vend where the site says so.
// - Transactions: StartTransaction when the session begins (lock), MeterValues every meter interval,
//   StopTransaction at its end. These go through a queue kept on storage: offline they wait, and on
//   reconnect they are sent in order, each kept until the central system answered it (none lost; one
//   may arrive twice if the answer was lost, as OCPP 1.6 §4.10 allows).
// - Smart charging: Set/ClearChargingProfile into the grid state's store (persisted), GetCompositeSchedule
//   answered from the same composite the loop is fed.
// - The calls whose work is files, certificates or transfers (UpdateFirmware, GetDiagnostics, the security
//   extension's, AuthorizationKey and SecurityProfile) are checked and handed to the transport whole
//   (`.delegated`): the transport's firmware, diagnostics and security parts answer them.
import ChargerCore
import Foundation
import Grid
import LoopContract
import SiteFile

/// What the charge point asks its transport to do, in order.
package enum ChargePointEffect: Equatable, Sendable {
    /// A frame for the central system (a CALL, a CALLRESULT or a CALLERROR).
    case send(String)
    /// A line for the journal and the console (kind, text).
    case log(String, String)
    /// An authorization decision (its own journal record).
    case authorization(AuthorizationRecord, String)
    /// A state file to store again (its content is the charge point's or the grid state's now).
    case save(StateFile)
    /// A security event to append to the security log.
    case securityLog(SecurityEventNotificationReq)
    /// The controller restarts (an accepted Reset carried out).
    case reset(ResetType)
    /// The connection ends (and, `now`, is made again at once) for the reason given.
    case disconnect(String, now: Bool)
    /// A call whose work is the transport's (files, certificates, transfers): its id, action and payload.
    case delegated(String, OCPPAction, JSONValue)
    /// A triggered message whose content the transport makes (SignChargePointCertificate: a key and a CSR).
    case signingRequest
    /// The console's status line.
    case status(String)
}

/// The state files the charge point keeps (state_dir).
package enum StateFile: String, Sendable, Equatable {
    case profiles, availability, configuration, authorization, reservations, queue, securityEvents
}

package struct QueuedMessage: Codable, Equatable, Sendable {
    package var seq: UInt64
    /// The action and its payload as JSON (transactionId holds the local reference until resolved).
    package var action: String
    package var payload: String
    /// The local transaction reference (negative) or the central system's id.
    package var txRef: Int
    package var gun: Int
    /// How often the central system refused it with a CALLERROR (nil: never; older queue files).
    package var attempts: Int? = nil

    package var idTag: String? {
        guard case .object(let f)? = try? JSONValue(json: payload), case .string(let t)? = f["idTag"] else { return nil }
        return t
    }
}

package struct Availability: Codable, Sendable {
    package var inoperative: [Int]
    package init(inoperative: [Int]) { self.inoperative = inoperative }
}

package struct PersistedQueue: Codable, Sendable {
    package var nextSeq: UInt64 = 1
    package var nextRef: Int = -1
    package var messages: [QueuedMessage] = []
    /// Local reference -> the central system's transaction id.
    package var resolved: [String: Int] = [:]
    package init() {}
}

/// Where the transport's transfers stand, as the charge point reads them for a triggered status.
package struct TransferView: Sendable, Equatable {
    /// A firmware update in hand (a job kept or a download running), and its last status.
    package var firmwareBusy = false
    package var firmwareLast = FirmwareEvent(status: .Idle, requestId: nil)
    package var diagnosticsRunning = false
    /// The GetLog request an upload runs for.
    package var logRequest: Int? = nil
    package init() {}
}

/// A firmware status to notify: FirmwareStatusNotification, or SignedFirmwareStatusNotification when it
/// belongs to a signed update's request.
package struct FirmwareEvent: Sendable, Equatable {
    package var status: FirmwareStatus
    package var requestId: Int?
    package init(status: FirmwareStatus, requestId: Int?) { self.status = status; self.requestId = requestId }
}

package struct ChargePoint: Sendable {
    package let config: OCPPConfig
    package let firmware: String
    package let gunCount: Int

    // What the transport can do (set once by it).
    /// A Reset can be carried out (the process can restart itself); Rejected otherwise.
    package var canReset = false
    /// A certificate store (state_dir): SignChargePointCertificate can be triggered.
    package var hasCertificateStore = false

    // The inputs of a step, set by the transport before it.
    /// Monotonic seconds.
    package var now = 0.0
    /// The WebSocket is open, and to whom (host:port, for the status line).
    package var connected = false
    package var peer = ""
    /// The grid state, the charge point's for the length of a step (the transport swaps the shared one in
    /// under its lock, and back after).
    package var grid: GridState
    /// Where the transport's transfers stand.
    package var transfers = TransferView()
    /// Meter intervals are in station time: at a simulation speed above 1 they come that much sooner.
    package var speedFactor: Double = 1

    /// What the last steps asked for, in order (taken by the transport).
    package internal(set) var effects: [ChargePointEffect] = []

    package var booted = false
    /// The configuration keys the central system may change (ChangeConfiguration), persisted.
    package var settings: OCPPSettings
    package var heartbeatInterval: TimeSpan {
        get { .s(Int64(settings.heartbeatInterval)) }
        set { settings.heartbeatInterval = max(1, Int(newValue.seconds)) }
    }
    var meterInterval: TimeSpan { .s(Int64(settings.meterValueSampleInterval)) }
    var connectionTimeout: TimeSpan { .s(Int64(settings.connectionTimeOut)) }
    /// The Local Authorization List and the Authorization Cache, persisted.
    package var localAuth = LocalAuthorization()
    /// Connectors reserved (ReserveNow), persisted.
    package var reservations = Reservations()
    /// The security profile in use: the site's, or the higher one the central system moved it to.
    package var securityProfile = 0
    /// Security events not sent yet (SecurityEventNotification; at most 50, the oldest dropped first),
    /// kept in state_dir/security-events.json until sent; every event is also in state_dir/security.log.
    package var securityEvents: [SecurityEventNotificationReq] = []
    /// Why the connection is to be made again once this call's answer is out (a new AuthorizationKey, a
    /// raised security profile, a new charge point certificate).
    package var reconnectAfterAnswer: String? = nil
    /// Status notifications of the transport's transfers, in order: firmware (signed with a request id),
    /// GetLog's and GetDiagnostics'.
    package var firmwareStatuses: [FirmwareEvent] = []
    package var logStatuses: [LogStatusNotificationReq] = []
    package var diagnosticsStatuses: [DiagnosticsStatus] = []
    /// The transaction queue's head is not sent again before this time (a CALLERROR's retry interval).
    var queueRetryAt = 0.0
    /// The clock-aligned interval the last aligned meter values belong to (station time).
    var lastAlignedSlot: Int64? = nil
    /// Per gun: values kept for StopTransaction's transactionData while a transaction runs.
    var transactionData: [[MeterValue]]
    /// MeterValues outside any transaction (clock-aligned values of an idle connector): sent when online.
    var idleMeterValues: [MeterValuesReq] = []
    /// Per gun: when (monotonic) an authorization was given with no car plugged (ConnectionTimeOut runs).
    var authorizedWaiting: [Double?]
    /// Per gun: an availability change answered Scheduled, applied when the transaction ends.
    var scheduledAvailability: [Bool?]
    var lastSent = 0.0
    var lastHeartbeat = 0.0
    /// The call waiting for its answer (OCPP-J 1.6 §4.1.1: one at a time).
    package struct PendingCall: Sendable {
        package var id: String
        package var action: OCPPAction
        var sentAt: Double
        package var queued: UInt64?
        var gun: Int?
    }
    package var pending: PendingCall? = nil
    /// Authorize requests to send: the idTag presented at a gun's plug.
    var authorizeQueue: [(idTag: String, gun: Int)] = []
    package var queue = PersistedQueue()
    var nextCallId: UInt64 = 1
    package var observation = StationObservation()
    package var phase: [SessionPhase]
    /// Each connector's status as last sent, with its vendor error code (a metering record shows as an
    /// error beside the status it does not change).
    var sentStatus: [SentStatus?]
    struct SentStatus: Equatable { var status: ChargePointStatus; var vendorErrorCode: String? }
    /// Messages the central system triggered (TriggerMessage, ExtendedTriggerMessage: `extended`), sent in
    /// order ahead of everything else.
    package struct Trigger: Sendable {
        package var message: MessageTrigger
        package var connector: Int?
        package var extended = false
        package init(message: MessageTrigger, connector: Int?, extended: Bool = false) {
            self.message = message; self.connector = connector; self.extended = extended
        }
    }
    package var triggers: [Trigger] = []
    /// UnlockConnector calls waiting for the lock to open (their ids), and the guns whose transaction an
    /// unlock stopped; an unlock is answered UnlockFailed after `unlockWait` seconds (inside a central
    /// system's usual 30 s call timeout).
    var pendingUnlocks: [(id: String, gun: Int, deadline: Double)] = []
    var unlockStopped: Set<Int> = []
    let unlockWait = 20.0
    /// A Reset accepted and not yet carried out; the guns whose transactions it stopped.
    var resetPending: ResetType? = nil
    var resetStopped: Set<Int> = []
    /// A restart was asked for (a Reset or a firmware installed): nothing asks again.
    package var resetFired = false
    /// Guns whose transaction a RemoteStopTransaction stopped, and whose StartTransaction's answer did not
    /// accept the idTag.
    var remoteStopped = Set<Int>()
    var deauthorized = Set<Int>()
    package var idTag: [String?]
    /// Per gun: the local transaction reference while a transaction runs.
    package var txRef: [Int?]
    var txStart: [Int64?]
    var meterStart: [Double]
    var lastMeter: [Double]
    var pendingTxProfile: [ChargingProfile?]
    /// A BootNotification answered Pending or Rejected is sent again at this time.
    var bootRetryAt = 0.0
    /// The idTag a driver presents at each gun's plug (a card at the reader), for the simulation.
    package var presentedTags: [String?]
    /// Per gun: where plug and charge by VIN stands for the car plugged (VIN.swift).
    var vinStage: [VINStage]

    package init(config: OCPPConfig, firmware: String, gunCount: Int, grid: GridState) {
        self.config = config; self.firmware = firmware; self.gunCount = gunCount; self.grid = grid
        settings = OCPPSettings(heartbeatInterval: Int(config.heartbeatInterval.seconds), meterValueSampleInterval: Int(config.meterInterval.seconds),
                                connectionTimeOut: Int(config.connectionTimeout.seconds))
        transactionData = Array(repeating: [], count: gunCount)
        authorizedWaiting = Array(repeating: nil, count: gunCount)
        scheduledAvailability = Array(repeating: nil, count: gunCount)
        phase = Array(repeating: .unplugged, count: gunCount)
        sentStatus = Array(repeating: nil, count: gunCount + 1)
        idTag = Array(repeating: nil, count: gunCount)
        txRef = Array(repeating: nil, count: gunCount)
        txStart = Array(repeating: nil, count: gunCount)
        meterStart = Array(repeating: 0, count: gunCount)
        lastMeter = Array(repeating: 0, count: gunCount)
        pendingTxProfile = Array(repeating: nil, count: gunCount)
        vinStage = Array(repeating: .none, count: gunCount)
        presentedTags = Array(repeating: nil, count: gunCount)
        securityProfile = config.securityProfile
    }

    /// The effects asked for since the last take, in order.
    package mutating func takeEffects() -> [ChargePointEffect] {
        defer { effects.removeAll(keepingCapacity: true) }
        return effects
    }

    // MARK: effects

    mutating func log(_ kind: String, _ text: String) { effects.append(.log(kind, text)) }
    mutating func authorization(_ a: AuthorizationRecord, text: String) { effects.append(.authorization(a, text)) }
    mutating func save(_ f: StateFile) { effects.append(.save(f)) }
    mutating func setStatus(_ s: String) { effects.append(.status(s)) }

    /// The station clock now, for timestamps.
    package var stationMillis: Int64 { grid.clock.epochMillis(observation.at) }
    var timestamp: String { Timestamp.format(stationMillis) }

    /// Online: booted and connected (the central system can answer an Authorize now).
    package var online: Bool { booted && connected }

    /// Per gun: Inoperative.
    var unavailable: [Bool] { grid.unavailable }

    /// Sets a gun Operative or Inoperative now (the loop takes it out of service, as `service GUN off`).
    mutating func setAvailable(_ g: Int, _ available: Bool) {
        scheduledAvailability[g] = nil
        guard unavailable[g] == available else { return }
        grid.unavailable[g] = !available
        save(.availability)
        log("ocpp", "connector \(g + 1) " + (available ? "Operative" : "Inoperative (out of service)"))
    }

    /// A security event for the central system (and the journal), sent once online.
    package mutating func securityEvent(_ type: String, _ info: String? = nil) {
        // The oldest goes when 50 wait (not the one sent and waiting for its answer).
        if securityEvents.count >= 50 { securityEvents.remove(at: pending?.action == .SecurityEventNotification ? 1 : 0) }
        let e = SecurityEventNotificationReq(type: type, timestamp: timestamp, techInfo: info.map { String($0.prefix(255)) })
        securityEvents.append(e)
        save(.securityEvents)
        effects.append(.securityLog(e))
        log("ocpp", "security event \(type)" + (info.map { ": \($0)" } ?? ""))
    }

    /// The central system answered the oldest security event: it leaves the queue.
    mutating func securityEventDelivered() {
        guard !securityEvents.isEmpty else { return }
        securityEvents.removeFirst()
        save(.securityEvents)
    }

    /// The feature profiles this charge point implements (SupportedFeatureProfiles).
    /// FirmwareManagement only with a firmware_dir to install into (GetDiagnostics works either way).
    var featureProfiles: String {
        "Core" + (config.firmwareDirectory != nil ? ",FirmwareManagement" : "") + ",LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger"
    }
    package var facts: OCPPSettings.Facts {
        .init(connectors: gunCount, featureProfiles: featureProfiles, maxStackLevel: ProfileStore.maxStackLevel,
              maxPeriods: ProfileStore.maxPeriods, maxProfiles: ProfileStore.maxProfiles, securityProfile: securityProfile)
    }

    /// The configuration keys this charge point has (OCPP 1.6 §9), with their values now.
    func configuration() -> [KeyValue] {
        let f = facts
        return OCPPSettings.keys.map { KeyValue(key: $0.name, readonly: !$0.writable, value: settings.value($0.name, f)) }
    }

    // MARK: frames out

    /// A call to the central system (one at a time: it waits for its answer).
    package mutating func call(_ action: OCPPAction, _ payload: some Encodable, queued: UInt64? = nil, gun: Int? = nil) {
        let id = String(nextCallId)
        nextCallId += 1
        guard let text = OCPPFrame.call(id: id, action: action, payload: payload) else { return }
        pending = PendingCall(id: id, action: action, sentAt: now, queued: queued, gun: gun)
        lastSent = now
        effects.append(.send(text))
    }

    package mutating func reply(_ id: String, _ payload: some Encodable) {
        guard let text = OCPPFrame.result(id: id, payload: payload) else { return }
        effects.append(.send(text))
        if let why = reconnectAfterAnswer {
            // The connection is made again with what changed, at once.
            reconnectAfterAnswer = nil
            effects.append(.disconnect("reconnecting with \(why)", now: true))
        }
    }

    package mutating func replyError(_ id: String, _ code: CallErrorCode, _ text: String) {
        guard let frame = OCPPFrame.error(id: id, code: code, text: text) else { return }
        effects.append(.send(frame))
    }

    // MARK: the connection

    /// The connection was made: after a reconnect every connector's status is said again.
    package mutating func connectionMade() {
        lastSent = now
        if booted { for i in sentStatus.indices { sentStatus[i] = nil } }
    }

    /// The connection was lost: a call without its answer is dropped (a queued one is sent again).
    package mutating func connectionLost() { pending = nil }
}

func wholeText(_ x: Double) -> String { String(format: "%.0f", x) }

extension FirmwareStatus {
    /// OCPP 1.6's own firmware statuses (FirmwareStatusNotification); the others are the signed update's.
    package static let unsigned: Set<FirmwareStatus> = [
        .Downloaded, .DownloadFailed, .Downloading, .Idle, .InstallationFailed, .Installing, .Installed,
    ]
}
