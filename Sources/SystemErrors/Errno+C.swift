// errno as a type for the I/O layers (the loop's start, GPIO, Modbus, the journal, the console port):
// swift-system's Errno carries the value and its strerror text; this adds the C name a technician
// searches for (EPERM, ENOENT, ...) and the conversion from C's 0-for-none.
import SystemPackage

extension Errno {
    /// An errno from C (0: none).
    public init?(c e: Int32) { guard e != 0 else { return nil }; self.init(rawValue: e) }

    /// The C name of the errors the loop's start and the I/O layers meet (EPERM, ...), else "errno N".
    public var cName: String {
        switch self {
        case .notPermitted: "EPERM"
        case .noSuchFileOrDirectory: "ENOENT"
        case .noSuchProcess: "ESRCH"
        case .interrupted: "EINTR"
        case .ioError: "EIO"
        case .badFileDescriptor: "EBADF"
        case .resourceTemporarilyUnavailable: "EAGAIN"
        case .noMemory: "ENOMEM"
        case .permissionDenied: "EACCES"
        case .resourceBusy: "EBUSY"
        case .fileExists: "EEXIST"
        case .operationNotSupportedByDevice: "ENODEV"
        case .notDirectory: "ENOTDIR"
        case .isDirectory: "EISDIR"
        case .invalidArgument: "EINVAL"
        case .tooManyOpenFiles: "EMFILE"
        case .noSpace: "ENOSPC"
        case .readOnlyFileSystem: "EROFS"
        case .brokenPipe: "EPIPE"
        case .timedOut: "ETIMEDOUT"
        case .connectionRefused: "ECONNREFUSED"
        case .connectionReset: "ECONNRESET"
        default: "errno \(rawValue)"
        }
    }
}

extension Optional where Wrapped == Errno {
    /// "no error" for none.
    public var cName: String { self?.cName ?? "no error" }
}
