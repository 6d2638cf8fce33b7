import CKVM
import Glibc
import KVMKit

/// Non-blocking Unix stream sockets for the host side of vsock.
enum VsockHostSocket {
    /// Listen at `path` (mode 0600). A stale socket file (nothing accepting) is replaced;
    /// any other existing file is an error.
    static func listen(at path: String) throws(VsockError) -> Int32 {
        try checkFree(path)
        if UnixSocketAddress.fileType(path) == S_IFSOCK { unlink(path) }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        if fd < 0 { throw .system("socket", path, errno) }
        let rc = (try? UnixSocketAddress.withAddress(path) { bind(fd, $0, $1) }) ?? -1
        if rc < 0 { let e = errno; close(fd); throw e == EADDRINUSE ? .inUse(path) : .system("bind", path, e) }
        chmod(path, 0o600)
        if Glibc.listen(fd, 64) < 0 { let e = errno; close(fd); throw .system("listen", path, e) }
        return fd
    }

    /// Nothing accepts at `path`, and it is absent or a (stale) socket.
    static func checkFree(_ path: String) throws(VsockError) {
        guard let type = UnixSocketAddress.fileType(path) else { return }
        guard type == S_IFSOCK else { throw .notASocket(path) }
        let (fd, _) = (try? UnixSocketAddress.connect(path)) ?? (-1, 0)
        if fd >= 0 { close(fd); throw .inUse(path) }
    }

    /// A non-blocking connection to `path`; -errno when refused or missing.
    static func connect(_ path: String) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        if fd < 0 { return -errno }
        let rc = (try? UnixSocketAddress.withAddress(path) { Glibc.connect(fd, $0, $1) }) ?? -1
        if rc < 0 && errno != EINPROGRESS { let e = errno; close(fd); return -(e == 0 ? ENAMETOOLONG : e) }
        return fd
    }

    static func accept(_ listener: Int32) -> Int32 { ckvm_accept_nonblock_cloexec(listener) }

    /// read(2): bytes, 0 at EOF, nil when it would block; -1 on an error.
    static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            return errno == EAGAIN ? nil : -1
        }
    }

    /// send(2) without SIGPIPE: bytes taken (0 when it would block), -1 on an error.
    static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Int {
        if bytes.isEmpty { return 0 }
        while true {
            let n = send(fd, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
            if n >= 0 { return n }
            if errno == EINTR { continue }
            return errno == EAGAIN ? 0 : -1
        }
    }
}

public enum VsockError: Error, Equatable, CustomStringConvertible {
    case inUse(String)
    case notASocket(String)
    case system(String, String, Int32)

    public var description: String {
        switch self {
        case .inUse(let p): return "vsock socket \(p) is in use by another process"
        case .notASocket(let p): return "vsock socket path \(p) exists and is not a socket"
        case .system(let call, let p, let e): return "vsock socket \(p): \(call) failed: \(errnoText(e))"
        }
    }
}
