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
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

public struct OCPPError: Error, CustomStringConvertible { public var description: String }

/// OCPP's connector status (ChargePointStatus).
enum ConnectorStatus: String { case Available, Preparing, Charging, SuspendedEV, SuspendedEVSE, Finishing, Reserved, Unavailable, Faulted }

/// A transaction message waiting for the central system, as stored.
struct QueuedMessage: Codable, Equatable {
    var seq: UInt64
    var action: String
    /// The payload as JSON text; "transactionId" is filled from `txRef` when sent.
    var payload: String
    /// Local reference of the transaction (negative until StartTransaction is answered).
    var txRef: Int
    var gun: Int
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
    private var thread: pthread_t? = nil
    private let stopFlag = Atomic<Bool>(false)
    private let flushDeadline = Atomic<Int64>(0)

    /// What the main thread hands over (loop events, observations), under a lock.
    struct Inbox { var events: [LoopEvent] = []; var observation: StationObservation? = nil }
    private let inbox = Mutex(Inbox())
    /// Status for the console, under a lock.
    private let statusText = Mutex("OCPP: not connected yet")

    // The client thread's own state (touched by that thread only, after start).
    var ws: WebSocketConnection? = nil
    var booted = false
    var heartbeatInterval: Duration
    /// Configuration keys the central system may change (ChangeConfiguration).
    var meterInterval: Duration
    var connectionTimeout: Duration
    /// Per gun: when (monotonic) an authorization was given with no car plugged (ConnectionTimeOut runs).
    var authorizedWaiting: [Double?]
    /// Per gun: an availability change answered Scheduled, applied when the transaction ends.
    var scheduledAvailability: [Bool?]
    var lastSent = 0.0
    var lastHeartbeat = 0.0
    var pending: (id: String, action: String, sentAt: Double, queued: UInt64?, gun: Int?)? = nil
    var outbox: [(action: String, payload: [String: Any], gun: Int?)] = []
    var queue = PersistedQueue()
    var nextCallId: UInt64 = 1
    var observation = StationObservation()
    var phase: [SessionPhase]
    var sentStatus: [ConnectorStatus?]
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

    public init(config: OCPPConfig, hub: GridHub, firmware: String, gunCount: Int, presentedTags: [String?] = []) throws(OCPPError) {
        guard let u = WebSocketURL(config.url) else { throw OCPPError(description: "OCPP url '\(config.url)' is not ws:// or wss://") }
        self.config = config; url = u; self.hub = hub; self.firmware = firmware; self.gunCount = gunCount
        heartbeatInterval = config.heartbeatInterval
        meterInterval = config.meterInterval
        connectionTimeout = config.connectionTimeout
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
        self.presentedTags = (0..<gunCount).map { $0 < presentedTags.count ? presentedTags[$0] : nil }
        if let dir = config.stateDirectory {
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
            catch { throw OCPPError(description: "OCPP state_dir \(dir): \(error.localizedDescription)") }
            loadState(dir)
        }
    }

    /// The idTag a driver presents at each gun's plug (a card at the reader), for the simulation.
    public func present(idTag tag: String?, gun: Int) { presentedTags[gun] = tag }

    // MARK: persistence

    var profilesPath: String? { config.stateDirectory.map { $0 + "/profiles.json" } }
    var queuePath: String? { config.stateDirectory.map { $0 + "/queue.json" } }
    var availabilityPath: String? { config.stateDirectory.map { $0 + "/availability.json" } }

    func loadState(_ dir: String) {
        if let p = profilesPath, let d = FileManager.default.contents(atPath: p) {
            if let store = try? JSONDecoder().decode(ProfileStore.self, from: d) {
                hub.with { $0.profiles = store }
                hub.log("ocpp", "\(store.profiles.count) charging profile(s) restored from \(p)")
            } else { hub.log("ocpp", "charging profiles in \(p) unreadable: ignored") }
        }
        // OCPP 1.6 §5.2: availability persists across restarts.
        if let p = availabilityPath, let d = FileManager.default.contents(atPath: p) {
            if let a = try? JSONDecoder().decode(Availability.self, from: d) {
                let n = gunCount
                let off = a.inoperative.filter { (0..<n).contains($0) }
                hub.with { s in for g in off { s.unavailable[g] = true } }
                if !off.isEmpty { hub.log("ocpp", "connector(s) \(off.map { String($0 + 1) }.joined(separator: ", ")) Inoperative, as before the restart") }
            } else { hub.log("ocpp", "availability in \(p) unreadable: every connector Operative") }
        }
        if let p = queuePath, let d = FileManager.default.contents(atPath: p) {
            if let q = try? JSONDecoder().decode(PersistedQueue.self, from: d) {
                queue = q
                if !q.messages.isEmpty { hub.log("ocpp", "\(q.messages.count) transaction message(s) restored from \(p), to send") }
            } else { hub.log("ocpp", "transaction queue in \(p) unreadable: ignored") }
        }
    }

    /// Writes `data` to `path` atomically and durably (temp file, fsync, rename).
    static func writeDurably(_ data: Data, to path: String) {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return }
        data.withUnsafeBytes { b in _ = write(fd, b.baseAddress, b.count) }
        fsync(fd)
        close(fd)
        rename(tmp, path)
    }

    func saveProfiles() {
        guard let p = profilesPath, let d = try? JSONEncoder().encode(hub.state.profiles) else { return }
        Self.writeDurably(d, to: p)
    }

    /// Per gun: Inoperative (read under the hub's lock, without copying the whole grid state).
    var unavailable: [Bool] { hub.with { $0.unavailable } }

    func saveAvailability() {
        let u = unavailable
        let off = u.indices.filter { u[$0] }
        guard let p = availabilityPath, let d = try? JSONEncoder().encode(Availability(inoperative: off)) else { return }
        Self.writeDurably(d, to: p)
    }

    /// Sets a gun Operative or Inoperative now (the loop takes it out of service, as `service GUN off`).
    func setAvailable(_ g: Int, _ available: Bool) {
        scheduledAvailability[g] = nil
        guard unavailable[g] == available else { return }
        hub.with { $0.unavailable[g] = !available }
        saveAvailability()
        hub.log("ocpp", "connector \(g + 1) " + (available ? "Operative" : "Inoperative (out of service)"))
    }

    func saveQueue() {
        guard let p = queuePath, let d = try? JSONEncoder().encode(queue) else { return }
        Self.writeDurably(d, to: p)
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

    public func start() {
        let box = Unmanaged.passRetained(self)
        var t = pthread_t()
        pthread_create(&t, nil, { arg in
            let me = Unmanaged<OCPPClient>.fromOpaque(arg!).takeRetainedValue()
            me.run()
            return nil
        }, box.toOpaque())
        thread = t
    }

    /// Stops the client; while connected, queued transaction messages get up to `flushWithin` seconds
    /// to go out first (what is left stays on storage for the next start).
    public func stop(flushWithin: Double = 5) {
        guard let t = thread else { return }
        flushDeadline.store(Int64((monotonic() + flushWithin) * 1000), ordering: .releasing)
        stopFlag.store(true, ordering: .releasing)
        pthread_join(t, nil)
        thread = nil
    }

    // MARK: the client thread

    func now() -> Double { monotonic() }
    func monotonic() -> Double { var ts = timespec(); clock_gettime(CLOCK_MONOTONIC, &ts); return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9 }
    /// The station clock now, for timestamps.
    var stationMillis: Int64 { hub.state.clock.epochMillis(observation.at) }
    var timestamp: String { Timestamp.format(stationMillis) }

    func setStatus(_ s: String) { statusText.withLock { $0 = s } }

    /// Stop asked: go on only while connected, with transaction messages to send, before the deadline.
    var shouldStop: Bool {
        guard stopFlag.load(ordering: .acquiring) else { return false }
        let busy = ws?.open == true && booted && (!queue.messages.isEmpty || pending?.queued != nil || !inbox.withLock { $0.events.isEmpty })
        return !busy || monotonic() * 1000 > Double(flushDeadline.load(ordering: .acquiring))
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
            do {
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
            let c = try WebSocketConnection(url: url, subprotocol: "ocpp1.6", tls: TLSFiles(ca: config.caFile, cert: config.certFile, key: config.keyFile),
                                            timeout: 5)
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
        // A call without its answer: a queued one is sent again, anything else is dropped.
        pending = nil
        nextConnectAttempt = now() + config.reconnectInterval.seconds
        hub.log("ocpp-offline", "disconnected: \(why); \(queue.messages.count) transaction message(s) queued")
        setStatus("OCPP: offline (\(why)); \(queue.messages.count) transaction message(s) queued")
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
        meterValuesIfDue()
    }

    func phaseChanged(_ g: Int, _ p: SessionPhase) {
        let before = phase[g]
        phase[g] = p
        // The car came: ConnectionTimeOut no longer runs.
        if p != .unplugged { authorizedWaiting[g] = nil }
        // A car plugged with an idTag presented: ask the central system.
        if (p == .connecting || p == .connected) && before == .unplugged, !hub.state.authorized[g], let tag = presentedTags[g] {
            idTag[g] = tag
            outbox.append(("Authorize", ["idTag": tag], g))
        }
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
            enqueue("StartTransaction", ["connectorId": g + 1, "idTag": tag, "meterStart": Int(e.meterEnergy.value.rounded(.down)),
                                         "timestamp": Timestamp.format(startMs)], ref: ref, gun: g)
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
            let reason: String
            switch e.stopReason {
            case .operatorRequest: reason = "Local"
            case .vehicleRequest, .commTimeout: reason = "EVDisconnected"
            case .fault, .pauseTooLong: reason = "Other"
            case .none: reason = "EVDisconnected"
            }
            var payload: [String: Any] = ["meterStop": Int(e.meterEnergy.value.rounded(.down)), "timestamp": Timestamp.format(stopMs), "reason": remoteStopped.contains(g) ? "Remote" : reason]
            if let tag = idTag[g] { payload["idTag"] = tag }
            remoteStopped.remove(g)
            enqueue("StopTransaction", payload, ref: ref, gun: g)
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

    /// The configuration keys this charge point has (OCPP 1.6 §9), with their values now.
    func configuration() -> [(key: String, readonly: Bool, value: String)] {
        [("HeartbeatInterval", false, String(Int(heartbeatInterval.seconds))),
         ("MeterValueSampleInterval", false, String(Int(meterInterval.seconds))),
         ("ConnectionTimeOut", false, String(Int(connectionTimeout.seconds))),
         ("MeterValuesSampledData", true, "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,Power.Offered,SoC"),
         ("NumberOfConnectors", true, String(gunCount)),
         ("ChargeProfileMaxStackLevel", true, String(ProfileStore.maxStackLevel)),
         ("ChargingScheduleAllowedChargingRateUnit", true, "Current,Power"),
         ("ChargingScheduleMaxPeriods", true, String(ProfileStore.maxPeriods)),
         ("MaxChargingProfilesInstalled", true, String(ProfileStore.maxProfiles)),
         ("AuthorizeRemoteTxRequests", true, "false"),
         ("SupportedFeatureProfiles", true, "Core,SmartCharging")]
    }

    /// The gun needs a new authorization for its next session (none needed under free vend).
    func revokeAuthorization(_ g: Int) {
        let free = config.freeVend
        hub.with { $0.authorized[g] = free }
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
            hub.log("ocpp", "authorization for \(idTag[g] ?? "?") on connector \(g + 1) lapsed: no car within ConnectionTimeOut (\(fmtS(connectionTimeout.seconds)) s)")
            idTag[g] = nil
        }
    }

    func meterValuesIfDue() {
        for g in 0..<gunCount {
            guard let ref = txRef[g], observation.guns.count > g, meterInterval.micros > 0, monotonic() - lastMeter[g] >= meterInterval.seconds / max(1, speedFactor) else { continue }
            lastMeter[g] = monotonic()
            let o = observation.guns[g]
            var sampled: [[String: Any]] = [
                ["value": String(Int(o.meterEnergy.value.rounded(.down))), "measurand": "Energy.Active.Import.Register", "unit": "Wh", "context": "Sample.Periodic", "location": "Outlet"],
                ["value": String(format: "%.1f", o.power.value), "measurand": "Power.Active.Import", "unit": "W", "context": "Sample.Periodic", "location": "Outlet"],
                ["value": String(format: "%.1f", o.current.value), "measurand": "Current.Import", "unit": "A", "context": "Sample.Periodic", "location": "Outlet"],
                ["value": String(format: "%.1f", o.voltage.value), "measurand": "Voltage", "unit": "V", "context": "Sample.Periodic", "location": "Outlet"],
                ["value": String(format: "%.1f", o.powerLimit.value), "measurand": "Power.Offered", "unit": "W", "context": "Sample.Periodic", "location": "Outlet"],
            ]
            if o.soc.isFinite { sampled.append(["value": String(format: "%.1f", o.soc), "measurand": "SoC", "unit": "Percent", "context": "Sample.Periodic", "location": "EV"]) }
            enqueue("MeterValues", ["connectorId": g + 1, "meterValue": [["timestamp": timestamp, "sampledValue": sampled]]], ref: ref, gun: g)
        }
    }
    /// Meter intervals are in station time: at a simulation speed above 1 they come that much sooner.
    public var speedFactor: Double = 1

    func enqueue(_ action: String, _ payload: [String: Any], ref: Int, gun: Int) {
        guard let d = try? JSONSerialization.data(withJSONObject: payload, options: [.sortedKeys]) else { return }
        queue.messages.append(QueuedMessage(seq: queue.nextSeq, action: action, payload: String(decoding: d, as: UTF8.self), txRef: ref, gun: gun))
        queue.nextSeq += 1
        saveQueue()
    }

    // MARK: sending

    func connectorStatus(_ c: Int) -> ConnectorStatus {
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
        case .unplugged: return authorizedWaiting[g] != nil ? .Preparing : .Available   // authorized, waiting for the car
        case .charging: return o.current.value < 1 && o.powerLimit.value < 1 ? .SuspendedEVSE : .Charging
        case .stopping, .statistics, .weldingCheck, .unlocking, .finished: return .Finishing
        default: return .Preparing      // plugged, waiting for authorization or on its way to charging
        }
    }

    func sendDue() throws(WebSocketError) {
        guard let ws else { return }
        if let p = pending {
            if now() - p.sentAt > config.callTimeout.seconds {
                throw WebSocketError("no answer to \(p.action) within \(fmtS(config.callTimeout.seconds)) s")
            }
            return
        }
        if !booted {
            guard now() >= bootRetryAt else { return }
            try call(ws, "BootNotification", ["chargePointVendor": config.vendor, "chargePointModel": config.model,
                                               "chargePointSerialNumber": config.chargePointId, "firmwareVersion": firmware], queued: nil, gun: nil)
            return
        }
        // Statuses first (each connector's latest), then Authorize and other calls, then the transaction queue.
        for c in 0...gunCount {
            let st = connectorStatus(c)
            if sentStatus[c] != st {
                sentStatus[c] = st
                try call(ws, "StatusNotification", ["connectorId": c, "errorCode": st == .Faulted ? "OtherError" : "NoError", "status": st.rawValue, "timestamp": timestamp], queued: nil, gun: nil)
                return
            }
        }
        if !outbox.isEmpty {
            let m = outbox.removeFirst()
            try call(ws, m.action, m.payload, queued: nil, gun: m.gun)
            return
        }
        if let m = queue.messages.first {
            guard let obj = try? JSONSerialization.jsonObject(with: Data(m.payload.utf8)), var payload = obj as? [String: Any] else {
                hub.log("ocpp", "queued \(m.action) #\(m.seq) unreadable: dropped")
                queue.messages.removeFirst(); saveQueue(); return
            }
            if m.action != "StartTransaction" {
                payload["transactionId"] = m.txRef > 0 ? m.txRef : (queue.resolved[String(m.txRef)] ?? 0)
            }
            try call(ws, m.action, payload, queued: m.seq, gun: m.gun)
            return
        }
        if now() - lastHeartbeat >= heartbeatInterval.seconds && now() - lastSent >= heartbeatInterval.seconds {
            lastHeartbeat = now()
            try call(ws, "Heartbeat", [:], queued: nil, gun: nil)
        }
    }

    func call(_ ws: WebSocketConnection, _ action: String, _ payload: [String: Any], queued: UInt64?, gun: Int?) throws(WebSocketError) {
        let id = String(nextCallId)
        nextCallId += 1
        guard let d = try? JSONSerialization.data(withJSONObject: [2, id, action, payload] as [Any], options: [.sortedKeys]) else { return }
        pending = (id, action, now(), queued, gun)
        lastSent = now()
        try ws.send(text: String(decoding: d, as: UTF8.self))
    }

    func reply(_ id: String, _ payload: [String: Any]) {
        guard let d = try? JSONSerialization.data(withJSONObject: [3, id, payload] as [Any], options: [.sortedKeys]) else { return }
        try? ws?.send(text: String(decoding: d, as: UTF8.self))
    }

    func replyError(_ id: String, _ code: String, _ text: String) {
        guard let d = try? JSONSerialization.data(withJSONObject: [4, id, code, text, [String: Any]()] as [Any], options: []) else { return }
        try? ws?.send(text: String(decoding: d, as: UTF8.self))
    }

    // MARK: receiving

    func handle(_ text: String) {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(text.utf8)), let a = obj as? [Any], a.count >= 3,
              let type = a[0] as? Int, let id = a[1] as? String else {
            hub.log("ocpp", "malformed message from the central system ignored: \(text.prefix(120))")
            return
        }
        switch type {
        case 2:
            guard a.count >= 4, let action = a[2] as? String, let payload = a[3] as? [String: Any] else {
                return replyError(id, "FormationViolation", "CALL needs an action and an object payload")
            }
            incoming(id, action, payload)
        case 3:
            guard let p = pending, p.id == id else { return }
            pending = nil
            answered(p, a[2] as? [String: Any] ?? [:])
        case 4:
            guard let p = pending, p.id == id else { return }
            pending = nil
            let code = a[2] as? String ?? "?"
            hub.log("ocpp", "\(p.action) answered with CALLERROR \(code): \(a.count > 3 ? "\(a[3])" : "")")
            // A transaction message the central system refuses is not sent again forever (§4.10: after
            // the retries it is dropped); it is logged.
            if let q = p.queued { queue.messages.removeAll { $0.seq == q }; saveQueue() }
        default:
            hub.log("ocpp", "message type \(type) ignored")
        }
    }

    func answered(_ p: (id: String, action: String, sentAt: Double, queued: UInt64?, gun: Int?), _ r: [String: Any]) {
        switch p.action {
        case "BootNotification":
            let status = r["status"] as? String ?? "?"
            let interval = (r["interval"] as? Int) ?? Int(config.heartbeatInterval.seconds)
            if interval > 0 { heartbeatInterval = .s(Int64(interval)) }
            if status == "Accepted" {
                booted = true
                lastHeartbeat = now()
                hub.log("ocpp", "BootNotification accepted, heartbeat every \(interval) s")
                setStatus("OCPP: connected to \(url.host):\(url.port), accepted")
            } else {
                // Pending/Rejected: try again after the interval.
                hub.log("ocpp", "BootNotification \(status); again in \(interval) s")
                bootRetryAt = now() + Double(max(interval, 1))
            }
        case "Authorize":
            let status = (r["idTagInfo"] as? [String: Any])?["status"] as? String ?? "?"
            if let g = p.gun {
                let ok = status == "Accepted"
                hub.with { $0.authorized[g] = ok || $0.authorized[g] }
                hub.log("ocpp", "idTag \(idTag[g] ?? "?") on connector \(g + 1): \(status)" + (ok ? ", session may start" : ""))
                if !ok { idTag[g] = nil }
            }
        case "StartTransaction":
            guard let seq = p.queued, let m = queue.messages.first(where: { $0.seq == seq }) else { break }
            let txId = r["transactionId"] as? Int ?? 0
            let status = (r["idTagInfo"] as? [String: Any])?["status"] as? String ?? "?"
            queue.resolved[String(m.txRef)] = txId
            queue.messages.removeAll { $0.seq == seq }
            saveQueue()
            let g = m.gun
            if txRef[g] == m.txRef {
                // Still running: the central system's id replaces the local one (profiles refer to it).
                txRef[g] = txId
                hub.with { s in
                    if let t = s.transactions[g] { s.transactions[g] = TransactionInfo(id: txId, startedAt: t.startedAt) }
                }
                for i in queue.messages.indices where queue.messages[i].txRef == m.txRef { queue.messages[i].txRef = txId }
                saveQueue()
            }
            hub.log("ocpp", "transaction \(txId) started on connector \(g + 1) (idTag \(status))")
            if status != "Accepted" && txRef[g] == txId {
                hub.with { $0.stopCount[g] &+= 1 }
                hub.log("ocpp", "idTag not accepted at StartTransaction: session on connector \(g + 1) stopped")
            }
        case "StopTransaction", "MeterValues":
            if let seq = p.queued {
                if p.action == "StopTransaction", let m = queue.messages.first(where: { $0.seq == seq }) {
                    hub.log("ocpp", "transaction \(m.txRef > 0 ? m.txRef : queue.resolved[String(m.txRef)] ?? 0) stopped on connector \(m.gun + 1)")
                }
                queue.messages.removeAll { $0.seq == seq }
                saveQueue()
            }
        default: break
        }
    }

    func incoming(_ id: String, _ action: String, _ p: [String: Any]) {
        switch action {
        case "RemoteStartTransaction":
            guard let tag = p["idTag"] as? String else { return replyError(id, "FormationViolation", "idTag missing") }
            var gun: Int? = nil
            if let c = p["connectorId"] as? Int {
                if c >= 1 && c <= gunCount { gun = c - 1 }
            } else {
                let off = unavailable
                gun = (0..<gunCount).first { txRef[$0] == nil && !off[$0] && (phase[$0] == .connected || phase[$0] == .connecting) } ?? (0..<gunCount).first { txRef[$0] == nil && !off[$0] && phase[$0] == .unplugged }
            }
            guard let g = gun, txRef[g] == nil, !unavailable[g], !(observation.guns.count > g && observation.guns[g].faulted) else {
                hub.log("ocpp", "RemoteStartTransaction for \(tag) rejected (no free connector)")
                return reply(id, ["status": "Rejected"])
            }
            if let cp = p["chargingProfile"] {
                guard let d = try? JSONSerialization.data(withJSONObject: cp), let prof = try? JSONDecoder().decode(ChargingProfile.self, from: d),
                      prof.chargingProfilePurpose == .TxProfile else {
                    hub.log("ocpp", "RemoteStartTransaction rejected: its chargingProfile is not a valid TxProfile")
                    return reply(id, ["status": "Rejected"])
                }
                pendingTxProfile[g] = prof
            }
            idTag[g] = tag
            hub.with { $0.authorized[g] = true }
            if phase[g] == .unplugged { authorizedWaiting[g] = now() }
            hub.log("ocpp", "RemoteStartTransaction for \(tag) accepted on connector \(g + 1)" + (phase[g] == .unplugged ? ", waiting up to \(fmtS(connectionTimeout.seconds)) s for the car" : ""))
            reply(id, ["status": "Accepted"])
        case "RemoteStopTransaction":
            guard let tx = p["transactionId"] as? Int, let g = (0..<gunCount).first(where: { txRef[$0] == tx }) else {
                hub.log("ocpp", "RemoteStopTransaction \(p["transactionId"] ?? "?") rejected (no such transaction)")
                return reply(id, ["status": "Rejected"])
            }
            remoteStopped.insert(g)
            hub.with { $0.stopCount[g] &+= 1 }
            hub.log("ocpp", "RemoteStopTransaction \(tx) accepted: connector \(g + 1) stops")
            reply(id, ["status": "Accepted"])
        case "SetChargingProfile":
            guard let c = p["connectorId"] as? Int, let cp = p["csChargingProfiles"], let d = try? JSONSerialization.data(withJSONObject: cp) else {
                return replyError(id, "FormationViolation", "connectorId and csChargingProfiles are required")
            }
            let prof: ChargingProfile
            do { prof = try JSONDecoder().decode(ChargingProfile.self, from: d) } catch {
                return replyError(id, "PropertyConstraintViolation", "csChargingProfiles: \(error)")
            }
            let tx = c >= 1 && c <= gunCount ? txRef[c - 1] : nil
            let at = stationMillis
            let result: String? = hub.with { s -> String? in
                do { try s.profiles.install(prof, connectorId: c, connectors: gunCount, activeTransaction: tx, at: at); return nil }
                catch { return "\(error)" }
            }
            if let why = result {
                hub.log("ocpp", "SetChargingProfile #\(prof.chargingProfileId) rejected: \(why)")
                return reply(id, ["status": "Rejected"])
            }
            saveProfiles()
            let first = prof.chargingSchedule.chargingSchedulePeriod.first!
            hub.log("ocpp", "SetChargingProfile #\(prof.chargingProfileId) \(prof.chargingProfilePurpose.rawValue) \(prof.chargingProfileKind.rawValue) on connector \(c), stack level \(prof.stackLevel), first limit \(first.limit) \(prof.chargingSchedule.chargingRateUnit.rawValue)")
            reply(id, ["status": "Accepted"])
        case "ClearChargingProfile":
            let purpose = (p["chargingProfilePurpose"] as? String).flatMap(ProfilePurpose.init(rawValue:))
            let n = hub.with { $0.profiles.clear(id: p["id"] as? Int, connectorId: p["connectorId"] as? Int, purpose: purpose, stackLevel: p["stackLevel"] as? Int) }
            if n > 0 { saveProfiles() }
            hub.log("ocpp", "ClearChargingProfile: \(n) profile(s) cleared")
            reply(id, ["status": n > 0 ? "Accepted" : "Unknown"])
        case "GetCompositeSchedule":
            guard let c = p["connectorId"] as? Int, let duration = p["duration"] as? Int, duration > 0 else {
                return replyError(id, "FormationViolation", "connectorId and a positive duration are required")
            }
            guard c >= 0 && c <= gunCount else { return reply(id, ["status": "Rejected"]) }
            let unit = (p["chargingRateUnit"] as? String).flatMap(RateUnit.init(rawValue:)) ?? .W
            let from = stationMillis
            let volts = c > 0 && c - 1 < observation.guns.count ? observation.guns[c - 1].voltage : .zero
            let periods = hub.state.compositeSchedule(connectorId: c, from: from, duration: duration, unit: unit,
                                                      volts: volts.value > 50 ? volts : Volts(400))
            reply(id, ["status": "Accepted", "connectorId": c, "scheduleStart": Timestamp.format(from),
                       "chargingSchedule": ["duration": duration, "startSchedule": Timestamp.format(from), "chargingRateUnit": unit.rawValue,
                                            "chargingSchedulePeriod": periods.map { ["startPeriod": $0.startPeriod, "limit": $0.limit] }]])
        case "ChangeConfiguration":
            let key = p["key"] as? String ?? "", value = p["value"] as? String ?? ""
            guard let entry = configuration().first(where: { $0.key == key }) else { return reply(id, ["status": "NotSupported"]) }
            guard !entry.readonly else { return reply(id, ["status": "Rejected"]) }
            // Seconds: HeartbeatInterval and ConnectionTimeOut > 0; MeterValueSampleInterval ≥ 0 (0: none).
            guard let v = Int(value.trimmingCharacters(in: .whitespaces)), v >= (key == "MeterValueSampleInterval" ? 0 : 1), v <= 86_400 else {
                hub.log("ocpp", "ChangeConfiguration \(key)=\(value) rejected (whole seconds expected)")
                return reply(id, ["status": "Rejected"])
            }
            switch key {
            case "HeartbeatInterval": heartbeatInterval = .s(Int64(v))
            case "MeterValueSampleInterval": meterInterval = .s(Int64(v))
            case "ConnectionTimeOut": connectionTimeout = .s(Int64(v))
            default: return reply(id, ["status": "NotSupported"])
            }
            hub.log("ocpp", "configuration \(key) = \(v) s")
            reply(id, ["status": "Accepted"])
        case "ChangeAvailability":
            guard let c = p["connectorId"] as? Int, let type = p["type"] as? String, type == "Inoperative" || type == "Operative" else {
                return replyError(id, "FormationViolation", "connectorId and type (Inoperative|Operative) are required")
            }
            guard (0...gunCount).contains(c) else {
                hub.log("ocpp", "ChangeAvailability of connector \(c) rejected (0...\(gunCount))")
                return reply(id, ["status": "Rejected"])
            }
            let available = type == "Operative"
            var scheduled = false
            for g in (c == 0 ? Array(0..<gunCount) : [c - 1]) {
                // A running transaction finishes first (§5.2): the change waits for its end.
                if !available && txRef[g] != nil { scheduledAvailability[g] = false; scheduled = true }
                else { setAvailable(g, available) }
            }
            if scheduled { hub.log("ocpp", "ChangeAvailability \(type) of connector \(c) scheduled for the end of the running transaction") }
            reply(id, ["status": scheduled ? "Scheduled" : "Accepted"])
        case "GetConfiguration":
            let all = configuration()
            let asked = (p["key"] as? [String]) ?? []
            let known = asked.isEmpty ? all : all.filter { asked.contains($0.key) }
            let unknown = asked.filter { k in !all.contains { $0.key == k } }
            var r: [String: Any] = ["configurationKey": known.map { ["key": $0.key, "readonly": $0.readonly, "value": $0.value] as [String: Any] }]
            if !unknown.isEmpty { r["unknownKey"] = unknown }
            reply(id, r)
        default:
            replyError(id, "NotImplemented", "\(action) is not supported by this charge point")
        }
    }
}

func fmtS(_ x: Double) -> String { String(format: "%.0f", x) }
