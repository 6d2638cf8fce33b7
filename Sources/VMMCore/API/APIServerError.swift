import KVMKit

/// Why the API server could not start: one line naming the path or the system call.
public enum APIServerError: Error, Equatable, CustomStringConvertible {
    case socketInUse(path: String)
    case pathIsNotSocket(path: String)
    case socketPathTooLong(path: String)
    case systemCall(_ name: String, errno: Int32, context: String)
    case alreadyStarted

    public var description: String {
        switch self {
        case .socketInUse(let p): return "api: \(p) is in use by another running server (refusing to replace it)"
        case .pathIsNotSocket(let p): return "api: \(p) exists and is not a socket (refusing to replace it)"
        case .socketPathTooLong(let p): return "api: socket path is longer than \(UnixSocketAddress.maxPathBytes) bytes: \(p)"
        case .systemCall(let name, let e, let context): return "api: \(name) failed (\(context)): \(errnoText(e))"
        case .alreadyStarted: return "api: the server was already started"
        }
    }
}
