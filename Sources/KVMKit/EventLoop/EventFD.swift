import CKVM
import Glibc

/// A Linux eventfd: a 64-bit counter that is readable while non-zero. Used to wake the
/// event loop, and by KVM as ioeventfd/irqfd. Non-blocking and close-on-exec.
public final class EventFD: @unchecked Sendable {
    public let fd: Int32

    public init(initialValue: UInt32 = 0) throws {
        let fd = eventfd(initialValue, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        if fd < 0 { throw EventLoopError.systemCall("eventfd", errno: errno, context: "create") }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Add 1 to the counter (wakes a waiter). Safe from any thread; never blocks: if the
    /// counter is saturated (EAGAIN) it is already readable, which is all a signal means.
    @inline(__always)
    public func signal() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(fd, $0.baseAddress, 8) }
    }

    /// Read and reset the counter; 0 when it was not signalled.
    @discardableResult @inline(__always)
    public func drain() -> UInt64 {
        var value: UInt64 = 0
        let n = withUnsafeMutableBytes(of: &value) { read(fd, $0.baseAddress, 8) }
        return n == 8 ? value : 0
    }
}

extension EventFD {
    /// Block until the counter is non-zero, then reset it. `timeoutMillis` < 0 waits for
    /// ever. Returns false on time-out. For threads that park (a paused vCPU), never for
    /// the event loop.
    public func wait(timeoutMillis: Int32 = -1) -> Bool {
        var deadline = timespec()
        clock_gettime(CLOCK_MONOTONIC, &deadline)
        let end = Int64(deadline.tv_sec) * 1000 + Int64(deadline.tv_nsec) / 1_000_000 + Int64(timeoutMillis)
        while true {
            if drain() != 0 { return true }
            var left = timeoutMillis
            if timeoutMillis >= 0 {
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                let ms = end - (Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000)
                if ms <= 0 { return false }
                left = Int32(clamping: ms)
            }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, left)
        }
    }
}
