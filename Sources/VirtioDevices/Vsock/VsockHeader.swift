/// struct virtio_vsock_hdr (virtio 1.2 §5.10.6), 44 bytes, little-endian, in front of
/// every packet both ways.
public struct VsockHeader: Equatable, Sendable {
    public static let size = 44
    /// The host's CID (VMADDR_CID_HOST).
    public static let hostCID: UInt64 = 2
    public static let typeStream: UInt16 = 1

    public enum Op: UInt16, Sendable {
        case request = 1, response = 2, reset = 3, shutdown = 4, rw = 5, creditUpdate = 6, creditRequest = 7
    }
    /// SHUTDOWN flags: the sender will receive (1) / send (2) no more.
    public static let shutdownReceive: UInt32 = 1
    public static let shutdownSend: UInt32 = 2
    public static let shutdownBoth: UInt32 = 3

    public var srcCID: UInt64
    public var dstCID: UInt64
    public var srcPort: UInt32
    public var dstPort: UInt32
    public var length: UInt32
    public var type: UInt16
    public var op: UInt16
    public var flags: UInt32
    public var bufAlloc: UInt32
    public var fwdCnt: UInt32

    public init(srcCID: UInt64, dstCID: UInt64, srcPort: UInt32, dstPort: UInt32, length: UInt32 = 0,
                type: UInt16 = VsockHeader.typeStream, op: Op, flags: UInt32 = 0, bufAlloc: UInt32 = 0, fwdCnt: UInt32 = 0) {
        self.srcCID = srcCID; self.dstCID = dstCID; self.srcPort = srcPort; self.dstPort = dstPort
        self.length = length; self.type = type; self.op = op.rawValue; self.flags = flags
        self.bufAlloc = bufAlloc; self.fwdCnt = fwdCnt
    }

    /// Decode 44 bytes (any more are ignored); nil when fewer.
    public init?(bytes b: UnsafeRawBufferPointer) {
        guard b.count >= Self.size else { return nil }
        func u<T: FixedWidthInteger>(_: T.Type, _ at: Int) -> T {
            var v: T = 0
            for i in 0..<MemoryLayout<T>.size { v |= T(b[at + i]) << (8 * i) }
            return v
        }
        srcCID = u(UInt64.self, 0); dstCID = u(UInt64.self, 8)
        srcPort = u(UInt32.self, 16); dstPort = u(UInt32.self, 20); length = u(UInt32.self, 24)
        type = u(UInt16.self, 28); op = u(UInt16.self, 30); flags = u(UInt32.self, 32)
        bufAlloc = u(UInt32.self, 36); fwdCnt = u(UInt32.self, 40)
    }

    public var bytes: [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.size)
        func put<T: FixedWidthInteger>(_ v: T, _ at: Int) {
            for i in 0..<MemoryLayout<T>.size { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
        }
        put(srcCID, 0); put(dstCID, 8); put(srcPort, 16); put(dstPort, 20); put(length, 24)
        put(type, 28); put(op, 30); put(flags, 32); put(bufAlloc, 36); put(fwdCnt, 40)
        return b
    }

    public var knownOp: Op? { Op(rawValue: op) }
}
