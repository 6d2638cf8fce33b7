import CKVM
import Glibc
import Synchronization

/// Errors from guest-physical accesses. The address and length are the guest's.
public enum GuestMemoryError: Error, Equatable, CustomStringConvertible {
    /// Some byte of [address, address+length) is not backed by any region.
    case outOfBounds(address: UInt64, length: UInt64)
    /// The range is backed, but by two different regions (not contiguous on the host).
    case crossesRegions(address: UInt64, length: UInt64)
    /// address + length overflows 64 bits.
    case overflow(address: UInt64, length: UInt64)
    case mmapFailed(size: UInt64, errno: Int32)
    case hugePagesUnavailable(size: UInt64, errno: Int32)
    case overlappingRegions(UInt64, UInt64)
    /// A memory file whose size is not the guest's RAM size.
    case fileSizeMismatch(path: String, expected: UInt64, actual: UInt64)
    case cannotOpen(path: String, errno: Int32)

    public var description: String {
        switch self {
        case .outOfBounds(let a, let l): return "guest range \(hex(a))+\(hex(l)) is outside guest memory"
        case .crossesRegions(let a, let l): return "guest range \(hex(a))+\(hex(l)) crosses a memory region boundary"
        case .overflow(let a, let l): return "guest range \(hex(a))+\(hex(l)) overflows the address space"
        case .mmapFailed(let s, let e): return "cannot map \(s) bytes of guest memory: \(errnoText(e))"
        case .hugePagesUnavailable(let s, let e):
            return "cannot map \(s) bytes of guest memory in 2 MiB huge pages: \(errnoText(e)) (reserve them: /proc/sys/vm/nr_hugepages)"
        case .overlappingRegions(let a, let b): return "guest memory regions at \(hex(a)) and \(hex(b)) overlap"
        case .fileSizeMismatch(let p, let e, let a): return "memory file \(p) is \(a) bytes, expected \(e) for this guest's RAM"
        case .cannotOpen(let p, let e): return "cannot open memory file \(p): \(errnoText(e))"
        }
    }
}

/// One contiguous host mapping that backs guest-physical [guestAddress, guestAddress+size).
public struct MemoryRegion: @unchecked Sendable {
    public let guestAddress: UInt64
    public let size: UInt64
    public let host: UnsafeMutableRawPointer

    public var end: UInt64 { guestAddress + size }

    /// A region over memory the caller owns (tests, fuzzers): see `GuestMemory(borrowing:)`.
    public init(guestAddress: UInt64, size: UInt64, host: UnsafeMutableRawPointer) {
        self.guestAddress = guestAddress
        self.size = size
        self.host = host
    }
}

/// Guest RAM: one or more host mappings, and the only way device code reaches it.
/// Every access is checked against the whole map first; nothing here turns a guest value
/// into a pointer without that check.
///
/// Device writes are tracked (snapshots, migration): while `isTrackingDeviceWrites`,
/// every write path marks its pages in a per-region bitmap, which `takeDeviceDirtyPages`
/// hands over and clears. KVM's dirty log covers vCPU writes; the two together are every
/// change to guest RAM. Read paths (`read`, `load`, `readSlice`) never mark.
public final class GuestMemory: @unchecked Sendable {
    public let regions: [MemoryRegion]
    private let owned: Bool
    /// One bit per 4 KiB page of each region: written by a device since the last take.
    /// Mapped lazily (untouched pages cost no memory) and only written while tracking.
    private let deviceDirty: [UnsafeMutablePointer<UInt64>]
    private let tracking = Atomic<Bool>(false)
    public static let pageSize: UInt64 = 4096

    /// Map anonymous memory for each (guest address, size) pair. `hugePages`: back it with
    /// 2 MiB hugetlbfs pages, reserved now (so a host without enough of them fails here with
    /// ENOMEM, not with SIGBUS on a guest access later); sizes must be 2 MiB multiples.
    public init(layout: [(guestAddress: UInt64, size: UInt64)], hugePages: Bool = false) throws {
        let sorted = layout.sorted { $0.guestAddress < $1.guestAddress }
        for (a, b) in zip(sorted, sorted.dropFirst()) {
            let (end, over) = a.guestAddress.addingReportingOverflow(a.size)
            if over || end > b.guestAddress { throw GuestMemoryError.overlappingRegions(a.guestAddress, b.guestAddress) }
        }
        var mapped: [MemoryRegion] = []
        for r in sorted {
            let flags = hugePages ? MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (21 << MAP_HUGE_SHIFT)
                                  : MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE
            let p = mmap(nil, Int(r.size), PROT_READ | PROT_WRITE, flags, -1, 0)
            if p == MAP_FAILED || p == nil {
                let e = errno
                for m in mapped { munmap(m.host, Int(m.size)) }
                if hugePages { throw GuestMemoryError.hugePagesUnavailable(size: r.size, errno: e) }
                throw GuestMemoryError.mmapFailed(size: r.size, errno: e)
            }
            mapped.append(MemoryRegion(guestAddress: r.guestAddress, size: r.size, host: p!))
        }
        regions = mapped
        owned = true
        deviceDirty = GuestMemory.mapDirtyBitmaps(mapped)
    }

    /// Guest RAM backed by a memory file (a snapshot's), mapped private: pages are read
    /// from the file on first touch and guest writes stay in this process, so restoring
    /// costs the same for any guest size and the file is never changed. Region i starts
    /// at the file offset where region i-1 ends; the file must be `fileSize` bytes (their
    /// total, plus whatever trailer the file format keeps after the RAM).
    public init(mappingFile path: String, layout: [(guestAddress: UInt64, size: UInt64)], fileSize: UInt64) throws {
        let sorted = layout.sorted { $0.guestAddress < $1.guestAddress }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw GuestMemoryError.cannotOpen(path: path, errno: errno) }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) != 0 { throw GuestMemoryError.cannotOpen(path: path, errno: errno) }
        guard UInt64(st.st_size) == fileSize, (st.st_mode & S_IFMT) == S_IFREG else {
            throw GuestMemoryError.fileSizeMismatch(path: path, expected: fileSize, actual: UInt64(max(0, st.st_size)))
        }
        var mapped: [MemoryRegion] = []
        var offset: UInt64 = 0
        for r in sorted {
            let p = mmap(nil, Int(r.size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, off_t(offset))
            if p == MAP_FAILED || p == nil {
                let e = errno
                for m in mapped { munmap(m.host, Int(m.size)) }
                throw GuestMemoryError.mmapFailed(size: r.size, errno: e)
            }
            mapped.append(MemoryRegion(guestAddress: r.guestAddress, size: r.size, host: p!))
            offset += r.size
        }
        regions = mapped
        owned = true
        deviceDirty = GuestMemory.mapDirtyBitmaps(mapped)
    }

    private static func mapDirtyBitmaps(_ regions: [MemoryRegion]) -> [UnsafeMutablePointer<UInt64>] {
        regions.map { r in
            let words = Int(GuestMemory.pages(in: r.size) + 63) / 64
            // Anonymous pages read as zero until written: no cost until tracking is used.
            let p = mmap(nil, max(words, 1) * 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
            if p == MAP_FAILED || p == nil {
                // Fall back to the heap: a failure here is as fatal as for guest RAM itself.
                let heap = UnsafeMutablePointer<UInt64>.allocate(capacity: max(words, 1))
                heap.initialize(repeating: 0, count: max(words, 1))
                return heap
            }
            return p!.bindMemory(to: UInt64.self, capacity: max(words, 1))
        }
    }

    /// 4 KiB pages in `size` bytes (a partial last page counts).
    public static func pages(in size: UInt64) -> UInt64 { size / pageSize + (size % pageSize == 0 ? 0 : 1) }

    /// Ask for transparent huge pages where the host allows them on request (the usual
    /// "madvise" setting), as QEMU does for guest RAM: fewer TLB misses for the guest and for
    /// device copies (virtio-blk, 8 interleaved runs: read +25 %, write +12 %). Call after
    /// loading the kernel: a huge page is zeroed (and may be compacted for) on first touch,
    /// which made 1 start in 5 take 7 ms instead of 2.5 ms when the loader did the touching.
    /// Advisory only: without THP nothing changes.
    public func adviseHugePages() {
        guard owned else { return }
        for r in regions { _ = madvise(r.host, Int(r.size), MADV_HUGEPAGE) }
    }

    /// Wrap existing host buffers (tests, fuzzers). The caller keeps them alive.
    public init(borrowing regions: [MemoryRegion]) {
        self.regions = regions.sorted { $0.guestAddress < $1.guestAddress }
        owned = false
        deviceDirty = GuestMemory.mapDirtyBitmaps(self.regions)
    }

    deinit {
        if owned { for r in regions { munmap(r.host, Int(r.size)) } }
        for (r, bitmap) in zip(regions, deviceDirty) {
            let words = Int(GuestMemory.pages(in: r.size) + 63) / 64
            munmap(bitmap, max(words, 1) * 8)
        }
    }

    public var totalSize: UInt64 { regions.reduce(0) { $0 + $1.size } }

    /// The host bytes behind [address, address+length), which must lie in one region,
    /// for a caller that may write them: the pages are marked as device-written now, so
    /// prefer `withMutableSlice` (marks after the write) or `readSlice` (never marks).
    /// The pointer is valid for the life of this object; the guest may change the bytes
    /// at any time, so callers copy what they validate.
    public func slice(at address: UInt64, length: UInt64) throws -> UnsafeMutableRawBufferPointer {
        let (region, bytes) = try resolve(address, length)
        noteWrite(region: region, address: address, length: length)
        return bytes
    }

    /// Read-only view of [address, address+length) (one region); never marks pages dirty.
    public func readSlice(at address: UInt64, length: UInt64) throws -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(try resolve(address, length).1)
    }

    /// Run `body` on the writable bytes of [address, address+length) (one region), then
    /// mark them device-written: the mark follows the data, so a dirty-page pass that sees
    /// the mark also sees the bytes.
    public func withMutableSlice<T>(at address: UInt64, length: UInt64, _ body: (UnsafeMutableRawBufferPointer) throws -> T) throws -> T {
        let (region, bytes) = try resolve(address, length)
        defer { noteWrite(region: region, address: address, length: length) }
        return try body(bytes)
    }

    private func resolve(_ address: UInt64, _ length: UInt64) throws -> (Int, UnsafeMutableRawBufferPointer) {
        let (end, over) = address.addingReportingOverflow(length)
        if over { throw GuestMemoryError.overflow(address: address, length: length) }
        for (i, r) in regions.enumerated() where address >= r.guestAddress && address < r.end {
            if end > r.end {
                // Distinguish "runs off the map" from "spans two adjacent regions".
                if contains(r.end, end) { throw GuestMemoryError.crossesRegions(address: address, length: length) }
                throw GuestMemoryError.outOfBounds(address: address, length: length)
            }
            return (i, UnsafeMutableRawBufferPointer(start: r.host + Int(address - r.guestAddress), count: Int(length)))
        }
        if length == 0, let i = regions.firstIndex(where: { address == $0.end }) {
            return (i, UnsafeMutableRawBufferPointer(start: nil, count: 0))
        }
        throw GuestMemoryError.outOfBounds(address: address, length: length)
    }

    // MARK: device dirty tracking

    /// Whether device writes are being recorded.
    public var isTrackingDeviceWrites: Bool { tracking.load(ordering: .acquiring) }

    /// Start or stop recording device writes. Starting clears nothing: take the pages
    /// once after starting if only later writes matter.
    public func trackDeviceWrites(_ on: Bool) { tracking.store(on, ordering: .sequentiallyConsistent) }

    /// Pages devices wrote since the last take, one bitmap per region (bit n of word w:
    /// page 64w+n of that region), cleared as they are handed over.
    public func takeDeviceDirtyPages() -> [[UInt64]] {
        zip(regions, deviceDirty).map { r, bitmap in
            let words = Int(GuestMemory.pages(in: r.size) + 63) / 64
            return (0..<words).map { ckvm_atomic_take_u64(bitmap + $0) }
        }
    }

    /// Mark [address, address+length) of `region` device-written, if tracking. One
    /// relaxed load when tracking is off: that is the whole cost on the fast path.
    @inline(__always)
    private func noteWrite(region: Int, address: UInt64, length: UInt64) {
        guard length > 0, tracking.load(ordering: .relaxed) else { return }
        markDirty(region: region, offset: address - regions[region].guestAddress, length: length)
    }

    private func markDirty(region: Int, offset: UInt64, length: UInt64) {
        let bitmap = deviceDirty[region]
        var page = offset / GuestMemory.pageSize
        let last = (offset + length - 1) / GuestMemory.pageSize
        while page <= last {
            let word = Int(page / 64)
            let first = page % 64
            let end = min(last, page | 63) % 64
            let bits = (end - first == 63) ? UInt64.max : ((UInt64(1) << (end - first + 1)) - 1) << first
            ckvm_atomic_or_u64(bitmap + word, bits)
            page = (page | 63) + 1
        }
    }

    /// Whether every byte of [start, end) is backed (possibly by several regions).
    private func contains(_ start: UInt64, _ end: UInt64) -> Bool {
        var cursor = start
        while cursor < end {
            guard let r = regions.first(where: { cursor >= $0.guestAddress && cursor < $0.end }) else { return false }
            cursor = r.end
        }
        return true
    }

    /// Whether [address, address+length) is backed by one region.
    public func isValid(address: UInt64, length: UInt64) -> Bool {
        (try? resolve(address, length)) != nil
    }

    public func read(at address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
        let src = try readSlice(at: address, length: UInt64(buffer.count))
        if buffer.count > 0 { outOfLineCopy(to: buffer.baseAddress!, from: src.baseAddress!, count: buffer.count) }
    }

    public func write(at address: UInt64, from buffer: UnsafeRawBufferPointer) throws {
        try withMutableSlice(at: address, length: UInt64(buffer.count)) { dst in
            if buffer.count > 0 { outOfLineCopy(to: dst.baseAddress!, from: buffer.baseAddress!, count: buffer.count) }
        }
    }

    public func readBytes(at address: UInt64, count: Int) throws -> [UInt8] {
        Array(try readSlice(at: address, length: UInt64(count)))
    }

    public func write(at address: UInt64, bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write(at: address, from: $0) }
    }

    /// Little-endian load of a fixed-width integer.
    public func load<T: FixedWidthInteger>(_ type: T.Type = T.self, at address: UInt64) throws -> T {
        let s = try readSlice(at: address, length: UInt64(MemoryLayout<T>.size))
        return T(littleEndian: s.loadUnaligned(as: T.self))
    }

    /// Little-endian store of a fixed-width integer.
    public func store<T: FixedWidthInteger>(_ value: T, at address: UInt64) throws {
        try withMutableSlice(at: address, length: UInt64(MemoryLayout<T>.size)) {
            $0.storeBytes(of: value.littleEndian, as: T.self)
        }
    }

    /// Zero [address, address+length).
    public func zero(at address: UInt64, length: UInt64) throws {
        try withMutableSlice(at: address, length: length) { s in
            if length > 0 { outOfLineZero(s.baseAddress!, count: Int(length)) }
        }
    }
}

@inline(__always) func hex<T: BinaryInteger>(_ v: T) -> String { "0x" + String(v, radix: 16) }

/// strerror text for an errno value.
public func errnoText(_ e: Int32) -> String {
    guard let s = strerror(e) else { return "errno \(e)" }
    return String(cString: s)
}
