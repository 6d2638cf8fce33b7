/// Where a UART's transmitted bytes go.
///
/// `write` is called on a vCPU thread with the UART's lock held, once per byte the guest
/// writes to THR, so an implementation must return promptly, never wait for a terminal,
/// socket or file, and never call back into the UART. `BoundedOutputBuffer` is the usual
/// choice; it hands the bytes to a console thread.
public protocol SerialOutput: AnyObject {
    func write(_ byte: UInt8)
}

/// Discards every byte (`--serial none`).
public final class NullSerialOutput: SerialOutput, @unchecked Sendable {
    public init() {}
    public func write(_ byte: UInt8) {}
}
