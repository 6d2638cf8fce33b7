import Glibc

/// Failures of the event loop and its file descriptors: the system call that failed and
/// why, plus what it was doing ("register fd 7").
public enum EventLoopError: Error, Equatable, CustomStringConvertible {
    case systemCall(_ name: String, errno: Int32, context: String)
    case alreadyRegistered(fd: Int32)
    case notRegistered(fd: Int32)
    case alreadyRunning

    public var description: String {
        switch self {
        case .systemCall(let name, let e, let context):
            return "event loop: \(name) failed (\(context)): \(errnoText(e))"
        case .alreadyRegistered(let fd): return "event loop: fd \(fd) is already registered"
        case .notRegistered(let fd): return "event loop: fd \(fd) is not registered"
        case .alreadyRunning: return "event loop: already running"
        }
    }
}
