/// The guest side of a console as the host side sees it: a byte stream in each direction.
/// A 16550 UART (its bounded output buffer and RX FIFO) or a virtio-console port adapts
/// to this. All methods are called on the event-loop thread; the device serialises
/// against its vCPU threads itself.
public protocol ConsoleGuestPort: AnyObject {
    /// Offer host input to the device; returns how many leading bytes it took (0...count).
    /// Bytes not taken stay with the host side and are offered again after `notifyFD`
    /// fires, so no keystroke is lost while the guest is slow to read.
    func enqueueInput(_ bytes: UnsafeRawBufferPointer) -> Int

    /// Move pending guest output into `buffer`; returns the byte count, 0 when empty.
    func drainOutput(into buffer: UnsafeMutableRawBufferPointer) -> Int

    /// An eventfd (or any fd that polls readable) the device signals when it has new
    /// output, and when it has room for input again after `enqueueInput` took less than
    /// it was offered. The host side reads (drains) it, then drains output and retries
    /// input, so spurious signals are harmless.
    var notifyFD: Int32 { get }
}
