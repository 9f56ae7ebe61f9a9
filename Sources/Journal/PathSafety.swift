// Whether a file or directory the controller trusts (the technicians' credentials, the OCPP key, the
// journal's directory) can be replaced by someone else, as ssh's StrictModes asks of authorized_keys:
// every directory from it up to "/" is owned by root or this account and writable by no one else, for
// the path as given (symlinks not followed) and for the path it resolves to. Unlike ssh, a sticky
// directory (mode 1777, as /tmp) owned by root or this account is accepted as an ancestor: others
// cannot rename or remove what they do not own in it.
#if canImport(Glibc)
import Glibc
#endif

public enum PathSafety {
    /// Why someone other than root or this account could replace `path`, or nil. `itself`: the path is
    /// a directory held to the same rule as its ancestors (the journal's), not a file checked by its reader.
    public static func problem(_ path: String, what: String, itself: Bool = false) -> String? {
        var chains = [path]
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        if realpath(path, &buf) != nil {
            let resolved = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if resolved != path { chains.append(resolved) }
        }
        for p in chains {
            for dir in (itself ? [p] : []) + ancestors(p) {
                var st = stat()
                guard lstat(dir, &st) == 0 else { continue }      // a missing part: the read says so
                let mode = st.st_mode & 0o7777
                let isLink = st.st_mode & S_IFMT == S_IFLNK
                if st.st_uid != 0 && st.st_uid != getuid() {
                    return "\(what) \(path): \(dir) is owned by uid \(st.st_uid), neither root nor this account (uid \(getuid())): refused"
                }
                // A link's own mode is always 0777 and means nothing; what it names is checked on the
                // resolved path.
                if !isLink && mode & 0o022 != 0 && mode & 0o1000 == 0 {
                    let whose = dir == p ? "it" : "its directory \(dir)"
                    return "\(what) \(path): \(whose) is writable by \(mode & 0o002 != 0 ? "every user" : "its group") (anyone could replace the file): refused"
                }
            }
        }
        return nil
    }

    /// "/a/b/c" → ["/a/b", "/a", "/"]; a relative path from the working directory.
    static func ancestors(_ path: String) -> [String] {
        var full = path
        if !full.hasPrefix("/") {
            var cwd = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            if getcwd(&cwd, cwd.count) != nil {
                full = String(decoding: cwd.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) + "/" + path
            }
        }
        var parts = full.split(separator: "/").map(String.init)
        var out: [String] = []
        while !parts.isEmpty {
            parts.removeLast()
            out.append("/" + parts.joined(separator: "/"))
        }
        return out
    }
}
