import KVMKit

/// Puts one received frame (header + data, in host memory) into the guest's receive
/// chains (§5.1.6.4). With VIRTIO_NET_F_MRG_RXBUF a frame spans as many chains as it
/// needs and num_buffers says how many; without it, one chain must hold it all.
enum NetReceive {
    enum Outcome: Equatable {
        /// Written and completed, in this many chains.
        case delivered(chains: Int)
        /// Not enough buffers yet; nothing was taken (the chains went back to the ring).
        case noBuffers
        /// `admit` refused (rate limit); nothing was taken.
        case refused
        /// The frame cannot be delivered; the caller drops it. Chains that were bad are
        /// completed with length 0 and counted in `badChains`.
        case dropped(NetDropReason)
    }

    /// `frame` holds header + data; its num_buffers field is filled in here.
    /// `admit` runs once the buffers are found, before anything is written.
    static func deliver(_ frame: UnsafeMutableRawBufferPointer, queue: Virtqueue, memory: GuestMemory,
                        mergeable: Bool, admit: () -> Bool) throws -> Outcome {
        var chains: [DescriptorChain] = []
        var room: UInt64 = 0
        let need = UInt64(frame.count)
        while room < need {
            if chains.count == Int(queue.size) || (!mergeable && !chains.isEmpty) {
                // Even a full ring (or one chain without MRG_RXBUF) cannot hold it.
                for _ in chains { queue.undoPop() }
                return .dropped(.receiveTooLarge)
            }
            guard let c = try queue.pop() else {
                for _ in chains { queue.undoPop() }
                return .noBuffers
            }
            // §5.1.6.3.1: receive buffers are device-writable and hold at least the header.
            if !c.readable.isEmpty || c.writableLength < UInt64(NetHeader.size) {
                for bad in chains + [c] { try queue.complete(bad, length: 0) }
                return .dropped(.receiveChainInvalid)
            }
            chains.append(c)
            room += c.writableLength
        }
        guard admit() else {
            for _ in chains { queue.undoPop() }
            return .refused
        }
        NetHeader.setNumBuffers(UInt16(chains.count), in: frame)
        var offset = 0
        for c in chains {
            let start = offset
            for b in c.writable where offset < frame.count {
                let n = min(Int(b.length), frame.count - offset)
                let dst = try memory.slice(at: b.address, length: UInt64(n))
                dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: frame[offset..<offset + n]))
                offset += n
            }
            try queue.complete(c, length: UInt32(offset - start))
        }
        return .delivered(chains: chains.count)
    }
}
