import Foundation
@testable import KVMKit
import XCTest
@testable import VirtioDevices

final class VirtqueueTests: XCTestCase {
    func queue(_ g: FakeGuest, eventIndex: Bool = false) throws -> Virtqueue {
        try Virtqueue(config: g.config, memory: g.memory, eventIndex: eventIndex)
    }

    func popError(_ g: FakeGuest) -> VirtqueueError? {
        do { _ = try queue(g).pop(); return nil } catch { return error as? VirtqueueError }
    }

    func testSimpleChainReadableThenWritable() throws {
        let g = FakeGuest()
        let a = g.alloc(16), b = g.alloc(512), c = g.alloc(1)
        g.publish(g.chain(at: 3, [(a, 16, false), (b, 512, true), (c, 1, true)]))
        let q = try queue(g)
        let chain = try XCTUnwrap(try q.pop())
        XCTAssertEqual(chain.head, 3)
        XCTAssertEqual(chain.readableLength, 16)
        XCTAssertEqual(chain.writableLength, 513)
        XCTAssertNil(try q.pop())
        try q.addUsed(head: chain.head, length: 513)
        XCTAssertEqual(g.usedIndex, 1)
        XCTAssertEqual(g.usedElement(0).id, 3)
        XCTAssertEqual(g.usedElement(0).len, 513)
    }

    func testIndirectTableIsFlattened() throws {
        let g = FakeGuest()
        let table = g.alloc(48)
        let a = g.alloc(16), b = g.alloc(8), c = g.alloc(1)
        g.chain(at: 0, [(a, 16, false), (b, 8, true), (c, 1, true)], table: table)
        g.setDescriptor(0, table, 48, VirtqDescriptorFlag.indirect)
        g.publish(0)
        let chain = try XCTUnwrap(try queue(g).pop())
        XCTAssertEqual(chain.buffers.map(\.address), [a, b, c])
    }

    func testLoopIsBoundedByQueueSize() {
        let g = FakeGuest()
        let a = g.alloc(16)
        g.setDescriptor(0, a, 16, VirtqDescriptorFlag.next, next: 1)
        g.setDescriptor(1, a, 16, VirtqDescriptorFlag.next, next: 0)
        g.publish(0)
        guard case .chainTooLong = popError(g) else { return XCTFail("loop not detected") }
    }

    func testLoopInsideIndirectTable() {
        let g = FakeGuest()
        let table = g.alloc(32), a = g.alloc(16)
        g.setDescriptor(table: table, 0, a, 16, VirtqDescriptorFlag.next, next: 1)
        g.setDescriptor(table: table, 1, a, 16, VirtqDescriptorFlag.next, next: 0)
        g.setDescriptor(0, table, 32, VirtqDescriptorFlag.indirect)
        g.publish(0)
        guard case .chainTooLong = popError(g) else { return XCTFail("loop not detected") }
    }

    func testNestedIndirectIsRejected() {
        let g = FakeGuest()
        let inner = g.alloc(16), outer = g.alloc(16)
        g.setDescriptor(table: outer, 0, inner, 16, VirtqDescriptorFlag.indirect)
        g.setDescriptor(0, outer, 16, VirtqDescriptorFlag.indirect)
        g.publish(0)
        XCTAssertEqual(popError(g), .nestedIndirect(address: inner))
    }

    func testIndirectLengthMustBeNonZeroMultipleOf16() {
        for len: UInt32 in [0, 15, 40] {
            let g = FakeGuest()
            let t = g.alloc(64)
            g.setDescriptor(0, t, len, VirtqDescriptorFlag.indirect)
            g.publish(0)
            XCTAssertEqual(popError(g), .invalidIndirectLength(address: t, length: len))
        }
    }

    func testIndirectWithNextIsRejected() {
        let g = FakeGuest()
        let t = g.alloc(16)
        g.setDescriptor(0, t, 16, VirtqDescriptorFlag.indirect | VirtqDescriptorFlag.next, next: 1)
        g.publish(0)
        XCTAssertEqual(popError(g), .indirectWithNext(address: t))
    }

    func testZeroLengthDescriptor() {
        let g = FakeGuest()
        let a = g.alloc(16)
        g.setDescriptor(0, a, 0, 0)
        g.publish(0)
        XCTAssertEqual(popError(g), .zeroLengthDescriptor(address: a))
    }

    func testOverflowingDescriptor() {
        let g = FakeGuest()
        g.setDescriptor(0, UInt64.max - 4, 16, 0)
        g.publish(0)
        XCTAssertEqual(popError(g), .descriptorOverflow(address: UInt64.max - 4, length: 16))
    }

    func testOutOfRangeDescriptorAndIndirectTable() {
        let g = FakeGuest()
        let end = FakeGuest.base + FakeGuest.size
        g.setDescriptor(0, end - 8, 16, 0)
        g.publish(0)
        XCTAssertEqual(popError(g), .descriptorOutOfRange(address: end - 8, length: 16))
        let h = FakeGuest()
        h.setDescriptor(0, 0x1000, 32, VirtqDescriptorFlag.indirect)  // below guest RAM
        h.publish(0)
        XCTAssertEqual(popError(h), .descriptorOutOfRange(address: 0x1000, length: 32))
    }

    func testReadableAfterWritable() {
        let g = FakeGuest()
        let a = g.alloc(16), b = g.alloc(16)
        g.chain(at: 0, [(a, 16, true), (b, 16, false)])
        g.publish(0)
        XCTAssertEqual(popError(g), .readableAfterWritable(address: b))
    }

    func testHeadAndNextIndexOutOfRange() {
        let g = FakeGuest()
        g.publish(16)
        XCTAssertEqual(popError(g), .descriptorIndexOutOfRange(index: 16, tableSize: 16))
        let h = FakeGuest()
        let a = h.alloc(16)
        h.setDescriptor(0, a, 16, VirtqDescriptorFlag.next, next: 999)
        h.publish(0)
        XCTAssertEqual(popError(h), .descriptorIndexOutOfRange(index: 999, tableSize: 16))
    }

    func testAvailIndexJump() {
        let g = FakeGuest()
        g.setAvailIndex(17)
        XCTAssertEqual(popError(g), .availIndexJump(seen: 17, next: 0, size: 16))
    }

    func testQueueSetupChecks() {
        let g = FakeGuest()
        func err(_ change: (inout QueueConfig) -> Void) -> VirtqueueError? {
            var c = g.config
            change(&c)
            do { _ = try Virtqueue(config: c, memory: g.memory, eventIndex: false); return nil }
            catch { return error as? VirtqueueError }
        }
        XCTAssertEqual(err { $0.size = 0 }, .invalidSize(0, max: 256))
        XCTAssertEqual(err { $0.size = 12 }, .invalidSize(12, max: 256))
        XCTAssertEqual(err { $0.size = 512 }, .invalidSize(512, max: 256))
        XCTAssertEqual(err { $0.descriptorTable += 8 }, .ringMisaligned(ring: "descriptor table", address: g.descTable + 8, alignment: 16))
        XCTAssertEqual(err { $0.availRing += 1 }, .ringMisaligned(ring: "available ring", address: g.avail + 1, alignment: 2))
        XCTAssertEqual(err { $0.usedRing += 2 }, .ringMisaligned(ring: "used ring", address: g.used + 2, alignment: 4))
        XCTAssertEqual(err { $0.usedRing = FakeGuest.base + FakeGuest.size - 64 },
                       .ringOutOfRange(ring: "used ring", address: FakeGuest.base + FakeGuest.size - 64, length: 6 + 8 * 16))
        XCTAssertEqual(err { $0.descriptorTable = 0xffff_ffff_ffff_fff0 },
                       .ringOutOfRange(ring: "descriptor table", address: 0xffff_ffff_ffff_fff0, length: 256))
        XCTAssertNil(err { _ in })
    }

    func testNoInterruptFlagWithoutEventIndex() throws {
        let g = FakeGuest()
        let q = try queue(g)
        try q.addUsed(head: 0, length: 0)
        XCTAssertTrue(try q.needsInterrupt())
        g.setAvailFlags(Virtqueue.availNoInterrupt)
        try q.addUsed(head: 0, length: 0)
        XCTAssertFalse(try q.needsInterrupt())
    }

    func testEventIndexSuppressesInterrupts() throws {
        let g = FakeGuest()
        let q = try queue(g, eventIndex: true)
        try q.addUsed(head: 0, length: 0)
        XCTAssertTrue(try q.needsInterrupt())  // first one always
        // Driver wants an interrupt only when used idx passes 3 (i.e. reaches 4).
        g.setUsedEvent(3)
        try q.addUsed(head: 0, length: 0)       // used = 2
        XCTAssertFalse(try q.needsInterrupt())
        try q.addUsed(head: 0, length: 0)       // used = 3
        XCTAssertFalse(try q.needsInterrupt())
        try q.addUsed(head: 0, length: 0)       // used = 4 passes 3
        XCTAssertTrue(try q.needsInterrupt())
        try q.addUsed(head: 0, length: 0)
        XCTAssertFalse(try q.needsInterrupt())
        XCTAssertTrue(Virtqueue.needEvent(event: 0xffff, new: 1, old: 0xfffe))  // wraps
    }

    func testEventIndexPublishesAvailEvent() throws {
        let g = FakeGuest()
        let a = g.alloc(16)
        g.setDescriptor(0, a, 16, 0)
        g.publish(0); g.publish(0)
        let q = try queue(g, eventIndex: true)
        _ = try q.pop(); _ = try q.pop()
        XCTAssertNil(try q.pop())
        XCTAssertEqual(g.availEvent, 2)
    }

    /// The walker copies each descriptor once: a guest rewriting the table while the device
    /// walks it may make a pop fail, but a popped buffer is always the one that was range
    /// checked (a second fetch after the check would let the out-of-range address through).
    func testTableRewrittenDuringWalksNeverYieldsAnUncheckedBuffer() throws {
        let g = FakeGuest()
        let good = g.alloc(16)
        let outside = FakeGuest.base + FakeGuest.size - 8  // 16 bytes from here leave guest RAM
        let q = try queue(g)
        let stop = LockedFlag()
        let flipper = Thread {
            var n = 0
            while n & 0xFF != 0 || !stop.isSet {
                g.setDescriptor(0, good, 16, 0)
                g.setDescriptor(0, outside, 16, 0)
                n &+= 1
            }
        }
        flipper.start()
        var popped = 0, refused = 0, unchecked: [GuestBuffer] = []
        let deadline = Date().addingTimeInterval(3)
        while Date() < deadline && (popped < 20_000 || refused < 20_000) {
            g.publish(0)
            q.beginBatch()
            do {
                guard let chain = try q.pop() else { return XCTFail("a published head was not popped") }
                popped += 1
                unchecked += chain.buffers.filter { $0.address != good }
            } catch VirtqueueError.descriptorOutOfRange {
                refused += 1
            } catch is VirtqueueError {
                // A torn descriptor (the fake guest writes it field by field): refused as well.
            }
        }
        stop.set()
        while !flipper.isFinished { usleep(1000) }
        XCTAssertEqual(unchecked, [], "buffers outside what the range check saw")
        XCTAssertGreaterThan(popped, 0, "the race was exercised: some walks saw the good descriptor")
        XCTAssertGreaterThan(refused, 0, "and some were refused for the out-of-range one")
    }

    func testBatchLimitDefersTheRest() throws {
        let g = FakeGuest()
        let a = g.alloc(16)
        g.setDescriptor(0, a, 16, 0)
        g.publish(0); g.publish(0); g.publish(0)
        let q = try queue(g)
        q.batchLimit = 2
        q.beginBatch()
        XCTAssertNotNil(try q.pop()); XCTAssertNotNil(try q.pop())
        XCTAssertNil(try q.pop())
        XCTAssertTrue(q.hasDeferredWork)
        q.beginBatch()
        XCTAssertNotNil(try q.pop())
        XCTAssertNil(try q.pop())
        XCTAssertFalse(q.hasDeferredWork)
    }
}

/// A flag one thread sets and another polls.
final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
    func set() { lock.lock(); value = true; lock.unlock() }
}
