import Foundation
@testable import KVMKit
import XCTest
@testable import VirtioDevices

/// virtio-net and virtio-vsock saved and rebuilt from their state (no KVM): the guest's
/// view (MAC, link, rings) carries over; vsock's host connections do not, and the guest
/// is told with a transport-reset event.
final class NetVsockStateTests: XCTestCase {
    func testNetStateRoundTripKeepsMACLinkAndRings() throws {
        let b = NetBed()
        b.transmit(netFrame(100), pieces: [12, 100], at: 0)
        b.d.notify(1)
        XCTAssertEqual(b.backend.sent.count, 1)
        b.t.pause()
        let transport = try VirtioTransportState(decoding: b.t.captureState().encodedBytes, context: "test")
        let state = try VirtioNetState(decoding: b.net.captureState().encodedBytes, context: "test")
        XCTAssertEqual(state, VirtioNetState(mac: MACAddress("52:54:00:12:34:56")!, mtu: 1500, linkUp: true))

        let backend = FakeNetBackend()  // the tap, opened again
        let net = VirtioNet(state: state, backend: backend)
        let t = try VirtioMMIOTransport(state: transport, device: net, memory: b.g.memory, interrupt: RecordingLine(), notify: .inline)
        t.resume()
        let config = (0..<7).map { UInt8(t.read(offset: VirtioMMIORegister.config + UInt64($0), size: 1)) }
        XCTAssertEqual(config, [0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 1])
        // The next frame on the transmit ring goes out of the new device, not the old one.
        let frame = netFrame(200, seed: 7)
        b.transmit(frame, pieces: [12, 200], at: 2)
        MMIODriver(t: t).notify(1)
        XCTAssertEqual(backend.sent, [frame])
        XCTAssertEqual(b.backend.sent.count, 1)
        XCTAssertEqual(b.tx.usedElement(1).id, 2)
    }

    func testNetStateKeepsALinkThatWasDown() throws {
        let b = NetBed()
        b.backend.gone = true
        b.postReceive([2048], at: 0)
        b.d.notify(0)
        let state = try VirtioNetState(decoding: b.net.captureState().encodedBytes, context: "test")
        XCTAssertFalse(state.linkUp)
        let net = VirtioNet(state: state, backend: FakeNetBackend())
        var status = [UInt8](repeating: 0, count: 2)
        status.withUnsafeMutableBytes { net.readConfig(offset: 6, into: $0) }
        XCTAssertEqual(status, [0, 0])
    }

    /// Each direction's rate limiter goes on from what it had left.
    func testNetStateKeepsRateLimiterLevels() throws {
        let tx = RateLimiterConfig(ops: .init(size: 5, refillTimeMs: 3_600_000))
        let rx = RateLimiterConfig(bandwidth: .init(size: 10_000, refillTimeMs: 3_600_000))
        let b = NetBed(rxLimit: rx, txLimit: tx)
        XCTAssertTrue(b.net.txLimiter.consume(bytes: 100, now: 0))
        XCTAssertTrue(b.net.txLimiter.consume(bytes: 100, now: 0))
        XCTAssertTrue(b.net.rxLimiter.consume(bytes: 2500, now: 0))
        let state = try VirtioNetState(decoding: b.net.captureState().encodedBytes, context: "test")
        XCTAssertEqual(state.txLimit, RateLimiterLevels(ops: .init(budget: 3, oneTimeBurst: 0)))
        XCTAssertEqual(state.rxLimit, RateLimiterLevels(bandwidth: .init(budget: 7500, oneTimeBurst: 0)))
        let net = VirtioNet(state: state, backend: FakeNetBackend(), rxLimit: rx, txLimit: tx)
        XCTAssertEqual(net.txLimiter.ops?.budget, 3)
        XCTAssertEqual(net.rxLimiter.bandwidth?.budget, 7500)
    }

    func testNetStateRejectsAShortMAC() {
        var w = StateWriter()
        w.write(bytes: [1, 2, 3]); w.write(UInt16(1500)); w.write(true)
        XCTAssertThrowsError(try VirtioNetState(decoding: w.bytes, context: "test"))
    }

    func testVsockRestoreDropsConnectionsPostsTransportResetAndAcceptsANewOne() throws {
        let b = try VsockBed()
        let ev = ExtraRing(g: b.g, slot: 2)
        let event = b.g.alloc(8, fill: 0xee)
        ev.publish([(event, 8, true)], at: 0)
        // A host connection, established.
        let c = connectUnix(b.path)
        defer { close(c) }
        writeAll(c, Array("CONNECT 52\n".utf8))
        b.listenerReady()
        guard let req = b.receive().first?.0 else { return XCTFail("no request") }
        b.send(.response, src: 52, dst: req.srcPort)
        XCTAssertEqual(b.vsock.connectionCount, 1)
        b.t.pause()

        let r = try VsockBed(restoring: b)
        XCTAssertEqual(r.vsock.connectionCount, 0)
        XCTAssertEqual(ev.usedIndex, 0, "nothing posted before the device runs")
        r.t.resume()
        XCTAssertEqual(ev.usedIndex, 1)
        XCTAssertEqual(ev.usedElement(0).id, 0)
        XCTAssertEqual(ev.usedElement(0).len, 4)
        XCTAssertEqual(b.g.bytes(at: event, 8), [0, 0, 0, 0, 0xee, 0xee, 0xee, 0xee], "VIRTIO_VSOCK_EVENT_TRANSPORT_RESET")
        XCTAssertEqual(r.vsock.metrics.transportResetEvents, 1)
        // Posted once: another event buffer stays available.
        ev.publish([(b.g.alloc(8), 8, true)], at: 1)
        r.d.notify(2)
        XCTAssertEqual(ev.usedIndex, 1)

        // A new host client reaches the guest through the restored device.
        let c2 = connectUnix(r.path)
        defer { close(c2) }
        writeAll(c2, Array("CONNECT 53\n".utf8))
        r.listenerReady()
        let got = r.receive()
        XCTAssertEqual(got.map(\.0.knownOp), [.request])
        guard let req2 = got.first?.0 else { return }
        XCTAssertEqual(req2.dstPort, 53)
        r.send(.response, src: 53, dst: req2.srcPort)
        XCTAssertEqual(String(decoding: readAvailable(c2), as: UTF8.self), "OK \(req2.srcPort)\n")
        withExtendedLifetime(b) {}
    }

    func testVsockStateForAnotherDeviceIsRefused() throws {
        let dir = NSTemporaryDirectory()
        let s = VirtioVsockState(guestCID: 3, udsPath: dir + "a.sock")
        XCTAssertThrowsError(try VirtioVsock(state: s, options: VsockOptions(cid: 4, udsPath: dir + "a.sock")))
        let decoded = try VirtioVsockState(decoding: s.encodedBytes, context: "test")
        XCTAssertEqual(decoded, s)
    }
}
