import KVMKit

/// What a device needs once the driver sets DRIVER_OK.
public struct VirtioActivation {
    /// One entry per queue the device declared; nil where the driver did not enable it.
    public let queues: [Virtqueue?]
    public let memory: GuestMemory
    public let interrupt: VirtioInterrupt
    /// The features the driver accepted (transport and device bits).
    public let features: UInt64
    /// Ask for `process(queue:)` to run again on the event loop (host-side readiness:
    /// console input arrived, output drained). Never processes in the caller's lock.
    public let kick: (Int) -> Void
    /// Complete requests from another thread (a disk's I/O thread): runs the body with
    /// the queue under the transport's lock, then decides about one interrupt. Does
    /// nothing if the queue is no longer live (the driver reset the device meanwhile).
    public let complete: (_ queue: Int, _ body: (Virtqueue) throws -> Void) -> Void
}

/// A virtio device model behind a transport. The transport serialises every call
/// (register access, activation, queue processing, `complete`) under one lock, so a
/// device holds no lock of its own for its virtio state. That lock is never held across
/// I/O that can wait: slow work goes to the device's own threads.
public protocol VirtioDevice: AnyObject {
    /// Device ID (§5): 2 block, 3 console, 4 entropy.
    var deviceType: UInt32 { get }
    /// Device-specific feature bits; the transport adds VERSION_1, EVENT_IDX, INDIRECT_DESC.
    var deviceFeatures: UInt64 { get }
    /// Maximum size of each queue; the count is the number of queues.
    var queueMaxSizes: [UInt16] { get }
    /// Read config space bytes [offset, offset+buffer.count); out of range reads as zero.
    func readConfig(offset: Int, into buffer: UnsafeMutableRawBufferPointer)
    /// Write config space bytes; devices ignore fields they do not make writable.
    func writeConfig(offset: Int, bytes: UnsafeRawBufferPointer)
    /// Start the device with the queues the driver set up.
    func activate(_ activation: VirtioActivation) throws
    /// Forget the activation: the driver wrote 0 to Status (or the transport failed it).
    func reset()
    /// Process queue `queue` after a notification (or host-side readiness, e.g. input).
    /// Throwing `VirtqueueError` makes the transport set DEVICE_NEEDS_RESET.
    func process(queue: Int) throws
    /// Called after `process(queue:)` once the transport's lock is released: wake the
    /// threads for work queued under it, so they do not at once block on that lock.
    func processed(queue: Int)
    /// Take the notifications of `queue` on the device's own threads instead of the
    /// event loop's: `eventFD` is the queue's ioeventfd, `handler` processes the queue
    /// (draining the eventfd). False: the event loop watches it.
    func serveNotifications(queue: Int, eventFD: Int32, handler: @escaping () -> Void) throws -> Bool
}

extension VirtioDevice {
    /// A device that does all its work in `process` has nothing to wake.
    public func processed(queue: Int) {}
    public func serveNotifications(queue: Int, eventFD: Int32, handler: @escaping () -> Void) throws -> Bool { false }
}

extension Virtqueue {
    /// Return a chain to the driver. The transport decides about the interrupt once per
    /// batch (after `process`), so a batch of completions costs at most one interrupt.
    public func complete(_ chain: DescriptorChain, length: UInt32) throws {
        try addUsed(head: chain.head, length: length)
    }
}
