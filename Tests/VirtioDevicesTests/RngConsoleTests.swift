@testable import KVMKit
import XCTest
@testable import VirtioDevices

final class RngTests: XCTestCase {
    func testFillsWritableBuffers() throws {
        let g = FakeGuest()
        let t = try VirtioMMIOTransport(device: VirtioRng(), memory: g.memory, interrupt: RecordingLine(), notify: .inline)
        let d = MMIODriver(t: t)
        d.start(g)
        let a = g.alloc(4096), b = g.alloc(100)
        g.publish(g.chain(at: 0, [(a, 4096, true), (b, 100, true)]))
        d.notify(0)
        XCTAssertEqual(g.usedIndex, 1)
        XCTAssertEqual(g.usedElement(0).len, 4196)
        XCTAssertGreaterThan(Set(g.bytes(at: a, 4096)).count, 200)  // not all zeros
    }
}

final class FakeConsole: ConsoleBackend {
    var output: [UInt8] = []
    var capacity = Int.max
    var input: [UInt8] = []
    func writeOutput(_ bytes: UnsafeRawBufferPointer) -> Int {
        let n = min(bytes.count, capacity - output.count)
        output += bytes.prefix(n)
        return n
    }
    func readInput(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let n = min(buffer.count, input.count)
        for i in 0..<n { buffer[i] = input[i] }
        input.removeFirst(n)
        return n
    }
    var hasInput: Bool { !input.isEmpty }
}

final class ConsoleTests: XCTestCase {
    var rx: FakeGuest!, tx: FakeGuest!
    var host: FakeConsole!
    var t: VirtioMMIOTransport!
    var d: MMIODriver!

    override func setUp() {
        // Both queues in one memory: rx at queue slot 0, tx at slot 1 (same buffer).
        rx = FakeGuest()
        host = FakeConsole()
        t = try! VirtioMMIOTransport(device: VirtioConsole(backend: host), memory: rx.memory, interrupt: RecordingLine(), notify: .inline)
        d = MMIODriver(t: t)
        _ = d.negotiate(VirtioFeature.version1)
        d.setupQueue(0, size: 16, desc: rx.descTable, avail: rx.avail, used: rx.used)
        let q1 = FakeGuest.base + 0x10000
        d.setupQueue(1, size: 16, desc: q1, avail: q1 + 0x4000, used: q1 + 0x8000)
        d.driverOK()
        XCTAssertEqual(d.r(VirtioMMIORegister.deviceID), 3)
    }

    /// Helpers for queue 1 (same memory, other ring addresses).
    func publishTransmit(_ data: [UInt8]) {
        let q1 = FakeGuest.base + 0x10000
        let a = rx.put(data)
        let m = rx.memory
        try! m.store(a, at: q1); try! m.store(UInt32(data.count), at: q1 + 8); try! m.store(UInt16(0), at: q1 + 12)
        let idx: UInt16 = try! m.load(at: q1 + 0x4000 + 2)
        try! m.store(UInt16(0), at: q1 + 0x4000 + 4 + 2 * UInt64(idx % 16))
        try! m.store(idx + 1, at: q1 + 0x4000 + 2)
    }
    var transmitUsed: UInt16 { try! rx.memory.load(at: FakeGuest.base + 0x10000 + 0x8000 + 2) }

    func testTransmitGoesToHost() {
        publishTransmit(Array("hello\n".utf8))
        d.notify(1)
        XCTAssertEqual(host.output, Array("hello\n".utf8))
        XCTAssertEqual(transmitUsed, 1)
    }

    func testTransmitWaitsWhenHostIsFull() {
        host.capacity = 3
        publishTransmit(Array("hello".utf8))
        d.notify(1)
        XCTAssertEqual(host.output, Array("hel".utf8))
        XCTAssertEqual(transmitUsed, 0)
        host.output = []; host.capacity = 100
        t.handleNotify(queue: 1)  // host drained: resume
        XCTAssertEqual(host.output, Array("lo".utf8))
        XCTAssertEqual(transmitUsed, 1)
    }

    func testReceiveWithBackpressure() {
        host.input = Array("abc".utf8)
        t.handleNotify(queue: 0)  // no guest buffers yet: input stays with the host
        XCTAssertEqual(host.input.count, 3)
        let a = rx.alloc(2)
        rx.setDescriptor(0, a, 2, VirtqDescriptorFlag.write)
        rx.publish(0)
        d.notify(0)
        XCTAssertEqual(rx.bytes(at: a, 2), Array("ab".utf8))
        XCTAssertEqual(rx.usedElement(0).len, 2)
        XCTAssertEqual(host.input, Array("c".utf8))
        rx.publish(0)
        d.notify(0)
        XCTAssertEqual(rx.usedIndex, 2)
        XCTAssertEqual(rx.usedElement(1).len, 1)
        rx.publish(0)
        d.notify(0)  // no input: the buffer stays available
        XCTAssertEqual(rx.usedIndex, 2)
    }
}
