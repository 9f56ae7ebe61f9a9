// The security extension's own state on the charge point (security whitepaper, edition 2), a type of its
// own (issue 34): the certificate store (Certificates.swift), what the connection's TLS trusts and
// presents, the charge point certificate's renewal, and the security log on storage. The client's thread
// drives it; the central system's calls reach it through OCPPSecurity.swift.
import Foundation
import Grid
import SiteFile
#if canImport(Glibc)
import Glibc
#endif

final class SecurityExtension {
    let config: OCPPConfig
    let hub: GridHub
    /// The certificates and the charge point's key (state_dir/certificates; nil without a state_dir or
    /// when the store cannot be opened: the certificate messages are refused).
    let certificates: CertificateStore?
    /// The charge point's certificate renewal (A03): when it is looked at next, when a CSR went out last.
    var nextRenewalCheck = 0.0
    var lastRenewalRequest = -Double.infinity

    init(config: OCPPConfig, hub: GridHub) {
        self.config = config; self.hub = hub
        var store: CertificateStore? = nil
        if let dir = config.stateDirectory {
            do { store = try CertificateStore(directory: dir + "/certificates") }
            catch { hub.log("ocpp", "certificate store: \(error); the security extension's certificate messages are refused") }
        }
        certificates = store
    }

    var logPath: String? { config.stateDirectory.map { $0 + "/security.log" } }
    /// The security log is turned to security.log.1 past this size (the two together are what GetLog
    /// SecurityLog can send).
    static let logMaxBytes = 256 << 10

    /// One line per event: its time, its type, what it was (owner-only file).
    func appendLog(_ e: SecurityEventNotificationReq) {
        guard let p = logPath else { return }
        var st = stat()
        if stat(p, &st) == 0 && Int(st.st_size) > Self.logMaxBytes { rename(p, p + ".1") }
        let info = (e.techInfo ?? "").map { $0.isNewline ? " " : $0 }
        let line = Array("\(e.timestamp) \(e.type)\(info.isEmpty ? "" : " " + String(info))\n".utf8)
        let fd = open(p, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        guard fd >= 0 else { return }
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    /// The security log's lines between two station times (epoch ms, either end open), oldest first,
    /// under a head line. Reads files only: safe on an upload's thread.
    static func logText(path: String, chargePointId: String, from: Int64?, to: Int64?) -> [UInt8] {
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

    /// What the connection's TLS trusts and presents: the site's CA and the installed central system
    /// roots (the system's CAs when neither), and on profile 3 the certificate the central system signed
    /// (CertificateSigned) over the site's.
    func tlsFiles(profile: Int) -> TLSFiles {
        let roots = certificates.flatMap { access($0.bundlePath, R_OK) == 0 ? $0.bundlePath : nil }
        let own = profile == 3 ? certificates?.identity : nil
        return TLSFiles(ca: config.caFile, roots: roots, cert: own?.certificate ?? config.certFile, key: own?.key ?? config.keyFile)
    }

    /// The trust anchors for the charge point's own certificate: the installed central system roots and
    /// the site's CA file.
    var centralSystemRoots: [X509Certificate] {
        var roots = certificates?.installed(.CentralSystemRootCertificate).map(\.cert) ?? []
        if let ca = config.caFile, let text = try? String(contentsOfFile: ca, encoding: .utf8) { roots += X509Certificate.all(pem: text) ?? [] }
        return roots
    }

    /// DeleteCertificate: NotFound when no installed root has that identity; Failed for the last
    /// CentralSystemRootCertificate while the connection's TLS (profiles 2 and 3) relies on the store
    /// (without it the system's CAs would be trusted instead: wider, not narrower), for a CA that issued
    /// another installed certificate (whose identity hashes this one's key), and when the file cannot be
    /// removed.
    func deleteCertificate(_ h: CertificateHashData, profile securityProfile: Int) -> DeleteCertificateStatus {
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

    /// CertificateSigned: the chain kept (CertificateStore.acceptSigned; what it is now), the renewal
    /// looked at afresh; or why it was refused (nil: no store, journalled here).
    func certificateSigned(_ chain: String) -> Result<String, CertificateProblem>? {
        guard let store = certificates else {
            hub.log("ocpp", "CertificateSigned Rejected: no certificate store (no state_dir)")
            return nil
        }
        let r = store.acceptSigned(chain, commonName: config.chargePointId, roots: centralSystemRoots)
        if case .success = r {
            nextRenewalCheck = 0
            lastRenewalRequest = -Double.infinity
        }
        return r
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
    /// Whether a renewal is due now (`now`: monotonic seconds; `asked`: one is already queued).
    func renewalDue(profile: Int, online: Bool, now: Double, asked: Bool) -> Bool {
        guard profile == 3, online, now >= nextRenewalCheck, let store = certificates else { return false }
        nextRenewalCheck = now + 60
        // The certificate it presents: the one CertificateSigned installed, else the site's (factory) one.
        guard let path = store.identity?.certificate ?? config.certFile, let text = try? String(contentsOfFile: path, encoding: .utf8),
              let leaf = X509Certificate.all(pem: text)?.first, let v = leaf.validity else { return false }
        let left = v.notAfter - Int64(Date().timeIntervalSince1970)
        guard left < min(Self.renewBefore, (v.notAfter - v.notBefore) / 5) else { return false }
        guard now >= lastRenewalRequest + Self.renewRetry, !asked else { return false }
        lastRenewalRequest = now
        hub.log("ocpp", "the charge point's certificate ends \(leaf.notAfter) (\(left / 60) min left): asking for a new one (SignCertificate)")
        return true
    }
}
