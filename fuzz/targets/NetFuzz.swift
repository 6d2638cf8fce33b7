// libFuzzer target: virtio-net behind the virtio-mmio transport on a fuzzed guest memory
// image, with a backend that holds fuzzed frames. Both queues are notified, so the
// receive path (mergeable and single-chain placement) and the transmit path (chain
// checks, zero-copy gather) walk whatever the guest wrote. A crash, a sanitizer report
// or a broken invariant (a frame sent with a size the device must refuse) is a finding.
//
// Input: byte 0 bit 0 MRG_RXBUF, bit 1 EVENT_IDX, bit 2 GUEST_CSUM; byte 1 frames waiting
// (0-3), bytes 2-3 a frame length each (12 + n*64); byte 4 notifications (1-4, bit 7:
// tx first). The rest is guest memory (64 KiB at 0): rx queue (8 entries) descriptors at
// 0x0, avail 0x80, used 0x100; tx queue descriptors at 0x400, avail 0x480, used 0x500.
import Glibc
@testable import KVMKit
@testable import VirtioDevices

let memorySize = 64 * 1024
let guestBuffer = UnsafeMutableRawPointer.allocate(byteCount: memorySize, alignment: 4096)
let memory = GuestMemory(borrowing: [MemoryRegion(guestAddress: 0, size: UInt64(memorySize), host: guestBuffer)])

final class NullLine: InterruptLine {
    func setLevel(_ high: Bool) {}
    func trigger() {}
}

final class FuzzBackend: NetBackend {
    var frames: [Int] = []
    var pollFD: Int32 { -1 }
    let pattern = [UInt8](repeating: 0xa5, count: NetHeader.size + NetHeader.maxFrame)
    func receive(into buffer: UnsafeMutableRawBufferPointer) throws(NetBackendError) -> Int? {
        guard !frames.isEmpty else { return nil }
        let n = min(frames.removeFirst(), buffer.count)
        pattern.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: n) }
        return n
    }
    func send(_ pieces: UnsafeBufferPointer<UnsafeRawBufferPointer>) throws(NetBackendError) -> Bool {
        let total = pieces.reduce(0) { $0 + $1.count }
        if total < NetHeader.size + NetHeader.minFrame || total > NetHeader.size + NetHeader.maxFrame {
            fatalError("sent a frame of \(total) bytes, which the device must drop")
        }
        return true
    }
    func setOffloads(_ flags: UInt32) throws(NetBackendError) {}
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 5 else { return 0 }
    let input = UnsafeBufferPointer(start: data, count: size)
    guestBuffer.initializeMemory(as: UInt8.self, repeating: 0, count: memorySize)
    let image = input.dropFirst(5).prefix(memorySize)
    guestBuffer.copyMemory(from: UnsafeRawPointer(data + 5), byteCount: image.count)

    let backend = FuzzBackend()
    for i in 0..<Int(input[1] % 4) { backend.frames.append(NetHeader.size + Int(input[2 + i % 2]) * 64) }
    let net = VirtioNet(backend: backend, mac: MACAddress(bytes: [2, 0, 0, 0, 0, 1]), clock: { 0 })
    guard let t = try? VirtioMMIOTransport(device: net, memory: memory, interrupt: NullLine(), notify: .inline) else { return 0 }
    typealias R = VirtioMMIORegister
    func w(_ o: UInt64, _ v: UInt32) { t.write(offset: o, size: 4, value: UInt64(v)) }
    var features = VirtioFeature.version1
    if input[0] & 1 != 0 { features |= NetFeature.mergeableRxBuffers }
    if input[0] & 2 != 0 { features |= VirtioFeature.eventIndex }
    if input[0] & 4 != 0 { features |= NetFeature.guestCSUM }
    w(R.status, 1); w(R.status, 3)
    w(R.driverFeaturesSel, 0); w(R.driverFeatures, UInt32(truncatingIfNeeded: features))
    w(R.driverFeaturesSel, 1); w(R.driverFeatures, UInt32(features >> 32))
    w(R.status, 11)
    for (q, base) in [(UInt32(0), UInt32(0)), (1, 0x400)] {
        w(R.queueSel, q); w(R.queueNum, 8)
        w(R.queueDescLow, base); w(R.queueDriverLow, base + 0x80); w(R.queueDeviceLow, base + 0x100)
        w(R.queueReady, 1)
    }
    w(R.status, 15)
    let notifications = Int(input[4] & 3) + 1
    let txFirst = input[4] & 0x80 != 0
    for i in 0..<notifications { w(R.queueNotify, UInt32((i & 1 == 0) == txFirst ? 1 : 0)) }
    let m = net.metrics
    if m.rxFrames > 3 { fatalError("delivered more frames than the backend had") }
    return 0
}
