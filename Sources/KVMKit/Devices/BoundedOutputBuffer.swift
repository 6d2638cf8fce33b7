import Glibc

/// A fixed-size byte ring between a UART (producer, on vCPU threads) and a console thread
/// (consumer) that writes to a terminal, file or socket at its own pace.
///
/// The producer never waits: when the ring is full, bytes are dropped by the overflow
/// policy and counted in `droppedBytes`. The consumer is woken through `wakeup` when the
/// ring goes from empty to non-empty — typically an eventfd's `signal()`, or pass the
/// descriptor with `init(capacity:overflow:wakeupFileDescriptor:)`. After a wake-up the
/// consumer clears its eventfd *first* and then calls `read(into:)` until it returns 0;
/// if it stops early (its terminal is full), it must come back on its own (POLLOUT),
/// because no further wake-up arrives while the ring is non-empty.
public final class BoundedOutputBuffer: SerialOutput, @unchecked Sendable {
    /// What to give up when a byte arrives and the ring is full.
    public enum OverflowPolicy: Sendable {
        /// Overwrite the oldest byte: the consumer sees the latest output (a prompt, a
        /// panic message), with a gap where the dropped bytes were.
        case dropOldest
        /// Refuse the new byte: the consumer sees the oldest output.
        case dropNewest
    }

    /// Default capacity, 64 KiB.
    public static let defaultCapacity = 64 * 1024

    public let capacity: Int
    public let overflowPolicy: OverflowPolicy

    private let lock = Lock()
    private let storage: UnsafeMutablePointer<UInt8>
    private var head = 0  // index of the oldest byte
    private var used = 0
    private var dropped: UInt64 = 0
    private let wakeup: () -> Void

    /// `capacity` below 1 is raised to 1. `wakeup` is called on the producer's thread after
    /// a byte made the ring non-empty; it must not block (an eventfd write is right).
    public init(capacity: Int = BoundedOutputBuffer.defaultCapacity,
                overflow: OverflowPolicy = .dropOldest,
                wakeup: @escaping () -> Void) {
        self.capacity = max(1, capacity)
        self.overflowPolicy = overflow
        self.wakeup = wakeup
        storage = UnsafeMutablePointer<UInt8>.allocate(capacity: self.capacity)
    }

    /// Wakes the consumer by writing an 8-byte 1 to `fd` (an eventfd opened with
    /// EFD_NONBLOCK; a saturated counter is already readable, so a failed write is fine).
    /// The descriptor stays owned by the caller and must outlive the buffer.
    public convenience init(capacity: Int = BoundedOutputBuffer.defaultCapacity,
                            overflow: OverflowPolicy = .dropOldest,
                            wakeupFileDescriptor fd: Int32) {
        self.init(capacity: capacity, overflow: overflow) {
            var one: UInt64 = 1
            _ = withUnsafeBytes(of: &one) { Glibc.write(fd, $0.baseAddress, 8) }
        }
    }

    deinit { storage.deallocate() }

    /// Appends one byte; never blocks. The consumer is woken after the lock is released:
    /// woken inside it, the consumer's first `read` found the lock still held by the
    /// eventfd write, slept on it, and the unlock then had to wake it through the kernel
    /// (perf: 3 % of a probe boot's samples, the vCPU thread in futex wake-ups).
    public func write(_ byte: UInt8) {
        let becameNonEmpty = lock.withLock { () -> Bool in
            if used == capacity {
                dropped &+= 1
                switch overflowPolicy {
                case .dropNewest:
                    return false
                case .dropOldest:
                    storage[head] = byte  // the slot of the oldest byte becomes the newest
                    head = (head + 1) % capacity
                    return false
                }
            }
            storage[(head + used) % capacity] = byte
            used += 1
            return used == 1
        }
        // A read between the unlock and this call only makes the wake-up a spurious one.
        if becameNonEmpty { wakeup() }
    }

    /// Appends bytes; never blocks.
    public func write<Bytes: Sequence>(contentsOf bytes: Bytes) where Bytes.Element == UInt8 {
        for byte in bytes { write(byte) }
    }

    /// Moves up to `buffer.count` of the oldest bytes into `buffer`; returns how many.
    public func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard let destination = buffer.baseAddress, buffer.count > 0 else { return 0 }
        return lock.withLock {
            let n = min(used, buffer.count)
            let firstRun = min(n, capacity - head)
            destination.copyMemory(from: storage + head, byteCount: firstRun)
            if n > firstRun {
                (destination + firstRun).copyMemory(from: storage, byteCount: n - firstRun)
            }
            head = (head + n) % capacity
            used -= n
            if used == 0 { head = 0 }
            return n
        }
    }

    /// Moves out everything buffered (convenience for tests and shutdown).
    public func readAll() -> [UInt8] {
        let n = count
        guard n > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: n)
        let got = bytes.withUnsafeMutableBytes { read(into: $0) }
        bytes.removeLast(n - got)
        return bytes
    }

    /// A copy of the bytes waiting, oldest first, left in place (snapshots).
    public func peekAll() -> [UInt8] {
        lock.withLock { (0..<used).map { storage[(head + $0) % capacity] } }
    }

    /// Bytes waiting for the consumer.
    public var count: Int { lock.withLock { used } }

    /// Bytes given up to the overflow policy since creation.
    public var droppedBytes: UInt64 { lock.withLock { dropped } }
}
