import KVMKit

/// Where a virtio-net device's frames go: a tap, or a fake in tests. Every frame carries
/// the 12-byte virtio_net_hdr_v1 in front, both ways. Non-blocking.
public protocol NetBackend: AnyObject {
    /// The fd the event loop watches for readability, or -1.
    var pollFD: Int32 { get }
    /// Read one frame (header included) into `buffer`; nil when none is waiting.
    func receive(into buffer: UnsafeMutableRawBufferPointer) throws(NetBackendError) -> Int?
    /// Send one frame given as pieces (header included); false when the backend cannot
    /// take it now (try again later).
    func send(_ pieces: UnsafeBufferPointer<UnsafeRawBufferPointer>) throws(NetBackendError) -> Bool
    /// Which offloads (TUN_F_* bits) the guest accepted on receive.
    func setOffloads(_ flags: UInt32) throws(NetBackendError)
    /// Live migration (device paused): let go of the host device so another process on
    /// this host can attach it; `takeBack()` attaches again (the migration failed).
    func handOver() throws(NetBackendError)
    func takeBack() throws(NetBackendError)
}

extension NetBackend {
    /// A backend that holds nothing exclusive (the tests' fake) has nothing to hand over.
    public func handOver() throws(NetBackendError) {}
    public func takeBack() throws(NetBackendError) {}
}

public enum NetBackendError: Error, Equatable, CustomStringConvertible {
    /// /dev/net/tun could not be opened.
    case openTun(errno: Int32)
    /// The tap does not exist and this process may not create it.
    case missing(name: String)
    /// Another process holds the (single-queue) tap.
    case busy(name: String)
    case notPermitted(name: String)
    case invalidName(String)
    case setup(name: String, operation: String, errno: Int32)
    /// A read or write failed for a reason other than "try again".
    case io(name: String, operation: String, errno: Int32)
    /// The tap is gone (deleted while attached).
    case gone(name: String)

    public var description: String {
        switch self {
        case .openTun(let e): return "cannot open /dev/net/tun: \(errnoText(e))"
        case .missing(let n): return "tap \(n) does not exist and cannot be created here (creating a tap needs CAP_NET_ADMIN)"
        case .busy(let n): return "tap \(n) is in use by another process"
        case .notPermitted(let n): return "tap \(n): not permitted (the tap belongs to another user, or CAP_NET_ADMIN is missing)"
        case .invalidName(let n): return "tap name '\(n)' must be 1 to 15 characters without '/', ':' or spaces"
        case .setup(let n, let op, let e): return "tap \(n): \(op) failed: \(errnoText(e))"
        case .io(let n, let op, let e): return "tap \(n): \(op) failed: \(errnoText(e))"
        case .gone(let n): return "tap \(n) is gone"
        }
    }
}
