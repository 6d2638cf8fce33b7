import KVMKit

/// A transmit chain (§5.1.6.2) checked and mapped: header + frame as host slices of
/// guest memory, handed to the backend without a copy.
enum NetTransmit {
    /// The chain's buffers as slices, or why the chain is dropped.
    static func pieces(of chain: DescriptorChain, memory: GuestMemory) throws -> Result<[UnsafeRawBufferPointer], NetDropReason> {
        if !chain.writable.isEmpty { return .failure(.transmitWritable) }
        let length = chain.readableLength
        if length < UInt64(NetHeader.size + NetHeader.minFrame) { return .failure(.transmitTooShort) }
        if length > UInt64(NetHeader.size + NetHeader.maxFrame) { return .failure(.transmitTooLarge) }
        return .success(try chain.readable.map { UnsafeRawBufferPointer(try memory.slice(at: $0.address, length: UInt64($0.length))) })
    }
}
