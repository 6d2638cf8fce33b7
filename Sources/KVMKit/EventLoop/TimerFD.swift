import CKVM
import Glibc

/// A one-shot monotonic timer as a file descriptor (timerfd), readable once it expires:
/// device timers (rate limiters, console output coalescing, API time-outs) run on the event
/// loop like any other fd. It counts CLOCK_MONOTONIC (`monotonicNanoseconds()`).
public final class TimerFD: @unchecked Sendable {
    public let fd: Int32

    public init() throws {
        let r = ckvm_timerfd_create()
        if r < 0 { throw EventLoopError.systemCall("timerfd_create", errno: -r, context: "create a device timer") }
        fd = r
    }

    deinit { close(fd) }

    /// Expire once, `nanoseconds` from now (at least 1 ns; re-arming replaces the old time).
    public func arm(after nanoseconds: UInt64) {
        _ = ckvm_timerfd_arm(fd, max(1, nanoseconds))
    }

    public func disarm() { _ = ckvm_timerfd_arm(fd, 0) }

    /// Consume the expiry so the fd stops being readable.
    public func drain() {
        var count: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &count) { read(fd, $0.baseAddress, 8) }
    }
}
