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

final class ConsoleTests: XCTestCase {
    var rx: FakeGuest!
    var console: VirtioConsole!
    var port: VirtioConsolePort!
    var t: VirtioMMIOTransport!
    var d: MMIODriver!

    func start(outputCapacity: Int = 1024) {
        // Both queues in one memory: rx at queue slot 0, tx at slot 1.
        rx = FakeGuest()
        console = try! VirtioConsole(outputCapacity: outputCapacity)
        port = VirtioConsolePort(console)
        t = try! VirtioMMIOTransport(device: console, memory: rx.memory, interrupt: RecordingLine(), notify: .inline)
        d = MMIODriver(t: t)
        _ = d.negotiate(VirtioFeature.version1)
        d.setupQueue(0, size: 16, desc: rx.descTable, avail: rx.avail, used: rx.used)
        let q1 = FakeGuest.base + 0x10000
        d.setupQueue(1, size: 16, desc: q1, avail: q1 + 0x4000, used: q1 + 0x8000)
        d.driverOK()
        XCTAssertEqual(d.r(VirtioMMIORegister.deviceID), 3)
    }

    /// Publish `data` on queue 1 (same memory, other ring addresses).
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

    func drain(max: Int = 4096) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: max)
        let n = buf.withUnsafeMutableBytes { port.drainOutput(into: $0) }
        return Array(buf.prefix(n))
    }

    func enqueue(_ s: String) -> Int { Array(s.utf8).withUnsafeBytes { port.enqueueInput($0) } }

    func notifyCount() -> UInt64 {
        var v: UInt64 = 0
        return read(port.notifyFD, &v, 8) == 8 ? v : 0
    }

    func testTransmitGoesToHostAndSignalsNotifyFD() {
        start()
        publishTransmit(Array("hello\n".utf8))
        d.notify(1)
        XCTAssertGreaterThan(notifyCount(), 0)
        XCTAssertEqual(drain(), Array("hello\n".utf8))
        XCTAssertEqual(transmitUsed, 1)
    }

    func testTransmitWaitsWhenOutputIsFull() {
        start(outputCapacity: 3)
        publishTransmit(Array("hello".utf8))
        d.notify(1)
        XCTAssertEqual(transmitUsed, 0)  // held back, not dropped
        XCTAssertEqual(drain(), Array("hel".utf8))  // draining kicks the transmit queue
        XCTAssertEqual(drain(), Array("lo".utf8))
        XCTAssertEqual(transmitUsed, 1)
        XCTAssertEqual(console.output.droppedBytes, 0)
    }

    func testReceiveWithBackpressure() {
        start()
        XCTAssertEqual(enqueue("abc"), 3)  // no guest buffers yet: held in the device
        let a = rx.alloc(2)
        rx.setDescriptor(0, a, 2, VirtqDescriptorFlag.write)
        rx.publish(0)
        d.notify(0)
        XCTAssertEqual(rx.bytes(at: a, 2), Array("ab".utf8))
        XCTAssertEqual(rx.usedElement(0).len, 2)
        rx.publish(0)
        d.notify(0)
        XCTAssertEqual(rx.usedIndex, 2)
        XCTAssertEqual(rx.usedElement(1).len, 1)
        rx.publish(0)
        d.notify(0)  // no input: the buffer stays available
        XCTAssertEqual(rx.usedIndex, 2)
        XCTAssertEqual(enqueue("z"), 1)  // input arrives: kicks the receive queue
        XCTAssertEqual(rx.usedIndex, 3)
        XCTAssertEqual(rx.bytes(at: a, 1), Array("z".utf8))
    }

    func testInputQueueFullRefusesAndSignalsRoomLater() {
        start()
        let big = String(repeating: "x", count: VirtioConsole.inputCapacity + 10)
        XCTAssertEqual(enqueue(big), VirtioConsole.inputCapacity)
        _ = notifyCount()
        let a = rx.alloc(100)
        rx.setDescriptor(0, a, 100, VirtqDescriptorFlag.write)
        rx.publish(0)
        d.notify(0)
        XCTAssertEqual(notifyCount(), 1)  // room again: the host side retries
    }
}
