import KVMKit

/// virtio-vsock's own state: the guest's CID and the host socket path. Host-side
/// connections cannot outlive the process, so none are saved: a restored device starts
/// with none and tells the guest so (a transport-reset event). The event queue's
/// position is the transport's.
public struct VirtioVsockState: Equatable, Sendable, StateCodable {
    public var guestCID: UInt64
    public var udsPath: String

    public func encode(to w: inout StateWriter) { w.write(guestCID); w.write(udsPath) }
    public init(from r: inout StateReader) throws {
        guestCID = try r.read(UInt64.self, "vsock CID")
        udsPath = try r.readString("vsock socket path")
    }
    public init(guestCID: UInt64, udsPath: String) { self.guestCID = guestCID; self.udsPath = udsPath }
}

extension VirtioVsock: Snapshottable {
    public func captureState() -> VirtioVsockState { VirtioVsockState(guestCID: guestCID, udsPath: udsPath) }

    /// A device for `options` (the saved configuration's), which must be the one the
    /// state was saved from; it owes the guest a transport reset.
    public convenience init(state: VirtioVsockState, options: VsockOptions) throws {
        guard state.guestCID == options.cid, state.udsPath == options.udsPath else {
            throw VirtioStateError.deviceMismatch("vsock cid \(options.cid) at \(options.udsPath), the snapshot's was cid \(state.guestCID) at \(state.udsPath)")
        }
        try self.init(options: options)
        transportResetPending = true
    }
}
