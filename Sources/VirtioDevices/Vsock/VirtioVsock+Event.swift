import KVMKit

/// The event queue (§5.10.6.8): a restored device's host connections are gone, so the
/// guest is told VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (as Firecracker does after a
/// snapshot restore) and drops every connection it had. The event waits for a buffer
/// the driver made available; the transport interrupts for the used one.
extension VirtioVsock {
    static let transportResetEventID: UInt32 = 0

    func postTransportReset() throws {
        guard transportResetPending, let queue = eventQueue, let memory else { return }
        guard let chain = try queue.pop() else { return }
        // struct virtio_vsock_event { le32 id; } in the first writable buffer.
        guard let b = chain.writable.first, b.length >= 4 else {
            metricsValue.invalidPackets &+= 1
            return try queue.complete(chain, length: 0)
        }
        try memory.store(Self.transportResetEventID, at: b.address)
        try queue.complete(chain, length: 4)
        transportResetPending = false
        metricsValue.transportResetEvents &+= 1
    }
}
