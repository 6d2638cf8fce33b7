import Foundation
@testable import KVMKit
import XCTest
@testable import VirtioDevices

/// A disk whose flush takes `flushDelay`; its writes can be made slow too. Records when
/// each operation started and ended.
final class SlowBackend: BlockBackend {
    let size: UInt64 = 1 << 20
    let isReadOnly = false
    let flushDelay: useconds_t
    let writeDelay: useconds_t
    private let lock = NSLock()
    private var events: [(String, Date)] = []

    init(flushDelay: useconds_t, writeDelay: useconds_t = 0) { self.flushDelay = flushDelay; self.writeDelay = writeDelay }

    func record(_ what: String) { lock.lock(); events.append((what, Date())); lock.unlock() }
    func time(of what: String) -> Date? { lock.lock(); defer { lock.unlock() }; return events.first { $0.0 == what }?.1 }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws { buffer.initializeMemory(as: UInt8.self, repeating: 0) }
    func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        record("write \(offset) start"); usleep(writeDelay); record("write \(offset) end")
    }
    func flush() throws { record("flush start"); usleep(flushDelay); record("flush end") }
    func discard(offset: UInt64, length: UInt64) throws {}
    func writeZeroes(offset: UInt64, length: UInt64, mayUnmap: Bool) throws {}
}

/// The block path does not stall the VM: with a disk busy in a slow flush, another
/// device on the same event loop and a vCPU's config-space read keep their latency.
final class BlockStallTests: XCTestCase {
    func attach(_ device: VirtioDevice, _ guest: FakeGuest, loop: EventLoop) throws -> (VirtioMMIOTransport, MMIODriver) {
        let t = try VirtioMMIOTransport(device: device, memory: guest.memory, interrupt: RecordingLine(), notify: .eventFD)
        for (q, fd) in t.notifyEventFDs.enumerated() { try loop.register(fd: fd, events: .readable) { _ in t.handleNotify(queue: q) } }
        let d = MMIODriver(t: t)
        d.start(guest)
        return (t, d)
    }

    func waitFor(_ what: String, timeout: TimeInterval = 10, _ condition: () -> Bool) throws -> TimeInterval {
        let start = Date()
        while !condition() {
            if Date().timeIntervalSince(start) > timeout { XCTFail("timed out waiting for \(what)"); return timeout }
            usleep(200)
        }
        return Date().timeIntervalSince(start)
    }

    func testSlowFlushDoesNotDelayOtherDevicesNorRegisterReads() throws {
        let loop = try EventLoop()
        try loop.start(name: "stall-test")
        defer { loop.stop(); loop.join() }
        let disk = SlowBackend(flushDelay: 800_000, writeDelay: 300_000)
        let block = try VirtioBlock(backend: disk, serial: "slow")
        defer { try? block.shutdown() }
        let bg = FakeGuest(queueSize: 16), rg = FakeGuest(queueSize: 16)
        let (bt, bd) = try attach(block, bg, loop: loop)
        let (_, rd) = try attach(VirtioRng(), rg, loop: loop)

        // A slow write, then a flush (must wait for that write), then a write after it
        // (need not wait for the flush).
        func request(_ type: UInt32, sector: UInt64, head: Int, data: Bool) -> UInt64 {
            let h = bg.put(withUnsafeBytes(of: type.littleEndian, Array.init) + [0, 0, 0, 0] + withUnsafeBytes(of: sector.littleEndian, Array.init))
            let s = bg.alloc(1, fill: 0xff)
            let parts: [(UInt64, UInt32, Bool)] = data ? [(h, 16, false), (bg.alloc(512, fill: 1), 512, false), (s, 1, true)] : [(h, 16, false), (s, 1, true)]
            bg.publish(bg.chain(at: head, parts))
            return s
        }
        let firstWrite = request(BlockRequestType.write, sector: 0, head: 0, data: true)
        let flush = request(BlockRequestType.flush, sector: 0, head: 3, data: false)
        let notifyStart = Date()
        bd.notify(0)
        XCTAssertLessThan(Date().timeIntervalSince(notifyStart), 0.1, "a notify never waits for the disk")
        _ = try waitFor("the flush to start") { disk.time(of: "flush start") != nil }
        let laterWrite = request(BlockRequestType.write, sector: 8, head: 5, data: true)
        bd.notify(0)

        // While the flush runs: the rng answers, and config reads are quick.
        let a = rg.alloc(64)
        rg.publish(rg.chain(at: 0, [(a, 64, true)]))
        rd.notify(0)
        let rngLatency = try waitFor("the rng request") { rg.usedIndex == 1 }
        var worstRead: TimeInterval = 0
        for _ in 0..<200 {
            let t0 = Date()
            XCTAssertEqual(bt.read(offset: 0x100, size: 8), 2048)  // capacity in sectors
            worstRead = max(worstRead, Date().timeIntervalSince(t0))
        }
        let flushStillRunning = disk.time(of: "flush end") == nil
        XCTAssertTrue(flushStillRunning, "the measurements ran while the flush was in progress")
        XCTAssertLessThan(rngLatency, 0.2, "rng latency during a slow flush")
        XCTAssertLessThan(worstRead, 0.05, "config-space read latency during a slow flush")
        print("stall test: rng \(Int(rngLatency * 1e6)) µs, worst config read \(Int(worstRead * 1e6)) µs during an 800 ms flush")

        _ = try waitFor("all three requests") { bg.usedIndex == 3 }
        XCTAssertEqual(bg.byte(at: firstWrite), BlockStatus.ok)
        XCTAssertEqual(bg.byte(at: flush), BlockStatus.ok)
        XCTAssertEqual(bg.byte(at: laterWrite), BlockStatus.ok)
        let firstEnd = try XCTUnwrap(disk.time(of: "write 0 end")), flushStart = try XCTUnwrap(disk.time(of: "flush start"))
        XCTAssertGreaterThanOrEqual(flushStart, firstEnd, "the flush waited for the earlier write")
        let laterEnd = try XCTUnwrap(disk.time(of: "write 4096 end")), flushEnd = try XCTUnwrap(disk.time(of: "flush end"))
        XCTAssertLessThan(laterEnd, flushEnd, "the later write did not wait for the flush")
    }

    func testPauseDrainsAndHoldsNewRequests() throws {
        let loop = try EventLoop()
        try loop.start(name: "pause-test")
        defer { loop.stop(); loop.join() }
        let disk = SlowBackend(flushDelay: 0, writeDelay: 200_000)
        let block = try VirtioBlock(backend: disk, serial: "slow")
        defer { try? block.shutdown() }
        let g = FakeGuest(queueSize: 16)
        let (_, d) = try attach(block, g, loop: loop)
        func write(head: Int, sector: UInt64) {
            let h = g.put(withUnsafeBytes(of: BlockRequestType.write.littleEndian, Array.init) + [0, 0, 0, 0] + withUnsafeBytes(of: sector.littleEndian, Array.init))
            g.publish(g.chain(at: head, [(h, 16, false), (g.alloc(512), 512, false), (g.alloc(1, fill: 0xff), 1, true)]))
        }
        write(head: 0, sector: 0)
        d.notify(0)
        _ = try waitFor("the write to start") { disk.time(of: "write 0 start") != nil }
        block.pause()
        XCTAssertNotNil(disk.time(of: "write 0 end"), "pause returned after the in-flight write finished")
        XCTAssertEqual(g.usedIndex, 1, "and after its completion was published")
        write(head: 3, sector: 1)
        d.notify(0)
        usleep(300_000)
        XCTAssertNil(disk.time(of: "write 512 start"), "no new request starts while paused")
        XCTAssertEqual(g.usedIndex, 1)
        block.resume()
        _ = try waitFor("the held request after resume") { g.usedIndex == 2 }
    }
}
