import Glibc

/// Console failures, each naming the path or the system call and errno text.
public enum ConsoleError: Error, Equatable, CustomStringConvertible {
    case systemCall(_ name: String, errno: Int32, context: String)
    case invalidMode(String)
    case socketPathTooLong(path: String)
    /// Another process is serving (accepting) on this socket.
    case socketInUse(path: String)
    case pathIsNotSocket(path: String)
    case noSuchSocket(path: String)
    case connectionRefused(path: String)
    case consoleBusy(path: String)

    public var description: String {
        switch self {
        case .systemCall(let name, let e, let context): return "console: \(name) failed (\(context)): \(errnoText(e))"
        case .invalidMode(let s):
            return "console: invalid serial mode '\(s)' (expected stdio, file:PATH, socket:PATH or none)"
        case .socketPathTooLong(let p): return "console: socket path is longer than 107 bytes: \(p)"
        case .socketInUse(let p): return "console: \(p) is in use by another running console (refusing to replace it)"
        case .pathIsNotSocket(let p): return "console: \(p) exists and is not a socket (refusing to replace it)"
        case .noSuchSocket(let p): return "console: no such socket: \(p)"
        case .connectionRefused(let p): return "console: connection refused: \(p) (no VM is serving it)"
        case .consoleBusy(let p): return "console: \(p) is busy (another client is attached)"
        }
    }
}
