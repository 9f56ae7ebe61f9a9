// The OCPP 1.6J charge point's transport, on its own thread: the WebSocket (TCP or TLS), the state files,
// the threads of the transfers, and the hand-over with the loop's thread. What the charge point says and
// does is OCPPChargePoint's ChargePoint, a state machine with no I/O: each turn this thread takes what the
// loop said, feeds it and the frames received to the charge point under the grid hub's lock (the grid
// state swapped into it for the step), then carries out the effects it asked for (ChargePointEffect) in
// order: frames sent, journal lines, state files stored, a restart asked for.
// Firmware (FirmwareUpdate.swift), diagnostics and logs (OCPPDelegated.swift) and the security extension
// (OCPPSecurity.swift, Certificates.swift) are the transport's: their calls come to it as `.delegated`.
import SiteFile
import ChargerCore
import Foundation
import Grid
import LoopContract
import OCPPChargePoint
import RealTime
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public struct OCPPError: Error, CustomStringConvertible { public var description: String }

public final class OCPPClient: @unchecked Sendable {
    let config: OCPPConfig
    let url: WebSocketURL
    let hub: GridHub
    let firmware: String
    let gunCount: Int
    private let thread = SideThread()

    /// What the main thread hands the client thread, under one lock: the loop's events, the latest
    /// observation and the stop's deadline. (The transfers' threads hand theirs to their own types:
    /// FirmwareUpdater.handOver, Uploads.handOver.) The client thread takes what it needs at its own pace; nothing here is
    /// touched while another lock is held.
    struct Inbox {
        /// The main thread's: loop events (phases, session edges) and the latest observation.
        var events: [LoopEvent] = []
        var observation: StationObservation? = nil
        /// stop(flushWithin:): until when (monotonic ms) queued transaction messages may still go out.
        var flushDeadline: Int64 = 0
    }
    let inbox = Mutex(Inbox())
    /// The other way: the status the console reads (an outbox, not the client's input).
    private let statusText = Mutex("OCPP: not connected yet")

    // The client thread's own state (touched by that thread only, after start).
    /// The charge point: every protocol decision and the state it keeps.
    var cp: ChargePoint
    var ws: WebSocketConnection? = nil
    /// Security profiles 1 and 2: the HTTP Basic password (the AuthorizationKey's bytes; never logged).
    var authorizationKey: [UInt8]? = nil
    /// The security extension: certificates, TLS, renewal, the security log.
    let security: SecurityExtension
    /// WebSocketPingInterval: when the last ping went out (monotonic) and the pong count then (nil: no
    /// ping outstanding on this connection).
    var lastPing = 0.0
    var pongsAtPing: Int? = nil
    /// GetDiagnostics: what is uploaded (the journal's records between two times, epoch ms; set by
    /// chargerd; the upload is `uploads`').
    public var diagnostics: (@Sendable (_ from: Int64?, _ to: Int64?) -> [UInt8])? = nil
    /// GetDiagnostics and GetLog: the upload thread and its statuses.
    let uploads: Uploads
    /// UpdateFirmware and SignedUpdateFirmware: the update in hand and its download thread.
    let updater: FirmwareUpdater
    /// When this client was made (monotonic seconds).
    var startedAt = 0.0
    /// How the process restarts for a Reset (set by chargerd; nil: Reset is Rejected). Called once, on the
    /// client's thread.
    public var onReset: (@Sendable (ResetType) -> Void)? = nil {
        didSet { cp.canReset = onReset != nil }
    }
    /// How the process restarts into a firmware version just installed (set by chargerd; without it the
    /// version waits for the next start).
    public var onFirmwareInstalled: (@Sendable (String) -> Void)? = nil
    /// Meter intervals are in station time: at a simulation speed above 1 they come that much sooner.
    public var speedFactor: Double {
        get { cp.speedFactor }
        set { cp.speedFactor = newValue }
    }
    var connectedOnce = false
    var nextConnectAttempt = 0.0
    var nextOfflineLog = 0.0

    public init(config: OCPPConfig, hub: GridHub, firmware: String, gunCount: Int, presentedTags: [String?] = []) throws(OCPPError) {
        guard let u = WebSocketURL(config.url) else { throw OCPPError(description: "OCPP url '\(config.url)' is not ws:// or wss://") }
        self.config = config; url = u; self.hub = hub; self.firmware = firmware; self.gunCount = gunCount
        if let dir = config.stateDirectory {
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
            catch { throw OCPPError(description: "OCPP state_dir \(dir): \(error.localizedDescription)") }
        }
        cp = ChargePoint(config: config, firmware: firmware, gunCount: gunCount, grid: hub.state)
        updater = FirmwareUpdater(config: config, hub: hub, running: firmware)
        uploads = Uploads(config: config, hub: hub)
        security = SecurityExtension(config: config, hub: hub)
        updater.securityEvent = { [unowned self] type, info in securityEvent(type, info) }
        updater.stationMillis = { [unowned self] in stationMillis }
        for g in 0..<min(gunCount, presentedTags.count) { cp.presentedTags[g] = presentedTags[g] }
        startedAt = monotonic()
        if let dir = config.stateDirectory {
            loadState(dir)
            cp.hasCertificateStore = security.certificates != nil
            loadSecurityProfile()
        }
        if cp.securityProfile == 1 || cp.securityProfile == 2 {
            authorizationKey = loadAuthorizationKey()
            guard authorizationKey != nil else { throw OCPPError(description: "OCPP security profile \(cp.securityProfile): no readable AuthorizationKey") }
        }
        step { $0.securityEvent("StartupOfTheDevice", "chargerd \(firmware) started") }
    }

    /// The security profile in use (the charge point's).
    var securityProfile: Int { cp.securityProfile }
    /// Booted and connected.
    var online: Bool { cp.booted && ws?.open == true }

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

    /// The idTag a driver presents at each gun's plug (a card at the reader), for the simulation; before
    /// start().
    public func present(idTag tag: String?, gun: Int) { cp.presentedTags[gun] = tag }

    // MARK: the charge point's steps

    /// One step of the charge point: its inputs set (the time, the connection, the transfers), the grid
    /// state swapped into it under the hub's lock for `body`, then the effects it asked for carried out
    /// (outside the lock: they may log, which takes it).
    @discardableResult
    func step<R>(_ body: (inout ChargePoint) -> R) -> R {
        cp.now = now()
        cp.connected = ws?.open == true
        let (running, request) = uploads.handOver.withLock { ($0.running, $0.logRequest) }
        cp.transfers.firmwareBusy = updater.busy
        cp.transfers.firmwareLast = updater.last
        cp.transfers.diagnosticsRunning = running
        cp.transfers.logRequest = request
        let r = hub.with { grid -> R in
            swap(&cp.grid, &grid)
            defer { swap(&cp.grid, &grid) }
            return body(&cp)
        }
        perform(cp.takeEffects())
        return r
    }

    /// Carries out what the charge point asked for, in order.
    func perform(_ effects: [ChargePointEffect]) {
        for e in effects {
            switch e {
            case .send(let text):
                guard let ws else { continue }
                do { try ws.send(text: text) } catch { dropConnection("\(error)") }
            case .log(let kind, let text): hub.log(kind, text)
            case .authorization(let a, let text): hub.authorization(a, text: text)
            case .save(let f): store(f)
            case .securityLog(let e): security.appendLog(e)
            case .reset(let type): onReset?(type)
            case .disconnect(let why, let now):
                dropConnection(why)
                if now { nextConnectAttempt = self.now() }
            case .delegated(let id, let action, let payload): delegated(id, action, payload)
            case .signingRequest: sendSigningRequest()
            case .status(let s): setStatus(s)
            }
        }
    }

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
                if case .failure(let why) = cp.settings.set(k, v, connectors: gunCount) { bad.append(why.description) }
            }
            hub.log("ocpp", "configuration restored from \(configurationPath ?? "")" + (bad.isEmpty ? "" : "; left out: " + bad.joined(separator: "; ")))
        }
        if let a = restored(LocalAuthorization.self, authorizationPath, "local authorization (no list, empty cache)") {
            cp.localAuth = a
            hub.log("ocpp", "local authorization list version \(a.listVersion) (\(a.list.count) idTag(s)) and \(a.cache.count) cached idTag(s) restored from \(authorizationPath ?? "")")
        }
        updater.load()
        loadSecurityEvents()
        let guns = gunCount
        if let r = restored(Reservations.self, reservationsPath, "reservations (none kept)", valid: StateFiles.reservationsValid(guns: guns)) {
            cp.reservations = r
            if !r.held.isEmpty { hub.log("ocpp", "\(r.held.count) reservation(s) restored from \(reservationsPath ?? "")") }
        }
        if let q = restored(PersistedQueue.self, queuePath, "transaction queue (ignored)") {
            cp.queue = q
            if !q.messages.isEmpty { hub.log("ocpp", "\(q.messages.count) transaction message(s) restored from \(queuePath ?? "")") }
        }
    }

    /// A state file read at start: nil when there is none. One that `StateFiles.decode` does not take is
    /// outside input that cannot be trusted: it is renamed PATH.rejected (the newest kept for a
    /// technician), journalled, and nil, so that a start never reads it again into the same failure (a
    /// crash loop).
    func restored<T: Decodable>(_ type: T.Type, _ path: String?, _ what: String, valid: (T) -> Bool = { _ in true }) -> T? {
        StateFiles.restore(T.self, path, hub: hub, what, valid: valid)
    }

    @discardableResult
    func writeDurably(_ data: Data, to path: String) -> Bool { StateFiles.write(data, to: path, hub: hub) }

    /// Stores a state file as the charge point (or the grid state) holds it now.
    func store(_ f: StateFile) {
        let encoder = JSONEncoder()
        switch f {
        case .profiles:
            guard let p = profilesPath, let d = try? encoder.encode(hub.state.profiles) else { return }
            writeDurably(d, to: p)
        case .availability:
            let u = hub.with { $0.unavailable }
            guard let p = availabilityPath, let d = try? encoder.encode(Availability(inoperative: u.indices.filter { u[$0] })) else { return }
            writeDurably(d, to: p)
        case .configuration:
            guard let p = configurationPath, let d = try? encoder.encode(cp.settings.stored(cp.facts)) else { return }
            writeDurably(d, to: p)
        case .authorization:
            guard let p = authorizationPath, let d = try? encoder.encode(cp.localAuth) else { return }
            writeDurably(d, to: p)
        case .reservations:
            guard let p = reservationsPath, let d = try? encoder.encode(cp.reservations) else { return }
            writeDurably(d, to: p)
        case .queue:
            guard let p = queuePath, let d = try? encoder.encode(cp.queue) else { return }
            writeDurably(d, to: p)
        case .securityEvents:
            saveSecurityEvents()
        }
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
        uploads.stop()
        updater.stop()
    }

    // MARK: the client thread

    func now() -> Double { monotonic() }
    func monotonic() -> Double { Double(monotonicNanos()) / 1e9 }
    /// The station clock now.
    var stationMillis: Int64 { hub.state.clock.epochMillis(cp.observation.at) }

    func setStatus(_ s: String) { statusText.withLock { $0 = s } }

    /// Stop asked: go on only while connected, with transaction messages to send, before the deadline.
    var shouldStop: Bool {
        guard thread.stopAsked else { return false }
        let unsaid = !inbox.withLock({ $0.events.isEmpty })
        let busy = ws?.open == true && cp.booted && (!cp.queue.messages.isEmpty || cp.pending?.queued != nil || unsaid)
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
            step { $0.expire() }
            firmwareTurn()
            renewCertificateIfDue()
            do {
                if let ws { try pingIfDue(ws) }
                if let text = try ws?.receive(timeoutMs: 50) {
                    let parsed = OCPPFrame.parse(text)
                    step { $0.receive(text, parsed: parsed) }
                }
                step { $0.sendDue() }
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
            let c = try WebSocketConnection(url: url, subprotocol: "ocpp1.6", tls: security.tlsFiles(profile: securityProfile), timeout: 5, headers: headers)
            ws = c
            hub.log("ocpp", "connected to \(c.peer)" + (connectedOnce ? " again; \(cp.queue.messages.count) queued transaction message(s) to send" : ""))
            setStatus("OCPP: connected to \(c.peer), " + (cp.booted ? "accepted" : "booting"))
            connectedOnce = true
            cp.peer = c.peer
            step { $0.connectionMade() }
        } catch {
            nextConnectAttempt = now() + config.reconnectInterval.seconds
            if "\(error)".contains("certificate verification failed") && now() >= nextOfflineLog {
                step { $0.securityEvent("InvalidCentralSystemCertificate", "\(error)") }
            }
            setStatus("OCPP: offline (\(error)); \(cp.queue.messages.count) transaction message(s) queued")
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
        cp.connectionLost()
        nextConnectAttempt = now() + config.reconnectInterval.seconds
        hub.log("ocpp-offline", "disconnected: \(why); \(cp.queue.messages.count) transaction message(s) queued")
        setStatus("OCPP: offline (\(why)); \(cp.queue.messages.count) transaction message(s) queued")
    }

    /// WebSocketPingInterval (OCPP 1.6 §9.1): a ping every interval (0: none); a ping still unanswered
    /// when the next is due means the central system is not there (a half-open connection): the
    /// connection ends and is made again, as after any loss.
    func pingIfDue(_ ws: WebSocketConnection) throws(WebSocketError) {
        let interval = Double(cp.settings.webSocketPingInterval)
        guard interval > 0, now() - lastPing >= interval / max(1, speedFactor) else { return }
        if let n = pongsAtPing, ws.pongs == n {
            throw WebSocketError("no pong within WebSocketPingInterval (\(cp.settings.webSocketPingInterval) s)")
        }
        pongsAtPing = ws.pongs
        lastPing = now()
        try ws.ping()
    }

    /// The firmware updater's turn: what the charge point's state says of the station (idle: no
    /// transaction and no car on any gun; a faulted gun does not hold an update back) and of the
    /// connection; a restart into an installed version asked once its statuses are out.
    func firmwareTurn() {
        let idle = cp.txRef.allSatisfy({ $0 == nil }) && cp.phase.allSatisfy({ $0 == .unplugged || $0 == .faulted })
        let statusesOut = cp.firmwareStatuses.isEmpty && updater.handOver.withLock({ $0.statuses.queue.isEmpty })
        let quiet = (statusesOut || !online) && cp.pending == nil && !cp.resetFired
        let ranFor = (now() - startedAt) * max(1, speedFactor)
        guard let version = updater.turn(booted: cp.booted, ranFor: ranFor, idle: idle, quiet: quiet) else { return }
        cp.resetFired = true
        onFirmwareInstalled?(version)
    }

    /// What the loop and the transfers' threads handed over since the last turn, into the charge point.
    func takeInbox() {
        let (events, obs) = inbox.withLock { i in
            defer { i.events.removeAll(); i.observation = nil }
            return (i.events, i.observation)
        }
        let (diagnostics, logs) = uploads.take()
        let firmware = updater.takeStatuses()
        step { cp in
            cp.firmwareStatuses += firmware
            cp.logStatuses += logs
            cp.diagnosticsStatuses += diagnostics
            cp.loopSaid(events, observation: obs)
        }
    }
}

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

    /// A state file read at start: nil when there is none. One that `decode` does not take is outside
    /// input that cannot be trusted: it is renamed PATH.rejected (the newest kept for a technician),
    /// journalled, and nil, so that a start never reads it again into the same failure (a crash loop).
    static func restore<T: Decodable>(_ type: T.Type, _ path: String?, hub: GridHub, _ what: String, valid: (T) -> Bool = { _ in true }) -> T? {
        guard let p = path, let d = FileManager.default.contents(atPath: p) else { return nil }
        if let v = decode(T.self, d, valid: valid) { return v }
        let outcome = rename(p, p + ".rejected") == 0 ? "set aside as \(p).rejected"
            : unlink(p) == 0 ? "removed (it could not be renamed)" : "neither renamed nor removed (\(String(cString: strerror(errno))))"
        hub.log("ocpp", "\(what): \(p) unreadable or out of bounds: \(outcome)")
        return nil
    }

    /// Writes `data` to `path` atomically and durably, owner-only (Crypto.writeWhole); a failure is
    /// journalled (the state in memory stays right; the file keeps its last whole version).
    @discardableResult
    static func write(_ data: Data, to path: String, hub: GridHub) -> Bool {
        guard let why = Crypto.writePrivately(Array(data), to: path) else { return true }
        hub.log("ocpp", "cannot store \(why)")
        return false
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
