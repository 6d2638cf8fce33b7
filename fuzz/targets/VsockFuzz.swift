// libFuzzer target: virtio-vsock behind the virtio-mmio transport on a fuzzed guest
// memory image (guest CID 3). The tx queue carries whatever packets the input holds
// (REQUESTs reach a real listener at <socket>_5, so connections get made, fed, shut
// down and reset); the rx queue is filled with control packets and host bytes. Then the
// driver resets the device, which must close every connection. A crash, a sanitizer
// report, a leaked connection or a broken credit invariant is a finding.
//
// Input: byte 0 notifications (1-8), bits select rx (1) or tx (0) per notification in
// byte 1. The rest is guest memory (64 KiB at 0): rx queue (8 entries) descriptors at
// 0x0, avail 0x80, used 0x100; tx queue at 0x400/0x480/0x500; event queue unused.
import Glibc
@testable import KVMKit
@testable import VirtioDevices

let memorySize = 64 * 1024
let guestBuffer = UnsafeMutableRawPointer.allocate(byteCount: memorySize, alignment: 4096)
let memory = GuestMemory(borrowing: [MemoryRegion(guestAddress: 0, size: UInt64(memorySize), host: guestBuffer)])
let directory: String = {
    var template = Array("/tmp/vsock-fuzz-XXXXXX".utf8CString)
    return template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
}()
let socketPath = directory + "/v.sock"
/// A host program listening on port 5 that accepts and then ignores its connections.
let hostListener: Int32 = {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
    _ = try? UnixSocketAddress.withAddress(socketPath + "_5") { bind(fd, $0, $1) }
    listen(fd, 1024)
    return fd
}()

final class NullLine: InterruptLine {
    func setLevel(_ high: Bool) {}
    func trigger() {}
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 2 else { return 0 }
    guestBuffer.initializeMemory(as: UInt8.self, repeating: 0, count: memorySize)
    guestBuffer.copyMemory(from: UnsafeRawPointer(data + 2), byteCount: min(size - 2, memorySize))
    guard let options = try? VsockOptions(cid: 3, udsPath: socketPath),
          let vsock = try? VirtioVsock(options: options) else { fatalError("cannot create the device") }
    do { try vsock.listen() } catch { fatalError("\(error)") }
    guard let t = try? VirtioMMIOTransport(device: vsock, memory: memory, interrupt: NullLine(), notify: .inline) else { return 0 }
    typealias R = VirtioMMIORegister
    func w(_ o: UInt64, _ v: UInt32) { t.write(offset: o, size: 4, value: UInt64(v)) }
    w(R.status, 1); w(R.status, 3)
    w(R.driverFeaturesSel, 1); w(R.driverFeatures, 1)  // VERSION_1
    w(R.status, 11)
    for (q, base) in [(UInt32(0), UInt32(0)), (1, 0x400)] {
        w(R.queueSel, q); w(R.queueNum, 8)
        w(R.queueDescLow, base); w(R.queueDriverLow, base + 0x80); w(R.queueDeviceLow, base + 0x100)
        w(R.queueReady, 1)
    }
    w(R.status, 15)
    for i in 0..<(Int(data[0] & 7) + 1) {
        let rx = (data[1] >> UInt8(i)) & 1 != 0
        vsock.ready.withLock { set in for fd in vsock.streamByFD.keys { set.insert(fd) } }
        w(R.queueNotify, rx ? 0 : 1)
        for s in vsock.streams.values {
            if s.conn.buffered > s.conn.bufAlloc { fatalError("buffered beyond the credit given") }
            if s.toHost.count > Int(s.conn.bufAlloc) { fatalError("host queue beyond the credit given") }
        }
    }
    w(R.status, 0)  // driver reset: every connection goes
    if vsock.connectionCount != 0 { fatalError("connections survived a reset") }
    while case let fd = accept(hostListener, nil, nil), fd >= 0 { close(fd) }
    return 0
}
