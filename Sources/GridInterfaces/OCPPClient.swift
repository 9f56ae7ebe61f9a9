// The OCPP 1.6J charge point (OCPP 1.6 edition 2, JSON over WebSocket, subprotocol "ocpp1.6"), on its
// own thread. Connectors are the guns (connector N = gun N-1; connector 0 the whole station).
//
// - Boot, heartbeat at the central system's interval, a StatusNotification per connector on change.
// - Authorization: an idTag presented at the plug (Authorize) or a RemoteStartTransaction; until then a
//   plugged car waits unlocked (the core's `authorized` input). Free vend where the site says so.
// - Transactions: StartTransaction when the session begins (lock), MeterValues every meter interval,
//   StopTransaction at its end. These go through a queue kept on storage: offline they wait, and on
//   reconnect they are sent in order, each kept until the central system answered it (none lost; one
//   may arrive twice if the answer was lost, as OCPP 1.6 §4.10 allows).
// - Smart charging: Set/ClearChargingProfile into the GridHub's store (persisted), GetCompositeSchedule
//   answered from the same composite the loop is fed.
import SiteFile
import ChargerCore
import Foundation
import Grid
import LoopContract
import RealTime
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public struct OCPPError: Error, CustomStringConvertible { public var description: String }

/// A transaction message waiting for the central system, as stored.
struct QueuedMessage: Codable, Equatable {
    var seq: UInt64
    /// StartTransaction, StopTransaction or MeterValues (OCPPAction's raw value).
    var action: String
    /// The payload as JSON text; "transactionId" is filled from `txRef` when sent.
    var payload: String
    /// Local reference of the transaction (negative until StartTransaction is answered).
    var txRef: Int
    var gun: Int
    /// Times the central system answered it with a CALLERROR (absent in a queue of an older version).
    var attempts: Int? = nil

    /// The idTag the payload carries (StartTransaction, StopTransaction).
    var idTag: String? {
        guard case .object(let f)? = try? JSONValue(json: payload), case .string(let tag)? = f["idTag"] else { return nil }
        return tag
    }
}

/// Connectors the central system made Inoperative (gun indexes), as stored.
struct Availability: Codable { var inoperative: [Int] }

struct PersistedQueue: Codable {
    var nextSeq: UInt64 = 1
    var nextRef: Int = -1
    var messages: [QueuedMessage] = []
    /// Local references resolved to the central system's transaction ids.
    var resolved: [String: Int] = [:]
}

public final class OCPPClient: @unchecked Sendable {
    let config: OCPPConfig
    let url: WebSocketURL
    let hub: GridHub
    let firmware: String
    let gunCount: Int
    private let thread = SideThread()

    /// Everything another thread hands the client thread, in one place under one lock: the main thread's
    /// loop events, observations and stop deadline; the side threads' firmware, diagnostics and log
    /// statuses and outcomes. (Seven locks and atomics before; issue 34.) The client thread takes what it
    /// needs at its own pace; nothing here is touched while another lock is held.
    struct Inbox {
        /// The main thread's: loop events (phases, session edges) and the latest observation.
        var events: [LoopEvent] = []
        var observation: StationObservation? = nil
        /// stop(flushWithin:): until when (monotonic ms) queued transaction messages may still go out.
        var flushDeadline: Int64 = 0
        /// UpdateFirmware's download thread: the statuses to notify (and the last one), the download's
        /// outcome, and whether a download runs.
        var firmware = FirmwareStatuses()
        var firmwareResult: FirmwareDownload? = nil
        var firmwareBusy = false
        /// GetDiagnostics' upload thread: the statuses not notified yet, and whether an upload runs.
        var diagnostics: [DiagnosticsStatus] = []
        var diagnosticsRunning = false
        /// GetLog's upload thread: the LogStatusNotifications to send, and the request an upload runs for.
        var logs: [LogStatusNotificationReq] = []
        var logRequest: Int? = nil
    }
    let inbox = Mutex(Inbox())
    /// The other way: the status the console reads (an outbox, not the client's input).
    private let statusText = Mutex("OCPP: not connected yet")

    // The client thread's own state (touched by that thread only, after start).
    var ws: WebSocketConnection? = nil
    var booted = false
    /// The configuration keys the central system may change (ChangeConfiguration), persisted.
    var settings: OCPPSettings
    var heartbeatInterval: TimeSpan {
        get { .s(Int64(settings.heartbeatInterval)) }
        set { settings.heartbeatInterval = max(1, Int(newValue.seconds)) }
    }
    var meterInterval: TimeSpan { .s(Int64(settings.meterValueSampleInterval)) }
    var connectionTimeout: TimeSpan { .s(Int64(settings.connectionTimeOut)) }
    /// The Local Authorization List and the Authorization Cache, persisted.
    var localAuth = LocalAuthorization()
    /// Connectors reserved (ReserveNow), persisted.
    var reservations = Reservations()
    /// Security profiles 1 and 2: the HTTP Basic password (the AuthorizationKey's bytes; never logged).
    var authorizationKey: [UInt8]? = nil
    /// The security profile in use: the site's, or the higher one the central system moved it to
    /// (ChangeConfiguration SecurityProfile, kept in state_dir/security-profile).
    var securityProfile = 0
    /// Security events not sent yet (SecurityEventNotification; at most 50, the oldest dropped first),
    /// kept in state_dir/security-events.json until sent; every event is also in state_dir/security.log.
    var securityEvents: [SecurityEventNotificationReq] = []
    /// The security extension's certificates and the charge point's key (state_dir/certificates; nil
    /// without a state_dir).
    var certificates: CertificateStore? = nil
    /// WebSocketPingInterval: when the last ping went out (monotonic) and the pong count then (nil: no
    /// ping outstanding on this connection).
    var lastPing = 0.0
    var pongsAtPing: Int? = nil
    /// The charge point's certificate renewal (A03): when it is looked at next, when a CSR went out last.
    var nextRenewalCheck = 0.0
    var lastRenewalRequest = -Double.infinity
    /// The connection is closed and made again once this call's answer is out (a new AuthorizationKey).
    /// Why, when the connection is to be made again once this call's answer is out (a new
    /// AuthorizationKey, a raised security profile, a new charge point certificate).
    var reconnectAfterAnswer: String? = nil
    /// GetDiagnostics: what is uploaded (the journal's records between two times, epoch ms; set by
    /// chargerd) and the upload's side thread (its statuses come through the inbox).
    public var diagnostics: (@Sendable (_ from: Int64?, _ to: Int64?) -> [UInt8])? = nil
    var diagnosticsThread: SideThread? = nil
    /// UpdateFirmware: the job (persisted), its download thread (its statuses and outcome come through
    /// the inbox), and whether a restart into the installed version is due.
    var firmwareJob: FirmwareJob? = nil
    var firmwareThread: SideThread? = nil
    var firmwareRestartDue = false
    /// This version was just installed and has not yet said it came up (firmware_dir/trial removed).
    var firmwareOnTrial = false
    /// When this client was made (monotonic seconds).
    var startedAt = 0.0
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
    struct PendingCall { var id: String; var action: OCPPAction; var sentAt: Double; var queued: UInt64?; var gun: Int? }
    var pending: PendingCall? = nil
    /// Authorize requests to send: the idTag presented at a gun's plug.
    var authorizeQueue: [(idTag: String, gun: Int)] = []
    var queue = PersistedQueue()
    var nextCallId: UInt64 = 1
    var observation = StationObservation()
    var phase: [SessionPhase]
    /// Each connector's status as last sent, with its vendor error code (a metering record shows as an
    /// error beside the status it does not change).
    var sentStatus: [SentStatus?]
    struct SentStatus: Equatable { var status: ChargePointStatus; var vendorErrorCode: String? }
    /// Messages the central system triggered (TriggerMessage, ExtendedTriggerMessage: `extended`), sent in
    /// order ahead of everything else.
    struct Trigger { var message: MessageTrigger; var connector: Int?; var extended = false }
    var triggers: [Trigger] = []
    /// UnlockConnector calls waiting for the lock to open (their ids), and the guns whose transaction an
    /// unlock stopped; an unlock is answered UnlockFailed after `unlockWait` seconds (inside a central
    /// system's usual 30 s call timeout).
    var pendingUnlocks: [(id: String, gun: Int, deadline: Double)] = []
    var unlockStopped: Set<Int> = []
    let unlockWait = 20.0
    /// A Reset accepted and not yet carried out; the guns whose transactions it stopped.
    var resetPending: ResetType? = nil
    var resetStopped: Set<Int> = []
    var resetFired = false
    /// How the process restarts for a Reset (set by chargerd; nil: Reset is Rejected). Called once, on the
    /// client's thread.
    public var onReset: (@Sendable (ResetType) -> Void)? = nil
    /// How the process restarts into a firmware version just installed (set by chargerd; without it the
    /// version waits for the next start).
    public var onFirmwareInstalled: (@Sendable (String) -> Void)? = nil
    var idTag: [String?]
    /// Per gun: the local transaction reference while a transaction runs.
    var txRef: [Int?]
    var txStart: [Int64?]
    var meterStart: [Double]
    var lastMeter: [Double]
    var pendingTxProfile: [ChargingProfile?]
    var connectedOnce = false
    var nextConnectAttempt = 0.0
    var nextOfflineLog = 0.0
    /// A BootNotification answered Pending or Rejected is sent again at this time.
    var bootRetryAt = 0.0
    public private(set) var presentedTags: [String?]
    /// Per gun: where plug and charge by VIN stands for the car plugged (OCPPVIN.swift).
    var vinStage: [VINStage]

    public init(config: OCPPConfig, hub: GridHub, firmware: String, gunCount: Int, presentedTags: [String?] = []) throws(OCPPError) {
        guard let u = WebSocketURL(config.url) else { throw OCPPError(description: "OCPP url '\(config.url)' is not ws:// or wss://") }
        self.config = config; url = u; self.hub = hub; self.firmware = firmware; self.gunCount = gunCount
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
        self.presentedTags = (0..<gunCount).map { $0 < presentedTags.count ? presentedTags[$0] : nil }
        startedAt = monotonic()
        securityProfile = config.securityProfile
        if let dir = config.stateDirectory {
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
            catch { throw OCPPError(description: "OCPP state_dir \(dir): \(error.localizedDescription)") }
            loadState(dir)
            do { certificates = try CertificateStore(directory: dir + "/certificates") }
            catch { hub.log("ocpp", "certificate store: \(error); the security extension's certificate messages are refused") }
            loadSecurityProfile()
        }
        if securityProfile == 1 || securityProfile == 2 {
            authorizationKey = loadAuthorizationKey()
            guard authorizationKey != nil else { throw OCPPError(description: "OCPP security profile \(securityProfile): no readable AuthorizationKey") }
        }
        securityEvent("StartupOfTheDevice", "chargerd \(firmware) started")
    }

    /// The AuthorizationKey the central system set last, else the site's (checked when the site was
    /// loaded); nil when neither reads. `quiet`: only looked for, nothing journalled.
    func loadAuthorizationKey(quiet: Bool = false) -> [UInt8]? {
        for (path, whose) in [(authorizationKeyPath, "set by the central system"), (config.authorizationKeyFile, "the site's")] {
            guard let path, let d = FileManager.default.contents(atPath: path) else { continue }
            if case .success(let k) = AuthorizationKey.bytes(String(decoding: d, as: UTF8.self)) {
                if !quiet { hub.log("ocpp", "security profile \(securityProfile): HTTP Basic with the AuthorizationKey \(whose) (\(path))") }
                return k
            }
            if !quiet { hub.log("ocpp", "AuthorizationKey in \(path) unreadable: not used") }
        }
        return nil
    }

    /// The idTag a driver presents at each gun's plug (a card at the reader), for the simulation.
    public func present(idTag tag: String?, gun: Int) { presentedTags[gun] = tag }

    // MARK: persistence

    var profilesPath: String? { config.stateDirectory.map { $0 + "/profiles.json" } }
    var queuePath: String? { config.stateDirectory.map { $0 + "/queue.json" } }
    var availabilityPath: String? { config.stateDirectory.map { $0 + "/availability.json" } }
    var configurationPath: String? { config.stateDirectory.map { $0 + "/configuration.json" } }
    var authorizationPath: String? { config.stateDirectory.map { $0 + "/authorization.json" } }
    var reservationsPath: String? { config.stateDirectory.map { $0 + "/reservations.json" } }
    /// An AuthorizationKey the central system set (ChangeConfiguration), over the site's key file.
    var authorizationKeyPath: String? { config.stateDirectory.map { $0 + "/authorization-key" } }

    func loadState(_ dir: String) {
        if let store = restored(ProfileStore.self, profilesPath, "charging profiles", valid: { $0.isValid }) {
            hub.with { $0.profiles = store }
            hub.log("ocpp", "\(store.profiles.count) charging profile(s) restored from \(profilesPath ?? "")")
        }
        // OCPP 1.6 §5.2: availability persists across restarts.
        if let a = restored(Availability.self, availabilityPath, "availability (every connector Operative)") {
            let n = gunCount
            let off = a.inoperative.filter { (0..<n).contains($0) }
            hub.with { s in for g in off { s.unavailable[g] = true } }
            if !off.isEmpty { hub.log("ocpp", "connector(s) \(off.map { String($0 + 1) }.joined(separator: ", ")) Inoperative, as before the restart") }
        }
        // OCPP 1.6 §5.3: a changed configuration persists; each stored value is checked as a
        // ChangeConfiguration would be (a value this version no longer takes is named and left out).
        if let stored = restored([String: String].self, configurationPath, "configuration (the site's and the defaults used)") {
            var bad: [String] = []
            for (k, v) in stored.sorted(by: { $0.key < $1.key }) {
                if case .failure(let why) = settings.set(k, v, connectors: gunCount) { bad.append(why.description) }
            }
            hub.log("ocpp", "configuration restored from \(configurationPath ?? "")" + (bad.isEmpty ? "" : "; left out: " + bad.joined(separator: "; ")))
        }
        if let a = restored(LocalAuthorization.self, authorizationPath, "local authorization (no list, empty cache)") {
            localAuth = a
            hub.log("ocpp", "local authorization list version \(a.listVersion) (\(a.list.count) idTag(s)) and \(a.cache.count) cached idTag(s) restored from \(authorizationPath ?? "")")
        }
        loadFirmwareJob()
        loadSecurityEvents()
        let guns = gunCount
        if let r = restored(Reservations.self, reservationsPath, "reservations (none kept)", valid: StateFiles.reservationsValid(guns: guns)) {
            reservations = r
            if !r.held.isEmpty { hub.log("ocpp", "\(r.held.count) reservation(s) restored from \(reservationsPath ?? "")") }
        }
        if let q = restored(PersistedQueue.self, queuePath, "transaction queue (ignored)") {
            queue = q
            if !q.messages.isEmpty { hub.log("ocpp", "\(q.messages.count) transaction message(s) restored from \(queuePath ?? "")") }
        }
    }

    /// A state file read at start: nil when there is none. One that `StateFiles.decode` does not take is
    /// outside input that cannot be trusted: it is renamed PATH.rejected (the newest kept for a
    /// technician), journalled, and nil, so that a start never reads it again into the same failure (a
    /// crash loop).
    func restored<T: Decodable>(_ type: T.Type, _ path: String?, _ what: String, valid: (T) -> Bool = { _ in true }) -> T? {
        guard let p = path, let d = FileManager.default.contents(atPath: p) else { return nil }
        if let v = StateFiles.decode(T.self, d, valid: valid) { return v }
        setAside(p, what)
        return nil
    }

    func setAside(_ p: String, _ what: String) {
        let outcome = rename(p, p + ".rejected") == 0 ? "set aside as \(p).rejected"
            : unlink(p) == 0 ? "removed (it could not be renamed)" : "neither renamed nor removed (\(String(cString: strerror(errno))))"
        hub.log("ocpp", "\(what): \(p) unreadable or out of bounds: \(outcome)")
    }

    /// Writes `data` to `path` atomically and durably, owner-only (Crypto.writeWhole); a failure is
    /// journalled (the state in memory stays right; the file keeps its last whole version).
    @discardableResult
    func writeDurably(_ data: Data, to path: String) -> Bool {
        guard let why = Crypto.writePrivately(Array(data), to: path) else { return true }
        hub.log("ocpp", "cannot store \(why)")
        return false
    }

    func saveProfiles() {
        guard let p = profilesPath, let d = try? JSONEncoder().encode(hub.state.profiles) else { return }
        writeDurably(d, to: p)
    }

    /// Per gun: Inoperative (read under the hub's lock, without copying the whole grid state).
    var unavailable: [Bool] { hub.with { $0.unavailable } }

    func saveAvailability() {
        let u = unavailable
        let off = u.indices.filter { u[$0] }
        guard let p = availabilityPath, let d = try? JSONEncoder().encode(Availability(inoperative: off)) else { return }
        writeDurably(d, to: p)
    }

    /// Sets a gun Operative or Inoperative now (the loop takes it out of service, as `service GUN off`).
    func setAvailable(_ g: Int, _ available: Bool) {
        scheduledAvailability[g] = nil
        guard unavailable[g] == available else { return }
        hub.with { $0.unavailable[g] = !available }
        saveAvailability()
        hub.log("ocpp", "connector \(g + 1) " + (available ? "Operative" : "Inoperative (out of service)"))
    }

    func saveConfiguration() {
        guard let p = configurationPath, let d = try? JSONEncoder().encode(settings.stored(facts)) else { return }
        writeDurably(d, to: p)
    }

    func saveAuthorization() {
        guard let p = authorizationPath, let d = try? JSONEncoder().encode(localAuth) else { return }
        writeDurably(d, to: p)
    }

    func saveReservations() {
        guard let p = reservationsPath, let d = try? JSONEncoder().encode(reservations) else { return }
        writeDurably(d, to: p)
    }

    /// A security event for the central system (and the journal), sent once online.
    func securityEvent(_ type: String, _ info: String? = nil) {
        // The oldest goes when 50 wait (not the one sent and waiting for its answer).
        if securityEvents.count >= 50 { securityEvents.remove(at: pending?.action == .SecurityEventNotification ? 1 : 0) }
        let e = SecurityEventNotificationReq(type: type, timestamp: timestamp, techInfo: info.map { String($0.prefix(255)) })
        securityEvents.append(e)
        saveSecurityEvents()
        appendSecurityLog(e)
        hub.log("ocpp", "security event \(type)" + (info.map { ": \($0)" } ?? ""))
    }

    func saveQueue() {
        guard let p = queuePath, let d = try? JSONEncoder().encode(queue) else { return }
        writeDurably(d, to: p)
    }

    // MARK: the main thread's side

    public func loopEvent(_ e: LoopEvent) {
        switch e {
        case .phase, .session: inbox.withLock { $0.events.append(e) }
        default: break
        }
    }

    public func observe(_ o: StationObservation) { inbox.withLock { $0.observation = o } }

    public func statusLine() -> String { statusText.withLock { $0 } }

    public func start() { _ = thread.start(stackBytes: 1 << 20) { self.run() } }

    /// Stops the client; while connected, queued transaction messages get up to `flushWithin` seconds
    /// to go out first (what is left stays on storage for the next start).
    public func stop(flushWithin: Double = 5) {
        inbox.withLock { $0.flushDeadline = Int64((monotonic() + flushWithin) * 1000) }
        thread.stop()
        diagnosticsThread?.stop()
        firmwareThread?.stop()
    }

    // MARK: the client thread

    func now() -> Double { monotonic() }
    func monotonic() -> Double { Double(monotonicNanos()) / 1e9 }
    /// The station clock now, for timestamps.
    var stationMillis: Int64 { hub.state.clock.epochMillis(observation.at) }
    var timestamp: String { Timestamp.format(stationMillis) }

    func setStatus(_ s: String) { statusText.withLock { $0 = s } }

    /// Stop asked: go on only while connected, with transaction messages to send, before the deadline.
    var shouldStop: Bool {
        guard thread.stopAsked else { return false }
        let busy = ws?.open == true && booted && (!queue.messages.isEmpty || pending?.queued != nil || !inbox.withLock({ $0.events.isEmpty }))
        return !busy || monotonic() * 1000 > Double(inbox.withLock({ $0.flushDeadline }))
    }

    func run() {
        while !shouldStop {
            takeInbox()
            if ws == nil || ws?.open == false {
                if ws != nil { dropConnection("connection lost") }
                if now() >= nextConnectAttempt { connect() }
                if ws == nil { usleep(50_000); continue }
            }
            expireAuthorizations()
            expireReservations()
            firmwareIfDue()
            renewCertificateIfDue()
            do {
                try pingIfDue(ws!)
                if let text = try ws!.receive(timeoutMs: 50) { handle(text) }
                try sendDue()
            } catch {
                dropConnection("\(error)")
            }
        }
        // What the loop said last (a session's end) is queued and on storage before the thread ends.
        takeInbox()
        if let ws { ws.close() }
    }

    func connect() {
        do {
            var headers: [String] = []
            if let key = authorizationKey, securityProfile == 1 || securityProfile == 2 {
                // Security profiles 1 and 2: HTTP Basic, the charge point's id and the key's bytes (RFC 7617).
                headers.append("Authorization: Basic " + Data(Array(config.chargePointId.utf8) + [58] + key).base64EncodedString())
            }
            let c = try WebSocketConnection(url: url, subprotocol: "ocpp1.6", tls: tlsFiles, timeout: 5, headers: headers)
            ws = c
            hub.log("ocpp", "connected to \(c.peer)" + (connectedOnce ? " again; \(queue.messages.count) queued transaction message(s) to send" : ""))
            setStatus("OCPP: connected to \(c.peer), " + (booted ? "accepted" : "booting"))
            connectedOnce = true
            lastSent = now()
            if booted {
                // After a reconnect every connector's status is said again.
                for i in sentStatus.indices { sentStatus[i] = nil }
            }
        } catch {
            nextConnectAttempt = now() + config.reconnectInterval.seconds
            if "\(error)".contains("certificate verification failed") && now() >= nextOfflineLog {
                securityEvent("InvalidCentralSystemCertificate", "\(error)")
            }
            setStatus("OCPP: offline (\(error)); \(queue.messages.count) transaction message(s) queued")
            // The first failure and then one a minute go to the journal (the console shows the latest).
            if now() >= nextOfflineLog {
                nextOfflineLog = now() + 60
                hub.log("ocpp-offline", "cannot connect: \(error)")
            }
        }
    }

    func dropConnection(_ why: String) {
        ws?.close()
        ws = nil
        pongsAtPing = nil
        // A call without its answer: a queued one is sent again, anything else is dropped.
        pending = nil
        nextConnectAttempt = now() + config.reconnectInterval.seconds
        hub.log("ocpp-offline", "disconnected: \(why); \(queue.messages.count) transaction message(s) queued")
        setStatus("OCPP: offline (\(why)); \(queue.messages.count) transaction message(s) queued")
    }

    /// WebSocketPingInterval (OCPP 1.6 §9.1): a ping every interval (0: none); a ping still unanswered
    /// when the next is due means the central system is not there (a half-open connection): the
    /// connection ends and is made again, as after any loss.
    func pingIfDue(_ ws: WebSocketConnection) throws(WebSocketError) {
        let interval = Double(settings.webSocketPingInterval)
        guard interval > 0, now() - lastPing >= interval / max(1, speedFactor) else { return }
        if let n = pongsAtPing, ws.pongs == n {
            throw WebSocketError("no pong within WebSocketPingInterval (\(settings.webSocketPingInterval) s)")
        }
        pongsAtPing = ws.pongs
        lastPing = now()
        try ws.ping()
    }

    func takeInbox() {
        let (events, obs) = inbox.withLock { i -> ([LoopEvent], StationObservation?) in
            defer { i.events.removeAll(); i.observation = nil }
            return (i.events, i.observation)
        }
        if let obs { observation = obs }
        for e in events {
            switch e {
            case .phase(let g, let p, _): phaseChanged(Int(g), p)
            case .session(let edge): sessionEdge(edge)
            default: break
            }
        }
        vinObserved()
        meterValuesIfDue()
    }

    func phaseChanged(_ g: Int, _ p: SessionPhase) {
        let before = phase[g]
        phase[g] = p
        // The car came: ConnectionTimeOut no longer runs.
        if p != .unplugged { authorizedWaiting[g] = nil }
        if (p == .connecting || p == .connected) && before == .unplugged {
            if !hub.state.authorized[g] { carPlugged(g) }
            else if let tag = idTag[g] { hub.with { $0.identities[g] = SessionIdentity(method: .remote, identity: shown(tag)) } }
        }
        vinPhaseChanged(g, from: before, to: p)
        if p == .unplugged && before != .unplugged {
            // The car left: an authorization not used goes with it.
            revokeAuthorization(g)
            if txRef[g] == nil { idTag[g] = nil }
        }
    }

    func sessionEdge(_ e: SessionEdge) {
        let g = Int(e.gun)
        if e.started {
            let ref = queue.nextRef
            queue.nextRef -= 1
            txRef[g] = ref
            let startMs = hub.state.clock.epochMillis(e.at)
            txStart[g] = startMs
            meterStart[g] = e.meterEnergy.value
            lastMeter[g] = monotonic()
            let tag = idTag[g] ?? "FREEVEND"
            idTag[g] = tag
            hub.with { $0.transactions[g] = TransactionInfo(id: ref, startedAt: startMs) }
            // The reservation of this connector is used by its own idTag's transaction (others were
            // refused before); its id goes in StartTransaction.
            let used = reservations.on(gun: g) != nil && reservations.admits(tag, parent: knownParent(tag), gun: g) ? reservations.use(gun: g) : nil
            if let used { saveReservations(); hub.log("ocpp", "reservation #\(used.id) used on connector \(g + 1)") }
            transactionData[g] = settings.stopTxnSampledData.isEmpty ? []
                : [
                    MeterValue(
                        timestamp: Timestamp.format(startMs),
                        sampledValue: samples(connector: g + 1, settings.stopTxnSampledData, context: "Transaction.Begin"))
                ]
            var startReq = StartTransactionReq(connectorId: g + 1, idTag: tag, meterStart: Int(e.meterEnergy.value.rounded(.down)),
                                               timestamp: Timestamp.format(startMs))
            startReq.reservationId = used?.id
            enqueue(.StartTransaction, startReq, ref: ref, gun: g)
            if let p = pendingTxProfile[g] {
                pendingTxProfile[g] = nil
                let result: String? = hub.with { s -> String? in
                    do { try s.profiles.install(p, connectorId: g + 1, connectors: gunCount, activeTransaction: ref, at: startMs); return nil }
                    catch { return "\(error)" }
                }
                hub.log("ocpp", "RemoteStart's TxProfile #\(p.chargingProfileId) " + (result.map { "refused: \($0)" } ?? "installed on connector \(g + 1)"))
                saveProfiles()
            }
        } else if let ref = txRef[g] {
            let stopMs = hub.state.clock.epochMillis(e.at)
            let reason: StopTransactionReason
            switch e.stopReason {
            case .operatorRequest: reason = .Local
            case .vehicleRequest, .commTimeout: reason = .EVDisconnected
            case .fault, .pauseTooLong: reason = .Other
            case .notAuthorized: reason = .DeAuthorized
            case .none: reason = .EVDisconnected
            }
            // The transactionId stored is the local reference; the central system's id replaces it when sent.
            let stop = StopTransactionReq(idTag: idTag[g], meterStop: Int(e.meterEnergy.value.rounded(.down)), timestamp: Timestamp.format(stopMs),
                                          transactionId: ref,
                                          reason: resetStopped.contains(g) ? (resetPending == .Hard ? .HardReset : .SoftReset)
                                                : unlockStopped.contains(g) ? .UnlockCommand
                                                : remoteStopped.contains(g) ? .Remote
                                                : deauthorized.contains(g) ? .DeAuthorized : reason)
            remoteStopped.remove(g)
            deauthorized.remove(g)
            resetStopped.remove(g)
            unlockStopped.remove(g)
            var stopWithData = stop
            if !settings.stopTxnSampledData.isEmpty {
                transactionData[g].append(MeterValue(timestamp: Timestamp.format(stopMs),
                                                     sampledValue: samples(connector: g + 1, settings.stopTxnSampledData, context: "Transaction.End")))
            }
            if !transactionData[g].isEmpty { stopWithData.transactionData = transactionData[g] }
            transactionData[g] = []
            enqueue(.StopTransaction, stopWithData, ref: ref, gun: g)
            txRef[g] = nil; txStart[g] = nil; idTag[g] = nil
            if let a = scheduledAvailability[g] { setAvailable(g, a) }
            revokeAuthorization(g)
            hub.with { s in
                s.transactions[g] = nil
                s.profiles.transactionEnded(connectorId: g + 1)
            }
            saveProfiles()
        }
    }
    var remoteStopped = Set<Int>()
    /// Guns whose transaction stops because StartTransaction's answer did not accept the idTag.
    var deauthorized = Set<Int>()

    /// The feature profiles this charge point implements (SupportedFeatureProfiles).
    /// FirmwareManagement only with a firmware_dir to install into (GetDiagnostics works either way).
    var featureProfiles: String {
        "Core" + (config.firmwareDirectory != nil ? ",FirmwareManagement" : "") + ",LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger"
    }
    var facts: OCPPSettings.Facts {
        .init(connectors: gunCount, featureProfiles: featureProfiles, maxStackLevel: ProfileStore.maxStackLevel,
              maxPeriods: ProfileStore.maxPeriods, maxProfiles: ProfileStore.maxProfiles, securityProfile: securityProfile)
    }

    /// The configuration keys this charge point has (OCPP 1.6 §9), with their values now.
    func configuration() -> [KeyValue] {
        let f = facts
        return OCPPSettings.keys.map { KeyValue(key: $0.name, readonly: !$0.writable, value: settings.value($0.name, f)) }
    }

    /// ChangeConfiguration of AuthorizationKey (security whitepaper ed. 2, §3.1.2): on profiles 1 and 2,
    /// and on 0 with a state_dir (kept for an upgrade to profile 1 or 2); 16-20 bytes as hexadecimal
    /// digits; kept in state_dir (owner-only), then the connection is made again with it (profiles 1 and
    /// 2). The key is never logged.
    func changeAuthorizationKey(_ text: String) -> ConfigurationStatus {
        // Profile 0 keeps it for an upgrade to 1 or 2 (ChangeConfiguration SecurityProfile after it).
        guard securityProfile <= 2 else {
            hub.log("ocpp", "ChangeConfiguration AuthorizationKey rejected: security profile \(securityProfile) does not use it")
            return .Rejected
        }
        guard securityProfile > 0 || authorizationKeyPath != nil else {
            hub.log("ocpp", "ChangeConfiguration AuthorizationKey rejected: security profile 0 could only keep it in a state_dir")
            return .Rejected
        }
        let key: [UInt8]
        switch AuthorizationKey.bytes(text) {
        case .failure(let why): hub.log("ocpp", "ChangeConfiguration AuthorizationKey rejected: \(why)"); return .Rejected
        case .success(let k): key = k
        }
        if let p = authorizationKeyPath, !writeDurably(Data(text.utf8), to: p) {
            hub.log("ocpp", "ChangeConfiguration AuthorizationKey rejected: cannot store it in \(p)")
            return .Rejected
        }
        if securityProfile > 0 {
            authorizationKey = key
            reconnectAfterAnswer = "the new AuthorizationKey"
        }
        securityEvent("ReconfigurationOfSecurityParameters", "AuthorizationKey changed (\(key.count) bytes)")
        return .Accepted
    }

    /// Online: booted and connected (the central system can answer an Authorize now).
    var online: Bool { booted && ws?.open == true }

    /// An idTag presented at a gun's plug (or a RemoteStartTransaction under AuthorizeRemoteTxRequests).
    /// Online, the central system is asked (Authorize), unless LocalPreAuthorize lets the list or the
    /// cache accept it at once. Offline, LocalAuthorizeOffline lets the list or the cache accept it and
    /// AllowOfflineTxForUnknownId an idTag neither knows; a tag they know and refuse is refused; any
    /// other waits for the central system (§3.5).
    func authorizeAtPlug(_ tag: String, _ g: Int) {
        let s = settings
        if let r = reservations.on(gun: g), !reservations.admits(tag, parent: knownParent(tag), gun: g) {
            // A reservation by parentIdTag: the central system's answer may name the parent (asked, no
            // local shortcut).
            guard r.parentIdTag != nil && online else {
                hub.log("ocpp", "idTag \(shown(tag)) on connector \(g + 1): the connector is reserved for another idTag (#\(r.id)): refused")
                return
            }
            idTag[g] = tag
            authorizeQueue.append((tag, g))
            return
        }
        idTag[g] = tag
        let verdict = localAuth.verdict(tag, atMillis: stationMillis, listEnabled: s.localAuthListEnabled, cacheEnabled: s.authorizationCacheEnabled)
        func allow(_ why: String) {
            hub.with { $0.authorized[g] = true; $0.vinChecks[g] = .notUsed; $0.identities[g] = SessionIdentity(method: .idtag, identity: tag) }
            vinStage[g] = .none     // the idTag authorizes the session: its VIN is not asked about
            hub.log("ocpp", "idTag \(shown(tag)) on connector \(g + 1): accepted by \(why), session may start")
        }
        if online {
            if s.localPreAuthorize, case .accepted(let src) = verdict { return allow("the \(src.rawValue) (LocalPreAuthorize)") }
            authorizeQueue.append((tag, g))
            return
        }
        switch verdict {
        case .accepted(let src) where s.localAuthorizeOffline:
            allow("the \(src.rawValue), offline (LocalAuthorizeOffline)")
        case .unknown where s.allowOfflineTxForUnknownId:
            allow("no one, offline and unknown (AllowOfflineTxForUnknownId)")
        case .refused(let st, let src):
            hub.log("ocpp", "idTag \(shown(tag)) on connector \(g + 1): \(st.rawValue) in the \(src.rawValue), offline: refused")
            idTag[g] = nil
        default:
            hub.log("ocpp", "idTag \(shown(tag)) on connector \(g + 1): offline, waits for the central system")
            authorizeQueue.append((tag, g))
        }
    }

    /// The parentIdTag the list or the cache knows for `tag`.
    func knownParent(_ tag: String) -> String? {
        localAuth.parent(of: tag, listEnabled: settings.localAuthListEnabled, cacheEnabled: settings.authorizationCacheEnabled)
    }

    /// Reservations whose expiry date has come end (the connector Available again).
    func expireReservations() {
        guard !reservations.held.isEmpty, !observation.guns.isEmpty else { return }
        let gone = reservations.expire(atMillis: stationMillis)
        guard !gone.isEmpty else { return }
        for r in gone { hub.log("ocpp", "reservation #\(r.id) on connector \(r.gun + 1) for \(shown(r.idTag)) expired") }
        saveReservations()
    }

    /// What the central system said of an idTag goes to the Authorization Cache (when enabled).
    func cacheAnswer(_ tag: String?, _ info: IdTagInfo?) {
        guard settings.authorizationCacheEnabled, let tag, let info else { return }
        localAuth.remember(tag, info, atMillis: stationMillis)
        saveAuthorization()
    }

    /// The gun needs a new authorization for its next session (none needed under free vend).
    func revokeAuthorization(_ g: Int) {
        let free = config.freeVend
        hub.with { $0.authorized[g] = free; $0.vinChecks[g] = .notUsed; $0.identities[g] = nil }
        vinStage[g] = .none
    }

    /// ConnectionTimeOut: an authorization given with no car plugged lapses when none comes in time
    /// (station time: sooner at a simulation speed above 1).
    func expireAuthorizations() {
        for g in 0..<gunCount {
            guard let since = authorizedWaiting[g], now() - since > connectionTimeout.seconds / max(1, speedFactor) else { continue }
            authorizedWaiting[g] = nil
            guard txRef[g] == nil, phase[g] == .unplugged else { continue }
            revokeAuthorization(g)
            pendingTxProfile[g] = nil
            hub.log("ocpp", "authorization for \(idTag[g].map(shown) ?? "?") on connector \(g + 1) lapsed: no car within ConnectionTimeOut (\(wholeText(connectionTimeout.seconds)) s)")
            idTag[g] = nil
        }
    }

    /// One triggered message (its connector checked when it was accepted).
    func sendTriggered(_ ws: WebSocketConnection, _ m: MessageTrigger, connector c: Int?, extended: Bool = false) throws(WebSocketError) {
        switch m {
        case .BootNotification:
            try call(ws, .BootNotification, BootNotificationReq(chargePointVendor: config.vendor, chargePointModel: config.model,
                                                                 chargePointSerialNumber: config.chargePointId, firmwareVersion: firmware))
        case .Heartbeat:
            lastHeartbeat = now()
            try call(ws, .Heartbeat, HeartbeatReq())
        case .StatusNotification:
            let k = c ?? 0
            let req = statusNotification(k, timestamp: timestamp)
            sentStatus[k] = SentStatus(status: req.status, vendorErrorCode: req.vendorErrorCode)
            try call(ws, .StatusNotification, req)
        case .MeterValues:
            let k = c ?? 1
            // The transaction's id when the central system has issued it (a local reference is not sent).
            let tx = k > 0 ? txRef[k - 1].flatMap { $0 > 0 ? $0 : queue.resolved[String($0)] } : nil
            let values = samples(connector: k, settings.meterValuesSampledData, context: "Trigger")
            try call(
                ws, .MeterValues,
                MeterValuesReq(connectorId: k, transactionId: tx, meterValue: [MeterValue(timestamp: timestamp, sampledValue: values)]))
        case .DiagnosticsStatusNotification:
            // Uploading while an upload runs, Idle otherwise (§4.4).
            try call(
                ws, .DiagnosticsStatusNotification,
                DiagnosticsStatusNotificationReq(status: inbox.withLock({ $0.diagnosticsRunning }) ? .Uploading : .Idle))
        case .FirmwareStatusNotification:
            // The step an update is at, Idle when none is in hand (§4.5); extended: the signed update's
            // step and request (whitepaper ed. 2, §4.2), TriggerMessage: only 1.6's steps.
            let busy = firmwareJob != nil || inbox.withLock({ $0.firmwareBusy })
            let last = busy ? inbox.withLock({ $0.firmware.last }) : FirmwareEvent(status: .Idle, requestId: nil)
            if extended {
                try call(ws, .SignedFirmwareStatusNotification, SignedFirmwareStatusNotificationReq(status: last.status, requestId: last.requestId))
            }
            else {
                try call(
                    ws, .FirmwareStatusNotification,
                    FirmwareStatusNotificationReq(status: Self.unsignedStatuses.contains(last.status) ? last.status : .Idle))
            }
        case .LogStatusNotification:
            // Uploading with its request while a GetLog upload runs, Idle otherwise.
            let r = inbox.withLock({ $0.logRequest })
            try call(ws, .LogStatusNotification, LogStatusNotificationReq(status: r != nil ? .Uploading : .Idle, requestId: r))
        case .SignChargePointCertificate:
            try sendSigningRequest(ws)
        }
    }

    /// The sampled values of connector `k` now (connector 0 is the station: the guns' energy and power
    /// summed; the per-gun measurands are left out), in the order asked, with the reading's context.
    func samples(connector k: Int, _ measurands: [Measurand], context: String) -> [SampledValue] {
        let guns = k == 0 ? Array(observation.guns.indices) : (k - 1 < observation.guns.count ? [k - 1] : [])
        guard !guns.isEmpty else { return [] }
        var out: [SampledValue] = []
        for m in measurands {
            let value: String
            switch m {
            case .energy: value = String(Int(guns.reduce(0.0) { $0 + observation.guns[$1].meterEnergy.value }.rounded(.down)))
            case .power: value = String(format: "%.1f", guns.reduce(0.0) { $0 + observation.guns[$1].power.value })
            case .current, .voltage, .offered, .soc:
                guard k > 0 else { continue }
                let o = observation.guns[guns[0]]
                switch m {
                case .current: value = String(format: "%.1f", o.current.value)
                case .voltage: value = String(format: "%.1f", o.voltage.value)
                case .offered: value = String(format: "%.1f", o.powerLimit.value)
                default:
                    guard o.soc.isFinite else { continue }
                    value = String(format: "%.1f", o.soc)
                }
            }
            out.append(SampledValue(value: value, context: context, measurand: m.rawValue, location: m.location, unit: m.unit))
        }
        return out
    }

    /// Periodic meter values of each running transaction (MeterValueSampleInterval, MeterValuesSampledData)
    /// and the clock-aligned ones (ClockAlignedDataInterval, MeterValuesAlignedData) of every connector:
    /// a transaction's are queued with it (and kept for StopTxnAlignedData), an idle connector's go out
    /// when online.
    func meterValuesIfDue() {
        for g in 0..<gunCount {
            guard let ref = txRef[g], observation.guns.count > g, meterInterval.micros > 0,
                monotonic() - lastMeter[g] >= meterInterval.seconds / max(1, speedFactor),
                  !settings.meterValuesSampledData.isEmpty else { continue }
            lastMeter[g] = monotonic()
            enqueue(.MeterValues, MeterValuesReq(connectorId: g + 1, transactionId: ref, meterValue: [
                MeterValue(timestamp: timestamp, sampledValue: samples(connector: g + 1, settings.meterValuesSampledData, context: "Sample.Periodic"))]),
                    ref: ref, gun: g)
        }
        let interval = Int64(settings.clockAlignedDataInterval) * 1000
        guard interval > 0, observation.guns.count == gunCount else { lastAlignedSlot = nil; return }
        let now = stationMillis
        let slot = now / interval
        defer { lastAlignedSlot = slot }
        guard let last = lastAlignedSlot, slot > last else { return }
        // The reading belongs to the interval's boundary (§3.14.1: aligned to the clock).
        let at = Timestamp.format(slot * interval)
        if !settings.meterValuesAlignedData.isEmpty {
            for k in 0...gunCount {
                let value = MeterValue(timestamp: at, sampledValue: samples(connector: k, settings.meterValuesAlignedData, context: "Sample.Clock"))
                if k > 0, let ref = txRef[k - 1] {
                    enqueue(.MeterValues, MeterValuesReq(connectorId: k, transactionId: ref, meterValue: [value]), ref: ref, gun: k - 1)
                } else if online && idleMeterValues.count < 4 * (gunCount + 1) {
                    idleMeterValues.append(MeterValuesReq(connectorId: k, transactionId: nil, meterValue: [value]))
                }
            }
        }
        if !settings.stopTxnAlignedData.isEmpty {
            for g in 0..<gunCount where txRef[g] != nil && transactionData[g].count < 100 {
                transactionData[g].append(
                    MeterValue(timestamp: at, sampledValue: samples(connector: g + 1, settings.stopTxnAlignedData, context: "Sample.Clock")))
            }
        }
    }
    /// Meter intervals are in station time: at a simulation speed above 1 they come that much sooner.
    public var speedFactor: Double = 1

    func enqueue(_ action: OCPPAction, _ payload: some Encodable, ref: Int, gun: Int) {
        guard let text = JSONValue.encoded(payload) else { return }
        queue.messages.append(QueuedMessage(seq: queue.nextSeq, action: action.rawValue, payload: text, txRef: ref, gun: gun))
        queue.nextSeq += 1
        saveQueue()
    }

    // MARK: sending

    /// Connector `c`'s StatusNotification: its status, OtherError when it is Faulted, and a fault that
    /// stops nothing as OtherError with the faults' codes beside a status it does not change: a metering
    /// record (E34, E35: issue 37) on its connector, a power module's derate (E22, E23) on connector 0.
    func statusNotification(_ c: Int, timestamp: String?) -> StatusNotificationReq {
        let st = connectorStatus(c)
        if st == .Faulted { return StatusNotificationReq(connectorId: c, errorCode: .OtherError, status: st, timestamp: timestamp) }
        // Connector 0, the charge point: its power modules' faults (a module lost derates every gun it served).
        if c == 0 && !observation.moduleFaults.isEmpty {
            return StatusNotificationReq(connectorId: c, errorCode: .OtherError, status: st, timestamp: timestamp,
                                         info: "power modules: derated, charging goes on", vendorErrorCode: String(observation.moduleFaults.prefix(50)))
        }
        let metering = c > 0 && c - 1 < observation.guns.count ? observation.guns[c - 1].meteringFaults : ""
        if !metering.isEmpty {
            return StatusNotificationReq(connectorId: c, errorCode: .OtherError, status: st, timestamp: timestamp,
                                         info: "metering fault: recorded, not a stop", vendorErrorCode: String(metering.prefix(50)))
        }
        return StatusNotificationReq(connectorId: c, errorCode: .NoError, status: st, timestamp: timestamp)
    }

    func connectorStatus(_ c: Int) -> ChargePointStatus {
        if c == 0 {
            if observation.guns.allSatisfy({ $0.faulted }) && !observation.guns.isEmpty { return .Faulted }
            return unavailable.allSatisfy { $0 } ? .Unavailable : .Available
        }
        let g = c - 1
        guard g < observation.guns.count else { return .Available }
        let o = observation.guns[g]
        if o.faulted || phase[g] == .faulted { return .Faulted }
        if unavailable[g] && txRef[g] == nil { return .Unavailable }
        switch phase[g] {
        case .unplugged:
            if authorizedWaiting[g] != nil { return .Preparing }    // authorized, waiting for the car
            return reservations.on(gun: g) != nil ? .Reserved : .Available
        case .charging: return o.current.value < 1 && o.powerLimit.value < 1 ? .SuspendedEVSE : .Charging
        case .stopping, .statistics, .weldingCheck, .unlocking, .finished: return .Finishing
        default: return .Preparing      // plugged, waiting for authorization or on its way to charging
        }
    }

    /// A Reset is carried out: Hard at once, Soft once no transaction runs and nothing is queued or waiting.
    func resetIfDue() {
        guard let type = resetPending, !resetFired, let onReset else { return }
        if type == .Soft && (txRef.contains { $0 != nil } || !queue.messages.isEmpty || !securityEvents.isEmpty || pending != nil) { return }
        resetFired = true
        hub.log("ocpp", "Reset \(type.rawValue): restarting the controller")
        onReset(type)
    }

    func sendDue() throws(WebSocketError) {
        resetIfDue()
        if !pendingUnlocks.isEmpty { answerUnlocks() }
        guard let ws else { return }
        if let p = pending {
            if now() - p.sentAt > config.callTimeout.seconds {
                throw WebSocketError("no answer to \(p.action) within \(wholeText(config.callTimeout.seconds)) s")
            }
            return
        }
        if !booted {
            guard now() >= bootRetryAt else { return }
            try call(ws, .BootNotification, BootNotificationReq(chargePointVendor: config.vendor, chargePointModel: config.model,
                                                                 chargePointSerialNumber: config.chargePointId, firmwareVersion: firmware))
            return
        }
        if !triggers.isEmpty {
            let t = triggers.removeFirst()
            try sendTriggered(ws, t.message, connector: t.connector, extended: t.extended)
            return
        }
        if let e = securityEvents.first {
            // Kept (and on storage) until the central system answered it: a connection lost meanwhile
            // sends it again.
            try call(ws, .SecurityEventNotification, e)
            return
        }
        if let e = inbox.withLock({ $0.firmware.queue.isEmpty ? nil : $0.firmware.queue.removeFirst() }) {
            if e.requestId != nil {
                try call(ws, .SignedFirmwareStatusNotification, SignedFirmwareStatusNotificationReq(status: e.status, requestId: e.requestId))
            }
            else { try call(ws, .FirmwareStatusNotification, FirmwareStatusNotificationReq(status: e.status)) }
            return
        }
        if let e = inbox.withLock({ $0.logs.isEmpty ? nil : $0.logs.removeFirst() }) {
            try call(ws, .LogStatusNotification, e)
            return
        }
        if let status = inbox.withLock({ $0.diagnostics.isEmpty ? nil : $0.diagnostics.removeFirst() }) {
            try call(ws, .DiagnosticsStatusNotification, DiagnosticsStatusNotificationReq(status: status))
            return
        }
        // Statuses first (each connector's latest), then Authorize, then the transaction queue.
        for c in 0...gunCount {
            let req = statusNotification(c, timestamp: timestamp)
            let now = SentStatus(status: req.status, vendorErrorCode: req.vendorErrorCode)
            if sentStatus[c] != now {
                sentStatus[c] = now
                try call(ws, .StatusNotification, req)
                return
            }
        }
        if !authorizeQueue.isEmpty {
            let a = authorizeQueue.removeFirst()
            try call(ws, .Authorize, AuthorizeReq(idTag: a.idTag), gun: a.gun)
            return
        }
        if !idleMeterValues.isEmpty {
            try call(ws, .MeterValues, idleMeterValues.removeFirst())
            return
        }
        if let m = queue.messages.first, now() >= queueRetryAt {
            guard let (action, payload) = readyToSend(m) else {
                hub.log("ocpp", "queued \(m.action) #\(m.seq) unreadable: dropped")
                queue.messages.removeFirst(); saveQueue(); return
            }
            try call(ws, action, payload, queued: m.seq, gun: m.gun)
            return
        }
        if now() - lastHeartbeat >= heartbeatInterval.seconds && now() - lastSent >= heartbeatInterval.seconds {
            lastHeartbeat = now()
            try call(ws, .Heartbeat, HeartbeatReq())
        }
    }

    /// A queued message as it goes out: the central system's transaction id in place of the local
    /// reference, checked against its action's type (a queue file from an older version included).
    func readyToSend(_ m: QueuedMessage) -> (OCPPAction, JSONValue)? {
        guard let action = OCPPAction(rawValue: m.action), case .object(var fields)? = try? JSONValue(json: m.payload) else { return nil }
        if action != .StartTransaction {
            fields["transactionId"] = .int(Int64(m.txRef > 0 ? m.txRef : (queue.resolved[String(m.txRef)] ?? 0)))
        }
        let payload = JSONValue.object(fields)
        switch action {
        case .StartTransaction: guard (try? payload.decode(StartTransactionReq.self)) != nil else { return nil }
        case .StopTransaction: guard (try? payload.decode(StopTransactionReq.self)) != nil else { return nil }
        case .MeterValues: guard (try? payload.decode(MeterValuesReq.self)) != nil else { return nil }
        default: return nil
        }
        return (action, payload)
    }

    func call(_ ws: WebSocketConnection, _ action: OCPPAction, _ payload: some Encodable, queued: UInt64? = nil, gun: Int? = nil)
        throws(WebSocketError)
    {
        let id = String(nextCallId)
        nextCallId += 1
        guard let text = OCPPFrame.call(id: id, action: action, payload: payload) else { return }
        pending = PendingCall(id: id, action: action, sentAt: now(), queued: queued, gun: gun)
        lastSent = now()
        try ws.send(text: text)
    }

    func reply(_ id: String, _ payload: some Encodable) {
        guard let text = OCPPFrame.result(id: id, payload: payload) else { return }
        try? ws?.send(text: text)
        if let why = reconnectAfterAnswer {
            // The connection is made again with what changed, at once.
            reconnectAfterAnswer = nil
            dropConnection("reconnecting with \(why)")
            nextConnectAttempt = now()
        }
    }

    func replyError(_ id: String, _ code: CallErrorCode, _ text: String) {
        guard let frame = OCPPFrame.error(id: id, code: code, text: text) else { return }
        try? ws?.send(text: frame)
    }

}

func wholeText(_ x: Double) -> String { String(format: "%.0f", x) }

/// The OCPP client's state files (state_dir), as read at start: bounded in size and depth before they
/// decode, and held to the bounds a request is held to.
public enum StateFiles {
    /// State files above this size are not read (none written here comes near it).
    public static let maxBytes = 4 << 20

    /// `d` as a `T`, or nil: too big, nested too deep, not decoding, or refused by `valid`.
    public static func decode<T: Decodable>(_ type: T.Type, _ d: Data, valid: (T) -> Bool = { _ in true }) -> T? {
        guard d.count <= maxBytes, JSONValue.nesting(d, above: JSONValue.maxDepth) == nil,
              let v = try? JSONDecoder().decode(T.self, from: d), valid(v) else { return nil }
        return v
    }

    static func firmwareJobValid(_ j: FirmwareJob) -> Bool { TransferRetries.within(retries: j.retries, interval: j.retryInterval) }
    static func reservationsValid(guns: Int) -> (Reservations) -> Bool { { $0.held.allSatisfy { (0..<guns).contains($0.gun) } } }

    /// Whether the file of that name (profiles.json, availability.json, ...) would be taken at start.
    public static func check(_ name: String, _ d: Data, guns: Int) -> Bool? {
        switch name {
        case "profiles.json": decode(ProfileStore.self, d, valid: { $0.isValid }) != nil
        case "availability.json": decode(Availability.self, d) != nil
        case "configuration.json": decode([String: String].self, d) != nil
        case "authorization.json": decode(LocalAuthorization.self, d) != nil
        case "reservations.json": decode(Reservations.self, d, valid: reservationsValid(guns: guns)) != nil
        case "queue.json": decode(PersistedQueue.self, d) != nil
        case "firmware.json": decode(FirmwareJob.self, d, valid: firmwareJobValid) != nil
        case "security-events.json": decode([SecurityEventNotificationReq].self, d) != nil
        default: nil
        }
    }
    public static let names = ["profiles.json", "availability.json", "configuration.json", "authorization.json",
                               "reservations.json", "queue.json", "firmware.json", "security-events.json"]
}
