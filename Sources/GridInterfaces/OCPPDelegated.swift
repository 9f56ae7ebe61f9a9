// The calls the charge point hands to its transport (ChargePointEffect.delegated): those whose work is
// files, certificates or transfers. UpdateFirmware and GetDiagnostics here (the firmware's work in
// FirmwareUpdate.swift), the security extension's in OCPPSecurity.swift, and the AuthorizationKey. Each
// answer, security event and journal line goes through the charge point (`step`), as its own would.
import ChargerCore
import Foundation
import Grid
import OCPPChargePoint
import RealTime
import SiteFile

extension OCPPClient {
    func delegated(_ id: String, _ action: OCPPAction, _ payload: JSONValue) {
        let name = action.rawValue
        func typed<T: Decodable>(_ type: T.Type) -> T? { decoded(id, name, payload) }
        switch action {
        case .UpdateFirmware:
            guard config.firmwareDirectory != nil else {
                return replyError(id, .NotSupported, "UpdateFirmware is not supported by this charge point (no firmware_dir in the site file)")
            }
            guard let r = typed(UpdateFirmwareReq.self) else { return }
            // Only code the manufacturer signed, unless the site says otherwise (docs/security.md): an
            // unsigned package is whatever the central system chose to send.
            guard config.unsignedFirmware else {
                securityEvent("InvalidFirmwareSignature", "unsigned UpdateFirmware from \(TransferLocation(r.location)?.display ?? "an unreadable location") refused: only SignedUpdateFirmware is installed")
                return replyError(id, .NotSupported, "unsigned UpdateFirmware is refused: this charge point installs SignedUpdateFirmware only (site file [ocpp] unsigned_firmware)")
            }
            guard let loc = TransferLocation(r.location) else {
                return replyError(id, .PropertyConstraintViolation, "location is not an http://, https:// or ftp:// URL")
            }
            guard let at = Timestamp.parse(r.retrieveDate) else { return replyError(id, .TypeConstraintViolation, "retrieveDate is a dateTime") }
            guard let tries = transferRetries(id, r.retries, r.retryInterval) else { return }
            reply(id, UpdateFirmwareConf())
            updater.update(r, loc, retrieveAt: at, tries: tries)
        case .GetDiagnostics:
            guard let r = typed(GetDiagnosticsReq.self) else { return }
            guard let loc = TransferLocation(r.location) else {
                return replyError(id, .PropertyConstraintViolation, "location is not an http://, https:// or ftp:// URL")
            }
            let from = r.startTime.map { Timestamp.parse($0) }, to = r.stopTime.map { Timestamp.parse($0) }
            if from == .some(nil) || to == .some(nil) {
                return replyError(id, .TypeConstraintViolation, "startTime and stopTime are dateTime")
            }
            guard let tries = transferRetries(id, r.retries, r.retryInterval) else { return }
            reply(id, getDiagnostics(r, loc, from: from ?? nil, to: to ?? nil, tries: tries))
        case .ChangeConfiguration:
            guard let r = typed(ChangeConfigurationReq.self) else { return }
            let status = r.key == "SecurityProfile" ? upgradeSecurityProfile(r.value) : changeAuthorizationKey(r.value)
            reply(id, StatusConf(status))
        case .InstallCertificate, .GetInstalledCertificateIds, .DeleteCertificate, .CertificateSigned, .SignedUpdateFirmware, .GetLog:
            securityCall(id, action, payload)
        default: replyError(id, .NotSupported, "\(name) is not supported by this charge point")
        }
    }

    // MARK: through the charge point

    func reply(_ id: String, _ payload: some Encodable) { step { $0.reply(id, payload) } }
    func replyError(_ id: String, _ code: CallErrorCode, _ text: String) { step { $0.replyError(id, code, text) } }
    func securityEvent(_ type: String, _ info: String? = nil) { step { $0.securityEvent(type, info) } }
    func decoded<T: Decodable>(_ id: String, _ name: String, _ payload: JSONValue) -> T? { step { $0.decoded(id, name, payload) } }

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
            cp.reconnectAfterAnswer = "the new AuthorizationKey"
        }
        securityEvent("ReconfigurationOfSecurityParameters", "AuthorizationKey changed (\(key.count) bytes)")
        return .Accepted
    }

    /// GetDiagnostics (§5.8): answered with the file's name at once; the upload runs on a side thread of
    /// its own (Uploading, then Uploaded or UploadFailed after 1 + retries attempts retryInterval apart),
    /// one at a time (another asked meanwhile gets no file name). Nothing to upload without a journal hook.
    func getDiagnostics(_ r: GetDiagnosticsReq, _ loc: TransferLocation, from: Int64?, to: Int64?, tries: TransferRetries) -> GetDiagnosticsConf {
        guard let source = diagnostics else {
            hub.log("ocpp", "GetDiagnostics: no diagnostics in this run")
            return GetDiagnosticsConf(fileName: nil)
        }
        let name = uploadName("diagnostics")
        let uploads = uploads
        let started = uploads.start(name, to: loc, attempts: tries.attempts, wait: Double(tries.interval), what: "GetDiagnostics",
                                    source: { source(from, to) },
                                    begin: { uploads.handOver.withLock { $0.diagnostics.append(.Uploading) } }) { uploaded in
            uploads.handOver.withLock { $0.diagnostics.append(uploaded ? .Uploaded : .UploadFailed) }
        }
        return GetDiagnosticsConf(fileName: started ? name : nil)
    }

    /// A transfer's retries and retryInterval, bounded (Grid's TransferRetries): nil, and the CALL answered
    /// PropertyConstraintViolation, when one is negative; one above its bound is taken at it and logged.
    func transferRetries(_ id: String, _ retries: Int?, _ interval: Int?) -> TransferRetries? {
        guard let t = TransferRetries(retries: retries, retryInterval: interval) else {
            replyError(id, .PropertyConstraintViolation, "retries and retryInterval are not negative")
            return nil
        }
        let note = TransferRetries.clampNote(retries: retries, retryInterval: interval)
        if !note.isEmpty { hub.log("ocpp", "\(note) (this charge point's bounds)") }
        return t
    }

    /// The name of an uploaded file: the charge point's id, what it is, the station time.
    func uploadName(_ what: String) -> String {
        let stamp = Timestamp.format(stationMillis).filter { $0 != "-" && $0 != ":" }.prefix(15)
        return "\(config.chargePointId)-\(what)-\(stamp)Z.log"
    }
}
