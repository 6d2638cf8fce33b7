import KVMKit

/// Split-ring descriptor flag bits (virtio 1.2 §2.7.5).
public enum VirtqDescriptorFlag {
    /// The chain continues at `next`.
    public static let next: UInt16 = 1
    /// The buffer is device-writable (otherwise device-readable).
    public static let write: UInt16 = 2
    /// The buffer holds a table of descriptors.
    public static let indirect: UInt16 = 4
}

/// One 16-byte descriptor, copied out of guest memory before anything looks at it,
/// so a guest rewriting the table concurrently cannot change what was validated.
public struct Descriptor: Equatable {
    public static let size: UInt64 = 16

    public var address: UInt64
    public var length: UInt32
    public var flags: UInt16
    public var next: UInt16

    public init(address: UInt64, length: UInt32, flags: UInt16, next: UInt16) {
        self.address = address; self.length = length; self.flags = flags; self.next = next
    }

    /// Copy descriptor `index` of the table at `table` (bounds are the caller's check).
    static func load(from memory: GuestMemory, table: UInt64, index: UInt32) throws -> Descriptor {
        let at = table &+ UInt64(index) &* Descriptor.size
        let s = try memory.readSlice(at: at, length: Descriptor.size)
        return Descriptor(
            address: UInt64(littleEndian: s.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
            length: UInt32(littleEndian: s.loadUnaligned(fromByteOffset: 8, as: UInt32.self)),
            flags: UInt16(littleEndian: s.loadUnaligned(fromByteOffset: 12, as: UInt16.self)),
            next: UInt16(littleEndian: s.loadUnaligned(fromByteOffset: 14, as: UInt16.self)))
    }

    public var isWritable: Bool { flags & VirtqDescriptorFlag.write != 0 }
    public var hasNext: Bool { flags & VirtqDescriptorFlag.next != 0 }
    public var isIndirect: Bool { flags & VirtqDescriptorFlag.indirect != 0 }
}

/// A validated guest buffer: inside guest memory, non-empty, no overflow.
public struct GuestBuffer: Equatable {
    public var address: UInt64
    public var length: UInt32
    public var isWritable: Bool

    public init(address: UInt64, length: UInt32, isWritable: Bool) {
        self.address = address; self.length = length; self.isWritable = isWritable
    }
}
