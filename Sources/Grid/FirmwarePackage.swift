// A firmware package for UpdateFirmware (OCPP 1.6 §5.19) and how it is checked before it is installed.
// The format is this project's own: a text head, then the payload (the chargerd executable):
//
//     CHARGERD-FIRMWARE 1
//     version: 1.4.0
//     size: 17402880
//     sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//     <empty line>
//     <size bytes of payload>
//
// `chargerd firmware pack` writes one. The checks: the head reads, the size is the payload's, the SHA-256
// is the payload's (a download cut short or damaged fails here: DownloadFailed), and the payload is an
// ELF executable for this machine's architecture (a package for another board fails here:
// InstallationFailed). A signature (SignedUpdateFirmware, the security extension) is not part of it.

public struct FirmwarePackage: Sendable, Equatable {
    public var version: String
    public var sha256: String
    public var payload: [UInt8]

    public static let magic = "CHARGERD-FIRMWARE 1"
    /// At most this much is downloaded (a chargerd executable is ~20 MB).
    public static let maxBytes = 64 << 20

    public enum Problem: Error, Sendable, Equatable, CustomStringConvertible {
        /// The bytes are not a whole, intact package (download again).
        case damaged(String)
        /// An intact package this board cannot run (do not install).
        case unsuitable(String)
        public var description: String {
            switch self {
            case .damaged(let s): "damaged package: \(s)"
            case .unsuitable(let s): "unsuitable package: \(s)"
            }
        }
    }

    /// The head of a package around `payload`.
    public static func pack(version: String, payload: [UInt8], sha256: String) -> [UInt8] {
        Array("\(magic)\nversion: \(version)\nsize: \(payload.count)\nsha256: \(sha256)\n\n".utf8) + payload
    }

    /// Reads a package; `digest` computes the SHA-256 of bytes as lower-case hex.
    public static func read(_ bytes: [UInt8], digest: ([UInt8]) -> String) -> Result<FirmwarePackage, Problem> {
        // The head ends at the first empty line, within 4 kB.
        var end: Int? = nil
        let limit = min(bytes.count, 4096)
        if limit >= 2 { for i in 0..<(limit - 1) where bytes[i] == 10 && bytes[i + 1] == 10 { end = i; break } }
        guard let end else { return .failure(.damaged("no head ending in an empty line within 4 kB")) }
        let lines = String(decoding: bytes[0..<end], as: UTF8.self).split(separator: "\n").map(String.init)
        guard lines.first == magic else { return .failure(.damaged("it does not begin with '\(magic)'")) }
        var fields: [String: String] = [:]
        for l in lines.dropFirst() {
            guard let c = l.firstIndex(of: ":") else { return .failure(.damaged("head line '\(l.prefix(40))' is not 'key: value'")) }
            fields[String(l[..<c])] = String(l[l.index(after: c)...]).trimmedSpaces()
        }
        guard let version = fields["version"], !version.isEmpty, version.utf8.count <= 50,
              version.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == "_" || $0 == "+" }) else {
            return .failure(.damaged("no version (1-50 letters, digits and . - _ +)"))
        }
        guard let sizeText = fields["size"], let size = Int(sizeText), size > 0 else { return .failure(.damaged("no size")) }
        guard let sha = fields["sha256"]?.lowercased(), sha.utf8.count == 64 else { return .failure(.damaged("no sha256")) }
        let payload = Array(bytes[(end + 2)...])
        guard payload.count == size else { return .failure(.damaged("\(payload.count) bytes of payload, the head says \(size)")) }
        guard digest(payload) == sha else { return .failure(.damaged("the payload's SHA-256 is not the head's")) }
        // An ELF executable for this machine (e_ident, e_type EXEC or DYN, e_machine).
        guard payload.count > 64, payload[0] == 0x7F, payload[1] == 0x45, payload[2] == 0x4C, payload[3] == 0x46 else {
            return .failure(.unsuitable("the payload is not an ELF executable"))
        }
        let machine = Int(payload[18]) | Int(payload[19]) << 8
        guard machine == thisMachine else {
            return .failure(.unsuitable("the payload is for ELF machine \(machine), this board is \(thisMachine)"))
        }
        return .success(FirmwarePackage(version: version, sha256: sha, payload: payload))
    }

    /// ELF e_machine of the running build: 62 x86-64, 183 AArch64.
    public static var thisMachine: Int {
        #if arch(x86_64)
        62
        #elseif arch(arm64)
        183
        #else
        0
        #endif
    }
}
