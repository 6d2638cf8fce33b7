import Glibc

/// Why a seccomp filter could not be built, read or installed.
public enum SeccompError: Error, Equatable, CustomStringConvertible {
    case unknownSyscall(String)
    case duplicateSyscall(String)
    case unknownIoctl(String)
    case programTooLong(count: Int)
    /// `--seccomp-filter FILE` is not a usable filter file.
    case badFilterFile(path: String, problem: String)
    /// The kernel refused to install the filter (seccomp(2) failed).
    case installFailed(kind: ThreadKind, errno: Int32)

    public var description: String {
        switch self {
        case .unknownSyscall(let n): return "seccomp: unknown system call \(n)"
        case .duplicateSyscall(let n): return "seccomp: \(n) is listed twice"
        case .unknownIoctl(let n): return "seccomp: unknown ioctl request \(n)"
        case .programTooLong(let c): return "seccomp: a filter of \(c) instructions is too long"
        case .badFilterFile(let path, let problem): return "\(path): not a seccomp filter file: \(problem)"
        case .installFailed(let kind, let e): return "seccomp: installing the \(kind.rawValue) thread's filter failed: \(errnoText(e))"
        }
    }
}
