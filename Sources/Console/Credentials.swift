// Technician credentials: a file outside the board file, one `user:hash` per line, the hash from
// crypt(3) (libxcrypt: yescrypt "$y$", or SHA-512 "$6$" as `openssl passwd -6` makes). No plain text.
import CConsole
import Foundation
#if canImport(Glibc)
import Glibc
#endif

public struct CredentialsError: Error, CustomStringConvertible {
    public var description: String
}

public struct Credentials: Sendable {
    public let path: String
    /// user → crypt(3) hash
    public private(set) var users: [String: String]

    /// Reads the file; a malformed line is an error naming the line (the console would otherwise lock a
    /// technician out for a typo nobody can see).
    public init(path: String) throws {
        self.path = path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CredentialsError(description: "credentials \(path): cannot read the file (create it with `chargerd passwd --file \(path) USER`)")
        }
        var users: [String: String] = [:]
        for (n, raw) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, Self.validUser(parts[0]), parts[1].hasPrefix("$") else {
                throw CredentialsError(description: "credentials \(path):\(n + 1): expected 'user:$hash' (user of letters, digits, '-', '_', '.'; hash from crypt(3))")
            }
            users[parts[0]] = parts[1]
        }
        self.users = users
    }

    public init(users: [String: String], path: String = "(memory)") { self.users = users; self.path = path }

    static func validUser(_ u: String) -> Bool {
        !u.isEmpty && u.count <= 32 && u.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }

    /// True when `password` matches `user`'s hash. Unknown users take as long as known ones.
    public func verify(user: String, password: String) -> Bool {
        let hash = users[user] ?? "$6$rounds=5000$nosuchuser$"
        guard let out = Self.crypt(password, setting: hash) else { return false }
        return users[user] != nil && constantTimeEqual(out, hash)
    }

    /// A new hash of `password` (yescrypt, random salt from the system).
    public static func hash(_ password: String) throws -> String {
        guard let setting = crypt_gensalt("$y$", 0, nil, 0) else {
            throw CredentialsError(description: "crypt_gensalt failed: \(String(cString: strerror(errno)))")
        }
        guard let h = crypt(password, setting: String(cString: setting)) else {
            throw CredentialsError(description: "crypt failed: \(String(cString: strerror(errno)))")
        }
        return h
    }

    static func crypt(_ password: String, setting: String) -> String? {
        var data = crypt_data()
        guard let r = crypt_r(password, setting, &data) else { return nil }
        let s = String(cString: r)
        return s.hasPrefix("*") ? nil : s
    }

    /// Writes `user`'s new hash into the file at `path` (created 0600 if missing), keeping the others.
    public static func setPassword(path: String, user: String, password: String) throws {
        guard validUser(user) else { throw CredentialsError(description: "user '\(user)': letters, digits, '-', '_', '.' only (1 to 32)") }
        guard password.count >= 8 else { throw CredentialsError(description: "password too short (8 characters at least)") }
        var lines: [String] = []
        if let data = FileManager.default.contents(atPath: path) {
            lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init).filter { !$0.hasPrefix(user + ":") }
        }
        lines.append(user + ":" + (try hash(password)))
        let text = lines.joined(separator: "\n") + "\n"
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CredentialsError(description: "credentials \(path): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        let ok = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count && fsync(fd) == 0
        close(fd)
        guard ok, rename(tmp, path) == 0 else { throw CredentialsError(description: "credentials \(path): write failed: \(String(cString: strerror(errno)))") }
    }
}

func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    var diff = x.count ^ y.count
    for i in 0..<min(x.count, y.count) { diff |= Int(x[i] ^ y[i]) }
    return diff == 0
}
