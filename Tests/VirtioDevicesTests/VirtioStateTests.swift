import Foundation
@testable import KVMKit
import XCTest
@testable import VirtioDevices

/// Transport and device states: capture mid-conversation, build new devices from the
/// state on the same guest memory, and the driver carries on without noticing.
final class VirtioStateTests: XCTestCase {
    func reencode<S: StateCodable>(_ s: S) throws -> S { try S(decoding: s.encodedBytes, context: "test") }

    func testBlockContinuesAtTheSavedRingPositions() throws {
        let path = makeImage(size: 64 * 1024)
        defer { unlink(path) }
        let g = FakeGuest(queueSize: 16)
        var block: VirtioBlock? = try VirtioBlock(options: DiskOptions(path: path, readOnly: false, id: "disk0"))
        var t: VirtioMMIOTransport? = try VirtioMMIOTransport(device: block!, memory: g.memory, interrupt: RecordingLine(), notify: .inline)
        MMIODriver(t: t!).start(g, features: VirtioFeature.version1 | VirtioFeature.eventIndex)

        func read(sector: UInt64, head: Int) -> (data: UInt64, status: UInt64) {
            var h = [UInt8](repeating: 0, count: 16)
            h[8] = UInt8(sector)
            let hdr = g.put(h), data = g.alloc(512), status = g.alloc(1, fill: 0xff)
            g.publish(g.chain(at: head, [(hdr, 16, false), (data, 512, true), (status, 1, true)]))
            return (data, status)
        }
        let first = read(sector: 1, head: 0)
        MMIODriver(t: t!).notify(0)
        block!.pause()  // waits for the I/O threads to complete the request
        block!.resume()
        XCTAssertEqual(g.usedIndex, 1)
        XCTAssertEqual(g.byte(at: first.status), 0)

        let transportState = try reencode(t!.captureState())
        let blockState = try reencode(block!.captureState())
        XCTAssertEqual(transportState.queues[0].positions?.nextAvail, 1)
        XCTAssertEqual(transportState.queues[0].positions?.nextUsed, 1)
        t = nil; block = nil  // the old devices are gone (and the image unlocked)

        let backend = try FileBlockBackend(path: path, readOnly: false)
        let restored = try VirtioBlock(state: blockState, backend: backend)
        XCTAssertEqual(restored.serial, blockState.serial)
        let line = RecordingLine()
        let t2 = try VirtioMMIOTransport(state: transportState, device: restored, memory: g.memory, interrupt: line, notify: .inline)
        XCTAssertEqual(t2.status & VirtioStatus.driverOK, VirtioStatus.driverOK)
        let second = read(sector: 2, head: 3)
        g.setUsedEvent(1)  // EVENT_IDX: interrupt once the used index passes 1
        MMIODriver(t: t2).notify(0)
        XCTAssertEqual(g.usedIndex, 1, "a restored transport is born paused: the notification waits")
        t2.resume()
        restored.pause()  // waits for the I/O threads
        restored.resume()
        XCTAssertEqual(g.usedIndex, 2, "the restored device takes the second request only")
        XCTAssertEqual(g.usedElement(1).id, 3)
        XCTAssertEqual(g.byte(at: second.status), 0)
        XCTAssertEqual(g.bytes(at: second.data, 4), (1024..<1028).map { UInt8($0 % 251) })
        XCTAssertEqual(line.triggers, 1, "the saved event-index bookkeeping decides the interrupt")
    }

    func testBlockStateRefusesADifferentDisk() throws {
        let small = makeImage(size: 4096), big = makeImage(size: 8192)
        defer { unlink(small); unlink(big) }
        let state = try VirtioBlock(backend: try FileBlockBackend(path: small, readOnly: false), serial: "x").captureState()
        XCTAssertThrowsError(try VirtioBlock(state: state, backend: try FileBlockBackend(path: big, readOnly: false))) {
            XCTAssertEqual("\($0)", "virtio device state: disk has 16 sectors, the snapshot's had 8")
        }
    }

    func testTransportStateForAnotherDeviceIsRefused() throws {
        let g = FakeGuest()
        let t = try VirtioMMIOTransport(device: VirtioRng(), memory: g.memory, interrupt: RecordingLine(), notify: .inline)
        MMIODriver(t: t).start(g)
        let s = t.captureState()
        XCTAssertThrowsError(try VirtioMMIOTransport(state: s, device: try VirtioConsole(), memory: g.memory,
                                                     interrupt: RecordingLine(), notify: .inline)) {
            XCTAssertEqual($0 as? VirtioStateError, .deviceTypeMismatch(saved: 4, device: 3))
        }
        var bad = s
        bad.queues[0].descriptorTable = 0xdead_0000  // outside guest memory
        XCTAssertThrowsError(try VirtioMMIOTransport(state: bad, device: VirtioRng(), memory: g.memory,
                                                     interrupt: RecordingLine(), notify: .inline)) {
            guard case .activationFailed = $0 as? VirtioStateError else { return XCTFail("\($0)") }
        }
    }

    func testRngRoundTripAndPendingInterruptBits() throws {
        let g = FakeGuest()
        let t = try VirtioMMIOTransport(device: VirtioRng(), memory: g.memory, interrupt: RecordingLine(), notify: .inline)
        MMIODriver(t: t).start(g)
        let a = g.alloc(32)
        g.publish(g.chain(at: 0, [(a, 32, true)]))
        MMIODriver(t: t).notify(0)
        XCTAssertEqual(t.interrupt.status, VirtioInterruptBit.usedBuffer, "not yet acknowledged")
        let s = try reencode(t.captureState())
        let t2 = try VirtioMMIOTransport(state: s, device: VirtioRng(state: try reencode(VirtioRngState())), memory: g.memory,
                                         interrupt: RecordingLine(), notify: .inline)
        XCTAssertEqual(MMIODriver(t: t2).r(VirtioMMIORegister.interruptStatus), VirtioInterruptBit.usedBuffer)
        t2.resume()
        let b = g.alloc(32)
        g.publish(g.chain(at: 1, [(b, 32, true)]))
        MMIODriver(t: t2).notify(0)
        XCTAssertEqual(g.usedIndex, 2)
        XCTAssertEqual(g.usedElement(1).id, 1)
    }

    func testConsoleKeepsUndeliveredInputAndAPartlySentChain() throws {
        let g = FakeGuest()
        let console = try VirtioConsole(outputCapacity: 4)
        let t = try VirtioMMIOTransport(device: console, memory: g.memory, interrupt: RecordingLine(), notify: .inline)
        let d = MMIODriver(t: t)
        _ = d.negotiate(VirtioFeature.version1)
        d.setupQueue(0, size: 16, desc: g.descTable, avail: g.avail, used: g.used)
        let q1 = FakeGuest.base + 0x10000
        d.setupQueue(1, size: 16, desc: q1, avail: q1 + 0x4000, used: q1 + 0x8000)
        d.driverOK()
        // Ten bytes out through a 4-byte host buffer: the chain stays pending at offset 4.
        let text = g.put(Array("0123456789".utf8))
        try g.memory.store(text, at: q1); try g.memory.store(UInt32(10), at: q1 + 8); try g.memory.store(UInt16(0), at: q1 + 12)
        try g.memory.store(UInt16(0), at: q1 + 0x4000 + 4); try g.memory.store(UInt16(1), at: q1 + 0x4000 + 2)
        d.notify(1)
        // Input with no receive buffers yet stays with the device.
        XCTAssertEqual(Array("hi".utf8).withUnsafeBytes { VirtioConsolePort(console).enqueueInput($0) }, 2)
        XCTAssertEqual(console.output.readAll(), Array("0123".utf8))

        let s = try reencode(console.captureState())
        XCTAssertEqual(s.pendingInput, Array("hi".utf8))
        XCTAssertEqual(s.pendingTransmitHead, 0)
        XCTAssertEqual(s.pendingTransmitOffset, 4)
        let ts = try reencode(t.captureState())
        let copy = try VirtioConsole(state: s, outputCapacity: 64)
        let t2 = try VirtioMMIOTransport(state: ts, device: copy, memory: g.memory, interrupt: RecordingLine(), notify: .inline)
        t2.resume()  // resuming looks at every queue: the pending chain goes on by itself
        XCTAssertEqual(copy.output.readAll(), Array("456789".utf8), "the rest of the chain, nothing repeated")
        MMIODriver(t: t2).notify(1)
        XCTAssertEqual(copy.output.readAll(), [], "nothing repeated")
        let rx = g.alloc(16)
        g.publish(g.chain(at: 0, [(rx, 16, true)]))
        MMIODriver(t: t2).notify(0)
        XCTAssertEqual(g.bytes(at: rx, 2), Array("hi".utf8))
    }
}
