/// A decoded KVM exit. I/O and MMIO payloads point into the vCPU's `kvm_run` page and are
/// valid only until the next `run()`; fill `data` of an `in` or `mmioRead` before that.
public enum VMExit {
    /// Port read: write `size * count` bytes into `data`.
    case ioIn(port: UInt16, size: Int, count: Int, data: UnsafeMutableRawBufferPointer)
    /// Port write of `size * count` bytes (count > 1 for `rep outs`).
    case ioOut(port: UInt16, size: Int, count: Int, data: UnsafeRawBufferPointer)
    /// MMIO read: write `size` bytes into `data`.
    case mmioRead(address: UInt64, size: Int, data: UnsafeMutableRawBufferPointer)
    case mmioWrite(address: UInt64, size: Int, data: UnsafeRawBufferPointer)
    /// HLT with the interrupt controller in userspace.
    case halt
    /// Triple fault or other shutdown condition.
    case shutdown
    /// KVM could not handle something (suberror 1 = instruction emulation failed).
    case internalError(suberror: UInt32, data: [UInt64])
    /// VM entry failed; `reason` is the hardware reason code.
    case failEntry(reason: UInt64, cpu: UInt32)
    /// Reset, shutdown or crash reported through KVM_SYSTEM_EVENT.
    case systemEvent(type: UInt32, flags: [UInt64])
    /// KVM_RUN returned EINTR: a signal or `immediate_exit` asked the thread to look up.
    case interrupted
    case debug
    case irqWindowOpen
    case other(reason: UInt32)
}

extension VMExit {
    /// The little-endian value of a single `out`, or of an MMIO write (0 otherwise).
    public var writtenValue: UInt64 {
        switch self {
        case .ioOut(_, _, _, let d), .mmioWrite(_, _, let d):
            var v: UInt64 = 0
            for (i, b) in d.prefix(8).enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
            return v
        default: return 0
        }
    }
}

/// Store the low `data.count` bytes of `value`, little-endian, into an exit's data area.
@inline(__always)
public func storeLittleEndian(_ value: UInt64, into data: UnsafeMutableRawBufferPointer) {
    var v = value
    for i in 0..<data.count {
        data[i] = UInt8(truncatingIfNeeded: v)
        v >>= 8
    }
}
