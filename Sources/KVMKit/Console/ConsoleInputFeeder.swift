/// Host keystrokes on their way to the guest device, with backpressure: what the device
/// does not take stays here and is offered again when it signals room, and meanwhile the
/// host stops reading its input fd (so the kernel's buffers, not ours, hold the rest).
/// Nothing is dropped. Loop-thread only.
final class ConsoleInputFeeder {
    static let capacity = 4096

    private let port: ConsoleGuestPort
    private let storage = UnsafeMutablePointer<UInt8>.allocate(capacity: ConsoleInputFeeder.capacity)
    private var start = 0
    private var end = 0
    private(set) var bytesDelivered: UInt64 = 0

    init(port: ConsoleGuestPort) { self.port = port }
    deinit { storage.deallocate() }

    /// True while bytes wait for the device; the host must not read more input then.
    var isBlocked: Bool { start < end }

    /// Queue one byte (call only while not blocked, at most `capacity` per batch).
    func append(_ byte: UInt8) {
        if start == end { start = 0; end = 0 }
        guard end < Self.capacity else { return }
        storage[end] = byte
        end += 1
    }

    /// Offer queued bytes to the device; true when everything was taken.
    @discardableResult
    func flush() -> Bool {
        guard start < end else { return true }
        let taken = port.enqueueInput(UnsafeRawBufferPointer(start: storage + start, count: end - start))
        let n = max(0, min(taken, end - start))
        start += n
        bytesDelivered += UInt64(n)
        if start == end { start = 0; end = 0 }
        return start == end
    }
}
