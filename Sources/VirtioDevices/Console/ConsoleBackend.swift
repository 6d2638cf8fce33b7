/// The host side of a console as the virtio console sees it. Meant to be backed by the
/// same plumbing as the serial console (a bounded, thread-safe output buffer drained by
/// the terminal, and an input buffer filled from stdin); see the adapter note in the
/// report. Both calls are made on the device's event-loop thread and must not block.
///
/// Wake-ups the host side owes the transport (through `VirtioMMIOTransport.handleNotify`):
///   - queue 0 (receiveq) when input arrives, so it moves into the guest's buffers;
///   - queue 1 (transmitq) when output space frees up after `writeOutput` took less
///     than it was offered.
public protocol ConsoleBackend: AnyObject {
    /// Take guest output; returns how many bytes were accepted (fewer when full).
    func writeOutput(_ bytes: UnsafeRawBufferPointer) -> Int
    /// Copy pending input into `buffer`; returns the byte count, 0 if there is none.
    /// Input the guest has no buffers for stays with the host: that is the backpressure.
    func readInput(into buffer: UnsafeMutableRawBufferPointer) -> Int
    /// Whether `readInput` would return something.
    var hasInput: Bool { get }
}
