import Foundation
import XCTest
@testable import KVMKit
@testable import VirtioDevices

final class VsockDeviceTests: XCTestCase {
    func testConfigAndIdentity() throws {
        let b = try VsockBed()
        XCTAssertEqual(b.d.r(VirtioMMIORegister.deviceID), 19)
        XCTAssertEqual(b.t.read(offset: VirtioMMIORegister.config, size: 8), 3, "guest_cid")
    }

    func testGuestConnectsToAHostListener() throws {
        let b = try VsockBed()
        let l = listenUnix(b.path + "_5000")
        defer { close(l) }
        b.send(.request, src: 1234, dst: 5000)
        let host = accept(l, nil, nil)
        XCTAssertGreaterThanOrEqual(host, 0)
        defer { close(host) }
        let r = b.receive()
        XCTAssertEqual(r.map(\.0.knownOp), [.response])
        XCTAssertEqual(r.first.map { [$0.0.srcPort, $0.0.dstPort] }, [5000, 1234])
        XCTAssertEqual(r.first?.0.bufAlloc, VirtioVsock.bufferSize)
        // Guest → host.
        b.send(.rw, src: 1234, dst: 5000, payload: Array("hello host".utf8))
        XCTAssertEqual(String(decoding: readAvailable(host), as: UTF8.self), "hello host")
        // Host → guest.
        writeAll(host, Array("hello guest".utf8))
        let data = b.receive()
        XCTAssertEqual(data.map(\.0.knownOp), [.rw])
        XCTAssertEqual(String(decoding: data.first?.1 ?? [], as: UTF8.self), "hello guest")
        // The guest closes: the host sees EOF, the guest gets RST.
        b.send(.shutdown, src: 1234, dst: 5000, flags: VsockHeader.shutdownBoth)
        XCTAssertEqual(b.receive().map(\.0.knownOp), [.reset])
        XCTAssertEqual(readAvailable(host), [])
        XCTAssertEqual(b.vsock.connectionCount, 0)
    }

    /// SHUTDOWN(send) from the guest half-closes the host socket: the host reads EOF and
    /// can still answer.
    func testGuestHalfCloseReachesTheHost() throws {
        let b = try VsockBed()
        let l = listenUnix(b.path + "_5000")
        defer { close(l) }
        b.send(.request, src: 7, dst: 5000)
        let host = accept(l, nil, nil)
        defer { close(host) }
        _ = b.receive()
        b.send(.rw, src: 7, dst: 5000, payload: Array("request".utf8))
        b.send(.shutdown, src: 7, dst: 5000, flags: VsockHeader.shutdownSend)
        XCTAssertEqual(String(decoding: UnixSocketTestRead.all(host), as: UTF8.self), "request", "bytes, then EOF")
        writeAll(host, Array("answer".utf8))
        XCTAssertEqual(String(decoding: b.receive().flatMap(\.1), as: UTF8.self), "answer")
        XCTAssertEqual(b.vsock.connectionCount, 1)
    }

    func testGuestConnectWithoutListenerIsReset() throws {
        let b = try VsockBed()
        b.send(.request, src: 1234, dst: 6000)
        let r = b.receive()
        XCTAssertEqual(r.map(\.0.knownOp), [.reset])
        XCTAssertEqual(r.first.map { [$0.0.srcPort, $0.0.dstPort] }, [6000, 1234])
        XCTAssertEqual(b.vsock.metrics.refusedConnections, 1)
    }

    func testHostConnectsToAGuestListener() throws {
        let b = try VsockBed()
        let c = connectUnix(b.path)
        defer { close(c) }
        writeAll(c, Array("CONNECT 52\nearly bytes".utf8))
        b.listenerReady()
        let r = b.receive()
        XCTAssertEqual(r.map(\.0.knownOp), [.request])
        guard let req = r.first?.0 else { return }
        XCTAssertEqual(req.dstPort, 52)
        XCTAssertGreaterThanOrEqual(req.srcPort, 1 << 30)
        b.send(.response, src: 52, dst: req.srcPort)
        XCTAssertEqual(String(decoding: readAvailable(c), as: UTF8.self), "OK \(req.srcPort)\n")
        // Bytes written right after the CONNECT line were not eaten by the handshake.
        let data = b.receive()
        XCTAssertEqual(String(decoding: data.flatMap(\.1), as: UTF8.self), "early bytes")
        // Host EOF: the guest hears SHUTDOWN(send); its RST ends the connection.
        shutdown(c, Int32(SHUT_WR))
        let eof = b.receive()
        XCTAssertEqual(eof.map(\.0.knownOp), [.shutdown])
        XCTAssertEqual(eof.first?.0.flags, VsockHeader.shutdownSend)
        b.send(.reset, src: 52, dst: req.srcPort)
        XCTAssertEqual(b.vsock.connectionCount, 0)
    }

    func testGuestRefusalClosesTheHostClient() throws {
        let b = try VsockBed()
        let c = connectUnix(b.path)
        defer { close(c) }
        writeAll(c, Array("CONNECT 99\n".utf8))
        b.listenerReady()
        guard let req = b.receive().first?.0 else { return XCTFail("no REQUEST") }
        b.send(.reset, src: 99, dst: req.srcPort)
        var byte: UInt8 = 0
        XCTAssertEqual(recv(c, &byte, 1, 0), 0, "EOF, no OK line")
    }

    func testMalformedConnectLineClosesTheClient() throws {
        let b = try VsockBed()
        let c = connectUnix(b.path)
        defer { close(c) }
        writeAll(c, Array("HELLO 52\n".utf8))
        b.listenerReady()
        XCTAssertEqual(b.receive().count, 0)
        var byte: UInt8 = 0
        XCTAssertEqual(recv(c, &byte, 1, 0), 0)
        XCTAssertEqual(b.vsock.metrics.badHandshakes, 1)
    }

    func testHostDataRespectsTheGuestsCredit() throws {
        let b = try VsockBed()
        let l = listenUnix(b.path + "_5000")
        defer { close(l) }
        b.send(.request, src: 1, dst: 5000, bufAlloc: 1000)
        let host = accept(l, nil, nil)
        defer { close(host) }
        _ = b.receive()
        writeAll(host, [UInt8](repeating: 7, count: 3000))
        XCTAssertEqual(b.receive().reduce(0) { $0 + $1.1.count }, 1000, "no more than buf_alloc in flight")
        XCTAssertEqual(b.receive().count, 0)
        b.send(.creditUpdate, src: 1, dst: 5000, bufAlloc: 1000, fwdCnt: 1000)
        XCTAssertEqual(b.receive().reduce(0) { $0 + $1.1.count }, 1000)
    }

    /// A host client that never reads: its connection takes up to its credit and then
    /// is reset when the guest oversteps; another connection carries on meanwhile.
    func testAStuckHostClientBlocksOnlyItself() throws {
        let b = try VsockBed()
        let l1 = listenUnix(b.path + "_1"), l2 = listenUnix(b.path + "_2")
        defer { close(l1); close(l2) }
        b.send(.request, src: 100, dst: 1)
        let stuck = accept(l1, nil, nil)
        b.send(.request, src: 200, dst: 2)
        let live = accept(l2, nil, nil)
        defer { close(stuck); close(live) }
        XCTAssertEqual(b.receive().map(\.0.knownOp), [.response, .response])
        // A small socket buffer, so the stuck client's socket fills at once.
        var small: Int32 = 4096
        for fd in b.vsock.streamByFD.keys where b.vsock.streams[b.vsock.streamByFD[fd]!]?.conn.localPort == 1 {
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        }
        let chunk = [UInt8](repeating: 0x55, count: 64 * 1024)
        for _ in 0..<4 { b.send(.rw, src: 100, dst: 1, payload: chunk) }  // 256 KiB: exactly the credit
        XCTAssertEqual(b.vsock.connectionCount, 2, "within credit: kept, buffered")
        XCTAssertGreaterThan(b.vsock.streams.values.map(\.conn.buffered).max() ?? 0, 128 * 1024)
        b.send(.rw, src: 200, dst: 2, payload: Array("ping".utf8))
        XCTAssertEqual(String(decoding: readAvailable(live), as: UTF8.self), "ping")
        writeAll(live, Array("pong".utf8))
        XCTAssertEqual(String(decoding: b.receive().filter { $0.0.knownOp == .rw }.flatMap(\.1), as: UTF8.self), "pong")
        b.send(.rw, src: 100, dst: 1, payload: chunk)  // beyond the credit
        let r = b.receive()
        XCTAssertTrue(r.contains { $0.0.knownOp == .reset && $0.0.dstPort == 100 }, "\(r.map(\.0))")
        XCTAssertEqual(b.vsock.connectionCount, 1)
    }

    /// Many host clients at once, each joined to its own guest port, each stream's bytes
    /// kept apart.
    func testManyConnectionsAtOnce() throws {
        let b = try VsockBed()
        let n = 40
        let clients = (0..<n).map { _ in connectUnix(b.path) }
        defer { clients.forEach { close($0) } }
        for (i, c) in clients.enumerated() { writeAll(c, Array("CONNECT \(1000 + i)\n".utf8)) }
        b.listenerReady()
        var requests: [VsockHeader] = []
        for _ in 0..<20 where requests.count < n { requests += b.receive().map(\.0).filter { $0.knownOp == .request } }
        XCTAssertEqual(Set(requests.map(\.dstPort)), Set((0..<n).map { UInt32(1000 + $0) }))
        for r in requests { b.send(.response, src: r.dstPort, dst: r.srcPort) }
        XCTAssertEqual(b.vsock.connectionCount, n)
        for (i, c) in clients.enumerated() {
            XCTAssertTrue(String(decoding: readAvailable(c), as: UTF8.self).hasPrefix("OK "), "client \(i)")
            writeAll(c, Array("from client \(i)".utf8))
        }
        var got: [UInt32: String] = [:]
        for _ in 0..<20 where got.count < n {
            for (h, data) in b.receive() where h.knownOp == .rw { got[h.dstPort, default: ""] += String(decoding: data, as: UTF8.self) }
        }
        XCTAssertEqual(got.count, n)
        for i in 0..<n { XCTAssertEqual(got[UInt32(1000 + i)], "from client \(i)") }
    }

    func testPausedDeviceTouchesNothingUntilResumed() throws {
        let b = try VsockBed()
        b.vsock.pause()
        b.send(.request, src: 1234, dst: 6000)  // nobody listens: would be answered with RST
        XCTAssertEqual(b.tx.usedIndex, 0, "the tx chain stays in the ring")
        XCTAssertEqual(b.receive().count, 0)
        b.vsock.resume()  // kicks both queues (inline here)
        XCTAssertEqual(b.tx.usedIndex, 1)
        XCTAssertEqual(b.receive().map(\.0.knownOp), [.reset])
    }

    func testPacketsFromTheWrongCIDOrForNothing() throws {
        let b = try VsockBed()
        b.send(.rw, src: 1, dst: 2, payload: [1, 2, 3], srcCID: 7)
        XCTAssertEqual(b.vsock.metrics.invalidPackets, 1)
        XCTAssertEqual(b.receive().count, 0, "dropped silently")
        b.send(.rw, src: 1, dst: 2, payload: [1, 2, 3])
        XCTAssertEqual(b.receive().map(\.0.knownOp), [.reset], "data for no connection")
        b.send(.reset, src: 1, dst: 2)
        XCTAssertEqual(b.receive().count, 0, "RST is never answered")
        XCTAssertFalse(b.d.needsReset)
    }

    func testSocketFileInUseIsRefused() throws {
        let b = try VsockBed()
        XCTAssertThrowsError(try VirtioVsock(options: VsockOptions(cid: 4, udsPath: b.path))) {
            XCTAssertEqual($0 as? VsockError, .inUse(b.path))
        }
    }
}
