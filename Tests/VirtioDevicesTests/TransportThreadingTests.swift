import Foundation
@testable import KVMKit
import XCTest
@testable import VirtioDevices

/// vCPU-side register traffic (interrupt status/ack, config reads, notifies) racing the
/// event loop's queue processing, as in a VM: every request completes, none is lost.
/// Not run under -sanitize=thread: on Linux, TSan cannot see Synchronization.Mutex (the
/// prebuilt stdlib is not instrumented), so it reports every Mutex-protected access as a
/// race — two threads incrementing one `Mutex<Int>` already get "Swift access race".
final class TransportThreadingTests: XCTestCase {
    final class CountingLine: InterruptLine, @unchecked Sendable {
        let count = NSLock()
        var n = 0
        func setLevel(_ high: Bool) {}
        func trigger() { count.lock(); n += 1; count.unlock() }
    }

    func testRegisterAccessRacesQueueProcessing() throws {
        let path = makeImage(size: 1 << 20)
        defer { unlink(path) }
        let g = FakeGuest(queueSize: 64)
        let line = CountingLine()
        let block = try VirtioBlock(options: DiskOptions(path: path))
        let t = try VirtioMMIOTransport(device: block, memory: g.memory, interrupt: line)  // eventfd mode
        let d = MMIODriver(t: t)
        d.start(g, features: VirtioFeature.version1 | VirtioFeature.eventIndex)

        // 64 flush requests, then the "event loop" processes while a "vCPU" reads registers.
        var statuses: [UInt64] = []
        for i in 0..<32 {
            let h = g.put(withUnsafeBytes(of: UInt32(4).littleEndian, Array.init) + [UInt8](repeating: 0, count: 12))
            let s = g.alloc(1, fill: 0xff)
            g.publish(g.chain(at: 2 * i, [(h, 16, false), (s, 1, true)]))
            statuses.append(s)
        }
        let done = DispatchSemaphore(value: 0)
        let vcpu = Thread {
            for _ in 0..<20_000 {
                let isr = UInt32(t.read(offset: VirtioMMIORegister.interruptStatus, size: 4))
                if isr != 0 { t.write(offset: VirtioMMIORegister.interruptACK, size: 4, value: UInt64(isr)) }
                _ = t.read(offset: 0x100, size: 4)
                t.write(offset: VirtioMMIORegister.queueNotify, size: 4, value: 0)
            }
            done.signal()
        }
        vcpu.start()
        while done.wait(timeout: .now()) == .timedOut { t.handleNotify(queue: 0) }
        t.handleNotify(queue: 0)
        XCTAssertEqual(g.usedIndex, 32)
        XCTAssertTrue(statuses.allSatisfy { g.byte(at: $0) == BlockStatus.ok })
        XCTAssertFalse(d.needsReset)
        XCTAssertGreaterThan(line.n, 0)
    }
}
