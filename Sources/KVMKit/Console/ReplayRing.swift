/// The last `capacity` bytes of a stream, addressed by absolute stream position, so a
/// reader (the attached socket client) can be a cursor into it: it starts at
/// `oldestPosition` to replay history and falls forward (losing bytes) if it lags by more
/// than `capacity`. Loop-thread only; fixed storage, no allocation after init.
public final class ReplayRing {
    public static let defaultCapacity = 64 * 1024

    public let capacity: Int
    private let storage: UnsafeMutablePointer<UInt8>
    /// Bytes ever appended; the position one past the newest byte.
    public private(set) var endPosition: UInt64 = 0

    public init(capacity: Int = ReplayRing.defaultCapacity) {
        self.capacity = max(1, capacity)
        storage = .allocate(capacity: self.capacity)
    }

    deinit { storage.deallocate() }

    /// The position of the oldest byte still held.
    public var oldestPosition: UInt64 {
        endPosition > UInt64(capacity) ? endPosition - UInt64(capacity) : 0
    }

    public var count: Int { Int(endPosition - oldestPosition) }

    public func append(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        var source = base.assumingMemoryBound(to: UInt8.self)
        var remaining = bytes.count
        if remaining > capacity {  // only the tail can survive
            source += remaining - capacity
            endPosition += UInt64(remaining - capacity)
            remaining = capacity
        }
        while remaining > 0 {
            let at = Int(endPosition % UInt64(capacity))
            let n = min(remaining, capacity - at)
            (storage + at).update(from: source, count: n)
            source += n
            remaining -= n
            endPosition += UInt64(n)
        }
    }

    /// The held bytes from `position` (raised to `oldestPosition` if older) up to the wrap
    /// point or the end; empty when `position` is at or past the end. Valid until the next
    /// `append`.
    public func contiguousBytes(from position: UInt64) -> UnsafeRawBufferPointer {
        let start = max(position, oldestPosition)
        guard start < endPosition else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        let at = Int(start % UInt64(capacity))
        let n = min(Int(endPosition - start), capacity - at)
        return UnsafeRawBufferPointer(start: storage + at, count: n)
    }

    /// Everything held, oldest first (tests, diagnostics).
    public func contents() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var p = oldestPosition
        while p < endPosition {
            let chunk = contiguousBytes(from: p)
            out.append(contentsOf: chunk)
            p += UInt64(chunk.count)
        }
        return out
    }
}
