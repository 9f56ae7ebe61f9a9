// The central system's and the EMS's bytes: WebSocket frames, OCPP-J frames and payloads, EMS requests.
import ChargerCore
import Grid

extension FuzzTargets {
    /// Frames from the front of the bytes until none is whole; each one read re-encodes (with the mask
    /// it came with, or none) to bytes that read back to the same frame, within the bound.
    static func websocket(_ data: [UInt8]) {
        let (sel, rest) = split(data)
        let limit = sel & 1 == 0 ? WebSocketFrame.defaultMaxPayload : 300
        var bytes = rest
        var assembly = WebSocketMessageAssembly(maxBytes: limit)
        while true {
            switch WebSocketFrame.read(bytes, maxPayload: limit) {
            case .incomplete: return
            case .refused(let why, _):
                require(!why.isEmpty, "a refusal says why")
                return
            case .frame(let f, let used):
                require(used >= 2 && used <= bytes.count, "used \(used) of \(bytes.count)")
                require(f.payload.count <= limit, "payload \(f.payload.count) over \(limit)")
                let again = f.encoded(mask: (1, 2, 3, 4))
                require(WebSocketFrame.read(again[...], maxPayload: limit) == .frame(f, used: again.count), "a frame re-encodes to itself")
                bytes = bytes.dropFirst(used)
                if !f.opcode.isControl {
                    switch assembly.take(f) {
                    case .message(let m): require(m.count <= limit, "message of \(m.count) over \(limit)")
                    case .more: require(assembly.bytes.count <= limit, "assembly over \(limit)")
                    case .refused: assembly = WebSocketMessageAssembly(maxBytes: limit)
                    }
                }
            }
        }
    }

    /// An OCPP-J text: the frame, then the payload decoded as the action's request (as the charge point
    /// answers it), a CALL's text re-made from what was read parsing back to it; SetChargingProfile,
    /// SendLocalList, ChangeConfiguration and ReserveNow applied to their stores and evaluated.
    static func ocpp(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        guard case .success(let frame) = OCPPFrame.parse(text) else { return }
        guard case .call(let id, let action, let payload) = frame else { return }
        if let again = OCPPFrame.call(id: id, action: .DataTransfer, payload: payload),
           case .success(.call(let id2, _, let p2)) = OCPPFrame.parse(again) {
            require(id2 == id && p2 == payload, "a CALL re-made from its parts reads back the same")
        } else {
            require(false, "a CALL's parts could not be made into a CALL again")
        }
        guard let a = OCPPAction(rawValue: action) else { return }
        decodeRequest(a, payload)
    }

    static func decodeRequest(_ a: OCPPAction, _ payload: JSONValue) {
        let now: Int64 = 1_795_000_000_000
        switch a {
        case .SetChargingProfile:
            guard let r = try? payload.decode(SetChargingProfileReq.self) else { return }
            var store = ProfileStore()
            guard (try? store.install(r.csChargingProfiles, connectorId: r.connectorId, connectors: 2, activeTransaction: 7, at: now)) != nil else {
                return
            }
            for c in 0...2 {
                for dt: Int64 in [0, 1_000, 3_600_000, 86_400_000, 8 * 86_400_000] {
                    for purpose in [ProfilePurpose.ChargePointMaxProfile, .TxDefaultProfile, .TxProfile] {
                        _ = store.limit(purpose: purpose, connectorId: c, at: now + dt, txStart: now)
                    }
                }
                let changes = store.changes(connectorId: c, from: now, to: now + 2 * 86_400_000, txStart: now)
                require(changes.allSatisfy { $0 > now && $0 < now + 2 * 86_400_000 }, "changes inside the window")
            }
        case .SendLocalList:
            guard let r = try? payload.decode(SendLocalListReq.self) else { return }
            var auth = LocalAuthorization()
            let before = auth
            let (status, _) = auth.apply(r)
            if status != .Accepted { require(auth == before, "a refused SendLocalList changes nothing") }
            for e in r.localAuthorizationList ?? [] { _ = auth.verdict(e.idTag, atMillis: now, listEnabled: true, cacheEnabled: true) }
        case .ChangeConfiguration:
            guard let r = try? payload.decode(ChangeConfigurationReq.self) else { return }
            var s = OCPPSettings(heartbeatInterval: 300, meterValueSampleInterval: 60, connectionTimeOut: 60)
            let before = s
            if case .failure = s.set(r.key, r.value, connectors: 2) { require(s == before, "a refused ChangeConfiguration changes nothing") }
        case .ReserveNow:
            guard let r = try? payload.decode(ReserveNowReq.self) else { return }
            var res = Reservations()
            _ = res.reserve(r, connectors: 2, atMillis: now, state: { _ in .free })
            _ = res.expire(atMillis: now + 86_400_000)
        default:
            requestTypes[a]?(payload)
        }
    }

    /// The other requests, decoded as the charge point decodes them (every field checked by its type);
    /// the maintenance transfers' retries held to their bounds.
    static let requestTypes: [OCPPAction: @Sendable (JSONValue) -> Void] = [
        .Authorize: decodes(AuthorizeReq.self),
        .BootNotification: decodes(BootNotificationReq.self),
        .ChangeAvailability: decodes(ChangeAvailabilityReq.self),
        .ClearCache: decodes(ClearCacheReq.self),
        .ClearChargingProfile: decodes(ClearChargingProfileReq.self),
        .DataTransfer: decodes(DataTransferReq.self),
        .GetCompositeSchedule: { p in
            guard let r = try? p.decode(GetCompositeScheduleReq.self) else { return }
            require((r.durationProblem == nil) == (1...GetCompositeScheduleReq.maxDuration).contains(r.duration), "the duration's bound is what is checked")
        },
        .GetConfiguration: decodes(GetConfigurationReq.self),
        .GetLocalListVersion: decodes(GetLocalListVersionReq.self),
        .RemoteStartTransaction: decodes(RemoteStartTransactionReq.self),
        .RemoteStopTransaction: decodes(RemoteStopTransactionReq.self),
        .Reset: decodes(ResetReq.self),
        .TriggerMessage: decodes(TriggerMessageReq.self),
        .UnlockConnector: decodes(UnlockConnectorReq.self),
        .CancelReservation: decodes(CancelReservationReq.self),
        .InstallCertificate: decodes(InstallCertificateReq.self),
        .GetInstalledCertificateIds: decodes(GetInstalledCertificateIdsReq.self),
        .DeleteCertificate: decodes(DeleteCertificateReq.self),
        .CertificateSigned: decodes(CertificateSignedReq.self),
        .ExtendedTriggerMessage: decodes(ExtendedTriggerMessageReq.self),
        .GetDiagnostics: decodes(GetDiagnosticsReq.self) { retriesBounded($0.retries, $0.retryInterval) },
        .UpdateFirmware: decodes(UpdateFirmwareReq.self) { retriesBounded($0.retries, $0.retryInterval) },
        .GetLog: decodes(GetLogReq.self) { retriesBounded($0.retries, $0.retryInterval) },
        .SignedUpdateFirmware: decodes(SignedUpdateFirmwareReq.self) {
            retriesBounded($0.retries, $0.retryInterval)
            _ = Timestamp.parse($0.firmware.retrieveDateTime)
        },
    ]

    static func decodes<T: Decodable>(_ type: T.Type, then check: @escaping @Sendable (T) -> Void = { _ in }) -> @Sendable (JSONValue) -> Void {
        { v in if let r = try? v.decode(T.self) { check(r) } }
    }

    static func retriesBounded(_ retries: Int?, _ interval: Int?) {
        guard let t = TransferRetries(retries: retries, retryInterval: interval) else {
            return require((retries ?? 0) < 0 || (interval ?? 0) < 0, "only negative retries are refused")
        }
        require(t.attempts <= TransferRetries.maxRetries + 1 && t.interval <= TransferRetries.maxInterval, "retries bounded")
    }

    /// An EMS request's PDU applied to the register map: a refused one leaves the state as it was, an
    /// applied one leaves a holding image that reads back what the map holds.
    static func ems(_ data: [UInt8]) {
        var settings = EMSSettings()
        settings.heartbeatTimeout = .s(10); settings.failsafeLimit = .kW(20); settings.failsafeMinimum = .s(60)
        let state = EMSState(settings: settings, gunCount: 2, tou: TimeOfUse())
        var ems = state
        // Several requests in one input: each a length byte then the PDU.
        var rest = data[...]
        var steps = 0
        while let n = rest.first, steps < 16 {
            steps += 1
            let pdu = rest.dropFirst().prefix(Int(n))
            rest = rest.dropFirst(1 + pdu.count)
            switch EMSRequest.parse(pdu: pdu) {
            case .failure(let r): require(!r.why.isEmpty, "a refusal says why")
            case .success(.read(let input, let address, let count)):
                require((1...125).contains(count) && (0...65_535).contains(address), "read within Modbus's ranges")
                _ =
                    input
                    ? EMSRegisterMap.inputImage(ems: ems, touKind: nil, stationLimit: nil, stationSource: .none, observation: StationObservation())
                          : EMSRegisterMap.holdingImage(ems)
            case .success(.write(let address, let values)):
                let before = ems
                do {
                    let (next, _) = try EMSRegisterMap.write(ems, address: address, values: values, gridConnection: .kW(120),
                                                             ratings: [.kW(60), .kW(60)], now: Instant(micros: Int64(steps) * 1_000_000))
                    ems = next
                } catch {
                    require(ems == before, "a refused write changes nothing")
                }
            }
        }
    }
}
