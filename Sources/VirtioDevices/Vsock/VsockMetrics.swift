/// Counters of one vsock device.
public struct VsockMetrics: Equatable, Sendable {
    /// Connections the host asked for (CONNECT) and the guest asked for (REQUEST).
    public var hostConnections: UInt64 = 0
    public var guestConnections: UInt64 = 0
    /// Guest requests for a host port nobody listens on (answered with RST).
    public var refusedConnections: UInt64 = 0
    public var resets: UInt64 = 0
    public var bytesToGuest: UInt64 = 0
    public var bytesToHost: UInt64 = 0
    /// Packets from the guest that were malformed or for nothing (dropped).
    public var invalidPackets: UInt64 = 0
    /// Host clients whose CONNECT line was malformed.
    public var badHandshakes: UInt64 = 0
    /// VIRTIO_VSOCK_EVENT_TRANSPORT_RESET events posted (after a restore).
    public var transportResetEvents: UInt64 = 0
    public var lastError: String?
}

/// Bytes waiting for a host socket that could not take them yet (at most the
/// connection's buffer: the guest's credit bounds it).
struct ByteQueue {
    private var storage: [UInt8] = []
    private var start = 0

    var count: Int { storage.count - start }
    var isEmpty: Bool { count == 0 }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 && start >= storage.count / 2 {
            storage.removeFirst(start)
            start = 0
        }
        storage.append(contentsOf: bytes)
    }

    /// Hand the waiting bytes to `write`, which returns how many it took.
    mutating func drain(_ write: (UnsafeRawBufferPointer) -> Int) -> Int {
        guard !isEmpty else { return 0 }
        let n = storage.withUnsafeBytes { write(UnsafeRawBufferPointer(rebasing: $0[start...])) }
        if n > 0 { start += n }
        if isEmpty { storage.removeAll(keepingCapacity: true); start = 0 }
        return max(0, n)
    }
}
