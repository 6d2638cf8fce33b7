import KVMKit

/// virtio-net's own state: what the guest sees in config space (MAC, MTU, link). The
/// queues are the transport's; a frame read from the tap and not yet delivered is
/// dropped (it is a network), and the rate limiters start with full buckets from the
/// saved configuration, as a new process's would.
public struct VirtioNetState: Equatable, Sendable, StateCodable {
    public var mac: MACAddress
    public var mtu: UInt16
    public var linkUp: Bool

    public func encode(to w: inout StateWriter) { w.write(bytes: mac.bytes); w.write(mtu); w.write(linkUp) }
    public init(from r: inout StateReader) throws {
        let b = try r.readBytes("net MAC", limit: 6)
        guard b.count == 6 else { throw StateDecodingError.invalid(context: "\(r.context) net MAC", detail: "\(b.count) bytes") }
        mac = MACAddress(bytes: b)
        mtu = try r.read(UInt16.self, "net MTU")
        linkUp = try r.readBool("net link up")
    }
    public init(mac: MACAddress, mtu: UInt16, linkUp: Bool) { self.mac = mac; self.mtu = mtu; self.linkUp = linkUp }
}

extension VirtioNet: Snapshottable {
    /// Call while paused (no batch runs).
    public func captureState() -> VirtioNetState {
        activity.withLock { _ in VirtioNetState(mac: mac, mtu: mtu, linkUp: linkUp) }
    }

    /// A net device on `backend` (the tap re-opened by name) with the saved MAC, MTU
    /// and link state.
    public convenience init(state: VirtioNetState, backend: NetBackend, rxLimit: RateLimiterConfig = RateLimiterConfig(),
                            txLimit: RateLimiterConfig = RateLimiterConfig(), report: @escaping (String) -> Void = { _ in }) {
        self.init(backend: backend, mac: state.mac, mtu: state.mtu, rxLimit: rxLimit, txLimit: txLimit, report: report)
        linkUp = state.linkUp
    }
}
