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

/// virtio-blk (§5.2): one request queue; requests are parsed into `BlockRequest`
/// values first, then executed against a `BlockBackend`.
public final class VirtioBlock: VirtioDevice {
    public static let queueSize: UInt16 = 256
    /// Bytes of the serial GET_ID returns (VIRTIO_BLK_ID_BYTES).
    public static let idBytes = 20

    public private(set) var backend: BlockBackend
    public let serial: [UInt8]
    public private(set) var limits: BlockLimits
    /// VIRTIO_BLK_F_FLUSH is offered (and a flush is an fdatasync). Without it the guest
    /// never flushes: Firecracker's "Unsafe" cache type.
    public let offersFlush: Bool
    public internal(set) var metrics = BlockMetrics()
    /// `--disk …,bw=,iops=` (see VirtioBlock+RateLimit).
    var limiter: RateLimiter
    let clock: () -> UInt64
    var armTimer: (UInt64) -> Void = { _ in }
    let kick = Mutex<((Int) -> Void)?>(nil)
    private var config: [UInt8]
    private var queue: Virtqueue?
    private var memory: GuestMemory?

    public init(backend: BlockBackend, serial: String, offersFlush: Bool = true, rateLimit: RateLimiterConfig = RateLimiterConfig(),
                clock: @escaping () -> UInt64 = { UInt64(monotonicNanoseconds()) }) {
        self.backend = backend
        self.offersFlush = offersFlush
        self.clock = clock
        limiter = RateLimiter(rateLimit, now: clock())
        var id = Array(serial.utf8.prefix(Self.idBytes))
        id += [UInt8](repeating: 0, count: Self.idBytes - id.count)
        self.serial = id
        limits = BlockLimits(capacitySectors: backend.size / 512, readOnly: backend.isReadOnly)
        config = Self.configBytes(limits)
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
    /// configuration-change interrupt). Call with the transport paused and its lock held.
    public func replaceBackend(_ new: BlockBackend) throws {
        guard new.isReadOnly == limits.readOnly else { throw BlockDeviceError.readOnlyMismatch }
        backend = new
        limits = BlockLimits(capacitySectors: new.size / 512, readOnly: new.isReadOnly)
        config = Self.configBytes(limits)
    }

    /// Open `--disk` options: the image file or block device, locked.
    public convenience init(options: DiskOptions, offersFlush: Bool = true) throws {
        self.init(backend: try FileBlockBackend(path: options.path, readOnly: options.readOnly), serial: options.serial,
                  offersFlush: offersFlush, rateLimit: options.rateLimit)
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
    }

    public func reset() {
        queue = nil; memory = nil
        kick.withLock { $0 = nil }
    }

    public func process(queue index: Int) throws {
        guard index == 0, let queue, let memory else { throw BlockDeviceError.notActivated }
        if !limiterReady() { return }
        while let chain = try queue.pop() {
            guard let statusAddress = BlockRequest.statusAddress(of: chain) else {
                throw BlockDeviceError.requestWithoutStatus(head: chain.head)
            }
            var written: UInt32 = 0
            var status = BlockStatus.ok
            do {
                let request = try BlockRequest.parse(chain, memory: memory, limits: limits)
                if !admit(request) {
                    queue.undoPop()  // waits for the rate limiter's timer
                    return
                }
                written = try execute(request, memory: memory)
            } catch let e as BlockRequestError {
                status = e.status
                if status == BlockStatus.unsupported { metrics.unsupportedRequests &+= 1 } else { metrics.invalidRequests &+= 1 }
                metrics.lastError = e.description
            } catch {
                status = BlockStatus.ioError
                metrics.backendErrors &+= 1
                metrics.lastError = "\(error)"
            }
            try memory.store(status, at: statusAddress)
            try queue.complete(chain, length: written + 1)
        }
    }

    /// Run a validated request; returns the bytes written into guest buffers (not
    /// counting the status byte).
    func execute(_ request: BlockRequest, memory: GuestMemory) throws -> UInt32 {
        switch request.kind {
        case .read(let sector, let buffers):
            var offset = sector * 512
            for b in buffers {
                try memory.withMutableSlice(at: b.address, length: UInt64(b.length)) { try backend.read(into: $0, at: offset) }
                offset += UInt64(b.length)
            }
            let n = offset - sector * 512
            metrics.reads &+= 1; metrics.bytesRead &+= n
            return UInt32(truncatingIfNeeded: n)
        case .write(let sector, let buffers):
            var offset = sector * 512
            for b in buffers {
                try backend.write(from: try memory.readSlice(at: b.address, length: UInt64(b.length)), at: offset)
                offset += UInt64(b.length)
            }
            metrics.writes &+= 1; metrics.bytesWritten &+= offset - sector * 512
            return 0
        case .flush:
            try backend.flush()
            metrics.flushes &+= 1
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
            metrics.getIDs &+= 1
            return n
        case .discard(let ranges):
            for r in ranges { try backend.discard(offset: r.sector * 512, length: UInt64(r.sectors) * 512) }
            metrics.discards &+= 1
            return 0
        case .writeZeroes(let ranges):
            for r in ranges { try backend.writeZeroes(offset: r.sector * 512, length: UInt64(r.sectors) * 512, mayUnmap: r.unmap) }
            metrics.writeZeroes &+= 1
            return 0
        }
    }
}
