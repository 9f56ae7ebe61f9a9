// The OCPP 1.6 security extension on the charge point's side (security whitepaper, edition 2): the
// certificate store's calls (InstallCertificate, GetInstalledCertificateIds, DeleteCertificate), the
// charge point's own certificate (ExtendedTriggerMessage SignChargePointCertificate -> SignCertificate
// with a CSR of a key made here; CertificateSigned), SignedUpdateFirmware (FirmwareUpdate.swift does the
// work), GetLog, the security profile and the security events kept on storage. The extension's own state
// (the certificate store, TLS, the renewal, the security log) is SecurityExtension.swift's; the
// certificates and keys are in Certificates.swift.
import Foundation
import Grid
import OCPPChargePoint
#if canImport(Glibc)
import Glibc
#endif

extension OCPPClient {
    var securityEventsPath: String? { config.stateDirectory.map { $0 + "/security-events.json" } }
    // MARK: security events and the security log

    func saveSecurityEvents() {
        guard let p = securityEventsPath else { return }
        if cp.securityEvents.isEmpty { unlink(p); return }
        if let d = try? JSONEncoder().encode(cp.securityEvents) { writeDurably(d, to: p) }
    }

    /// The events not sent before the last stop (they go out first, in order).
    func loadSecurityEvents() {
        guard let e = restored([SecurityEventNotificationReq].self, securityEventsPath, "security events (dropped)") else { return }
        cp.securityEvents = Array(e.suffix(50))
        if !e.isEmpty { hub.log("ocpp", "\(cp.securityEvents.count) security event(s) restored from \(securityEventsPath ?? ""), to send") }
    }

    // MARK: the security profile

    var securityProfilePath: String? { config.stateDirectory.map { $0 + "/security-profile" } }

    /// A profile the central system raised the site's to, from state_dir (a lower or equal one is left:
    /// the site's then holds).
    func loadSecurityProfile() {
        guard let p = securityProfilePath, let d = FileManager.default.contents(atPath: p) else { return }
        guard let n = Int(String(decoding: d, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)), (1...3).contains(n) else {
            hub.log("ocpp", "security profile in \(p) unreadable: the site's (\(securityProfile)) holds")
            return
        }
        if n > securityProfile {
            hub.log("ocpp", "security profile \(n), as the central system raised it (\(p); the site says \(securityProfile))")
            cp.securityProfile = n
        }
    }

    /// What profile `n` needs that this charge point lacks (nil: nothing): the URL's scheme (the site's
    /// url is not changed by OCPP), the AuthorizationKey (1, 2), a trust anchor for the central system (2,
    /// 3: an installed CentralSystemRootCertificate or the site's ca) and a charge point certificate (3).
    func missing(forProfile n: Int) -> String? {
        if n == 1 && url.secure { return "profile 1 is ws://, the site's url is wss://" }
        if n >= 2 && !url.secure { return "profile \(n) is TLS, the site's url is ws:// (a wss:// url is the site file's to give)" }
        if n <= 2 && loadAuthorizationKey(quiet: true) == nil { return "no AuthorizationKey (ChangeConfiguration AuthorizationKey first)" }
        if n >= 2 && config.caFile == nil && (security.certificates?.installed(.CentralSystemRootCertificate).isEmpty ?? true) {
            return "no CentralSystemRootCertificate installed and no site ca"
        }
        if n == 3 && security.certificates?.identity == nil && config.certFile == nil {
            return "no charge point certificate (ExtendedTriggerMessage SignChargePointCertificate, then CertificateSigned)"
        }
        return nil
    }

    /// ChangeConfiguration SecurityProfile (security whitepaper ed. 2, A00.FR.005: never lowered
    /// through OCPP): a higher profile whose prerequisites hold is kept in state_dir and the connection
    /// made again with it once this answer is out; the same or a lower one, or one whose prerequisites
    /// are missing, is Rejected (the reason in the journal). Nothing falls back by itself: a technician
    /// lowers it by removing state_dir/security-profile.
    func upgradeSecurityProfile(_ text: String) -> ConfigurationStatus {
        guard let n = Int(text.trimmingCharacters(in: .whitespaces)), (0...3).contains(n) else {
            hub.log("ocpp-refused", "ChangeConfiguration SecurityProfile rejected: '\(text.prefix(20))' is not 0, 1, 2 or 3")
            return .Rejected
        }
        guard n > securityProfile else {
            hub.log("ocpp-refused", "ChangeConfiguration SecurityProfile \(n) rejected: the profile is \(securityProfile), and OCPP never lowers it")
            return .Rejected
        }
        if let why = missing(forProfile: n) {
            hub.log("ocpp", "ChangeConfiguration SecurityProfile \(n) rejected: \(why)")
            return .Rejected
        }
        guard let p = securityProfilePath else {
            hub.log("ocpp", "ChangeConfiguration SecurityProfile \(n) rejected: no state_dir to keep it in")
            return .Rejected
        }
        if let why = Crypto.writePrivately(Array("\(n)\n".utf8), to: p) {
            hub.log("ocpp", "ChangeConfiguration SecurityProfile \(n) rejected: \(why)")
            return .Rejected
        }
        let was = securityProfile
        cp.securityProfile = n
        authorizationKey = n <= 2 ? loadAuthorizationKey() : nil
        cp.reconnectAfterAnswer = "security profile \(n)"
        securityEvent("ReconfigurationOfSecurityParameters", "security profile \(was) -> \(n)")
        hub.log("ocpp", "security profile \(was) -> \(n): connecting again with it")
        return .Accepted
    }

    // MARK: the central system's calls

    func securityCall(_ id: String, _ action: OCPPAction, _ payload: JSONValue) {
        let name = action.rawValue
        func tooLong(_ field: String, _ text: String, _ limit: Int) -> Bool {
            guard text.count > limit else { return false }
            hub.log("ocpp-refused", "\(name): \(field) has \(text.count) characters, over \(limit)")
            replyError(id, .PropertyConstraintViolation, "\(field) is at most \(limit) characters")
            return true
        }
        switch action {
        case .InstallCertificate:
            guard let r: InstallCertificateReq = decoded(id, name, payload), !tooLong("certificate", r.certificate, SecurityFieldLimits.certificate)
            else { return }
            guard let store = security.certificates else {
                hub.log("ocpp", "InstallCertificate Failed: no certificate store (no state_dir)")
                return reply(id, StatusConf(CertificateStatus.Failed))
            }
            if r.certificateType == .ManufacturerRootCertificate && !config.centralSystemManufacturerRoots {
                securityEvent("InvalidCentralSystemCertificate", "InstallCertificate ManufacturerRootCertificate refused: the manufacturer's roots come with the package")
                hub.log("ocpp", "InstallCertificate ManufacturerRootCertificate Rejected: the manufacturer's roots come with the package (site file [ocpp] central_system_manufacturer_roots)")
                return reply(id, StatusConf(CertificateStatus.Rejected))
            }
            let (status, why) = store.install(r.certificateType, pem: r.certificate)
            hub.log("ocpp", "InstallCertificate \(r.certificateType.rawValue) \(status.rawValue): \(why)")
            reply(id, StatusConf(status))
        case .GetInstalledCertificateIds:
            guard let r: GetInstalledCertificateIdsReq = decoded(id, name, payload) else { return }
            let ids = security.certificates?.ids(r.certificateType) ?? []
            reply(id, GetInstalledCertificateIdsConf(status: ids.isEmpty ? .NotFound : .Accepted, certificateHashData: ids.isEmpty ? nil : ids))
        case .DeleteCertificate:
            guard let r: DeleteCertificateReq = decoded(id, name, payload) else { return }
            let h = r.certificateHashData
            guard !tooLong("issuerNameHash", h.issuerNameHash, SecurityFieldLimits.hash), !tooLong("issuerKeyHash", h.issuerKeyHash, SecurityFieldLimits.hash),
                  !tooLong("serialNumber", h.serialNumber, SecurityFieldLimits.serialNumber) else { return }
            reply(id, StatusConf(security.deleteCertificate(h, profile: securityProfile)))
        case .CertificateSigned:
            guard let r: CertificateSignedReq = decoded(id, name, payload) else { return }
            reply(id, StatusConf(certificateSigned(r.certificateChain)))
        case .SignedUpdateFirmware:
            guard config.firmwareDirectory != nil else {
                return replyError(id, .NotSupported, "SignedUpdateFirmware is not supported by this charge point (no firmware_dir in the site file)")
            }
            guard let r: SignedUpdateFirmwareReq = decoded(id, name, payload) else { return }
            let f = r.firmware
            guard !tooLong("firmware.location", f.location, SecurityFieldLimits.location),
                  !tooLong("firmware.signingCertificate", f.signingCertificate, SecurityFieldLimits.certificate),
                  !tooLong("firmware.signature", f.signature, SecurityFieldLimits.signature) else { return }
            guard let loc = TransferLocation(f.location) else {
                return replyError(id, .PropertyConstraintViolation, "firmware.location is not an http://, https:// or ftp:// URL")
            }
            guard let at = Timestamp.parse(f.retrieveDateTime) else { return replyError(id, .TypeConstraintViolation, "firmware.retrieveDateTime is a dateTime") }
            let install = f.installDateTime.map { Timestamp.parse($0) }
            if install == .some(nil) { return replyError(id, .TypeConstraintViolation, "firmware.installDateTime is a dateTime") }
            guard let tries = transferRetries(id, r.retries, r.retryInterval) else { return }
            let installed = security.certificates?.installed(.ManufacturerRootCertificate).map(\.cert) ?? []
            let status = updater.signedUpdate(r, loc, retrieveAt: at, installAt: install ?? nil, tries: tries, installedRoots: installed)
            reply(id, StatusConf(status))
        case .GetLog:
            guard let r: GetLogReq = decoded(id, name, payload), !tooLong("log.remoteLocation", r.log.remoteLocation, SecurityFieldLimits.location) else { return }
            guard let loc = TransferLocation(r.log.remoteLocation) else {
                return replyError(id, .PropertyConstraintViolation, "log.remoteLocation is not an http://, https:// or ftp:// URL")
            }
            let from = r.log.oldestTimestamp.map { Timestamp.parse($0) }, to = r.log.latestTimestamp.map { Timestamp.parse($0) }
            if from == .some(nil) || to == .some(nil) {
                return replyError(id, .TypeConstraintViolation, "log.oldestTimestamp and log.latestTimestamp are dateTime")
            }
            guard let tries = transferRetries(id, r.retries, r.retryInterval) else { return }
            reply(id, getLog(r, loc, from: from ?? nil, to: to ?? nil, tries: tries))
        default:
            replyError(id, .NotSupported, "\(name) is not supported by this charge point")
        }
    }

    /// CertificateSigned: the chain is kept (SecurityExtension) and, on profile 3, the connection is made
    /// again with it once this answer is out; a chain refused is a security event
    /// (InvalidChargePointCertificate) and changes nothing.
    func certificateSigned(_ chain: String) -> AcceptedRejected {
        switch security.certificateSigned(chain) {
        case nil: return .Rejected
        case .success(let what)?:
            hub.log("ocpp", "CertificateSigned: the charge point's certificate is now \(what)" + (securityProfile == 3 ? "; connecting again with it" : ""))
            if securityProfile == 3 { cp.reconnectAfterAnswer = "the new charge point certificate" }
            return .Accepted
        case .failure(let why)?:
            securityEvent("InvalidChargePointCertificate", "CertificateSigned: \(why)")
            return .Rejected
        }
    }

    /// Update Charge Point Certificate initiated by the Charge Point (A03; SecurityExtension.renewalDue):
    /// SignChargePointCertificate queued as if the central system had triggered it.
    func renewCertificateIfDue() {
        let asked = cp.triggers.contains { $0.message == .SignChargePointCertificate }
        guard security.renewalDue(profile: securityProfile, online: online, now: now(), asked: asked) else { return }
        cp.triggers.append(ChargePoint.Trigger(message: .SignChargePointCertificate, connector: nil, extended: true))
    }

    /// ExtendedTriggerMessage SignChargePointCertificate: a new key, and SignCertificate with its CSR.
    func sendSigningRequest() {
        guard let store = security.certificates else { return }
        switch store.newSigningRequest(commonName: config.chargePointId, organization: cp.settings.cpoName) {
        case .success(let csr):
            hub.log("ocpp", "SignCertificate: a new P-256 key made on the charge point; its CSR (CN \(config.chargePointId)" + (cp.settings.cpoName.isEmpty ? "" : ", O \(cp.settings.cpoName)") + ") sent")
            step { $0.call(.SignCertificate, SignCertificateReq(csr: csr)) }
        case .failure(let why):
            hub.log("ocpp", "SignChargePointCertificate: \(why)")
        }
    }

    /// GetLog: the journal's records (DiagnosticsLog) or the security log (SecurityLog) of the window,
    /// uploaded as GetDiagnostics' are (one upload at a time: Rejected while one runs), with
    /// LogStatusNotification Uploading, then Uploaded or UploadFailure, each with the request's id.
    func getLog(_ r: GetLogReq, _ loc: TransferLocation, from: Int64?, to: Int64?, tries: TransferRetries) -> GetLogConf {
        let source: @Sendable () -> [UInt8]
        switch r.logType {
        case .DiagnosticsLog:
            guard let d = diagnostics else {
                hub.log("ocpp", "GetLog #\(r.requestId) DiagnosticsLog: no diagnostics in this run")
                return GetLogConf(status: .Rejected, filename: nil)
            }
            source = { d(from, to) }
        case .SecurityLog:
            guard let p = security.logPath else {
                hub.log("ocpp", "GetLog #\(r.requestId) SecurityLog: no security log (no state_dir)")
                return GetLogConf(status: .Rejected, filename: nil)
            }
            let cp = config.chargePointId
            source = { SecurityExtension.logText(path: p, chargePointId: cp, from: from, to: to) }
        }
        let name = uploadName(r.logType == .DiagnosticsLog ? "diagnostics" : "security")
        let request = r.requestId
        let uploads = uploads
        let started = uploads.start(name, to: loc, attempts: tries.attempts, wait: Double(tries.interval), what: "GetLog #\(request)", source: source,
                                  begin: {
                                      uploads.handOver.withLock {
                                          $0.logRequest = request
                                          $0.logs.append(LogStatusNotificationReq(status: .Uploading, requestId: request))
                                      }
                                  }) { uploaded in
            uploads.handOver.withLock {
                $0.logRequest = nil
                $0.logs.append(LogStatusNotificationReq(status: uploaded ? .Uploaded : .UploadFailure, requestId: request))
            }
        }
        return started ? GetLogConf(status: .Accepted, filename: name) : GetLogConf(status: .Rejected, filename: nil)
    }
}
