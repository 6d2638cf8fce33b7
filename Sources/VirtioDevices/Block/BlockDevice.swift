import KVMKit
import Synchronization

/// The device needs a reset: a request it cannot even answer.
public enum BlockDeviceError: Error, Equatable, CustomStringConvertible {
    case requestWithoutStatus(head: UInt16)
    case notActivated

    public var description: String {
        switch self {
        case .requestWithoutStatus(let h): return "block request at head \(h) has no writable status byte"
        case .notActivated: return "block queue processed before activation"
        }
    }
}

/// virtio-blk (§5.2): one request queue; requests are parsed into `BlockRequest`
/// values on the event-loop thread, then executed against a `BlockBackend` by the
/// disk's I/O threads (`BlockIOThreads`), which complete them through the transport.
/// So neither the event loop nor a vCPU reading a register ever waits for the disk.
public final class VirtioBlock: VirtioDevice {
    public static let queueSize: UInt16 = 256
    /// Bytes of the serial GET_ID returns (VIRTIO_BLK_ID_BYTES).
    public static let idBytes = 20

    public let backend: BlockBackend
    public let serial: [UInt8]
    public let limits: BlockLimits
    public var metrics: BlockMetrics { counters.withLock { $0 } }
    private let counters = Mutex(BlockMetrics())
    private let config: [UInt8]
    private var queue: Virtqueue?
    private var memory: GuestMemory?
    private var kick: ((Int) -> Void)?
    /// Activations so far; a job from an older one is stale.
    private var generation: UInt64 = 0
    private var io: BlockIOThreads!

    /// `ioThreads`: requests served at once. A qcow2 image serialises its operations, so
    /// it gets one thread; a raw file or device gets several (pread/pwrite in parallel).
    public init(backend: BlockBackend, serial: String, ioThreads: Int? = nil) throws {
        self.backend = backend
        var id = Array(serial.utf8.prefix(Self.idBytes))
        id += [UInt8](repeating: 0, count: Self.idBytes - id.count)
        self.serial = id
        limits = BlockLimits(capacitySectors: backend.size / 512, readOnly: backend.isReadOnly)
        config = BlockConfig(
            capacitySectors: limits.capacitySectors,
            sizeMax: 1 << 20,
            segMax: UInt32(Self.queueSize) - 2,  // header and status take two descriptors
            maxDiscardSectors: limits.maxDiscardSectors,
            maxDiscardSegments: limits.maxDiscardSegments,
            discardSectorAlignment: 8,
            maxWriteZeroesSectors: limits.maxWriteZeroesSectors,
            maxWriteZeroesSegments: limits.maxWriteZeroesSegments
        ).bytes
        io = try BlockIOThreads(threads: ioThreads ?? (backend is Qcow2Image ? 1 : 4), name: serial) { [unowned self] job in
            self.run(job)
        }
    }

    /// Open `--disk` options: the image (raw or qcow2, with its backing chain), locked.
    public convenience init(options: DiskOptions) throws {
        try self.init(backend: try DiskImage.open(path: options.path, format: options.format, readOnly: options.readOnly),
                      serial: options.serial)
    }

    deinit { io.stop() }

    /// Stop the I/O threads (after finishing what they hold) and close the image (qcow2
    /// metadata written back). Call once the vCPUs are stopped, before guest memory goes.
    public func shutdown() throws {
        io.stop()
        try backend.close()
    }

    /// After return no request is being executed or completed (guest memory untouched)
    /// and no new one is taken, until `resume()`.
    public func pause() { io.pause() }

    public func resume() {
        io.resume()
        kick?(0)  // requests the guest queued meanwhile
    }

    public var deviceType: UInt32 { VirtioDeviceType.block }
    public var deviceFeatures: UInt64 {
        var f = BlockFeature.sizeMax | BlockFeature.segMax | BlockFeature.blockSize | BlockFeature.flush
            | BlockFeature.discard | BlockFeature.writeZeroes
        if backend.isReadOnly { f |= BlockFeature.readOnly }
        return f
    }
    public var queueMaxSizes: [UInt16] { [Self.queueSize] }

    public func readConfig(offset: Int, into buffer: UnsafeMutableRawBufferPointer) {
        for i in 0..<buffer.count { buffer[i] = offset + i < config.count ? config[offset + i] : 0 }
    }

    public func writeConfig(offset: Int, bytes: UnsafeRawBufferPointer) {}  // nothing writable (no CONFIG_WCE)

    public func activate(_ a: VirtioActivation) throws {
        queue = a.queues.first ?? nil
        memory = a.memory
        kick = a.kick
        generation &+= 1
        let complete = a.complete
        io.activate(generation: generation) { batch in
            complete(0) { queue in
                for c in batch {
                    try a.memory.store(c.statusByte, at: c.status)
                    try queue.addUsed(head: c.head, length: c.written &+ 1)
                }
            }
        }
    }

    public func reset() {
        queue = nil; memory = nil; kick = nil
        generation &+= 1
        io.reset(generation: generation)
    }

    public func process(queue index: Int) throws {
        guard index == 0, let queue, let memory else { throw BlockDeviceError.notActivated }
        while io.reserve() {
            let chain: DescriptorChain
            do {
                guard let c = try queue.pop() else { io.unreserve(); return }
                chain = c
            } catch {
                io.unreserve()
                throw error
            }
            guard let statusAddress = BlockRequest.statusAddress(of: chain) else {
                io.unreserve()
                throw BlockDeviceError.requestWithoutStatus(head: chain.head)
            }
            do {
                let request = try BlockRequest.parse(chain, memory: memory, limits: limits)
                io.submit(BlockJob(head: chain.head, status: statusAddress, request: request, memory: memory,
                                   sequence: io.sequence(), generation: generation))
            } catch {
                // Malformed: answered here, in this batch.
                io.unreserve()
                try memory.store(failureStatus(error), at: statusAddress)
                try queue.complete(chain, length: 1)
            }
        }
    }

    /// The status for a request that failed, counted in the metrics.
    private func failureStatus(_ error: Error) -> UInt8 {
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
    private func run(_ job: BlockJob) -> BlockCompletion {
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
                try backend.read(into: try memory.slice(at: b.address, length: UInt64(b.length)), at: offset)
                offset += UInt64(b.length)
            }
            let n = offset - sector * 512
            counters.withLock { $0.reads &+= 1; $0.bytesRead &+= n }
            return UInt32(truncatingIfNeeded: n)
        case .write(let sector, let buffers):
            var offset = sector * 512
            for b in buffers {
                try backend.write(from: UnsafeRawBufferPointer(try memory.slice(at: b.address, length: UInt64(b.length))), at: offset)
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
