// The security extension's certificate store (OCPP 1.6 security whitepaper, edition 2): the root
// certificates a central system installs (CentralSystemRootCertificate: trust for the central system's
// TLS certificate and for the charge point's own; ManufacturerRootCertificate: trust for firmware
// signers), the charge point's key, made here and never leaving the machine, and the certificate the
// central system signed for it (CertificateSigned). X.509 through OpenSSL 3.
//
// On storage, in state_dir/certificates (0700; every file 0600, written whole then renamed, so only the
// service's own account reads them; a technician's account does not):
//
//     CentralSystemRootCertificate/<SHA-256 of the DER>.pem
//     ManufacturerRootCertificate/<SHA-256 of the DER>.pem
//     central-system-roots.pem          the first kind as one bundle, for the TLS connection
//     charge-point.key                  the key of charge-point.pem
//     charge-point.pem                  the signed certificate and its chain, leaf first
//     charge-point.key.pending          the key of a CSR sent and not yet answered
import COpenSSL
import Foundation
import Grid
#if canImport(Glibc)
import Glibc
#endif

/// Why a certificate or key was refused (said to the journal; the central system gets the status).
struct CertificateProblem: Error, CustomStringConvertible, Sendable {
    var description: String
    init(_ d: String) { description = d }
}

/// One X.509 certificate (OpenSSL's, freed with this object).
final class X509Certificate: @unchecked Sendable {
    let x: OpaquePointer
    init(owning x: OpaquePointer) { self.x = x }
    deinit { X509_free(x) }

    /// Every certificate of PEM text, in order; nil when none reads.
    static func all(pem: String) -> [X509Certificate]? {
        let bytes = Array(pem.utf8)
        let out: [X509Certificate] = bytes.withUnsafeBytes { b in
            guard let bio = BIO_new_mem_buf(b.baseAddress, Int32(b.count)) else { return [] }
            defer { BIO_free(bio) }
            var certs: [X509Certificate] = []
            while let x = PEM_read_bio_X509(bio, nil, nil, nil) { certs.append(X509Certificate(owning: x)) }
            return certs
        }
        ERR_clear_error()  // the end of the text reads as an error
        return out.isEmpty ? nil : out
    }

    var der: [UInt8] { Crypto.der { i2d_X509(x, $0) } }

    var pem: String {
        guard let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        PEM_write_bio_X509(bio, x)
        return String(decoding: Crypto.drain(bio), as: UTF8.self)
    }

    static func nameText(_ n: OpaquePointer?) -> String {
        var buf = [CChar](repeating: 0, count: 512)
        _ = X509_NAME_oneline(n, &buf, Int32(buf.count))
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
    var subject: String { Self.nameText(X509_get_subject_name(x)) }
    var issuer: String { Self.nameText(X509_get_issuer_name(x)) }

    /// The subject's common name.
    var commonName: String? {
        let name = X509_get_subject_name(x)
        let i = X509_NAME_get_index_by_NID(name, NID_commonName, -1)
        guard i >= 0, let e = X509_NAME_get_entry(name, i), let d = X509_NAME_ENTRY_get_data(e) else { return nil }
        guard let p = ASN1_STRING_get0_data(d) else { return nil }
        return String(decoding: UnsafeBufferPointer(start: p, count: Int(ASN1_STRING_length(d))), as: UTF8.self)
    }

    /// basicConstraints CA:TRUE (X509_check_ca 1): a v1 certificate, which OpenSSL takes as a CA by
    /// default (3), is not one here (issue 32).
    var isCA: Bool { X509_check_ca(x) == 1 }
    var selfSigned: Bool { X509_self_signed(x, 1) == 1 }
    /// Inside its validity period now (the system clock).
    var validNow: Bool { X509_cmp_current_time(X509_get0_notBefore(x)) < 0 && X509_cmp_current_time(X509_get0_notAfter(x)) > 0 }
    /// The end of the validity period, as text.
    var notAfter: String {
        var t = tm()
        guard ASN1_TIME_to_tm(X509_get0_notAfter(x), &t) == 1 else { return "?" }
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)
    }
    /// The validity period's ends, as epoch seconds (nil when OpenSSL cannot read them).
    var validity: (notBefore: Int64, notAfter: Int64)? {
        var a = tm(), b = tm()
        guard ASN1_TIME_to_tm(X509_get0_notBefore(x), &a) == 1, ASN1_TIME_to_tm(X509_get0_notAfter(x), &b) == 1 else { return nil }
        return (Int64(timegm(&a)), Int64(timegm(&b)))
    }
    /// `issuer` issued this one (names match, its key signed it).
    func issued(by issuer: X509Certificate) -> Bool { X509_check_issued(issuer.x, x) == X509_V_OK }

    /// The bits of the subject public key (what the whitepaper's issuerKeyHash is the hash of).
    var publicKeyBits: [UInt8] {
        guard let s = X509_get0_pubkey_bitstr(x), let p = ASN1_STRING_get0_data(s) else { return [] }
        return Array(UnsafeBufferPointer(start: p, count: Int(ASN1_STRING_length(s))))
    }
    var issuerNameDER: [UInt8] {
        let name = X509_get_issuer_name(x)
        return Crypto.der { i2d_X509_NAME(name, $0) }
    }
    /// The serial number in hexadecimal, lower case, without leading zeros.
    var serialHex: String {
        guard let s = X509_get0_serialNumber(x), let p = ASN1_STRING_get0_data(s) else { return "" }
        let hex = UnsafeBufferPointer(start: p, count: Int(ASN1_STRING_length(s))).map { String(format: "%02x", $0) }.joined()
        let trimmed = hex.drop { $0 == "0" }
        return trimmed.isEmpty ? "0" : String(trimmed)
    }

    /// The whitepaper's identity of this certificate, issued by `issuer`.
    func hashData(_ alg: HashAlgorithm, issuer: X509Certificate) -> CertificateHashData {
        CertificateHashData(hashAlgorithm: alg, issuerNameHash: Crypto.hex(Crypto.digest(issuerNameDER, alg)),
                            issuerKeyHash: Crypto.hex(Crypto.digest(issuer.publicKeyBits, alg)), serialNumber: serialHex)
    }

    /// nil when this certificate chains to one of `roots` (through `intermediates`) and every certificate on
    /// the way is valid now; else OpenSSL's reason.
    func verify(roots: [X509Certificate], intermediates: [X509Certificate] = []) -> String? {
        guard !roots.isEmpty else { return "no trusted root to check it against" }
        guard let store = X509_STORE_new() else { return "out of memory" }
        defer { X509_STORE_free(store) }
        for r in roots { X509_STORE_add_cert(store, r.x) }
        guard let chain = copenssl_x509_stack() else { return "out of memory" }
        defer { copenssl_x509_stack_free(chain) }
        for i in intermediates {
            X509_up_ref(i.x)
            _ = copenssl_x509_stack_push(chain, i.x)
        }
        guard let ctx = X509_STORE_CTX_new() else { return "out of memory" }
        defer { X509_STORE_CTX_free(ctx) }
        guard X509_STORE_CTX_init(ctx, store, x, chain) == 1 else { return Crypto.errors() }
        if X509_verify_cert(ctx) == 1 { return nil }
        let e = X509_STORE_CTX_get_error(ctx)
        ERR_clear_error()
        return String(cString: X509_verify_cert_error_string(Int(e)))
    }

    /// The signature `sig` over `data` is this certificate's key's (SHA-256; RSA or ECDSA).
    func signed(_ data: [UInt8], signature sig: [UInt8]) -> Bool {
        guard let key = X509_get0_pubkey(x), let md = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(md); ERR_clear_error() }
        guard EVP_DigestVerifyInit(md, nil, EVP_sha256(), nil, key) == 1 else { return false }
        return EVP_DigestVerify(md, sig, sig.count, data, data.count) == 1
    }
}

/// A private key (OpenSSL's EVP_PKEY, freed with this object).
final class PrivateKey: @unchecked Sendable {
    let k: OpaquePointer
    init(owning k: OpaquePointer) { self.k = k }
    deinit { EVP_PKEY_free(k) }

    /// A new ECDSA key on P-256 (secp256r1), as the whitepaper recommends for a charge point's key.
    static func generate() -> PrivateKey? {
        guard let ctx = EVP_PKEY_CTX_new_from_name(nil, "EC", nil) else { return nil }
        defer { EVP_PKEY_CTX_free(ctx) }
        var k: OpaquePointer? = nil
        guard EVP_PKEY_keygen_init(ctx) == 1, EVP_PKEY_CTX_set_group_name(ctx, "P-256") == 1,
              EVP_PKEY_generate(ctx, &k) == 1, let k else { return nil }
        return PrivateKey(owning: k)
    }

    init?(pem: [UInt8]) {
        let key: OpaquePointer? = pem.withUnsafeBytes { b in
            guard let bio = BIO_new_mem_buf(b.baseAddress, Int32(b.count)) else { return nil }
            defer { BIO_free(bio) }
            // No passphrase (the keys here are written unencrypted): never OpenSSL's default prompt on a tty.
            return PEM_read_bio_PrivateKey(bio, nil, { _, _, _, _ in 0 }, nil)
        }
        ERR_clear_error()
        guard let key else { return nil }
        k = key
    }

    var pem: [UInt8] {
        guard let bio = BIO_new(BIO_s_mem()) else { return [] }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PrivateKey(bio, k, nil, nil, 0, nil, nil) == 1 else { return [] }
        return Crypto.drain(bio)
    }

    /// A certificate signing request (PKCS#10, RFC 2986) for this key, PEM, signed with it (SHA-256).
    func signingRequest(commonName: String, organization: String) -> String? {
        guard let req = X509_REQ_new() else { return nil }
        defer { X509_REQ_free(req) }
        guard X509_REQ_set_version(req, 0) == 1, let name = X509_REQ_get_subject_name(req) else { return nil }
        for (field, value) in [("O", organization), ("CN", commonName)] where !value.isEmpty {
            let bytes = Array(value.utf8)
            guard X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8, bytes, Int32(bytes.count), -1, 0) == 1 else { return nil }
        }
        guard X509_REQ_set_pubkey(req, k) == 1, X509_REQ_sign(req, k, EVP_sha256()) > 0 else { return nil }
        guard let bio = BIO_new(BIO_s_mem()) else { return nil }
        defer { BIO_free(bio) }
        guard PEM_write_bio_X509_REQ(bio, req) == 1 else { return nil }
        return String(decoding: Crypto.drain(bio), as: UTF8.self)
    }

    /// The key belongs to `cert`.
    func matches(_ cert: X509Certificate) -> Bool {
        defer { ERR_clear_error() }
        return X509_check_private_key(cert.x, k) == 1
    }
}

enum Crypto {
    /// The DER bytes an OpenSSL i2d_ function writes: called once with no buffer for the length, then
    /// into one of that length.
    static func der(_ i2d: (UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>?) -> Int32) -> [UInt8] {
        let n = i2d(nil)
        guard n > 0 else { return [] }
        var out = [UInt8](repeating: 0, count: Int(n))
        out.withUnsafeMutableBufferPointer { b in
            var p: UnsafeMutablePointer<UInt8>? = b.baseAddress
            _ = i2d(&p)
        }
        return out
    }
    static func drain(_ bio: OpaquePointer) -> [UInt8] {
        let n = Int(BIO_ctrl_pending(bio))
        var out = [UInt8](repeating: 0, count: n)
        let got = out.withUnsafeMutableBytes { BIO_read(bio, $0.baseAddress, Int32(n)) }
        return Array(out.prefix(max(0, Int(got))))
    }
    static func digest(_ data: [UInt8], _ alg: HashAlgorithm) -> [UInt8] {
        let md: OpaquePointer? = switch alg { case .SHA256: EVP_sha256(); case .SHA384: EVP_sha384(); case .SHA512: EVP_sha512() }
        var out = [UInt8](repeating: 0, count: 64)
        var n: UInt32 = 0
        guard EVP_Digest(data, data.count, &out, &n, md, nil) == 1 else { return [] }
        return Array(out.prefix(Int(n)))
    }
    static func hex(_ b: [UInt8]) -> String { b.map { String(format: "%02x", $0) }.joined() }
    static func errors() -> String {
        var parts: [String] = []
        while case let e = ERR_get_error(), e != 0 {
            var buf = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(e, &buf, 256)
            parts.append(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return parts.isEmpty ? "unknown OpenSSL error" : parts.joined(separator: "; ")
    }
    /// Lower-case hex SHA-256.
    static func sha256Hex(_ bytes: [UInt8]) -> String { hex(digest(bytes, .SHA256)) }

    /// Writes a file only its owner reads (0600), whole or not at all; nil, or why it could not.
    static func writePrivately(_ bytes: [UInt8], to path: String) -> String? { writeWhole(bytes, to: path, mode: 0o600) }

    /// Writes a file whole or not at all (a temporary file written out, fsynced, then renamed over the
    /// path), with `mode`; nil, or why it could not. Every durable file here goes through it.
    static func writeWhole(_ bytes: [UInt8], to path: String, mode: mode_t) -> String? {
        let tmp = path + ".tmp"
        unlink(tmp)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard fd >= 0 else { return "\(path): \(String(cString: strerror(errno)))" }
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, bytes.count - off) }
            if n <= 0 { let e = errno; close(fd); unlink(tmp); return "\(path): \(String(cString: strerror(e)))" }
            off += n
        }
        guard fsync(fd) == 0 else { let e = errno; close(fd); unlink(tmp); return "\(path): \(String(cString: strerror(e)))" }
        close(fd)
        guard rename(tmp, path) == 0 else { let e = errno; unlink(tmp); return "\(path): \(String(cString: strerror(e)))" }
        return nil
    }
}

/// The certificate store on storage (see the head of this file). Used by the OCPP client's thread only.
final class CertificateStore {
    let dir: String
    /// CertificateStoreMaxLength: root certificates of both kinds together.
    static let maxCertificates = SecurityFieldLimits.certificateStoreMaxLength
    /// CertificateSignedMaxChainSize: the characters of CertificateSigned's chain (the whitepaper's most).
    static let maxChainCharacters = SecurityFieldLimits.certificateChain

    /// Opens (and makes) the store; throws when the directory cannot be made private.
    init(directory: String) throws(CertificateProblem) {
        dir = directory
        for d in [dir] + CertificateUse.allCases.map({ directory + "/" + $0.rawValue }) {
            if mkdir(d, 0o700) != 0 && errno != EEXIST { throw CertificateProblem("cannot make \(d): \(String(cString: strerror(errno)))") }
            guard chmod(d, 0o700) == 0 else { throw CertificateProblem("cannot make \(d) private: \(String(cString: strerror(errno)))") }
        }
    }

    var bundlePath: String { dir + "/central-system-roots.pem" }
    var keyPath: String { dir + "/charge-point.key" }
    var certificatePath: String { dir + "/charge-point.pem" }
    var pendingKeyPath: String { dir + "/charge-point.key.pending" }

    /// The installed certificates of one kind, with their files, oldest first.
    func installed(_ use: CertificateUse) -> [(file: String, cert: X509Certificate)] {
        let d = dir + "/" + use.rawValue
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: d)) ?? []).filter { $0.hasSuffix(".pem") }
        var out: [(file: String, cert: X509Certificate, time: Double)] = []
        for n in names {
            let path = d + "/" + n
            guard let text = try? String(contentsOfFile: path, encoding: .utf8), let c = X509Certificate.all(pem: text)?.first else { continue }
            var st = stat()
            let t = stat(path, &st) == 0 ? Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9 : 0
            out.append((path, c, t))
        }
        return out.sorted { $0.time < $1.time || ($0.time == $1.time && $0.file < $1.file) }.map { ($0.file, $0.cert) }
    }
    var count: Int { CertificateUse.allCases.reduce(0) { $0 + installed($1).count } }

    /// InstallCertificate: a CA certificate valid now, self-signed or issued by one already installed of
    /// the same kind. Rejected names what was wrong with it; Failed is the store's (full, or not written).
    func install(_ use: CertificateUse, pem: String) -> (CertificateStatus, String) {
        guard let certs = X509Certificate.all(pem: pem) else { return (.Rejected, "not a PEM certificate") }
        guard certs.count == 1, let c = certs.first else { return (.Rejected, "\(certs.count) certificates where one is installed at a time") }
        guard c.isCA else { return (.Rejected, "\(c.subject) is not a CA certificate (basicConstraints CA:TRUE)") }
        guard c.validNow else { return (.Rejected, "\(c.subject) is not valid now (expires \(c.notAfter))") }
        let have = installed(use)
        let fingerprint = Crypto.hex(Crypto.digest(c.der, .SHA256))
        let path = dir + "/" + use.rawValue + "/" + fingerprint + ".pem"
        if have.contains(where: { $0.file == path }) { return (.Accepted, "\(c.subject) is installed already") }
        if !c.selfSigned, let why = c.verify(roots: have.map(\.cert)) {
            return (.Rejected, "\(c.subject) is neither self-signed nor issued by an installed \(use.rawValue): \(why)")
        }
        return store(c, use, path)
    }

    private func store(_ c: X509Certificate, _ use: CertificateUse, _ path: String) -> (CertificateStatus, String) {
        guard count < Self.maxCertificates else { return (.Failed, "the store is full (CertificateStoreMaxLength \(Self.maxCertificates))") }
        if let why = Crypto.writePrivately(Array(c.pem.utf8), to: path) { return (.Failed, why) }
        if use == .CentralSystemRootCertificate, let why = writeBundle() { unlink(path); return (.Failed, why) }
        return (.Accepted, "\(c.subject) installed, expires \(c.notAfter)")
    }

    /// central-system-roots.pem written again from the installed CentralSystemRootCertificates (removed
    /// when there are none).
    func writeBundle() -> String? {
        let roots = installed(.CentralSystemRootCertificate)
        if roots.isEmpty { unlink(bundlePath); return nil }
        return Crypto.writePrivately(Array(roots.map(\.cert.pem).joined().utf8), to: bundlePath)
    }

    /// The issuer of an installed certificate: itself when self-signed, else the installed one that
    /// issued it (nil: none installed, as after its issuer was deleted).
    func issuer(of c: X509Certificate) -> X509Certificate? {
        if c.selfSigned { return c }
        return CertificateUse.allCases.lazy.flatMap { self.installed($0) }.first { c.issued(by: $0.cert) }?.cert
    }

    /// GetInstalledCertificateIds (SHA-256, as the whitepaper's examples).
    func ids(_ use: CertificateUse) -> [CertificateHashData] {
        installed(use).compactMap { e in issuer(of: e.cert).map { e.cert.hashData(.SHA256, issuer: $0) } }
    }

    /// The installed certificate of any kind that `h` names (with `h`'s hash algorithm).
    func find(_ h: CertificateHashData) -> (use: CertificateUse, file: String, cert: X509Certificate)? {
        for use in CertificateUse.allCases {
            for e in installed(use) {
                guard let i = issuer(of: e.cert), e.cert.hashData(h.hashAlgorithm, issuer: i).same(as: h) else { continue }
                return (use, e.file, e.cert)
            }
        }
        return nil
    }

    /// Installed certificates `c` issued (other than itself): while there are any, `c` stays, or they
    /// could no longer be named (their identity hashes the issuer's key).
    func issuedBy(_ c: X509Certificate, file: String) -> [X509Certificate] {
        CertificateUse.allCases.flatMap { installed($0) }.filter { $0.file != file && $0.cert.issued(by: c) }.map(\.cert)
    }

    func delete(file: String, _ use: CertificateUse) -> String? {
        guard unlink(file) == 0 else { return "cannot delete \(file): \(String(cString: strerror(errno)))" }
        return use == .CentralSystemRootCertificate ? writeBundle() : nil
    }

    /// SignCertificate: a new key (kept as the pending one, 0600) and its CSR, the CN the charge point's
    /// id and O the CpoName (whitepaper ed. 2, A00.FR.x: the charge point certificate's subject).
    func newSigningRequest(commonName: String, organization: String) -> Result<String, CertificateProblem> {
        guard let key = PrivateKey.generate() else { return .failure(CertificateProblem("cannot make a key: \(Crypto.errors())")) }
        guard let csr = key.signingRequest(commonName: commonName, organization: organization) else {
            return .failure(CertificateProblem("cannot make the CSR: \(Crypto.errors())"))
        }
        if let why = Crypto.writePrivately(key.pem, to: pendingKeyPath) { return .failure(CertificateProblem(why)) }
        return .success(csr)
    }

    /// CertificateSigned: the chain (leaf first) is kept once its leaf is for the pending key, names this
    /// charge point, is valid now and chains to `roots`; the pending key becomes the charge point's key.
    /// Returns what the leaf is (for the journal).
    func acceptSigned(_ chainText: String, commonName: String, roots: [X509Certificate]) -> Result<String, CertificateProblem> {
        guard chainText.count <= Self.maxChainCharacters else {
            return .failure(CertificateProblem("the chain has \(chainText.count) characters, over CertificateSignedMaxChainSize \(Self.maxChainCharacters)"))
        }
        guard let chain = X509Certificate.all(pem: chainText), let leaf = chain.first else { return .failure(CertificateProblem("not PEM certificates")) }
        guard let keyBytes = FileManager.default.contents(atPath: pendingKeyPath), let key = PrivateKey(pem: Array(keyBytes)) else {
            return .failure(CertificateProblem("no key is waiting for a certificate (no SignCertificate sent, or answered already)"))
        }
        guard key.matches(leaf) else { return .failure(CertificateProblem("\(leaf.subject) is not for the key of the last CSR")) }
        guard leaf.commonName == commonName else {
            return .failure(CertificateProblem("\(leaf.subject) does not name this charge point (CN \(commonName))"))
        }
        if let why = leaf.verify(roots: roots, intermediates: Array(chain.dropFirst())) {
            return .failure(CertificateProblem("\(leaf.subject): \(why)"))
        }
        if let why = Crypto.writePrivately(Array(chain.map(\.pem).joined().utf8), to: certificatePath + ".new") {
            return .failure(CertificateProblem(why))
        }
        // The key first, then the certificate: a crash between them leaves a key without its
        // certificate, which the TLS setup refuses (never a certificate with another key).
        guard rename(pendingKeyPath, keyPath) == 0, rename(certificatePath + ".new", certificatePath) == 0 else {
            return .failure(CertificateProblem("cannot keep the certificate: \(String(cString: strerror(errno)))"))
        }
        return .success("\(leaf.subject), issued by \(leaf.issuer), expires \(leaf.notAfter)")
    }

    /// The charge point's own certificate and key (both there, and the key the certificate's).
    var identity: (certificate: String, key: String)? {
        guard let c = try? String(contentsOfFile: certificatePath, encoding: .utf8), let leaf = X509Certificate.all(pem: c)?.first,
              let k = FileManager.default.contents(atPath: keyPath), let key = PrivateKey(pem: Array(k)), key.matches(leaf) else { return nil }
        return (certificatePath, keyPath)
    }
}
