/// Counters of one transport, read by the CLI's status and by tests.
public struct VirtioTransportMetrics: Equatable {
    /// Queue notifications handled (ioeventfd or MMIO write).
    public var notifications: UInt64 = 0
    /// QueueNotify writes that reached the transport as MMIO exits (with ioeventfds
    /// registered, these should stay 0).
    public var mmioNotifies: UInt64 = 0
    /// Reads or writes of a register that does not exist, is write-only/read-only,
    /// or has the wrong access width.
    public var invalidAccesses: UInt64 = 0
    /// Status writes that did not follow the §3.1.1 sequence (ignored).
    public var invalidStatusTransitions: UInt64 = 0
    /// Times the device entered DEVICE_NEEDS_RESET, and the last reason.
    public var needsReset: UInt64 = 0
    public var lastError: String?
    public var resets: UInt64 = 0
    public var activations: UInt64 = 0
}
