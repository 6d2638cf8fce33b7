import KVMKit

/// A descriptor chain taken from the available ring, walked and validated as a whole:
/// indirect tables are flattened into `buffers`, every buffer lies in guest memory,
/// readable buffers come before writable ones, and the walk is bounded by the queue size.
public struct DescriptorChain {
    /// The head index, which goes back in the used ring.
    public let head: UInt16
    /// Device-readable buffers first, then device-writable ones, in chain order.
    public let buffers: [GuestBuffer]

    public var readable: ArraySlice<GuestBuffer> { buffers.prefix { !$0.isWritable } }
    public var writable: ArraySlice<GuestBuffer> { buffers.drop { !$0.isWritable } }
    public var readableLength: UInt64 { readable.reduce(0) { $0 + UInt64($1.length) } }
    public var writableLength: UInt64 { writable.reduce(0) { $0 + UInt64($1.length) } }

    public init(head: UInt16, buffers: [GuestBuffer]) {
        self.head = head; self.buffers = buffers
    }

    /// Walk the chain starting at `head` in the descriptor table at `table` of a queue of
    /// `queueSize` entries. At most `queueSize` buffers in all (§2.7.5.3.1: a chain is
    /// never longer than the queue size, indirect or not), so a loop ends the walk.
    public static func walk(memory: GuestMemory, table: UInt64, queueSize: UInt16, head: UInt16) throws -> DescriptorChain {
        let limit = Int(queueSize)
        var buffers: [GuestBuffer] = []
        buffers.reserveCapacity(4)
        var tableAddress = table
        var tableSize = UInt32(queueSize)
        var index = head
        var inIndirect = false
        var visited = 0
        var seenWritable = false

        while true {
            guard UInt32(index) < tableSize else {
                throw VirtqueueError.descriptorIndexOutOfRange(index: index, tableSize: tableSize)
            }
            visited += 1
            // +1 allows the one indirect descriptor that points at a full-size table.
            guard visited <= limit + 1 else { throw VirtqueueError.chainTooLong(head: head, limit: limit) }
            let d: Descriptor
            do { d = try Descriptor.load(from: memory, table: tableAddress, index: UInt32(index)) }
            catch let e as GuestMemoryError { throw VirtqueueError.memory(e) }

            if d.isIndirect {
                if inIndirect { throw VirtqueueError.nestedIndirect(address: d.address) }
                if d.hasNext { throw VirtqueueError.indirectWithNext(address: d.address) }
                if d.length == 0 || d.length % UInt32(Descriptor.size) != 0 {
                    throw VirtqueueError.invalidIndirectLength(address: d.address, length: d.length)
                }
                try checkRange(memory, d)
                tableAddress = d.address
                tableSize = d.length / UInt32(Descriptor.size)
                index = 0
                inIndirect = true
                continue
            }

            if d.length == 0 { throw VirtqueueError.zeroLengthDescriptor(address: d.address) }
            try checkRange(memory, d)
            if d.isWritable { seenWritable = true }
            else if seenWritable { throw VirtqueueError.readableAfterWritable(address: d.address) }
            guard buffers.count < limit else { throw VirtqueueError.chainTooLong(head: head, limit: limit) }
            buffers.append(GuestBuffer(address: d.address, length: d.length, isWritable: d.isWritable))

            guard d.hasNext else { break }
            index = d.next
        }
        return DescriptorChain(head: head, buffers: buffers)
    }

    private static func checkRange(_ memory: GuestMemory, _ d: Descriptor) throws {
        if d.address.addingReportingOverflow(UInt64(d.length)).overflow {
            throw VirtqueueError.descriptorOverflow(address: d.address, length: d.length)
        }
        if !memory.isValid(address: d.address, length: UInt64(d.length)) {
            throw VirtqueueError.descriptorOutOfRange(address: d.address, length: d.length)
        }
    }
}
