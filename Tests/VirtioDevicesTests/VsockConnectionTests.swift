import Foundation
import XCTest
@testable import VirtioDevices

final class VsockConnectionTests: XCTestCase {
    func guest(_ op: VsockHeader.Op, length: UInt32 = 0, flags: UInt32 = 0, bufAlloc: UInt32 = 1000, fwdCnt: UInt32 = 0) -> VsockHeader {
        VsockHeader(srcCID: 3, dstCID: 2, srcPort: 1234, dstPort: 5000, length: length, op: op, flags: flags, bufAlloc: bufAlloc, fwdCnt: fwdCnt)
    }

    func testHeaderRoundTrip() {
        let h = VsockHeader(srcCID: 0x1122334455, dstCID: 2, srcPort: 7, dstPort: 0xdeadbeef, length: 9, op: .creditUpdate,
                            flags: 3, bufAlloc: 262144, fwdCnt: 0xfffffff0)
        let b = h.bytes
        XCTAssertEqual(b.count, 44)
        XCTAssertEqual(b[30], 6)
        XCTAssertEqual(b.withUnsafeBytes { VsockHeader(bytes: $0) }, h)
        XCTAssertNil([UInt8](repeating: 0, count: 43).withUnsafeBytes { VsockHeader(bytes: $0) })
    }

    func testHostInitiatedConnectsOnResponse() {
        var c = VsockConnection.hostInitiated(localPort: 1 << 30, peerPort: 52, bufAlloc: 4096)
        XCTAssertEqual(c.state, .connecting)
        XCTAssertFalse(c.canSendToGuest)
        XCTAssertEqual(c.receive(guest(.response, bufAlloc: 500)), [.acceptedByGuest])
        XCTAssertEqual(c.state, .established)
        XCTAssertEqual(c.peerFree, 500)
        XCTAssertTrue(c.canSendToGuest)
        let h = c.header(.rw, guestCID: 3, length: 10)
        XCTAssertEqual([h.srcCID, h.dstCID], [2, 3])
        XCTAssertEqual([h.srcPort, h.dstPort], [1 << 30, 52])
        XCTAssertEqual(h.bufAlloc, 4096)
    }

    func testUnexpectedPacketsReset() {
        var c = VsockConnection.hostInitiated(localPort: 1, peerPort: 2, bufAlloc: 4096)
        XCTAssertEqual(c.receive(guest(.rw, length: 5)), [.send(.reset, flags: 0), .close], "data before RESPONSE")
        XCTAssertEqual(c.state, .closed)
        XCTAssertEqual(c.receive(guest(.rw)), [.ignore])
        var d = VsockConnection.guestInitiated(guest(.request), bufAlloc: 4096)
        XCTAssertEqual(d.receive(guest(.response)), [.send(.reset, flags: 0), .close], "RESPONSE when established")
        var e = VsockConnection.guestInitiated(guest(.request), bufAlloc: 4096)
        XCTAssertEqual(e.receive(guest(.request)), [.send(.reset, flags: 0), .close], "a second REQUEST")
    }

    func testHostToGuestCreditFollowsTheGuest() {
        var c = VsockConnection.guestInitiated(guest(.request, bufAlloc: 1000), bufAlloc: 4096)
        c.sentToGuest(600)
        XCTAssertEqual(c.peerFree, 400)
        c.sentToGuest(400)
        XCTAssertEqual(c.peerFree, 0)
        XCTAssertFalse(c.canSendToGuest)
        XCTAssertEqual(c.receive(guest(.creditUpdate, bufAlloc: 1000, fwdCnt: 700)), [])
        XCTAssertEqual(c.peerFree, 700)
        // The guest shrinking its buffer below what is in flight means no room, not a wrap.
        XCTAssertEqual(c.receive(guest(.creditUpdate, bufAlloc: 100, fwdCnt: 700)), [])
        XCTAssertEqual(c.peerFree, 0)
        XCTAssertEqual(c.receive(guest(.creditRequest, bufAlloc: 100, fwdCnt: 700)), [.send(.creditUpdate, flags: 0)])
    }

    func testCountersWrapAround() {
        var c = VsockConnection.guestInitiated(guest(.request, bufAlloc: 1000, fwdCnt: UInt32.max - 99), bufAlloc: 4096)
        c.sentToGuest(UInt32.max - 99)  // the guest has forwarded everything so far
        XCTAssertEqual(c.peerFree, 1000)
        c.sentToGuest(300)  // wraps past zero
        XCTAssertEqual(c.peerFree, 700)
    }

    func testGuestToHostCreditIsEnforcedAndReturned() {
        var c = VsockConnection.guestInitiated(guest(.request), bufAlloc: 4000)
        XCTAssertEqual(c.receive(guest(.rw, length: 3000)), [])
        XCTAssertEqual(c.buffered, 3000)
        XCTAssertEqual(c.forwarded(3000), [], "the guest still sees 1000 free: no update needed")
        XCTAssertEqual(c.buffered, 0)
        XCTAssertEqual(c.receive(guest(.rw, length: 500)), [])
        XCTAssertEqual(c.forwarded(100), [.send(.creditUpdate, flags: 0)], "the guest sees 500 free: tell it")
        _ = c.header(.creditUpdate, guestCID: 3)
        XCTAssertEqual(c.advertisedFwdCnt, 3100)
        XCTAssertEqual(c.forwarded(400), [], "it now sees 3600 free")
        // 4000 buffered is the limit; one more byte is a credit violation.
        XCTAssertEqual(c.receive(guest(.rw, length: 4000)), [])
        XCTAssertEqual(c.receive(guest(.rw, length: 1)), [.send(.reset, flags: 0), .close])
    }

    func testShutdownFromTheGuestFinishesOnceDrained() {
        var c = VsockConnection.guestInitiated(guest(.request), bufAlloc: 4000)
        _ = c.receive(guest(.rw, length: 100))
        XCTAssertEqual(c.receive(guest(.shutdown, flags: VsockHeader.shutdownSend)), [])
        XCTAssertEqual(c.state, .established)
        XCTAssertEqual(c.receive(guest(.rw, length: 1)), [.send(.reset, flags: 0), .close], "data after SHUTDOWN(send)")
        var d = VsockConnection.guestInitiated(guest(.request), bufAlloc: 4000)
        _ = d.receive(guest(.rw, length: 100))
        _ = d.receive(guest(.shutdown, flags: VsockHeader.shutdownBoth))
        XCTAssertEqual(d.state, .closing)
        XCTAssertFalse(d.finished, "100 bytes still owed to the host")
        _ = d.forwarded(100)
        XCTAssertTrue(d.finished)
    }

    func testHostEOFShutsDownSendingOnly() {
        var c = VsockConnection.guestInitiated(guest(.request), bufAlloc: 4000)
        XCTAssertEqual(c.hostClosed(), [.send(.shutdown, flags: VsockHeader.shutdownSend)])
        XCTAssertEqual(c.hostClosed(), [], "once")
        XCTAssertFalse(c.canSendToGuest)
        XCTAssertEqual(c.receive(guest(.rw, length: 10)), [], "the guest may still send to a half-closed host")
        var d = VsockConnection.hostInitiated(localPort: 1, peerPort: 2, bufAlloc: 10)
        XCTAssertEqual(d.hostClosed(), [.send(.reset, flags: 0), .close], "gone before the guest answered")
    }

    func testResetFromTheGuestCloses() {
        var c = VsockConnection.guestInitiated(guest(.request), bufAlloc: 4000)
        XCTAssertEqual(c.receive(guest(.reset)), [.close])
        XCTAssertEqual(c.state, .closed)
    }

    func testOptions() throws {
        let dir = NSTemporaryDirectory()
        XCTAssertEqual(try VsockOptions(parsing: "cid=3,uds=\(dir)v.sock"), try VsockOptions(cid: 3, udsPath: "\(dir)v.sock"))
        XCTAssertThrowsError(try VsockOptions(parsing: "cid=2,uds=\(dir)v.sock")) { XCTAssertEqual($0 as? VsockOptionsError, .reservedCID(2)) }
        XCTAssertThrowsError(try VsockOptions(parsing: "cid=x,uds=/tmp/v")) { XCTAssertEqual($0 as? VsockOptionsError, .syntax("cid=x,uds=/tmp/v")) }
        XCTAssertThrowsError(try VsockOptions(parsing: "uds=/tmp/v"))
        XCTAssertThrowsError(try VsockOptions(parsing: "cid=3,uds=/nonexistent-dir/v.sock")) {
            XCTAssertEqual($0 as? VsockOptionsError, .noDirectory("/nonexistent-dir/v.sock"))
        }
        let long = "/tmp/" + String(repeating: "x", count: 95)
        XCTAssertThrowsError(try VsockOptions(parsing: "cid=3,uds=\(long)")) {
            XCTAssertEqual($0 as? VsockOptionsError, .pathTooLong(long, max: 96))
        }
    }
}
