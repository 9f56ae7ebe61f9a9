// Session records an operator can defend (issue 37, part 3): the journal's session-end record is signed
// with the charge point's key, so that `chargerd journal verify` (or openssl alone, docs/security.md "Signed session records")
// shows it was not changed after the fact. The signature covers the record's stored JSON
// (`JournalScan.payload`: sorted keys, as on storage): SHA-256, then ECDSA (the whitepaper's P-256 key
// that SignCertificate makes) or RSA, whichever the key is; kept base64 DER in a `signature` record that
// names the record it signs and the key's id (the first 16 hex digits of the SHA-256 of the public key's
// DER, SubjectPublicKeyInfo: what `openssl pkey -pubout -outform DER | sha256sum` prints).
import COpenSSL
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Why a key could not be used for records (the path and OpenSSL's reason).
public struct RecordKeyError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ d: String) { description = d }
}

/// The charge point's private key, signing session records.
public final class RecordSigner: @unchecked Sendable {
    let key: PrivateKey
    /// The key's id (see the head of this file).
    public let keyId: String
    public let path: String

    /// The private key in `path` (PEM, unencrypted: the charge point's key as the certificate store keeps it).
    public init(keyFile path: String) throws(RecordKeyError) {
        guard let bytes = FileManager.default.contents(atPath: path) else {
            throw RecordKeyError("\(path): cannot read the signing key (\(String(cString: strerror(errno))))")
        }
        guard bytes.count <= 64 * 1024, let k = PrivateKey(pem: Array(bytes)) else {
            throw RecordKeyError("\(path): not a PEM private key")
        }
        key = k
        self.path = path
        keyId = RecordKeys.id(of: k.k)
    }

    /// The charge point's key from the OCPP certificate store in `stateDirectory`, when SignCertificate has
    /// made one and the central system's certificate for it is installed (nil otherwise).
    public static func chargePointKey(stateDirectory: String) -> RecordSigner? {
        // The store's files read where the OCPP client keeps them (Certificates.swift), without making its
        // directories: no store, no key.
        let dir = stateDirectory + "/certificates"
        guard let c = try? String(contentsOfFile: dir + "/charge-point.pem", encoding: .utf8), let leaf = X509Certificate.all(pem: c)?.first,
              let signer = try? RecordSigner(keyFile: dir + "/charge-point.key"), signer.key.matches(leaf) else { return nil }
        return signer
    }

    /// The signature of `bytes`, base64 DER (nil: OpenSSL refused, which a valid key does not).
    public func sign(_ bytes: [UInt8]) -> String? {
        guard let md = EVP_MD_CTX_new() else { return nil }
        defer { EVP_MD_CTX_free(md); ERR_clear_error() }
        guard EVP_DigestSignInit(md, nil, EVP_sha256(), nil, key.k) == 1 else { return nil }
        var length = 0
        guard EVP_DigestSign(md, nil, &length, bytes, bytes.count) == 1, length > 0 else { return nil }
        var sig = [UInt8](repeating: 0, count: length)
        guard EVP_DigestSign(md, &sig, &length, bytes, bytes.count) == 1 else { return nil }
        return Data(sig.prefix(length)).base64EncodedString()
    }

    /// The public key, PEM (what an operator is given to check records with).
    public var publicKeyPEM: String { RecordKeys.publicPEM(key.k) }
}

/// A public key checking record signatures: from a PEM public key, a certificate or a private key.
public final class RecordVerifier: @unchecked Sendable {
    private let pkey: OpaquePointer
    public let keyId: String

    public init(file path: String) throws(RecordKeyError) {
        guard let bytes = FileManager.default.contents(atPath: path) else {
            throw RecordKeyError("\(path): cannot read the key (\(String(cString: strerror(errno))))")
        }
        guard bytes.count <= 256 * 1024, let k = RecordKeys.publicKey(pem: Array(bytes)) else {
            throw RecordKeyError("\(path): not a PEM public key, certificate or private key")
        }
        pkey = k
        keyId = RecordKeys.id(of: k)
    }
    deinit { EVP_PKEY_free(pkey) }

    /// `signature` (base64 DER) is this key's over `bytes`.
    public func verify(_ bytes: [UInt8], signature: String) -> Bool {
        guard signature.count <= 4096, let sig = Data(base64Encoded: signature), let md = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(md); ERR_clear_error() }
        guard EVP_DigestVerifyInit(md, nil, EVP_sha256(), nil, pkey) == 1 else { return false }
        let s = [UInt8](sig)
        return EVP_DigestVerify(md, s, s.count, bytes, bytes.count) == 1
    }
}

enum RecordKeys {
    /// The first 16 hex digits of the SHA-256 of the public key's DER (SubjectPublicKeyInfo).
    static func id(of k: OpaquePointer) -> String {
        let der = Crypto.der { i2d_PUBKEY(k, $0) }
        return String(Crypto.sha256Hex(der).prefix(16))
    }

    static func publicPEM(_ k: OpaquePointer) -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PUBKEY(bio, k) == 1 else { return "" }
        return String(decoding: Crypto.drain(bio), as: UTF8.self)
    }

    /// A public key (owned: the caller frees it) from PEM text holding one, a certificate or a private key.
    static func publicKey(pem: [UInt8]) -> OpaquePointer? {
        defer { ERR_clear_error() }
        let fromPublic: OpaquePointer? = pem.withUnsafeBytes { b in
            guard let bio = BIO_new_mem_buf(b.baseAddress, Int32(b.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PUBKEY(bio, nil, { _, _, _, _ in 0 }, nil)
        }
        if let fromPublic { return fromPublic }
        if let cert = X509Certificate.all(pem: String(decoding: pem, as: UTF8.self))?.first, let k = X509_get0_pubkey(cert.x) {
            EVP_PKEY_up_ref(k)
            return k
        }
        if let priv = PrivateKey(pem: pem) {
            EVP_PKEY_up_ref(priv.k)
            return priv.k
        }
        return nil
    }
}
