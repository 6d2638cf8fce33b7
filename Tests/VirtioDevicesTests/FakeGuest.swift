import Foundation
@testable import KVMKit
@testable import VirtioDevices

/// Counts interrupts instead of raising them.
final class RecordingLine: InterruptLine {
    var triggers = 0
    func setLevel(_ high: Bool) {}
    func trigger() { triggers += 1 }
}

/// A fake guest: 4 MiB of host memory at guest 0x10_0000, with one virtqueue laid out
/// at fixed places and helpers to write descriptors, publish heads and read the used ring.
final class FakeGuest {
    static let base: UInt64 = 0x10_0000
    static let size: UInt64 = 4 << 20
    let buffer: UnsafeMutableRawPointer
    let memory: GuestMemory

    let queueSize: UInt16
    let descTable: UInt64
    let avail: UInt64
    let used: UInt64
    /// Data area for buffers: bump-allocated.
    private var nextData: UInt64
    private var availIdx: UInt16 = 0

    init(queueSize: UInt16 = 16, queueIndex: Int = 0) {
        buffer = UnsafeMutableRawPointer.allocate(byteCount: Int(Self.size), alignment: 4096)
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: Int(Self.size))
        memory = GuestMemory(borrowing: [MemoryRegion(guestAddress: Self.base, size: Self.size, host: buffer)])
        self.queueSize = queueSize
        let q = Self.base + UInt64(queueIndex) * 0x10000
        descTable = q
        avail = q + 0x4000
        used = q + 0x8000
        nextData = Self.base + 0x100000
    }

    deinit { buffer.deallocate() }

    var config: QueueConfig {
        QueueConfig(maxSize: 256, size: queueSize, descriptorTable: descTable, availRing: avail, usedRing: used)
    }

    func alloc(_ n: Int, fill: UInt8 = 0) -> UInt64 {
        let a = nextData
        nextData += UInt64((n + 15) & ~15)
        try! memory.write(at: a, bytes: [UInt8](repeating: fill, count: n))
        return a
    }

    func put(_ bytes: [UInt8]) -> UInt64 {
        let a = alloc(bytes.count)
        try! memory.write(at: a, bytes: bytes)
        return a
    }

    func setDescriptor(table: UInt64? = nil, _ i: Int, _ addr: UInt64, _ len: UInt32, _ flags: UInt16, next: UInt16 = 0) {
        let at = (table ?? descTable) + UInt64(i) * 16
        try! memory.store(addr, at: at)
        try! memory.store(len, at: at + 8)
        try! memory.store(flags, at: at + 12)
        try! memory.store(next, at: at + 14)
    }

    /// Write a chain of (address, length, writable) at descriptors first..., linked.
    @discardableResult
    func chain(at first: Int, _ parts: [(UInt64, UInt32, Bool)], table: UInt64? = nil) -> UInt16 {
        for (k, p) in parts.enumerated() {
            let last = k == parts.count - 1
            let flags = (p.2 ? VirtqDescriptorFlag.write : 0) | (last ? 0 : VirtqDescriptorFlag.next)
            setDescriptor(table: table, first + k, p.0, p.1, flags, next: UInt16(first + k + 1))
        }
        return UInt16(first)
    }

    func publish(_ head: UInt16) {
        try! memory.store(head, at: avail + 4 + 2 * UInt64(availIdx % queueSize))
        availIdx &+= 1
        try! memory.store(availIdx, at: avail + 2)
    }

    func setAvailIndex(_ v: UInt16) { try! memory.store(v, at: avail + 2) }
    func setAvailFlags(_ v: UInt16) { try! memory.store(v, at: avail) }
    func setUsedEvent(_ v: UInt16) { try! memory.store(v, at: avail + 4 + 2 * UInt64(queueSize)) }
    var availEvent: UInt16 { try! memory.load(at: used + 4 + 8 * UInt64(queueSize)) }

    var usedIndex: UInt16 { try! memory.load(at: used + 2) }
    func usedElement(_ i: Int) -> (id: UInt32, len: UInt32) {
        let at = used + 4 + 8 * UInt64(i % Int(queueSize))
        return (try! memory.load(at: at), try! memory.load(at: at + 4))
    }

    func bytes(at a: UInt64, _ n: Int) -> [UInt8] { try! memory.readBytes(at: a, count: n) }
    func byte(at a: UInt64) -> UInt8 { try! memory.load(at: a) }
}

/// Drives a transport through its registers like Linux's virtio_mmio does.
struct MMIODriver {
    let t: VirtioMMIOTransport
    typealias R = VirtioMMIORegister

    func r(_ o: UInt64) -> UInt32 { UInt32(t.read(offset: o, size: 4)) }
    func w(_ o: UInt64, _ v: UInt32) { t.write(offset: o, size: 4, value: UInt64(v)) }

    var deviceFeatures: UInt64 {
        w(R.deviceFeaturesSel, 0); let lo = UInt64(r(R.deviceFeatures))
        w(R.deviceFeaturesSel, 1); let hi = UInt64(r(R.deviceFeatures))
        return hi << 32 | lo
    }

    func negotiate(_ features: UInt64) -> Bool {
        w(R.status, 0)
        w(R.status, VirtioStatus.acknowledge)
        w(R.status, VirtioStatus.acknowledge | VirtioStatus.driver)
        w(R.driverFeaturesSel, 0); w(R.driverFeatures, UInt32(truncatingIfNeeded: features))
        w(R.driverFeaturesSel, 1); w(R.driverFeatures, UInt32(truncatingIfNeeded: features >> 32))
        w(R.status, VirtioStatus.acknowledge | VirtioStatus.driver | VirtioStatus.featuresOK)
        return r(R.status) & VirtioStatus.featuresOK != 0
    }

    func setupQueue(_ i: UInt32, size: UInt16, desc: UInt64, avail: UInt64, used: UInt64) {
        w(R.queueSel, i)
        w(R.queueNum, UInt32(size))
        w(R.queueDescLow, UInt32(truncatingIfNeeded: desc)); w(R.queueDescHigh, UInt32(desc >> 32))
        w(R.queueDriverLow, UInt32(truncatingIfNeeded: avail)); w(R.queueDriverHigh, UInt32(avail >> 32))
        w(R.queueDeviceLow, UInt32(truncatingIfNeeded: used)); w(R.queueDeviceHigh, UInt32(used >> 32))
        w(R.queueReady, 1)
    }

    func driverOK() {
        w(R.status, VirtioStatus.acknowledge | VirtioStatus.driver | VirtioStatus.featuresOK | VirtioStatus.driverOK)
    }

    /// Negotiate `features`, set up queue 0 from `guest`, set DRIVER_OK.
    func start(_ guest: FakeGuest, features: UInt64 = VirtioFeature.version1) {
        _ = negotiate(features)
        setupQueue(0, size: guest.queueSize, desc: guest.descTable, avail: guest.avail, used: guest.used)
        driverOK()
    }

    func notify(_ q: UInt32) { w(R.queueNotify, q) }
    var status: UInt32 { r(R.status) }
    var needsReset: Bool { status & VirtioStatus.deviceNeedsReset != 0 }
}

/// A temp file of `size` bytes whose byte i is UInt8(i % 251).
func makeImage(size: Int, pattern: Bool = true) -> String {
    let path = NSTemporaryDirectory() + "virtio-test-\(UUID().uuidString).img"
    let data = Data((0..<size).map { pattern ? UInt8($0 % 251) : 0 })
    precondition(FileManager.default.createFile(atPath: path, contents: data), "cannot create \(path)")
    return path
}
