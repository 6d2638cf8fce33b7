// libFuzzer target: a fuzz input becomes a guest memory image plus a few control bytes;
// a virtio-blk device behind the virtio-mmio transport is started on it and its queue
// notified, which walks descriptor chains (direct, indirect, hostile) and parses and
// executes block requests against an in-memory disk. Any crash, hang, sanitizer report
// or broken invariant is a finding. Built and run by fuzz/run.sh.
// libfuzzer: -max_len=8192
import Glibc
@testable import KVMKit
import VirtioDevices

/// Control bytes at the start of the input.
///   0: bits 0-2: queue size 2 << n (2...256); bit 3: EVENT_IDX; bit 4: raw ring addresses
///      from bytes 4..<16 instead of the fixed layout; bit 5: register script; bit 6: read-only
///      disk; bit 7: queue size byte 3 + 1 (any 1...256, mostly not a power of two)
///   1: notifications to send (1...4)
///   2: number of script entries (bit 5), each 5 bytes from the input's end: offset/4, u32 value
///   3: queue size - 1 when bit 7 is set
/// The rest is copied to guest memory (64 KiB at guest address 0). Default ring layout
/// for a queue of n entries: descriptor table at 0, avail ring at 16n, used ring after it
/// (4-aligned). fuzz/make_virtio_block_seeds.py writes well-formed requests in this layout as seeds.
let memorySize = 64 * 1024
let guestBuffer = UnsafeMutableRawPointer.allocate(byteCount: memorySize, alignment: 4096)
let memory = GuestMemory(borrowing: [MemoryRegion(guestAddress: 0, size: UInt64(memorySize), host: guestBuffer)])

final class NullLine: InterruptLine {
    var count = 0
    func setLevel(_ high: Bool) {}
    func trigger() { count += 1 }
}

/// A 32 KiB disk in host memory.
final class MemoryDisk: BlockBackend {
    var bytes = [UInt8](repeating: 0x5a, count: 32 * 1024)
    var size: UInt64 { UInt64(bytes.count) }
    let isReadOnly: Bool
    init(readOnly: Bool) { isReadOnly = readOnly }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        guard offset + UInt64(buffer.count) <= size else { fatalError("read beyond the disk: parser let it through") }
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[Int(offset)..<Int(offset) + buffer.count])) }
    }
    func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard !isReadOnly else { fatalError("write to a read-only disk") }
        guard offset + UInt64(buffer.count) <= size else { fatalError("write beyond the disk: parser let it through") }
        bytes.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[Int(offset)..<Int(offset) + buffer.count]).copyMemory(from: buffer) }
    }
    func flush() throws {}
    func discard(offset: UInt64, length: UInt64) throws { try zero(offset, length) }
    func writeZeroes(offset: UInt64, length: UInt64, mayUnmap: Bool) throws { try zero(offset, length) }
    private func zero(_ offset: UInt64, _ length: UInt64) throws {
        guard !isReadOnly, offset + length <= size else { fatalError("discard/zero beyond the disk or on a read-only disk") }
        for i in Int(offset)..<Int(offset + length) { bytes[i] = 0 }
    }
}

func le32(_ p: UnsafePointer<UInt8>, _ at: Int) -> UInt32 {
    UInt32(p[at]) | UInt32(p[at + 1]) << 8 | UInt32(p[at + 2]) << 16 | UInt32(p[at + 3]) << 24
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 16 else { return 0 }
    let control = data[0]
    let notifications = Int(data[1] & 3) + 1
    memset(guestBuffer, 0, memorySize)
    let imageLength = min(size - 16, memorySize)
    guestBuffer.copyMemory(from: data + 16, byteCount: imageLength)

    let line = NullLine()
    let disk = MemoryDisk(readOnly: control & 0x40 != 0)
    guard let block = try? VirtioBlock(backend: disk, serial: "fuzz", ioThreads: 1) else { return 0 }
    defer { try? block.shutdown() }
    guard let t = try? VirtioMMIOTransport(device: block, memory: memory, interrupt: line, notify: .inline) else { return 0 }
    typealias R = VirtioMMIORegister
    func w(_ o: UInt64, _ v: UInt32) { t.write(offset: o, size: 4, value: UInt64(v)) }

    let queueSize = control & 0x80 != 0 ? UInt32(data[3]) + 1 : UInt32(2) << UInt32(control & 7)
    var features = VirtioFeature.version1 | VirtioFeature.indirectDescriptors
    if control & 8 != 0 { features |= VirtioFeature.eventIndex }
    w(R.status, 1); w(R.status, 3)
    w(R.driverFeaturesSel, 0); w(R.driverFeatures, UInt32(truncatingIfNeeded: features))
    w(R.driverFeaturesSel, 1); w(R.driverFeatures, UInt32(truncatingIfNeeded: features >> 32))
    w(R.status, 0xb)
    w(R.queueSel, 0)
    w(R.queueNum, queueSize)
    // Compact default layout (table at 0, rings right after), so short inputs reach the rings.
    let n = min(queueSize, 256)
    let availAt = 16 * n, usedAt = (16 * n + 6 + 2 * n + 3) & ~3
    var (desc, avail, used): (UInt32, UInt32, UInt32) = (0, availAt, usedAt)
    if control & 0x10 != 0 { (desc, avail, used) = (le32(data, 4), le32(data, 8), le32(data, 12)) }
    w(R.queueDescLow, desc); w(R.queueDriverLow, avail); w(R.queueDeviceLow, used)
    w(R.queueReady, 1)
    if control & 0x20 != 0 {
        // A short register script from the image's tail, before DRIVER_OK.
        let count = Int(data[2] & 15)
        for i in 0..<count where 16 + imageLength >= 5 * (i + 1) {
            let at = size - 5 * (i + 1)
            w(UInt64(data[at]) * 4 & 0xff, le32(data, at + 1))
        }
    }
    w(R.status, 0xf)
    for _ in 0..<notifications { w(R.queueNotify, 0) }
    _ = t.read(offset: R.interruptStatus, size: 4)
    _ = t.read(offset: 0x100, size: 8)

    // Invariant: one notification completes at most a queue's worth of chains.
    let m = block.metrics
    let completed = m.reads + m.writes + m.flushes + m.getIDs + m.discards + m.writeZeroes
        + m.invalidRequests + m.unsupportedRequests + m.backendErrors
    if completed > UInt64(notifications) * UInt64(queueSize) {
        fatalError("\(completed) completions for \(notifications) notifications of a \(queueSize)-entry queue")
    }
    if m.backendErrors > 0 { fatalError("backend error from a validated request: \(m.lastError ?? "")") }
    w(R.status, 0)
    return 0
}
