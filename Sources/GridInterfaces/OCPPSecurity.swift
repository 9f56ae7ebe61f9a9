// The OCPP 1.6 security extension on the charge point's side (security whitepaper, edition 2): the
// certificate store's calls (InstallCertificate, GetInstalledCertificateIds, DeleteCertificate), the
// charge point's own certificate (ExtendedTriggerMessage SignChargePointCertificate -> SignCertificate
// with a CSR of a key made here; CertificateSigned), SignedUpdateFirmware (FirmwareUpdate.swift does the
// work), GetLog, and the security log and events kept on storage. The certificates and keys are in
// Certificates.swift.
import Foundation
import Grid
import OCPPChargePoint
#if canImport(Glibc)
import Glibc
#endif

extension OCPPClient {
    var securityEventsPath: String? { config.stateDirectory.map { $0 + "/security-events.json" } }
    var securityLogPath: String? { config.stateDirectory.map { $0 + "/security.log" } }
    /// The security log is turned to security.log.1 past this size (the two together are what GetLog
    /// SecurityLog can send).
    static let securityLogMaxBytes = 256 << 10

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

    /// One line per event: its time, its type, what it was (owner-only file).
    func appendSecurityLog(_ e: SecurityEventNotificationReq) {
        guard let p = securityLogPath else { return }
        var st = stat()
        if stat(p, &st) == 0 && Int(st.st_size) > Self.securityLogMaxBytes { rename(p, p + ".1") }
        let info = (e.techInfo ?? "").map { $0.isNewline ? " " : $0 }
        let line = Array("\(e.timestamp) \(e.type)\(info.isEmpty ? "" : " " + String(info))\n".utf8)
        let fd = open(p, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        guard fd >= 0 else { return }
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    /// The security log's lines between two station times (epoch ms, either end open), oldest first,
    /// under a head line. Reads files only: safe on an upload's thread.
    static func securityLogText(path: String, chargePointId: String, from: Int64?, to: Int64?) -> [UInt8] {
        var out = "# \(chargePointId) security log" + (from.map { " from \(Timestamp.format($0))" } ?? "") + (to.map { " to \(Timestamp.format($0))" } ?? "") + "\n"
        for p in [path + ".1", path] {
            guard let text = try? String(contentsOfFile: p, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") {
                guard let t = line.split(separator: " ", maxSplits: 1).first.flatMap({ Timestamp.parse(String($0)) }) else { continue }
                if let from, t < from { continue }
                if let to, t > to { continue }
                out += line + "\n"
            }
        }
        return Array(out.utf8)
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
        if n >= 2 && config.caFile == nil && (certificates?.installed(.CentralSystemRootCertificate).isEmpty ?? true) {
            return "no CentralSystemRootCertificate installed and no site ca"
        }
        if n == 3 && certificates?.identity == nil && config.certFile == nil {
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

    // MARK: TLS

    /// What the connection's TLS trusts and presents: the site's CA and the installed central system
    /// roots (the system's CAs when neither), and on profile 3 the certificate the central system signed
    /// (CertificateSigned) over the site's.
    var tlsFiles: TLSFiles {
        let roots = certificates.flatMap { access($0.bundlePath, R_OK) == 0 ? $0.bundlePath : nil }
        let own = securityProfile == 3 ? certificates?.identity : nil
        return TLSFiles(ca: config.caFile, roots: roots, cert: own?.certificate ?? config.certFile, key: own?.key ?? config.keyFile)
    }

    /// The trust anchors for the charge point's own certificate: the installed central system roots and
    /// the site's CA file.
    var centralSystemRoots: [X509Certificate] {
        var roots = certificates?.installed(.CentralSystemRootCertificate).map(\.cert) ?? []
        if let ca = config.caFile, let text = try? String(contentsOfFile: ca, encoding: .utf8) { roots += X509Certificate.all(pem: text) ?? [] }
        return roots
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
            guard let store = certificates else {
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
            let ids = certificates?.ids(r.certificateType) ?? []
            reply(id, GetInstalledCertificateIdsConf(status: ids.isEmpty ? .NotFound : .Accepted, certificateHashData: ids.isEmpty ? nil : ids))
        case .DeleteCertificate:
            guard let r: DeleteCertificateReq = decoded(id, name, payload) else { return }
            let h = r.certificateHashData
            guard !tooLong("issuerNameHash", h.issuerNameHash, SecurityFieldLimits.hash), !tooLong("issuerKeyHash", h.issuerKeyHash, SecurityFieldLimits.hash),
                  !tooLong("serialNumber", h.serialNumber, SecurityFieldLimits.serialNumber) else { return }
            reply(id, StatusConf(deleteCertificate(h)))
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
            let installed = certificates?.installed(.ManufacturerRootCertificate).map(\.cert) ?? []
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

    /// DeleteCertificate: NotFound when no installed root has that identity; Failed for the last
    /// CentralSystemRootCertificate while the connection's TLS (profiles 2 and 3) relies on the store
    /// (without it the system's CAs would be trusted instead: wider, not narrower), for a CA that issued
    /// another installed certificate (whose identity hashes this one's key), and when the file cannot be
    /// removed.
    func deleteCertificate(_ h: CertificateHashData) -> DeleteCertificateStatus {
        guard let store = certificates, let found = store.find(h) else {
            hub.log("ocpp", "DeleteCertificate serial \(h.serialNumber.prefix(40)): NotFound")
            return .NotFound
        }
        if found.use == .CentralSystemRootCertificate && securityProfile >= 2 && config.caFile == nil
            && store.installed(.CentralSystemRootCertificate).count == 1 {
            hub.log("ocpp", "DeleteCertificate serial \(h.serialNumber.prefix(40)): Failed: the last CentralSystemRootCertificate, which security profile \(securityProfile)'s TLS trusts")
            return .Failed
        }
        let issued = store.issuedBy(found.cert, file: found.file)
        guard issued.isEmpty else {
            hub.log("ocpp", "DeleteCertificate serial \(h.serialNumber.prefix(40)): Failed: it issued the installed \(issued.map(\.subject).joined(separator: ", ")); delete those first")
            return .Failed
        }
        if let why = store.delete(file: found.file, found.use) {
            hub.log("ocpp", "DeleteCertificate serial \(h.serialNumber.prefix(40)): Failed: \(why)")
            return .Failed
        }
        hub.log("ocpp", "DeleteCertificate \(found.use.rawValue) serial \(h.serialNumber.prefix(40)): deleted")
        return .Accepted
    }

    /// CertificateSigned: the chain is kept (CertificateStore.acceptSigned) and, on profile 3, the
    /// connection is made again with it once this answer is out; a chain refused is a security event
    /// (InvalidChargePointCertificate) and changes nothing.
    func certificateSigned(_ chain: String) -> AcceptedRejected {
        guard let store = certificates else {
            hub.log("ocpp", "CertificateSigned Rejected: no certificate store (no state_dir)")
            return .Rejected
        }
        switch store.acceptSigned(chain, commonName: config.chargePointId, roots: centralSystemRoots) {
        case .success(let what):
            hub.log("ocpp", "CertificateSigned: the charge point's certificate is now \(what)" + (securityProfile == 3 ? "; connecting again with it" : ""))
            if securityProfile == 3 { cp.reconnectAfterAnswer = "the new charge point certificate" }
            nextRenewalCheck = 0
            lastRenewalRequest = -Double.infinity
            return .Accepted
        case .failure(let why):
            securityEvent("InvalidChargePointCertificate", "CertificateSigned: \(why)")
            return .Rejected
        }
    }

    /// How long before its end the charge point's certificate is renewed: the shorter of 30 days and a
    /// fifth of its validity (ours: the whitepaper leaves the time to the charge point), and how long a CSR
    /// sent for it may stay unanswered before the next (ours).
    static let renewBefore: Int64 = 30 * 86_400
    static let renewRetry = 3_600.0

    /// Update Charge Point Certificate initiated by the Charge Point (whitepaper ed. 2, A03): once the
    /// certificate it presents (profile 3) nears its end, a new key and SignCertificate, as if the
    /// central system had triggered it; again an hour later while no CertificateSigned came. Checked once
    /// a minute, online only.
    func renewCertificateIfDue() {
        guard securityProfile == 3, online, now() >= nextRenewalCheck, let store = certificates else { return }
        nextRenewalCheck = now() + 60
        // The certificate it presents: the one CertificateSigned installed, else the site's (factory) one.
        guard let path = store.identity?.certificate ?? config.certFile, let text = try? String(contentsOfFile: path, encoding: .utf8),
              let leaf = X509Certificate.all(pem: text)?.first, let v = leaf.validity else { return }
        let left = v.notAfter - Int64(Date().timeIntervalSince1970)
        guard left < min(Self.renewBefore, (v.notAfter - v.notBefore) / 5) else { return }
        guard now() >= lastRenewalRequest + Self.renewRetry else { return }
        guard !cp.triggers.contains(where: { $0.message == .SignChargePointCertificate }) else { return }
        lastRenewalRequest = now()
        hub.log("ocpp", "the charge point's certificate ends \(leaf.notAfter) (\(left / 60) min left): asking for a new one (SignCertificate)")
        cp.triggers.append(ChargePoint.Trigger(message: .SignChargePointCertificate, connector: nil, extended: true))
    }

    /// ExtendedTriggerMessage SignChargePointCertificate: a new key, and SignCertificate with its CSR.
    func sendSigningRequest() {
        guard let store = certificates else { return }
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
            guard let p = securityLogPath else {
                hub.log("ocpp", "GetLog #\(r.requestId) SecurityLog: no security log (no state_dir)")
                return GetLogConf(status: .Rejected, filename: nil)
            }
            let cp = config.chargePointId
            source = { Self.securityLogText(path: p, chargePointId: cp, from: from, to: to) }
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
