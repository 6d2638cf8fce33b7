import CKVM
import Glibc

/// Small fd helpers shared by the console hosts. Internal.
enum ConsoleIO {
    enum WriteResult: Equatable {
        case wrote(Int)
        case wouldBlock
        case failed(Int32)
    }

    /// One non-blocking write attempt (send with MSG_NOSIGNAL for sockets, so a vanished
    /// client is an EPIPE, not a SIGPIPE).
    static func writeSome(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, socket: Bool) -> WriteResult {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return .wrote(0) }
        while true {
            let n = socket ? send(fd, base, bytes.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) : write(fd, base, bytes.count)
            if n >= 0 { return .wrote(n) }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK { return .wouldBlock }
            return .failed(e)
        }
    }

    /// Write everything, waiting with poll for at most until `deadline` (monotonic ms).
    /// Returns false if the deadline passed or the fd failed.
    @discardableResult
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, socket: Bool, deadline: Int64) -> Bool {
        var offset = 0
        while offset < bytes.count {
            switch writeSome(fd, UnsafeRawBufferPointer(rebasing: bytes[offset...]), socket: socket) {
            case .wrote(let n): offset += n
            case .failed: return false
            case .wouldBlock:
                let left = deadline - monotonicMillis()
                if left <= 0 { return false }
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&p, 1, Int32(min(left, 1000)))
            }
        }
        return true
    }

    static func writeAll(_ fd: Int32, _ text: String, socket: Bool, deadline: Int64) {
        var copy = text
        copy.withUTF8 { _ = writeAll(fd, UnsafeRawBufferPointer($0), socket: socket, deadline: deadline) }
    }

    static func monotonicMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    static func isRegularFile(_ fd: Int32) -> Bool {
        var st = stat()
        return fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    /// A non-blocking fd for an inherited one (stdin, stdout) without changing the flags
    /// the parent shell shares: reopen it through /proc as a new open file description.
    /// Sockets cannot be reopened; for them set O_NONBLOCK in place and record the old
    /// flags so exit and signals put them back. Returns (fd, whether we own a new fd).
    static func nonblockingCopy(of fd: Int32, forWriting: Bool) throws -> (fd: Int32, owned: Bool) {
        let flags = (forWriting ? O_WRONLY : O_RDONLY) | O_NONBLOCK | O_CLOEXEC | O_NOCTTY
        let reopened = open("/proc/self/fd/\(fd)", flags)
        if reopened >= 0 { return (reopened, true) }
        let old = ckvm_fcntl_getfl(fd)
        if old < 0 { throw ConsoleError.systemCall("fcntl(F_GETFL)", errno: -old, context: "fd \(fd)") }
        if old & O_NONBLOCK == 0 {
            ConsoleExitCleanup.install()
            ConsoleExitCleanup.recordFileStatusFlags(fd: fd, flags: old)
            let r = ckvm_fcntl_setfl(fd, old | O_NONBLOCK)
            if r < 0 { throw ConsoleError.systemCall("fcntl(F_SETFL)", errno: -r, context: "make fd \(fd) non-blocking") }
        }
        return (fd, false)
    }

    /// Undo `nonblockingCopy`.
    static func release(_ copy: (fd: Int32, owned: Bool)) {
        if copy.owned {
            close(copy.fd)
        } else {
            ConsoleExitCleanup.runFileStatusRestore(fd: copy.fd)
        }
    }
}
