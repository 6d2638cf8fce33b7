import KVMKit

/// What a driver did wrong in a virtqueue. Every case names the guest address or index
/// involved. All of them are driver violations of a MUST in virtio 1.2 §2.7, so the
/// transport answers them with DEVICE_NEEDS_RESET (see `VirtioMMIOTransport`).
public enum VirtqueueError: Error, Equatable, CustomStringConvertible {
    /// Queue size zero, not a power of two, or above the device's maximum.
    case invalidSize(UInt16, max: UInt16)
    /// A ring (descriptor table, available or used ring) is not inside guest memory.
    case ringOutOfRange(ring: String, address: UInt64, length: UInt64)
    /// A ring's address does not have the alignment §2.7 requires.
    case ringMisaligned(ring: String, address: UInt64, alignment: UInt64)
    /// The available index moved ahead of the device by more than the queue size.
    case availIndexJump(seen: UInt16, next: UInt16, size: UInt16)
    /// A head or next index points outside the descriptor table it belongs to.
    case descriptorIndexOutOfRange(index: UInt16, tableSize: UInt32)
    /// The chain has more descriptors than the queue size (a loop, or simply too long).
    case chainTooLong(head: UInt16, limit: Int)
    /// An indirect descriptor inside an indirect table.
    case nestedIndirect(address: UInt64)
    /// An indirect descriptor that also has NEXT set.
    case indirectWithNext(address: UInt64)
    /// An indirect table whose length is zero or not a multiple of 16 bytes.
    case invalidIndirectLength(address: UInt64, length: UInt32)
    /// A buffer descriptor of length zero.
    case zeroLengthDescriptor(address: UInt64)
    /// address + length wraps around 64 bits.
    case descriptorOverflow(address: UInt64, length: UInt32)
    /// A buffer (or indirect table) outside guest memory.
    case descriptorOutOfRange(address: UInt64, length: UInt32)
    /// A device-readable descriptor after a device-writable one (§2.7.4.2).
    case readableAfterWritable(address: UInt64)
    /// A ring access failed although the ring was validated (memory changed under us).
    case memory(GuestMemoryError)

    public var description: String {
        switch self {
        case .invalidSize(let s, let m): return "queue size \(s) is not a power of two in 1...\(m)"
        case .ringOutOfRange(let r, let a, let l): return "\(r) at \(hex(a))+\(hex(l)) is outside guest memory"
        case .ringMisaligned(let r, let a, let al): return "\(r) at \(hex(a)) is not \(al)-byte aligned"
        case .availIndexJump(let seen, let next, let s):
            return "available index \(seen) is more than the queue size \(s) ahead of \(next)"
        case .descriptorIndexOutOfRange(let i, let n): return "descriptor index \(i) is outside a table of \(n)"
        case .chainTooLong(let h, let l): return "descriptor chain at head \(h) is longer than \(l) (loop?)"
        case .nestedIndirect(let a): return "indirect descriptor at \(hex(a)) inside an indirect table"
        case .indirectWithNext(let a): return "indirect descriptor at \(hex(a)) also has NEXT set"
        case .invalidIndirectLength(let a, let l): return "indirect table at \(hex(a)) has length \(l), not a non-zero multiple of 16"
        case .zeroLengthDescriptor(let a): return "descriptor at \(hex(a)) has length 0"
        case .descriptorOverflow(let a, let l): return "descriptor \(hex(a))+\(hex(l)) overflows the address space"
        case .descriptorOutOfRange(let a, let l): return "descriptor \(hex(a))+\(hex(l)) is outside guest memory"
        case .readableAfterWritable(let a): return "device-readable descriptor at \(hex(a)) follows a device-writable one"
        case .memory(let e): return "virtqueue ring access failed: \(e)"
        }
    }
}

@inline(__always) func hex<T: BinaryInteger>(_ v: T) -> String { "0x" + String(v, radix: 16) }
