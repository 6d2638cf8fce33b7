import KVMKit
import Synchronization

/// The device needs a reset: a request it cannot even answer.
public enum BlockDeviceError: Error, Equatable, CustomStringConvertible {
    case requestWithoutStatus(head: UInt16)
    case notActivated
    case readOnlyMismatch

    public var description: String {
        switch self {
        case .requestWithoutStatus(let h): return "block request at head \(h) has no writable status byte"
        case .notActivated: return "block queue processed before activation"
        case .readOnlyMismatch: return "the new disk image must have the same read-only mode as the one it replaces"
        }
    }
}

/// virtio-blk (§5.2): one request queue; the disk's I/O threads (`BlockIOThreads`)
/// take its notifications, parse requests into `BlockRequest` values under the
/// transport's lock, execute them against a `BlockBackend` without it, and complete
/// them through the transport. So neither the event loop nor a vCPU reading a register
/// ever waits for the disk.
public final class VirtioBlock: VirtioDevice {
    public static let queueSize: UInt16 = 256
    /// Bytes of the serial GET_ID returns (VIRTIO_BLK_ID_BYTES).
    public static let idBytes = 20

    public var backend: BlockBackend { executor.backend }
    public var serial: [UInt8] { executor.serial }
    public private(set) var limits: BlockLimits
    /// VIRTIO_BLK_F_FLUSH is offered (and a flush is an fdatasync). Without it the guest
    /// never flushes: Firecracker's "Unsafe" cache type.
    public let offersFlush: Bool
    public var metrics: BlockMetrics { executor.counters.withLock { $0 } }
    let executor: BlockRequestExecutor
    /// `--disk …,bw=,iops=` (see VirtioBlock+RateLimit).
    var limiter: RateLimiter
    let clock: () -> UInt64
    var armTimer: (UInt64) -> Void = { _ in }
    /// Set at activation; the rate limiter's timer (event loop) and `resume()` use it.
    let kick = Mutex<((Int) -> Void)?>(nil)
    private var config: [UInt8]
    private var queue: Virtqueue?
    private var memory: GuestMemory?
    /// Activations so far; a job from an older one is stale.
    private var generation: UInt64 = 0
    private let io: BlockIOThreads

    /// `ioThreads`: requests served at once (raw: pread/pwrite in parallel; qcow2: reads
    /// in parallel, metadata and writes serialised by the image's lock).
    /// `rateLimitLevels`: what the limiter had left (a restored device's); empty: full buckets.
    public init(backend: BlockBackend, serial: String, offersFlush: Bool = true, rateLimit: RateLimiterConfig = RateLimiterConfig(),
                rateLimitLevels: RateLimiterLevels = RateLimiterLevels(),
                clock: @escaping () -> UInt64 = { UInt64(monotonicNanoseconds()) }, ioThreads: Int? = nil) throws {
        self.offersFlush = offersFlush
        self.clock = clock
        limiter = RateLimiter(rateLimit, levels: rateLimitLevels, now: clock())
        var id = Array(serial.utf8.prefix(Self.idBytes))
        id += [UInt8](repeating: 0, count: Self.idBytes - id.count)
        let executor = BlockRequestExecutor(backend: backend, serial: id)
        self.executor = executor
        limits = BlockLimits(capacitySectors: backend.size / 512, readOnly: backend.isReadOnly)
        config = Self.configBytes(limits)
        io = try BlockIOThreads(threads: ioThreads ?? 4, name: serial) { executor.run($0) }
    }

    static func configBytes(_ limits: BlockLimits) -> [UInt8] {
        BlockConfig(
            capacitySectors: limits.capacitySectors,
            sizeMax: 1 << 20,
            segMax: UInt32(Self.queueSize) - 2,  // header and status take two descriptors
            maxDiscardSectors: limits.maxDiscardSectors,
            maxDiscardSegments: limits.maxDiscardSegments,
            discardSectorAlignment: 8,
            maxWriteZeroesSectors: limits.maxWriteZeroesSectors,
            maxWriteZeroesSegments: limits.maxWriteZeroesSegments
        ).bytes
    }

    /// Put a new image behind the device (Firecracker's `PATCH /drives/{id}` after start):
    /// same read-only mode; the capacity may change (the caller then raises a
    /// configuration-change interrupt). Call with the transport paused (so no request is
    /// in flight) and its lock held. The old image is closed first (qcow2 metadata written).
    public func replaceBackend(_ new: BlockBackend) throws {
        guard new.isReadOnly == limits.readOnly else { throw BlockDeviceError.readOnlyMismatch }
        try executor.backend.close()
        executor.backend = new
        limits = BlockLimits(capacitySectors: new.size / 512, readOnly: new.isReadOnly)
        config = Self.configBytes(limits)
    }

    /// Open `--disk` options: the image (raw or qcow2, with its backing chain), locked.
    public convenience init(options: DiskOptions, offersFlush: Bool = true) throws {
        try self.init(backend: try DiskImage.open(path: options.path, format: options.format, readOnly: options.readOnly),
                      serial: options.serial, offersFlush: offersFlush, rateLimit: options.rateLimit)
    }

    deinit { io.stop() }

    /// Stop the I/O threads (after finishing what they hold) and close the image (qcow2
    /// metadata written back). Call once the vCPUs are stopped, before guest memory goes.
    public func shutdown() throws {
        io.stop()
        try backend.close()
    }

    public var deviceType: UInt32 { VirtioDeviceType.block }
    public var deviceFeatures: UInt64 {
        var f = BlockFeature.sizeMax | BlockFeature.segMax | BlockFeature.blockSize
            | BlockFeature.discard | BlockFeature.writeZeroes
        if offersFlush { f |= BlockFeature.flush }
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
        kick.withLock { $0 = a.kick }
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
        queue = nil; memory = nil
        kick.withLock { $0 = nil }
        generation &+= 1
        io.reset(generation: generation)
    }

    public func process(queue index: Int) throws {
        guard index == 0, let queue, let memory else { throw BlockDeviceError.notActivated }
        if !limiterReady() { return }
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
                if !admit(request) {
                    io.unreserve()
                    queue.undoPop()  // waits for the rate limiter's timer
                    return
                }
                io.submit(BlockJob(head: chain.head, status: statusAddress, request: request, memory: memory,
                                   generation: generation))
            } catch {
                // Malformed: answered here, in this batch.
                io.unreserve()
                try memory.store(executor.failureStatus(error), at: statusAddress)
                try queue.complete(chain, length: 1)
            }
        }
    }
}

extension VirtioBlock {
    /// The transport's lock is released: start the I/O threads on what `process` queued.
    public func processed(queue: Int) { io.wakeSubmitted() }

    /// The I/O threads wait on the request queue's ioeventfd themselves: the thread a
    /// notify wakes pops the request and executes it, with no hop through the event loop.
    public func serveNotifications(queue: Int, eventFD: Int32, handler: @escaping () -> Void) throws -> Bool {
        guard queue == 0 else { return false }
        try io.serve(notifyFD: eventFD, handler: handler)
        return true
    }
}

extension VirtioBlock: Pausable {
    /// After return no request is being executed or completed (guest memory untouched)
    /// and no new one is taken, until `resume()`.
    public func pause() { io.pause() }

    public func resume() {
        io.resume()
        kick.withLock { $0 }?(0)  // requests the guest queued meanwhile
    }
}
