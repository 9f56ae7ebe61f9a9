// The charge point's station side: the loop's phases and session edges become authorizations and
// transactions (queued), the observation becomes meter values and statuses, and each turn of the
// client's thread sends what is due, one call at a time, in the order OCPP's rules give.
import ChargerCore
import Foundation
import Grid
import LoopContract
import SiteFile

extension ChargePoint {
    /// What the loop said since the last turn: its phases and session edges, and the latest observation
    /// (nil: none new). A VIN the car sent is decided and the meter values due are queued.
    package mutating func loopSaid(_ events: [LoopEvent], observation obs: StationObservation?) {
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

    /// Each turn of the client's thread: authorizations without a car and reservations past their date
    /// lapse.
    package mutating func expire() {
        expireAuthorizations()
        expireReservations()
    }

    mutating func phaseChanged(_ g: Int, _ p: SessionPhase) {
        let before = phase[g]
        phase[g] = p
        // The car came: ConnectionTimeOut no longer runs.
        if p != .unplugged { authorizedWaiting[g] = nil }
        if (p == .connecting || p == .connected) && before == .unplugged {
            if !grid.authorized[g] { carPlugged(g) }
            else if let tag = idTag[g] { grid.identities[g] = SessionIdentity(method: .remote, identity: shown(tag)) }
        }
        vinPhaseChanged(g, from: before, to: p)
        if p == .unplugged && before != .unplugged {
            // The car left: an authorization not used goes with it.
            revokeAuthorization(g)
            if txRef[g] == nil { idTag[g] = nil }
        }
    }

    mutating func sessionEdge(_ e: SessionEdge) {
        let g = Int(e.gun)
        if e.started {
            let ref = queue.nextRef
            queue.nextRef -= 1
            txRef[g] = ref
            let startMs = grid.clock.epochMillis(e.at)
            txStart[g] = startMs
            meterStart[g] = e.meterEnergy.value
            lastMeter[g] = now
            let tag = idTag[g] ?? "FREEVEND"
            idTag[g] = tag
            grid.transactions[g] = TransactionInfo(id: ref, startedAt: startMs)
            // The reservation of this connector is used by its own idTag's transaction (others were
            // refused before); its id goes in StartTransaction.
            let used = reservations.on(gun: g) != nil && reservations.admits(tag, parent: knownParent(tag), gun: g) ? reservations.use(gun: g) : nil
            if let used { save(.reservations); log("ocpp", "reservation #\(used.id) used on connector \(g + 1)") }
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
                var result: String? = nil
                do { try grid.profiles.install(p, connectorId: g + 1, connectors: gunCount, activeTransaction: ref, at: startMs) }
                catch { result = "\(error)" }
                log("ocpp", "RemoteStart's TxProfile #\(p.chargingProfileId) " + (result.map { "refused: \($0)" } ?? "installed on connector \(g + 1)"))
                save(.profiles)
            }
        } else if let ref = txRef[g] {
            let stopMs = grid.clock.epochMillis(e.at)
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
            grid.transactions[g] = nil
            grid.profiles.transactionEnded(connectorId: g + 1)
            save(.profiles)
        }
    }
    /// An idTag presented at a gun's plug (or a RemoteStartTransaction under AuthorizeRemoteTxRequests).
    /// Online, the central system is asked (Authorize), unless LocalPreAuthorize lets the list or the
    /// cache accept it at once. Offline, LocalAuthorizeOffline lets the list or the cache accept it and
    /// AllowOfflineTxForUnknownId an idTag neither knows; a tag they know and refuse is refused; any
    /// other waits for the central system (§3.5).
    mutating func authorizeAtPlug(_ tag: String, _ g: Int) {
        let s = settings
        if let r = reservations.on(gun: g), !reservations.admits(tag, parent: knownParent(tag), gun: g) {
            // A reservation by parentIdTag: the central system's answer may name the parent (asked, no
            // local shortcut).
            guard r.parentIdTag != nil && online else {
                log("ocpp", "idTag \(shown(tag)) on connector \(g + 1): the connector is reserved for another idTag (#\(r.id)): refused")
                return
            }
            idTag[g] = tag
            authorizeQueue.append((tag, g))
            return
        }
        idTag[g] = tag
        let verdict = localAuth.verdict(tag, atMillis: stationMillis, listEnabled: s.localAuthListEnabled, cacheEnabled: s.authorizationCacheEnabled)
        func allow(_ why: String) {
            grid.authorized[g] = true; grid.vinChecks[g] = .notUsed; grid.identities[g] = SessionIdentity(method: .idtag, identity: tag)
            vinStage[g] = .none     // the idTag authorizes the session: its VIN is not asked about
            log("ocpp", "idTag \(shown(tag)) on connector \(g + 1): accepted by \(why), session may start")
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
            log("ocpp", "idTag \(shown(tag)) on connector \(g + 1): \(st.rawValue) in the \(src.rawValue), offline: refused")
            idTag[g] = nil
        default:
            log("ocpp", "idTag \(shown(tag)) on connector \(g + 1): offline, waits for the central system")
            authorizeQueue.append((tag, g))
        }
    }

    /// The parentIdTag the list or the cache knows for `tag`.
    func knownParent(_ tag: String) -> String? {
        localAuth.parent(of: tag, listEnabled: settings.localAuthListEnabled, cacheEnabled: settings.authorizationCacheEnabled)
    }

    /// Reservations whose expiry date has come end (the connector Available again).
    mutating func expireReservations() {
        guard !reservations.held.isEmpty, !observation.guns.isEmpty else { return }
        let gone = reservations.expire(atMillis: stationMillis)
        guard !gone.isEmpty else { return }
        for r in gone { log("ocpp", "reservation #\(r.id) on connector \(r.gun + 1) for \(shown(r.idTag)) expired") }
        save(.reservations)
    }

    /// What the central system said of an idTag goes to the Authorization Cache (when enabled).
    mutating func cacheAnswer(_ tag: String?, _ info: IdTagInfo?) {
        guard settings.authorizationCacheEnabled, let tag, let info else { return }
        localAuth.remember(tag, info, atMillis: stationMillis)
        save(.authorization)
    }

    /// The gun needs a new authorization for its next session (none needed under free vend).
    mutating func revokeAuthorization(_ g: Int) {
        let free = config.freeVend
        grid.authorized[g] = free; grid.vinChecks[g] = .notUsed; grid.identities[g] = nil
        vinStage[g] = .none
    }

    /// ConnectionTimeOut: an authorization given with no car plugged lapses when none comes in time
    /// (station time: sooner at a simulation speed above 1).
    mutating func expireAuthorizations() {
        for g in 0..<gunCount {
            guard let since = authorizedWaiting[g], now - since > connectionTimeout.seconds / max(1, speedFactor) else { continue }
            authorizedWaiting[g] = nil
            guard txRef[g] == nil, phase[g] == .unplugged else { continue }
            revokeAuthorization(g)
            pendingTxProfile[g] = nil
            log("ocpp", "authorization for \(idTag[g].map(shown) ?? "?") on connector \(g + 1) lapsed: no car within ConnectionTimeOut (\(wholeText(connectionTimeout.seconds)) s)")
            idTag[g] = nil
        }
    }

    /// One triggered message (its connector checked when it was accepted).
    mutating func sendTriggered(_ m: MessageTrigger, connector c: Int?, extended: Bool = false) {
        switch m {
        case .BootNotification:
            call(.BootNotification, BootNotificationReq(chargePointVendor: config.vendor, chargePointModel: config.model,
                                                                 chargePointSerialNumber: config.chargePointId, firmwareVersion: firmware))
        case .Heartbeat:
            lastHeartbeat = now
            call(.Heartbeat, HeartbeatReq())
        case .StatusNotification:
            let k = c ?? 0
            let req = statusNotification(k, timestamp: timestamp)
            sentStatus[k] = SentStatus(status: req.status, vendorErrorCode: req.vendorErrorCode)
            call(.StatusNotification, req)
        case .MeterValues:
            let k = c ?? 1
            // The transaction's id when the central system has issued it (a local reference is not sent).
            let tx = k > 0 ? txRef[k - 1].flatMap { $0 > 0 ? $0 : queue.resolved[String($0)] } : nil
            let values = samples(connector: k, settings.meterValuesSampledData, context: "Trigger")
            call(
                .MeterValues,
                MeterValuesReq(connectorId: k, transactionId: tx, meterValue: [MeterValue(timestamp: timestamp, sampledValue: values)]))
        case .DiagnosticsStatusNotification:
            // Uploading while an upload runs, Idle otherwise (§4.4).
            call(
                .DiagnosticsStatusNotification,
                DiagnosticsStatusNotificationReq(status: transfers.diagnosticsRunning ? .Uploading : .Idle))
        case .FirmwareStatusNotification:
            // The step an update is at, Idle when none is in hand (§4.5); extended: the signed update's
            // step and request (whitepaper ed. 2, §4.2), TriggerMessage: only 1.6's steps.
            let last = transfers.firmwareBusy ? transfers.firmwareLast : FirmwareEvent(status: .Idle, requestId: nil)
            if extended {
                call(.SignedFirmwareStatusNotification, SignedFirmwareStatusNotificationReq(status: last.status, requestId: last.requestId))
            }
            else {
                call(
                    .FirmwareStatusNotification,
                    FirmwareStatusNotificationReq(status: FirmwareStatus.unsigned.contains(last.status) ? last.status : .Idle))
            }
        case .LogStatusNotification:
            // Uploading with its request while a GetLog upload runs, Idle otherwise.
            let r = transfers.logRequest
            call(.LogStatusNotification, LogStatusNotificationReq(status: r != nil ? .Uploading : .Idle, requestId: r))
        case .SignChargePointCertificate:
            effects.append(.signingRequest)
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
    mutating func meterValuesIfDue() {
        for g in 0..<gunCount {
            guard let ref = txRef[g], observation.guns.count > g, meterInterval.micros > 0,
                now - lastMeter[g] >= meterInterval.seconds / max(1, speedFactor),
                  !settings.meterValuesSampledData.isEmpty else { continue }
            lastMeter[g] = now
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

    mutating func enqueue(_ action: OCPPAction, _ payload: some Encodable, ref: Int, gun: Int) {
        guard let text = JSONValue.encoded(payload) else { return }
        queue.messages.append(QueuedMessage(seq: queue.nextSeq, action: action.rawValue, payload: text, txRef: ref, gun: gun))
        queue.nextSeq += 1
        save(.queue)
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
    mutating func resetIfDue() {
        guard let type = resetPending, !resetFired, canReset else { return }
        if type == .Soft && (txRef.contains { $0 != nil } || !queue.messages.isEmpty || !securityEvents.isEmpty || pending != nil) { return }
        resetFired = true
        log("ocpp", "Reset \(type.rawValue): restarting the controller")
        effects.append(.reset(type))
    }

    /// What is due goes out: an answer UnlockConnector waits for, a Reset carried out, then at most one
    /// call (none while one waits for its answer).
    package mutating func sendDue() {
        resetIfDue()
        if !pendingUnlocks.isEmpty { answerUnlocks() }
        guard connected else { return }
        if let p = pending {
            if now - p.sentAt > config.callTimeout.seconds {
                effects.append(.disconnect("no answer to \(p.action) within \(wholeText(config.callTimeout.seconds)) s", now: false))
            }
            return
        }
        if !booted {
            guard now >= bootRetryAt else { return }
            call(.BootNotification, BootNotificationReq(chargePointVendor: config.vendor, chargePointModel: config.model,
                                                                 chargePointSerialNumber: config.chargePointId, firmwareVersion: firmware))
            return
        }
        if !triggers.isEmpty {
            let t = triggers.removeFirst()
            sendTriggered(t.message, connector: t.connector, extended: t.extended)
            return
        }
        if let e = securityEvents.first {
            // Kept (and on storage) until the central system answered it: a connection lost meanwhile
            // sends it again.
            call(.SecurityEventNotification, e)
            return
        }
        if !firmwareStatuses.isEmpty {
            let e = firmwareStatuses.removeFirst()
            if e.requestId != nil {
                call(.SignedFirmwareStatusNotification, SignedFirmwareStatusNotificationReq(status: e.status, requestId: e.requestId))
            }
            else { call(.FirmwareStatusNotification, FirmwareStatusNotificationReq(status: e.status)) }
            return
        }
        if !logStatuses.isEmpty {
            let e = logStatuses.removeFirst()
            call(.LogStatusNotification, e)
            return
        }
        if !diagnosticsStatuses.isEmpty {
            let status = diagnosticsStatuses.removeFirst()
            call(.DiagnosticsStatusNotification, DiagnosticsStatusNotificationReq(status: status))
            return
        }
        // Statuses first (each connector's latest), then Authorize, then the transaction queue.
        for c in 0...gunCount {
            let req = statusNotification(c, timestamp: timestamp)
            let now = SentStatus(status: req.status, vendorErrorCode: req.vendorErrorCode)
            if sentStatus[c] != now {
                sentStatus[c] = now
                call(.StatusNotification, req)
                return
            }
        }
        if !authorizeQueue.isEmpty {
            let a = authorizeQueue.removeFirst()
            call(.Authorize, AuthorizeReq(idTag: a.idTag), gun: a.gun)
            return
        }
        if !idleMeterValues.isEmpty {
            call(.MeterValues, idleMeterValues.removeFirst())
            return
        }
        if let m = queue.messages.first, now >= queueRetryAt {
            guard let (action, payload) = readyToSend(m) else {
                log("ocpp", "queued \(m.action) #\(m.seq) unreadable: dropped")
                queue.messages.removeFirst(); save(.queue); return
            }
            call(action, payload, queued: m.seq, gun: m.gun)
            return
        }
        if now - lastHeartbeat >= heartbeatInterval.seconds && now - lastSent >= heartbeatInterval.seconds {
            lastHeartbeat = now
            call(.Heartbeat, HeartbeatReq())
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

}
