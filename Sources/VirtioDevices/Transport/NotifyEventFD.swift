import CKVM
import Glibc
import KVMKit

/// An eventfd that KVM signals when the guest writes a queue index to QueueNotify
/// (registered with KVM_IOEVENTFD, datamatch = queue index), and that the event loop
/// polls. Non-blocking and close-on-exec.
public final class NotifyEventFD {
    public let fd: Int32

    public init() throws {
        let r = ckvm_eventfd(0)
        if r < 0 { throw VirtioTransportError.eventfd(errno: -r) }
        fd = r
    }

    deinit { close(fd) }

    /// Signal it, as KVM does (the MMIO-exit fallback path uses this).
    public func signal() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { Glibc.write(fd, $0.baseAddress, 8) }
    }

    /// Reset the counter; returns whether it had been signalled.
    @discardableResult
    public func drain() -> Bool {
        var value: UInt64 = 0
        let n = withUnsafeMutableBytes(of: &value) { Glibc.read(fd, $0.baseAddress, 8) }
        return n == 8 && value > 0
    }
}

public enum VirtioTransportError: Error, CustomStringConvertible {
    case eventfd(errno: Int32)

    public var description: String {
        switch self {
        case .eventfd(let e): return "cannot create a queue-notify eventfd: \(errnoText(e))"
        }
    }
}
