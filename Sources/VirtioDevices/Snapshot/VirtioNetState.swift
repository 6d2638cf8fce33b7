import KVMKit

/// virtio-net's own state: what the guest sees in config space (MAC, MTU, link) and
/// what each direction's rate limiter had left. The queues are the transport's; a frame
/// read from the tap and not yet delivered is dropped (it is a network).
public struct VirtioNetState: Equatable, Sendable, StateCodable {
    public var mac: MACAddress
    public var mtu: UInt16
    public var linkUp: Bool
    public var rxLimit: RateLimiterLevels
    public var txLimit: RateLimiterLevels

    public func encode(to w: inout StateWriter) {
        w.write(bytes: mac.bytes); w.write(mtu); w.write(linkUp)
        w.write(rxLimit); w.write(txLimit)
    }
    public init(from r: inout StateReader) throws {
        let b = try r.readBytes("net MAC", limit: 6)
        guard b.count == 6 else { throw StateDecodingError.invalid(context: "\(r.context) net MAC", detail: "\(b.count) bytes") }
        mac = MACAddress(bytes: b)
        mtu = try r.read(UInt16.self, "net MTU")
        linkUp = try r.readBool("net link up")
        // Appended later: a state that ends here was saved before the levels were.
        let levels = r.remaining > 0
        rxLimit = try levels ? r.read(RateLimiterLevels.self) : RateLimiterLevels()
        txLimit = try levels ? r.read(RateLimiterLevels.self) : RateLimiterLevels()
    }
    public init(mac: MACAddress, mtu: UInt16, linkUp: Bool, rxLimit: RateLimiterLevels = RateLimiterLevels(),
                txLimit: RateLimiterLevels = RateLimiterLevels()) {
        self.mac = mac; self.mtu = mtu; self.linkUp = linkUp; self.rxLimit = rxLimit; self.txLimit = txLimit
    }
}

extension VirtioNet: Snapshottable {
    /// Call while paused (no batch runs).
    public func captureState() -> VirtioNetState {
        activity.withLock { _ in
            let now = clock()
            return VirtioNetState(mac: mac, mtu: mtu, linkUp: linkUp, rxLimit: rxLimiter.levels(now: now), txLimit: txLimiter.levels(now: now))
        }
    }

    /// A net device on `backend` (the tap re-opened by name) with the saved MAC, MTU
    /// and link state, limited by `rxLimit`/`txLimit` (the saved configuration's) from
    /// the saved levels.
    public convenience init(state: VirtioNetState, backend: NetBackend, rxLimit: RateLimiterConfig = RateLimiterConfig(),
                            txLimit: RateLimiterConfig = RateLimiterConfig(), report: @escaping (String) -> Void = { _ in }) {
        self.init(backend: backend, mac: state.mac, mtu: state.mtu, rxLimit: rxLimit, txLimit: txLimit,
                  rxLevels: state.rxLimit, txLevels: state.txLimit, report: report)
        linkUp = state.linkUp
    }
}
