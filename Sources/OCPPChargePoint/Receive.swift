// The charge point's receiving side: frames from the central system, the answers to this charge point's
// calls, and one function per action the central system may call. Payloads arrive as the typed
// messages of Grid/OCPP16.swift; one that does not decode is answered with the CALLERROR naming the
// field (OCPP-J 1.6 §4.2.3), an action OCPP 1.6 does not have with NotImplemented, and one it has that
// this charge point does not handle with NotSupported.
import ChargerCore
import Foundation
import Grid
import LoopContract
import SiteFile

extension ChargePoint {
    /// A frame from the central system.
    package mutating func receive(_ text: String) { receive(text, parsed: OCPPFrame.parse(text)) }

    /// A frame from the central system, parsed already (the transport parses outside the grid hub's lock:
    /// a large frame's JSON is the step's dearest part).
    package mutating func receive(_ text: String, parsed: Result<OCPPFrame, OCPPFrame.Malformed>) {
        switch parsed {
        case .failure(let m):
            if let id = m.callId {
                log("ocpp-refused", "malformed CALL \(id) from the central system answered FormationViolation: \(m.why)")
                replyError(id, .FormationViolation, m.why)
            } else {
                log("ocpp-refused", "malformed message from the central system ignored (\(m.why)): \(text.prefix(120))")
            }
        case .success(.call(let id, let action, let payload)):
            incoming(id, action, payload)
        case .success(.result(let id, let payload)):
            guard let p = pending, p.id == id else { return }
            pending = nil
            answered(p, payload)
        case .success(.error(let id, let code, let why)):
            guard let p = pending, p.id == id else { return }
            pending = nil
            log("ocpp", "\(p.action) answered with CALLERROR \(code): \(why)")
            // A security event the central system refuses is not sent again (it would be refused again).
            if p.action == .SecurityEventNotification { securityEventDelivered() }
            refused(p)
        }
    }

    /// A transaction message the central system refuses is sent again after TransactionMessageRetryInterval
    /// times the attempts made, at most TransactionMessageAttempts times in all, then dropped and logged
    /// (§4.10; the queue's order kept).
    mutating func refused(_ p: PendingCall) {
        guard let q = p.queued, let i = queue.messages.firstIndex(where: { $0.seq == q }) else { return }
        let attempts = (queue.messages[i].attempts ?? 0) + 1
        if attempts >= settings.transactionMessageAttempts {
            log("ocpp", "\(p.action) #\(q) refused \(attempts) time(s) (TransactionMessageAttempts \(settings.transactionMessageAttempts)): dropped")
            queue.messages.remove(at: i)
        } else {
            let wait = settings.transactionMessageRetryInterval * attempts
            queue.messages[i].attempts = attempts
            queueRetryAt = now + Double(wait) / max(1, speedFactor)
            log("ocpp", "\(p.action) #\(q) refused (attempt \(attempts) of \(settings.transactionMessageAttempts)): sent again in \(wait) s")
        }
        save(.queue)
    }

    // MARK: answers to this charge point's calls

    mutating func answered(_ p: PendingCall, _ r: JSONValue) {
        do {
            switch p.action {
            case .BootNotification: bootAnswered(try r.decode(BootNotificationConf.self))
            case .Authorize: if let g = p.gun { authorizeAnswered(g, try r.decode(AuthorizeConf.self)) }
            case .StartTransaction: startAnswered(p, try r.decode(StartTransactionConf.self))
            case .StopTransaction:
                let r = try r.decode(StopTransactionConf.self)
                cacheAnswer(queuedTag(p), r.idTagInfo)
                transactionMessageAnswered(p)
            case .MeterValues: transactionMessageAnswered(p)
            case .SecurityEventNotification: securityEventDelivered()
            case .SignCertificate:
                let status = try r.decode(StatusConf<AcceptedRejected>.self).status
                log("ocpp", "SignCertificate answered \(status.rawValue)" + (status == .Accepted ? ": the certificate comes with CertificateSigned" : ""))
            default: break
            }
        } catch {
            let why = CallErrorCode.of(error).text
            log("ocpp", "\(p.action) answer not understood (\(why)): taken as refused")
            if p.action == .BootNotification { bootRetryAt = now + max(config.heartbeatInterval.seconds, 1) }
            refused(p)
        }
    }

    mutating func bootAnswered(_ r: BootNotificationConf) {
        if r.interval > 0 { heartbeatInterval = .s(Int64(r.interval)) }
        if r.status == .Accepted {
            booted = true
            lastHeartbeat = now
            log("ocpp", "BootNotification accepted, heartbeat every \(r.interval) s")
            setStatus("OCPP: connected to \(peer), accepted")
        } else {
            // Pending/Rejected: try again after the interval.
            log("ocpp", "BootNotification \(r.status.rawValue); again in \(r.interval) s")
            bootRetryAt = now + Double(max(r.interval, 1))
        }
    }

    mutating func authorizeAnswered(_ g: Int, _ r: AuthorizeConf) {
        cacheAnswer(idTag[g], r.idTagInfo)
        if case .asked(let tag) = vinStage[g] { return vinAnswered(g, tag: tag, r.idTagInfo) }
        if case .ended(let tag) = vinStage[g] {
            // Recognition ended first (the 4 s bound): the answer is kept in the cache, nothing more.
            cacheAnswer(tag, r.idTagInfo)
            log("ocpp", "connector \(g + 1): the answer for VIN \(shown(tag)) (\(r.idTagInfo.status.rawValue)) came after recognition ended: the session had stopped")
            return
        }
        if let tag = idTag[g], let res = reservations.on(gun: g), r.idTagInfo.status == .Accepted,
           !reservations.admits(tag, parent: r.idTagInfo.parentIdTag, gun: g) {
            log("ocpp", "idTag \(shown(tag)) on connector \(g + 1): Accepted, but the connector is reserved for another idTag (#\(res.id)): refused")
            idTag[g] = nil
            return
        }
        let ok = r.idTagInfo.status == .Accepted
        grid.authorized[g] = ok || grid.authorized[g]
        if ok, let tag = idTag[g] { grid.vinChecks[g] = .notUsed; grid.identities[g] = SessionIdentity(method: .idtag, identity: tag) }
        if ok { vinStage[g] = .none }   // the idTag authorizes the session: its VIN is not asked about
        log("ocpp", "idTag \(idTag[g].map(shown) ?? "?") on connector \(g + 1): \(r.idTagInfo.status.rawValue)" + (ok ? ", session may start" : ""))
        if !ok { idTag[g] = nil }
    }

    mutating func startAnswered(_ p: PendingCall, _ r: StartTransactionConf) {
        guard let seq = p.queued, let m = queue.messages.first(where: { $0.seq == seq }) else { return }
        let txId = r.transactionId
        queue.resolved[String(m.txRef)] = txId
        queue.messages.removeAll { $0.seq == seq }
        save(.queue)
        let g = m.gun
        cacheAnswer(m.idTag, r.idTagInfo)
        if txRef[g] == m.txRef {
            // Still running: the central system's id replaces the local one (profiles refer to it).
            txRef[g] = txId
            if let t = grid.transactions[g] { grid.transactions[g] = TransactionInfo(id: txId, startedAt: t.startedAt) }
            for i in queue.messages.indices where queue.messages[i].txRef == m.txRef { queue.messages[i].txRef = txId }
            save(.queue)
        }
        log("ocpp", "transaction \(txId) started on connector \(g + 1) (idTag \(r.idTagInfo.status.rawValue))")
        if r.idTagInfo.status != .Accepted && txRef[g] == txId {
            if settings.stopTransactionOnInvalidId {
                deauthorized.insert(g)
                grid.stopCount[g] &+= 1
                log("ocpp", "idTag \(r.idTagInfo.status.rawValue) at StartTransaction: session on connector \(g + 1) stopped (StopTransactionOnInvalidId)")
            } else {
                log("ocpp", "idTag \(r.idTagInfo.status.rawValue) at StartTransaction: the session on connector \(g + 1) goes on (StopTransactionOnInvalidId false)")
            }
        }
    }

    /// The idTag of the queued message a call carried (while it is still queued).
    func queuedTag(_ p: PendingCall) -> String? {
        guard let seq = p.queued, let m = queue.messages.first(where: { $0.seq == seq }) else { return nil }
        return m.idTag
    }

    mutating func transactionMessageAnswered(_ p: PendingCall) {
        guard let seq = p.queued else { return }
        if p.action == .StopTransaction, let m = queue.messages.first(where: { $0.seq == seq }) {
            log("ocpp", "transaction \(m.txRef > 0 ? m.txRef : queue.resolved[String(m.txRef)] ?? 0) stopped on connector \(m.gun + 1)")
        }
        queue.messages.removeAll { $0.seq == seq }
        save(.queue)
    }

    // MARK: calls from the central system

    // Long: one case per OCPP action the charge point answers (the dispatch table)
    mutating func incoming(_ id: String, _ name: String, _ payload: JSONValue) {
        guard let action = OCPPAction(rawValue: name) else {
            return replyError(id, .NotImplemented, "\(name) is not an OCPP 1.6 action")
        }
        func typed<T: Decodable>(_ type: T.Type) -> T? { decoded(id, name, payload) }
        switch action {
        case .RemoteStartTransaction: if let r = typed(RemoteStartTransactionReq.self) { reply(id, remoteStart(r)) }
        case .RemoteStopTransaction: if let r = typed(RemoteStopTransactionReq.self) { reply(id, remoteStop(r)) }
        case .SetChargingProfile: if let r = typed(SetChargingProfileReq.self) { reply(id, setChargingProfile(r)) }
        case .ClearChargingProfile: if let r = typed(ClearChargingProfileReq.self) { reply(id, clearChargingProfile(r)) }
        case .GetCompositeSchedule:
            guard let r = typed(GetCompositeScheduleReq.self) else { return }
            if let why = r.durationProblem { return replyError(id, .PropertyConstraintViolation, why) }
            reply(id, compositeSchedule(r))
        case .ChangeConfiguration:
            guard let r = typed(ChangeConfigurationReq.self) else { return }
            // The AuthorizationKey and the security profile are files and certificates: the transport's.
            if r.key == "AuthorizationKey" || r.key == "SecurityProfile" { return effects.append(.delegated(id, action, payload)) }
            reply(id, changeConfiguration(r))
        case .ChangeAvailability: if let r = typed(ChangeAvailabilityReq.self) { reply(id, changeAvailability(r)) }
        case .GetConfiguration: if let r = typed(GetConfigurationReq.self) { reply(id, getConfiguration(r)) }
        case .DataTransfer:
            guard let r = typed(DataTransferReq.self) else { return }
            guard r.vendorId.utf8.count <= 255, (r.messageId?.utf8.count ?? 0) <= 50 else {
                return replyError(id, .PropertyConstraintViolation, "vendorId is CiString255 and messageId CiString50")
            }
            reply(id, dataTransfer(r))
        case .ClearCache:
            guard typed(ClearCacheReq.self) != nil else { return }
            let n = localAuth.cache.count
            localAuth.clearCache()
            save(.authorization)
            log("ocpp", "ClearCache: \(n) cached idTag(s) cleared")
            reply(id, StatusConf(AcceptedRejected.Accepted))
        case .UpdateFirmware, .GetDiagnostics, .InstallCertificate, .GetInstalledCertificateIds, .DeleteCertificate, .CertificateSigned,
             .SignedUpdateFirmware, .GetLog:
            // Files, certificates and transfers: the transport's firmware, diagnostics and security parts.
            effects.append(.delegated(id, action, payload))
        case .ReserveNow:
            guard let r = typed(ReserveNowReq.self) else { return }
            reply(id, StatusConf(reserve(r)))
        case .CancelReservation:
            guard let r = typed(CancelReservationReq.self) else { return }
            if let gone = reservations.cancel(r.reservationId) {
                save(.reservations)
                log("ocpp", "reservation #\(gone.id) on connector \(gone.gun + 1) cancelled")
                reply(id, StatusConf(CancelReservationStatus.Accepted))
            } else {
                log("ocpp", "CancelReservation #\(r.reservationId): no such reservation")
                reply(id, StatusConf(CancelReservationStatus.Rejected))
            }
        case .SendLocalList:
            guard let r = typed(SendLocalListReq.self) else { return }
            let (status, why) = localAuth.apply(r)
            if status == .Accepted { save(.authorization) }
            log("ocpp", "SendLocalList \(status.rawValue): \(why)")
            reply(id, StatusConf(status))
        case .GetLocalListVersion:
            guard typed(GetLocalListVersionReq.self) != nil else { return }
            // -1: the list is disabled (LocalAuthListEnabled false); 0: no list.
            reply(id, GetLocalListVersionConf(listVersion: settings.localAuthListEnabled ? localAuth.listVersion : -1))
        case .TriggerMessage: if let r = typed(TriggerMessageReq.self) { reply(id, StatusConf(trigger(r))) }
        case .Reset: if let r = typed(ResetReq.self) { reply(id, StatusConf(reset(r))) }
        case .UnlockConnector: if let r = typed(UnlockConnectorReq.self) { unlock(id, r) }
        case .ExtendedTriggerMessage:
            if let r = typed(ExtendedTriggerMessageReq.self) {
                reply(id, StatusConf(trigger(TriggerMessageReq(requestedMessage: r.requestedMessage, connectorId: r.connectorId), extended: true)))
            }
        default: replyError(id, .NotSupported, "\(name) is not supported by this charge point")
        }
    }

    /// A call's payload as its type; when it does not decode, the CALLERROR naming the field is sent
    /// (and journalled, rate-limited) and the result is nil.
    package mutating func decoded<T: Decodable>(_ id: String, _ name: String, _ payload: JSONValue) -> T? {
        do { return try payload.decode(T.self) } catch {
            let (code, why) = CallErrorCode.of(error)
            log("ocpp-refused", "\(name) answered \(code.rawValue): \(why)")
            replyError(id, code, why)
            return nil
        }
    }

    /// UnlockConnector (OCPP 1.6 §5.18): a transaction on the connector is stopped first (StopTransaction
    /// with UnlockCommand) and so is a session before it (the lock opens only through the session's own
    /// end, below 60 V: the core decides); the answer waits for the lock feedback to say open: Unlocked,
    /// or UnlockFailed after `unlockWait`. A gun already unlocked answers at once; one that does not
    /// exist UnlockFailed.
    mutating func unlock(_ id: String, _ r: UnlockConnectorReq) {
        let g = r.connectorId - 1
        guard g >= 0, g < gunCount else {
            log("ocpp", "UnlockConnector \(r.connectorId): no such connector")
            return reply(id, StatusConf(UnlockStatus.UnlockFailed))
        }
        let locked = g < observation.guns.count && observation.guns[g].lockConfirmed
        if !locked && txRef[g] == nil {
            log("ocpp", "UnlockConnector \(r.connectorId): unlocked")
            return reply(id, StatusConf(UnlockStatus.Unlocked))
        }
        if txRef[g] != nil { unlockStopped.insert(g) }
        grid.stopCount[g] &+= 1
        pendingUnlocks.append((id, g, now + unlockWait))
        log("ocpp", "UnlockConnector \(r.connectorId): " + (txRef[g] != nil ? "the transaction stops, " : "the session stops, ") + "then the lock opens")
    }

    /// The answers UnlockConnector is waiting to give: Unlocked once the lock feedback says open and no
    /// transaction runs, UnlockFailed at the deadline.
    mutating func answerUnlocks() {
        var waiting = pendingUnlocks
        waiting.removeAll { p in
            let open = !(p.gun < observation.guns.count && observation.guns[p.gun].lockConfirmed) && txRef[p.gun] == nil
            if open {
                log("ocpp", "UnlockConnector \(p.gun + 1): unlocked")
                reply(p.id, StatusConf(UnlockStatus.Unlocked))
                return true
            }
            if now >= p.deadline {
                log("ocpp", "UnlockConnector \(p.gun + 1): the lock did not open within \(wholeText(unlockWait)) s")
                reply(p.id, StatusConf(UnlockStatus.UnlockFailed))
                return true
            }
            return false
        }
        pendingUnlocks = waiting
    }

    /// Reset (OCPP 1.6 §5.14): every running transaction is stopped (StopTransaction with SoftReset or
    /// HardReset). Soft: the controller restarts once every StopTransaction has gone out; Hard: at once
    /// (the queue is on storage and goes out after the restart). The restart is the process's: chargerd
    /// ends its run in order (outputs safe, the journal closed) and exits 5, which the service restarts.
    mutating func reset(_ r: ResetReq) -> AcceptedRejected {
        guard canReset else {
            log("ocpp", "Reset \(r.type.rawValue) rejected: this run cannot restart itself")
            return .Rejected
        }
        if resetPending == nil || r.type == .Hard { resetPending = r.type }
        for g in 0..<gunCount where txRef[g] != nil {
            resetStopped.insert(g)
            grid.stopCount[g] &+= 1
        }
        securityEvent("ResetOrReboot", "Reset \(r.type.rawValue) asked by the central system")
        log("ocpp", "Reset \(r.type.rawValue) accepted: " + (txRef.contains { $0 != nil } ? "transactions stop, then " : "") + "the controller restarts")
        return .Accepted
    }

    /// TriggerMessage (OCPP 1.6 §5.17): Accepted, then the message is sent after this answer (the next
    /// message out, ahead of statuses and the queue); a connector that does not exist is Rejected. No
    /// connector for StatusNotification or MeterValues: every connector's (MeterValues of each gun).
    /// ExtendedTriggerMessage (security whitepaper ed. 2, §4.2) the same way, with its own messages:
    /// LogStatusNotification and SignChargePointCertificate are only extended, DiagnosticsStatusNotification
    /// only plain (the other is NotImplemented).
    mutating func trigger(_ r: TriggerMessageReq, extended: Bool = false) -> TriggerMessageStatus {
        let name = extended ? "ExtendedTriggerMessage" : "TriggerMessage"
        let onlyExtended: Set<MessageTrigger> = [.LogStatusNotification, .SignChargePointCertificate]
        let allowed = extended ? r.requestedMessage != .DiagnosticsStatusNotification : !onlyExtended.contains(r.requestedMessage)
        guard allowed else {
            log("ocpp", "\(name) \(r.requestedMessage.rawValue): not a message it triggers (NotImplemented)")
            return .NotImplemented
        }
        if let c = r.connectorId, c < 0 || c > gunCount { return .Rejected }
        switch r.requestedMessage {
        case .StatusNotification:
            for c in r.connectorId.map({ [$0] }) ?? Array(0...gunCount) {
                triggers.append(Trigger(message: .StatusNotification, connector: c, extended: extended))
            }
        case .MeterValues:
            for c in r.connectorId.map({ [$0] }) ?? Array(1...max(1, gunCount)) {
                triggers.append(Trigger(message: .MeterValues, connector: c, extended: extended))
            }
        case .SignChargePointCertificate:
            guard hasCertificateStore else {
                log("ocpp", "\(name) SignChargePointCertificate rejected: no certificate store (no state_dir)")
                return .Rejected
            }
            triggers.append(Trigger(message: .SignChargePointCertificate, connector: nil, extended: true))
        default:
            triggers.append(Trigger(message: r.requestedMessage, connector: r.connectorId, extended: extended))
        }
        log("ocpp", "\(name) \(r.requestedMessage.rawValue)\(r.connectorId.map { " connector \($0)" } ?? ""): accepted")
        return .Accepted
    }

    /// ReserveNow (§5.13): see Reservations.reserve. Under free vend anyone may charge, so a reservation
    /// could not hold: Rejected.
    mutating func reserve(_ r: ReserveNowReq) -> ReservationStatus {
        guard !config.freeVend else {
            log("ocpp", "ReserveNow #\(r.reservationId) Rejected: free vend (anyone may charge)")
            return .Rejected
        }
        let (off, obs, tx, phases, waiting, at) = (unavailable, observation, txRef, phase, authorizedWaiting, stationMillis)
        let (status, why) = reservations.reserve(r, connectors: gunCount, atMillis: at) { g in
            if g < obs.guns.count && obs.guns[g].faulted { return .faulted }
            if off[g] { return .unavailable }
            return tx[g] != nil || phases[g] != .unplugged || waiting[g] != nil ? .occupied : .free
        }
        if status == .Accepted { save(.reservations) }
        log("ocpp", "ReserveNow \(status.rawValue): \(why)")
        return status
    }

    /// This charge point defines no vendor messages: its own vendor id (the site's `vendor`) answers
    /// UnknownMessageId, any other UnknownVendorId (OCPP 1.6 §4.3, §6.17). A vendor id longer than the
    /// CiString255 it is is a PropertyConstraintViolation.
    mutating func dataTransfer(_ r: DataTransferReq) -> DataTransferConf {
        log("ocpp-datatransfer", "DataTransfer from the central system: vendor '\(r.vendorId.prefix(64))', message '\((r.messageId ?? "").prefix(64))'")
        return DataTransferConf(status: r.vendorId == config.vendor ? .UnknownMessageId : .UnknownVendorId)
    }

    mutating func remoteStart(_ r: RemoteStartTransactionReq) -> StatusConf<AcceptedRejected> {
        var gun: Int? = nil
        let parent = knownParent(r.idTag)
        guard config.authorize.contains(.remote) else {
            log("ocpp", "RemoteStartTransaction for \(shown(r.idTag)) rejected: the site does not authorize by remote start (authorize = \(config.authorize.map(\.rawValue)))")
            return StatusConf(.Rejected)
        }
        if let c = r.connectorId {
            if c >= 1 && c <= gunCount { gun = c - 1 }
        } else {
            let off = unavailable
            let (tx, held) = (txRef, reservations)
            let free = { (g: Int) in tx[g] == nil && !off[g] && held.admits(r.idTag, parent: parent, gun: g) }
            gun = (0..<gunCount).first { free($0) && (phase[$0] == .connected || phase[$0] == .connecting) }
                ?? (0..<gunCount).first { free($0) && phase[$0] == .unplugged }
        }
        guard let g = gun, txRef[g] == nil, !unavailable[g], !(observation.guns.count > g && observation.guns[g].faulted) else {
            log("ocpp", "RemoteStartTransaction for \(shown(r.idTag)) rejected (no free connector)")
            return StatusConf(.Rejected)
        }
        if let res = reservations.on(gun: g), !reservations.admits(r.idTag, parent: parent, gun: g) {
            log("ocpp", "RemoteStartTransaction for \(shown(r.idTag)) rejected: connector \(g + 1) is reserved for another idTag (#\(res.id))")
            return StatusConf(.Rejected)
        }
        if let prof = r.chargingProfile {
            guard prof.chargingProfilePurpose == .TxProfile else {
                log("ocpp", "RemoteStartTransaction rejected: its chargingProfile is not a TxProfile")
                return StatusConf(.Rejected)
            }
            pendingTxProfile[g] = prof
        }
        if phase[g] == .unplugged { authorizedWaiting[g] = now }
        if settings.authorizeRemoteTxRequests {
            // Authorized as an idTag at the plug would be (AuthorizeRemoteTxRequests, §5.11).
            authorizeAtPlug(r.idTag, g)
        } else {
            idTag[g] = r.idTag
            let who = SessionIdentity(method: .remote, identity: shown(r.idTag))
            grid.authorized[g] = true; grid.vinChecks[g] = .notUsed; grid.identities[g] = who
            vinStage[g] = .none
        }
        log("ocpp", "RemoteStartTransaction for \(shown(r.idTag)) accepted on connector \(g + 1)"
                + (phase[g] == .unplugged ? ", waiting up to \(wholeText(connectionTimeout.seconds)) s for the car" : ""))
        return StatusConf(.Accepted)
    }

    mutating func remoteStop(_ r: RemoteStopTransactionReq) -> StatusConf<AcceptedRejected> {
        guard let g = (0..<gunCount).first(where: { txRef[$0] == r.transactionId }) else {
            log("ocpp", "RemoteStopTransaction \(r.transactionId) rejected (no such transaction)")
            return StatusConf(.Rejected)
        }
        remoteStopped.insert(g)
        grid.stopCount[g] &+= 1
        log("ocpp", "RemoteStopTransaction \(r.transactionId) accepted: connector \(g + 1) stops")
        return StatusConf(.Accepted)
    }

    mutating func setChargingProfile(_ r: SetChargingProfileReq) -> StatusConf<ChargingProfileStatus> {
        let c = r.connectorId, prof = r.csChargingProfiles
        let tx = c >= 1 && c <= gunCount ? txRef[c - 1] : nil
        let at = stationMillis
        var result: String? = nil
        do { try grid.profiles.install(prof, connectorId: c, connectors: gunCount, activeTransaction: tx, at: at) } catch { result = "\(error)" }
        if let why = result {
            log("ocpp", "SetChargingProfile #\(prof.chargingProfileId) rejected: \(why)")
            return StatusConf(.Rejected)
        }
        save(.profiles)
        let first = prof.chargingSchedule.chargingSchedulePeriod.first.map { "\($0.limit)" } ?? "?"
        log("ocpp", "SetChargingProfile #\(prof.chargingProfileId) \(prof.chargingProfilePurpose.rawValue) \(prof.chargingProfileKind.rawValue) on connector \(c), stack level \(prof.stackLevel), first limit \(first) \(prof.chargingSchedule.chargingRateUnit.rawValue)")
        return StatusConf(.Accepted)
    }

    mutating func clearChargingProfile(_ r: ClearChargingProfileReq) -> StatusConf<ClearChargingProfileStatus> {
        let n = grid.profiles.clear(id: r.id, connectorId: r.connectorId, purpose: r.chargingProfilePurpose, stackLevel: r.stackLevel)
        if n > 0 { save(.profiles) }
        log("ocpp", "ClearChargingProfile: \(n) profile(s) cleared")
        return StatusConf(n > 0 ? .Accepted : .Unknown)
    }

    func compositeSchedule(_ r: GetCompositeScheduleReq) -> GetCompositeScheduleConf {
        let c = r.connectorId
        guard c >= 0 && c <= gunCount else { return GetCompositeScheduleConf(status: .Rejected) }
        let unit = r.chargingRateUnit ?? .W
        let from = stationMillis
        let volts = c > 0 && c - 1 < observation.guns.count ? observation.guns[c - 1].voltage : .zero
        let periods = grid.compositeSchedule(connectorId: c, from: from, duration: r.duration, unit: unit,
                                                  volts: volts.value > 50 ? volts : Volts(400))
        let start = Timestamp.format(from)
        return GetCompositeScheduleConf(status: .Accepted, connectorId: c, scheduleStart: start,
                                        chargingSchedule: ChargingSchedule(duration: r.duration, startSchedule: start, chargingRateUnit: unit,
                chargingSchedulePeriod: periods.map { SchedulePeriod(startPeriod: $0.startPeriod, limit: $0.limit) }))
    }

    /// ChangeConfiguration (§5.3): a key this charge point does not have is NotSupported, a read-only one
    /// Rejected, a value out of its type or range Rejected (the log says why); an accepted one takes
    /// effect at once and is stored.
    mutating func changeConfiguration(_ r: ChangeConfigurationReq) -> StatusConf<ConfigurationStatus> {
        guard let key = OCPPSettings.keys.first(where: { $0.name == r.key }) else {
            log("ocpp-refused", "ChangeConfiguration \(r.key.prefix(60)): no such key (NotSupported)")
            return StatusConf(.NotSupported)
        }
        guard key.writable else {
            log("ocpp-refused", "ChangeConfiguration \(r.key): read-only (Rejected)")
            return StatusConf(.Rejected)
        }
        switch settings.set(r.key, r.value, connectors: gunCount) {
        case .failure(let why):
            log("ocpp-refused", "ChangeConfiguration rejected: \(why)")
            return StatusConf(.Rejected)
        case .success:
            save(.configuration)
            log("ocpp", "configuration \(r.key) = \(settings.value(r.key, facts) ?? "")")
            return StatusConf(.Accepted)
        }
    }

    mutating func changeAvailability(_ r: ChangeAvailabilityReq) -> StatusConf<AvailabilityStatus> {
        let c = r.connectorId
        guard (0...gunCount).contains(c) else {
            log("ocpp", "ChangeAvailability of connector \(c) rejected (0...\(gunCount))")
            return StatusConf(.Rejected)
        }
        let available = r.type == .Operative
        var scheduled = false
        for g in (c == 0 ? Array(0..<gunCount) : [c - 1]) {
            // A running transaction finishes first (§5.2): the change waits for its end.
            if !available && txRef[g] != nil { scheduledAvailability[g] = false; scheduled = true }
            else { setAvailable(g, available) }
        }
        if scheduled { log("ocpp", "ChangeAvailability \(r.type.rawValue) of connector \(c) scheduled for the end of the running transaction") }
        return StatusConf(scheduled ? .Scheduled : .Accepted)
    }

    func getConfiguration(_ r: GetConfigurationReq) -> GetConfigurationConf {
        let all = configuration()
        let asked = r.key ?? []
        let known = asked.isEmpty ? all : all.filter { asked.contains($0.key) }
        let unknown = asked.filter { k in !all.contains { $0.key == k } }
        return GetConfigurationConf(configurationKey: known, unknownKey: unknown.isEmpty ? nil : unknown)
    }
}
