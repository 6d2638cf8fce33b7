import Synchronization

/// A qcow2 image (versions 2 and 3) as a read-write `BlockBackend`.
///
/// Metadata lives in bounded caches (`Qcow2ClusterCache`) and is written back on a guest
/// flush, on eviction, and at close, in the order that keeps the image consistent when
/// the VMM is killed at any moment (see `Qcow2Image+Metadata`): refcount increments
/// before the L2 entries that use the clusters, L2 tables before the L1 entries that
/// point at them, and decrements only after the references are gone from disk.
/// Guest data is written to its cluster before the L2 entry that maps it.
///
/// One lock serialises metadata changes and allocating writes; reads of data clusters,
/// writes into clusters the image already owns alone, and the final fdatasync of a
/// flush run outside it. It is never held by anything but the disk's I/O threads.
public final class Qcow2Image: BlockBackend {
    public let path: String
    public let size: UInt64
    public let isReadOnly: Bool
    /// The backing image unallocated clusters read from (read-only), if any.
    public let backing: BlockBackend?

    let storage: ImageStorage
    let layout: Qcow2Layout
    var header: Qcow2Header
    let lock = Mutex(())
    var l1: [UInt64]
    /// L1 entries changed in memory and not yet written.
    var dirtyL1: Set<Int> = []
    var refcountTable: [UInt64]
    var l2Cache: Qcow2ClusterCache
    var refcountCache: Qcow2ClusterCache
    /// Host clusters whose references were dropped in memory; their refcounts go down
    /// after the dropping L2/L1 entries are on disk (so a crash leaks, never corrupts).
    var pendingFrees: [UInt64] = []
    /// Where the search for a free cluster starts (cluster index).
    var freeHint: UInt64 = 0
    /// Refcount blocks were written since the last fdatasync.
    var refcountsUnsynced = false
    /// The last inflated compressed cluster (host offset, bytes).
    var inflated: (host: UInt64, bytes: [UInt8])?
    /// Set by `close()` and `handOver()`: nothing more is written back.
    var closed = false
    /// Reads and in-place writes between their mapping lookup and the end of their data
    /// I/O, outside the lock: a freed cluster is not reused while one may still use it.
    let ioOutsideLock = Atomic<Int>(0)

    /// Metadata cache budgets (QEMU's default L2 cache is 1 MiB: 8 GiB of 64 KiB clusters).
    static let l2CacheBytes = 1 << 20
    static let refcountCacheBytes = 256 << 10
    /// Commit metadata once this many clusters wait to be freed.
    static let pendingFreeLimit = 4096

    var lazyRefcounts: Bool { header.compatibleFeatures & Qcow2Header.lazyRefcounts != 0 && header.version >= 3 }

    /// Open the qcow2 image in `storage` (its header already known to be qcow2) over
    /// `backing`. Read-write opening refuses dirty, corrupt and snapshotted images, clears
    /// autoclear features (bitmaps would go stale) and, with lazy refcounts, sets the
    /// dirty bit until `close()`.
    public init(storage: ImageStorage, readOnly: Bool, backing: BlockBackend?) throws {
        let path = storage.path
        header = try Self.readHeader(storage)
        layout = Qcow2Layout(header: header)
        self.path = path
        self.storage = storage
        self.isReadOnly = readOnly
        self.backing = backing
        size = header.size
        if !readOnly {
            if header.incompatibleFeatures & Qcow2Header.Incompatible.corrupt != 0 { throw Qcow2Error.markedCorrupt(path: path) }
            if header.incompatibleFeatures & Qcow2Header.Incompatible.dirty != 0 { throw Qcow2Error.dirty(path: path) }
            if header.snapshotCount != 0 { throw Qcow2Error.internalSnapshots(path: path, count: header.snapshotCount) }
        }
        l1 = try Self.readTable(storage, at: header.l1TableOffset, entries: Int(header.l1Size))
        refcountTable = try Self.readTable(storage, at: header.refcountTableOffset,
                                           entries: Int(header.refcountTableClusters) * layout.clusterSize / 8)
        l2Cache = Qcow2ClusterCache(clusterSize: layout.clusterSize, budgetBytes: Self.l2CacheBytes)
        refcountCache = Qcow2ClusterCache(clusterSize: layout.clusterSize, budgetBytes: Self.refcountCacheBytes)
        if !readOnly {
            if header.autoclearFeatures != 0 {
                header.autoclearFeatures = 0
                try writeHeaderField(Qcow2Header.Field.autoclear, Qcow2Bytes.encode(UInt64(0)))
            }
            if lazyRefcounts { try setDirtyBit(true) }
        }
    }

    deinit { try? close() }

    static func readHeader(_ storage: ImageStorage) throws -> Qcow2Header {
        // Header extensions and the backing file name live in the first cluster: read
        // the cluster_bits field, then the whole cluster (or the whole shorter file).
        var count = Int(min(storage.length, 512))
        let first = try readBytes(storage, at: 0, count: count)
        if first.count >= 24 {
            let bits = Qcow2Bytes.load(UInt32.self, first, 20)
            if (9...21).contains(bits) { count = Int(min(storage.length, UInt64(1) << UInt64(bits))) }
        }
        return try Qcow2Header.parse(count <= first.count ? first : readBytes(storage, at: 0, count: count), path: storage.path)
    }

    static func readBytes(_ storage: ImageStorage, at offset: UInt64, count: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try storage.read(into: $0, at: offset) }
        return bytes
    }

    static func readTable(_ storage: ImageStorage, at offset: UInt64, entries: Int) throws -> [UInt64] {
        guard entries > 0 else { return [] }
        let (end, overflow) = offset.addingReportingOverflow(UInt64(entries) * 8)
        guard !overflow, end <= storage.length else {
            throw Qcow2Error.corrupt(path: storage.path, reason: "table at \(hex(offset)) of \(entries) entries is past the end of the file")
        }
        let bytes = try readBytes(storage, at: offset, count: entries * 8)
        return (0..<entries).map { Qcow2Bytes.load(UInt64.self, bytes, $0 * 8) }
    }

    func corrupt(_ reason: String) -> Qcow2Error { .corrupt(path: path, reason: reason) }

    // MARK: BlockBackend

    /// Mappings are looked up under the lock; data clusters are read after it is
    /// released, so reads run in parallel with each other and with writes.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        var runs: [(range: Range<Int>, host: UInt64)] = []
        try lock.withLock { _ in
            try readLocked(into: buffer, at: offset, dataRuns: &runs)
            if !runs.isEmpty { ioOutsideLock.wrappingAdd(1, ordering: .acquiringAndReleasing) }
        }
        if runs.isEmpty { return }
        defer { ioOutsideLock.wrappingSubtract(1, ordering: .acquiringAndReleasing) }
        for r in runs { try storage.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[r.range]), at: r.host) }
    }

    /// Allocating writes run under the lock; writes into clusters already ours run after it.
    public func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        var runs: [(range: Range<Int>, host: UInt64)] = []
        try lock.withLock { _ in
            try writeLocked(buffer, at: offset, inPlace: &runs)
            if !runs.isEmpty { ioOutsideLock.wrappingAdd(1, ordering: .acquiringAndReleasing) }
        }
        if runs.isEmpty { return }
        defer { ioOutsideLock.wrappingSubtract(1, ordering: .acquiringAndReleasing) }
        for r in runs { try storage.write(from: UnsafeRawBufferPointer(rebasing: buffer[r.range]), at: r.host) }
    }

    /// Metadata is committed under the lock; the final fdatasync (which covers all data
    /// written before it) runs outside it, so reads and writes go on meanwhile.
    public func flush() throws {
        if isReadOnly { return }
        try lock.withLock { _ in try commitMetadata() }
        try storage.flush()
    }

    public func discard(offset: UInt64, length: UInt64) throws {
        try lock.withLock { _ in try zeroLocked(offset: offset, length: length, mode: .discard) }
    }

    public func writeZeroes(offset: UInt64, length: UInt64, mayUnmap: Bool) throws {
        try lock.withLock { _ in try zeroLocked(offset: offset, length: length, mode: mayUnmap ? .zeroUnmap : .zeroKeep) }
    }

    /// Write back all metadata, make it durable and clear the dirty bit. Idempotent.
    public func close() throws {
        try lock.withLock { _ in
            if closed || isReadOnly { closed = true; return }
            closed = true
            try commitMetadata()
            try storage.flush()
            if lazyRefcounts { try setDirtyBit(false) }
        }
        try backing?.close()
    }

    public var format: DiskFormat { .qcow2 }

    /// Live migration (device paused): the image left as `close()` leaves it, then its
    /// lock released for the destination. Backing files keep their shared locks (the
    /// destination's are shared too).
    public func handOver() throws {
        try lock.withLock { _ in
            if closed || isReadOnly { return }
            try commitMetadata()
            try storage.flush()
            if lazyRefcounts { try setDirtyBit(false) }
            closed = true
        }
        (storage as? ImageFile)?.unlock()
    }

    /// The destination failed: locked again, dirty again (lazy refcounts), writable again.
    /// The caches still hold what is on disk: the destination never ran the guest.
    public func takeBack() throws {
        try (storage as? ImageFile)?.lock()
        try lock.withLock { _ in
            if !closed || isReadOnly { return }
            if lazyRefcounts { try setDirtyBit(true) }
            closed = false
        }
    }

    // MARK: header updates

    func writeHeaderField(_ offset: Int, _ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try storage.write(from: $0, at: UInt64(offset)) }
    }

    /// The dirty bit goes to disk (durably) before any write it covers, and off last.
    func setDirtyBit(_ on: Bool) throws {
        if on { header.incompatibleFeatures |= Qcow2Header.Incompatible.dirty }
        else { header.incompatibleFeatures &= ~Qcow2Header.Incompatible.dirty }
        try writeHeaderField(Qcow2Header.Field.incompatible, Qcow2Bytes.encode(header.incompatibleFeatures))
        try storage.flush()
    }
}
