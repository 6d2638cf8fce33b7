import KVMKit
import Synchronization

/// Executes validated requests against the backend, on the disk's I/O threads (and
/// answers malformed ones on the event loop), counting into the device's metrics. A
/// separate object so the I/O threads never reference the device itself.
final class BlockRequestExecutor: @unchecked Sendable {
    /// Replaced only while the device is paused (no job in flight).
    var backend: BlockBackend
    /// GET_ID bytes (VIRTIO_BLK_ID_BYTES, NUL-padded).
    let serial: [UInt8]
    let counters = Mutex(BlockMetrics())

    init(backend: BlockBackend, serial: [UInt8]) { self.backend = backend; self.serial = serial }

    /// The status for a request that failed, counted in the metrics.
    func failureStatus(_ error: Error) -> UInt8 {
        counters.withLock { m in
            if let e = error as? BlockRequestError {
                if e.status == BlockStatus.unsupported { m.unsupportedRequests &+= 1 } else { m.invalidRequests &+= 1 }
                m.lastError = e.description
                return e.status
            }
            m.backendErrors &+= 1
            m.lastError = "\(error)"
            return BlockStatus.ioError
        }
    }

    /// On an I/O thread: execute one job against the backend.
    func run(_ job: BlockJob) -> BlockCompletion {
        do {
            let written = try execute(job.request, memory: job.memory)
            return BlockCompletion(head: job.head, status: job.status, statusByte: BlockStatus.ok, written: written)
        } catch {
            return BlockCompletion(head: job.head, status: job.status, statusByte: failureStatus(error), written: 0)
        }
    }

    /// Run a validated request; returns the bytes written into guest buffers (not
    /// counting the status byte).
    func execute(_ request: BlockRequest, memory: GuestMemory) throws -> UInt32 {
        switch request.kind {
        case .read(let sector, let buffers):
            var offset = sector * 512
            for b in buffers {
                // Marked device-written after the data lands (snapshots, migration).
                try memory.withMutableSlice(at: b.address, length: UInt64(b.length)) { try backend.read(into: $0, at: offset) }
                offset += UInt64(b.length)
            }
            let n = offset - sector * 512
            counters.withLock { $0.reads &+= 1; $0.bytesRead &+= n }
            return UInt32(truncatingIfNeeded: n)
        case .write(let sector, let buffers):
            var offset = sector * 512
            for b in buffers {
                try backend.write(from: try memory.readSlice(at: b.address, length: UInt64(b.length)), at: offset)
                offset += UInt64(b.length)
            }
            let n = offset - sector * 512
            counters.withLock { $0.writes &+= 1; $0.bytesWritten &+= n }
            return 0
        case .flush:
            try backend.flush()
            counters.withLock { $0.flushes &+= 1 }
            return 0
        case .getID(let buffers):
            var left = serial[...]
            var n: UInt32 = 0
            for b in buffers where !left.isEmpty {
                let chunk = left.prefix(Int(b.length))
                try memory.write(at: b.address, bytes: Array(chunk))
                left = left.dropFirst(chunk.count)
                n += UInt32(chunk.count)
            }
            counters.withLock { $0.getIDs &+= 1 }
            return n
        case .discard(let ranges):
            for r in ranges { try backend.discard(offset: r.sector * 512, length: UInt64(r.sectors) * 512) }
            counters.withLock { $0.discards &+= 1 }
            return 0
        case .writeZeroes(let ranges):
            for r in ranges { try backend.writeZeroes(offset: r.sector * 512, length: UInt64(r.sectors) * 512, mayUnmap: r.unmap) }
            counters.withLock { $0.writeZeroes &+= 1 }
            return 0
        }
    }
}
