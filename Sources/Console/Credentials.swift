// Technician credentials: a file outside the board file, one `user:hash` per line, the hash from
// crypt(3) (libxcrypt: yescrypt "$y$", or SHA-512 "$6$" as `openssl passwd -6` makes). No plain text.
import CConsole
import Foundation
import Journal
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
    /// Said once at start when others can read the file (the hashes are slow to crack, not impossible).
    public private(set) var warning: String? = nil

    public init(path: String) throws {
        self.path = path
        warning = try Self.checkPermissions(path)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CredentialsError(description: "credentials \(path): cannot read the file (create it with `chargerd passwd --file \(path) USER`)")
        }
        self.users = try Self.parse(Array(data), path: path)
    }

    /// The file's lines as user → hash; a malformed line (or a file over 1 MB) is an error naming it.
    public static func parse(_ bytes: [UInt8], path: String) throws -> [String: String] {
        guard bytes.count <= 1 << 20 else { throw CredentialsError(description: "credentials \(path): \(bytes.count) bytes (at most 1 MB)") }
        var users: [String: String] = [:]
        for (n, raw) in String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, Self.validUser(parts[0]), parts[1].hasPrefix("$") else {
                throw CredentialsError(description: "credentials \(path):\(n + 1): expected 'user:$hash' (user of letters, digits, '-', '_', '.'; hash from crypt(3))")
            }
            users[parts[0]] = parts[1]
        }
        return users
    }

    public init(users: [String: String], path: String = "(memory)") { self.users = users; self.path = path }

    /// As ssh's StrictModes: a file that someone other than its owner (root or the account running
    /// chargerd) can write, or that lies in a directory others can write, is refused, since whoever can
    /// write it can make themselves a technician. A file others can read is taken with a warning.
    public static func checkPermissions(_ path: String, what: String = "credentials") throws -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }   // missing: the read below says so
        let mode = st.st_mode & 0o7777
        let octal = String(mode, radix: 8)
        if st.st_uid != 0 && st.st_uid != getuid() {
            throw CredentialsError(description: "\(what) \(path): owned by uid \(st.st_uid), neither root nor this account (uid \(getuid())): refused (chown root \(path))")
        }
        if mode & 0o022 != 0 {
            throw CredentialsError(description: "\(what) \(path): mode 0\(octal) lets \(mode & 0o002 != 0 ? "every user" : "its group") write it: refused (chmod 600 \(path))")
        }
        // Every directory above it, and above what it resolves to (Journal's PathSafety, as StrictModes).
        if let why = PathSafety.problem(path, what: what) { throw CredentialsError(description: why) }
        if mode & 0o044 != 0 {
            return "\(what) \(path): mode 0\(octal) lets others read it (chmod 600 \(path))"
        }
        return nil
    }

    static func validUser(_ u: String) -> Bool {
        !u.isEmpty && u.count <= 32 && u.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }
    }

    /// True when `password` matches `user`'s hash. Unknown users take as long as known ones: their
    /// password is hashed with a known user's setting (same algorithm and cost), so that the answer's time
    /// does not tell which user names exist (issue 32: 3.6 ms for an unknown user, 24.8 ms for a known one).
    public func verify(user: String, password: String) -> Bool {
        let hash = setting(for: user)
        guard let out = Self.crypt(password, setting: hash) else { return false }
        return users[user] != nil && constantTimeEqual(out, hash)
    }

    /// The hash `verify` computes with for `user`: its own, or for an unknown user a known user's (the
    /// same algorithm and cost), or a yescrypt setting of the default cost when there is no user.
    public func setting(for user: String) -> String {
        users[user] ?? users.keys.sorted().first.flatMap { users[$0] } ?? Self.defaultSetting
    }
    static let defaultSetting: String = crypt_gensalt("$y$", 0, nil, 0).map { String(cString: $0) } ?? "$y$j9T$nosuchuser$"

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
