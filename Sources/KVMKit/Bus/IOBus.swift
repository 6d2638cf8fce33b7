import Synchronization

/// Errors when laying out a bus.
public enum BusError: Error, CustomStringConvertible, Equatable {
    case overlap(name: String, base: UInt64, size: UInt64, existing: String)
    case emptyRange(name: String)
    /// The vCPUs are running: the table is read without locks and must not change.
    case sealed(name: String)

    public var description: String {
        switch self {
        case .sealed(let n): return "\(n): cannot attach a device after the vCPUs started"
        case .overlap(let n, let b, let s, let e): return "\(n) at \(hex(b))+\(hex(s)) overlaps \(e)"
        case .emptyRange(let n): return "\(n) has an empty address range"
        }
    }
}

/// An address-sorted set of device windows. Lookups happen on every exit, so the table is
/// built once before the vCPUs start and read without locks afterwards.
struct RangeTable<Device> {
    struct Entry {
        let base: UInt64
        let size: UInt64
        let name: String
        let device: Device
    }
    private(set) var entries: [Entry] = []
    /// Set before the vCPU threads start (which orders it before their reads).
    private(set) var isSealed = false

    mutating func seal() { isSealed = true }

    mutating func insert(base: UInt64, size: UInt64, name: String, device: Device) throws {
        guard !isSealed else { throw BusError.sealed(name: name) }
        guard size > 0 else { throw BusError.emptyRange(name: name) }
        for e in entries where base < e.base &+ e.size && e.base < base &+ size {
            throw BusError.overlap(name: name, base: base, size: size, existing: e.name)
        }
        entries.append(Entry(base: base, size: size, name: name, device: device))
        entries.sort { $0.base < $1.base }
    }

    /// The entry containing `address`, by binary search.
    @inline(__always)
    func find(_ address: UInt64) -> Entry? {
        var lo = 0, hi = entries.count
        while lo < hi {
            let mid = (lo + hi) / 2
            let e = entries[mid]
            if address < e.base { hi = mid } else if address - e.base >= e.size { lo = mid + 1 } else { return e }
        }
        return nil
    }
}

/// Counts of accesses nobody answered (reads return all ones, writes are dropped).
public final class UnhandledAccessCounter: Sendable {
    private let reads = Atomic<UInt64>(0)
    private let writes = Atomic<UInt64>(0)
    private let lastAddress = Atomic<UInt64>(0)

    public init() {}

    func record(address: UInt64, write: Bool) {
        if write { writes.wrappingAdd(1, ordering: .relaxed) } else { reads.wrappingAdd(1, ordering: .relaxed) }
        lastAddress.store(address, ordering: .relaxed)
    }

    public var readCount: UInt64 { reads.load(ordering: .relaxed) }
    public var writeCount: UInt64 { writes.load(ordering: .relaxed) }
    public var lastUnhandledAddress: UInt64 { lastAddress.load(ordering: .relaxed) }
}

/// The port-I/O bus (16-bit port space).
public final class PortIOBus: @unchecked Sendable {
    private var table = RangeTable<PortIODevice>()
    public let unhandled = UnhandledAccessCounter()

    public init() {}

    /// Attach `device` at ports [base, base+count). Call before the vCPUs start.
    public func attach(_ device: PortIODevice, base: UInt16, count: UInt16, name: String) throws {
        try table.insert(base: UInt64(base), size: UInt64(count), name: name, device: device)
    }

    /// Freeze the table; called before the vCPU threads start.
    public func seal() { table.seal() }

    public var attached: [(name: String, base: UInt16, count: UInt16)] {
        table.entries.map { ($0.name, UInt16($0.base), UInt16($0.size)) }
    }

    /// A guest `in`: fill `data` (size × count bytes; count > 1 for `rep ins`).
    @inline(__always)
    public func handleIn(port: UInt16, size: Int, count: Int, data: UnsafeMutableRawBufferPointer) {
        guard let e = table.find(UInt64(port)) else {
            unhandled.record(address: UInt64(port), write: false)
            for i in 0..<data.count { data[i] = 0xFF }
            return
        }
        let offset = port &- UInt16(e.base)
        var at = 0
        for _ in 0..<count {
            let v = e.device.read(offset: offset, size: size)
            storeLittleEndian(UInt64(v), into: UnsafeMutableRawBufferPointer(rebasing: data[at..<min(at + size, data.count)]))
            at += size
        }
    }

    /// A guest `out` of size × count bytes.
    @inline(__always)
    public func handleOut(port: UInt16, size: Int, count: Int, data: UnsafeRawBufferPointer) {
        guard let e = table.find(UInt64(port)) else {
            unhandled.record(address: UInt64(port), write: true)
            return
        }
        let offset = port &- UInt16(e.base)
        var at = 0
        for _ in 0..<count {
            var v: UInt32 = 0
            for i in 0..<size where at + i < data.count { v |= UInt32(data[at + i]) << (8 * UInt32(i)) }
            e.device.write(offset: offset, size: size, value: v)
            at += size
        }
    }
}

/// The MMIO bus (guest-physical addresses not backed by RAM).
public final class MMIOBus: @unchecked Sendable {
    private var table = RangeTable<MMIODevice>()
    public let unhandled = UnhandledAccessCounter()

    public init() {}

    public func attach(_ device: MMIODevice, base: UInt64, size: UInt64, name: String) throws {
        try table.insert(base: base, size: size, name: name, device: device)
    }

    /// Freeze the table; called before the vCPU threads start.
    public func seal() { table.seal() }

    public var attached: [(name: String, base: UInt64, size: UInt64)] {
        table.entries.map { ($0.name, $0.base, $0.size) }
    }

    @inline(__always)
    public func handleRead(address: UInt64, data: UnsafeMutableRawBufferPointer) {
        guard let e = table.find(address) else {
            unhandled.record(address: address, write: false)
            for i in 0..<data.count { data[i] = 0xFF }
            return
        }
        storeLittleEndian(e.device.read(offset: address - e.base, size: data.count), into: data)
    }

    @inline(__always)
    public func handleWrite(address: UInt64, data: UnsafeRawBufferPointer) {
        guard let e = table.find(address) else {
            unhandled.record(address: address, write: true)
            return
        }
        var v: UInt64 = 0
        for i in 0..<min(data.count, 8) { v |= UInt64(data[i]) << (8 * UInt64(i)) }
        e.device.write(offset: address - e.base, size: data.count, value: v)
    }
}
