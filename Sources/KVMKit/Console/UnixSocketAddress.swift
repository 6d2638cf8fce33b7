import Glibc

/// sockaddr_un for a filesystem path, shared by the console server and the attach client.
public enum UnixSocketAddress {
    /// sun_path holds 108 bytes including the terminating NUL.
    public static let maxPathBytes = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    public static func withAddress<R>(_ path: String, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) throws -> R {
        let bytes = Array(path.utf8)
        guard !bytes.isEmpty, bytes.count <= maxPathBytes else { throw ConsoleError.socketPathTooLong(path: path) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + 1)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }

    /// A blocking, close-on-exec stream socket connected to `path`; nil with errno
    /// in the second element on failure.
    public static func connect(_ path: String) throws -> (fd: Int32, errno: Int32) {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw ConsoleError.systemCall("socket", errno: errno, context: "connect to \(path)") }
        let rc = try withAddress(path) { Glibc.connect(fd, $0, $1) }
        if rc < 0 {
            let e = errno
            close(fd)
            return (-1, e)
        }
        return (fd, 0)
    }

    /// The type bits of `path` (S_IFSOCK, ...); nil when it does not exist. The server
    /// looks at the link itself (it may unlink it), the client follows links.
    public static func fileType(_ path: String, followSymlinks: Bool = false) -> mode_t? {
        var st = stat()
        guard (followSymlinks ? stat(path, &st) : lstat(path, &st)) == 0 else { return nil }
        return st.st_mode & S_IFMT
    }

    /// What stands at a path a server wants to bind.
    public enum ExistingPath: Equatable {
        case free
        /// A socket nobody accepts on (ECONNREFUSED): removed.
        case removedStale
        /// Something accepts on it: left alone.
        case liveSocket
        case notSocket
        /// A system call failed (name, errno).
        case failed(String, Int32)
    }

    /// Make `path` bindable if it is free or a stale socket; never touch a live socket or
    /// another kind of file.
    public static func clearStaleSocket(_ path: String) throws -> ExistingPath {
        guard let type = fileType(path) else { return .free }
        guard type == S_IFSOCK else { return .notSocket }
        let probe = try connect(path)
        if probe.fd >= 0 {
            close(probe.fd)
            return .liveSocket
        }
        guard probe.errno == ECONNREFUSED else { return .failed("connect", probe.errno) }
        if unlink(path) < 0 { return .failed("unlink", errno) }
        return .removedStale
    }
}
