import CKVM
import Glibc

/// A one-shot CLOCK_MONOTONIC timer as a file descriptor (timerfd): readable once it has
/// expired, until `clear()`. Non-blocking and close-on-exec.
public final class TimerFD: @unchecked Sendable {
    public let fd: Int32

    public init() throws {
        let fd = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK | TFD_CLOEXEC))
        if fd < 0 { throw EventLoopError.systemCall("timerfd_create", errno: errno, context: "create") }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Expire once, `microseconds` from now (at least 1), replacing any pending expiry.
    public func arm(microseconds: Int) {
        let us = max(1, microseconds)
        var spec = itimerspec(it_interval: timespec(tv_sec: 0, tv_nsec: 0),
                              it_value: timespec(tv_sec: us / 1_000_000, tv_nsec: (us % 1_000_000) * 1000))
        _ = timerfd_settime(fd, 0, &spec, nil)
    }

    /// Cancel a pending expiry.
    public func disarm() {
        var spec = itimerspec()
        _ = timerfd_settime(fd, 0, &spec, nil)
    }

    /// Consume the expiry so the fd stops polling readable.
    public func clear() {
        var expirations: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &expirations) { read(fd, $0.baseAddress, 8) }
    }
}
