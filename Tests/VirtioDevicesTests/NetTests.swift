import XCTest
@testable import KVMKit
@testable import VirtioDevices

final class NetDeviceTests: XCTestCase {
    func testIdentityFeaturesAndConfig() {
        let b = NetBed()
        XCTAssertEqual(b.d.r(VirtioMMIORegister.deviceID), 1)
        let f = b.d.deviceFeatures
        for bit in [NetFeature.mac, NetFeature.mtu, NetFeature.status, NetFeature.csum, NetFeature.guestCSUM,
                    NetFeature.hostTSO4, NetFeature.hostTSO6, NetFeature.guestTSO4, NetFeature.guestTSO6,
                    NetFeature.mergeableRxBuffers, VirtioFeature.eventIndex] {
            XCTAssertNotEqual(f & bit, 0, "feature \(bit)")
        }
        let config = (0..<12).map { UInt8(b.t.read(offset: VirtioMMIORegister.config + UInt64($0), size: 1)) }
        XCTAssertEqual(Array(config[0..<6]), [0x52, 0x54, 0x00, 0x12, 0x34, 0x56])
        XCTAssertEqual(config[6], 1, "link up")
        XCTAssertEqual(UInt16(config[10]) | UInt16(config[11]) << 8, 1500)
    }

    func testOffloadsFollowTheGuestsFeatures() {
        let b = NetBed(features: VirtioFeature.version1 | NetFeature.guestCSUM | NetFeature.guestTSO4 | NetFeature.guestTSO6)
        XCTAssertEqual(b.backend.offloads, 0x01 | 0x02 | 0x04)
        XCTAssertEqual(NetFeature.tapOffloads(accepted: NetFeature.guestTSO4), 0, "TSO without checksum offload is not usable")
    }

    func testTransmitGathersThePiecesInOrder() {
        let b = NetBed()
        let frame = netFrame(1500)
        b.transmit(frame, pieces: [12, 100, 1400], at: 0)
        b.d.notify(1)
        XCTAssertEqual(b.backend.sent, [frame])
        XCTAssertEqual(b.tx.usedIndex, 1)
        XCTAssertEqual(b.tx.usedElement(0).len, 0)
        XCTAssertEqual(b.net.metrics.txFrames, 1)
        XCTAssertEqual(b.net.metrics.txBytes, 1500)
    }

    func testHostileTransmitChainsAreDroppedAndCounted() {
        let b = NetBed()
        b.transmit([UInt8](repeating: 0, count: 20), pieces: [20], at: 0)        // shorter than header + Ethernet
        b.tx.publish([(b.g.alloc(100), 100, true)], at: 1)                          // device-writable
        b.tx.publish([(b.g.alloc(70_000), 70_000, false)], at: 2)                   // larger than 64 KiB + headers
        b.transmit(netFrame(60), pieces: [72], at: 3)                                // a good one after them
        b.d.notify(1)
        let m = b.net.metrics
        XCTAssertEqual(m.drops(.transmitTooShort), 1)
        XCTAssertEqual(m.drops(.transmitWritable), 1)
        XCTAssertEqual(m.drops(.transmitTooLarge), 1)
        XCTAssertEqual(b.backend.sent.count, 1, "the good frame still goes out")
        XCTAssertEqual(b.tx.usedIndex, 4, "every chain is returned")
        XCTAssertFalse(b.d.needsReset)
    }

    func testTransmitWaitsWhileTheTapIsFull() {
        let b = NetBed()
        var writable: [Bool] = []
        b.net.watchWritable = { writable.append($0) }
        b.backend.full = true
        b.transmit(netFrame(60), pieces: [72], at: 0)
        b.d.notify(1)
        XCTAssertEqual(b.tx.usedIndex, 0, "the chain stays with the device")
        XCTAssertEqual(writable, [true])
        b.backend.full = false
        b.d.notify(1)
        XCTAssertEqual(b.backend.sent.count, 1)
        XCTAssertEqual(b.tx.usedIndex, 1)
    }

    func testMergeableReceiveSpansChainsAndSetsNumBuffers() {
        let b = NetBed()
        let a0 = b.postReceive([1500], at: 0)[0]
        let a1 = b.postReceive([1000, 500], at: 1)
        b.postReceive([1500], at: 3)
        var frame = netFrame(2988, seed: 9)   // 3000 bytes with the header
        frame[10] = 0xee                       // num_buffers from the tap is garbage
        b.backend.inbound = [frame]
        b.d.notify(0)
        XCTAssertEqual(b.g.usedIndex, 2)
        XCTAssertEqual(b.g.usedElement(0).len, 1500)
        XCTAssertEqual(b.g.usedElement(1).len, 1500)
        let got = b.g.bytes(at: a0, 1500) + b.g.bytes(at: a1[0], 1000) + b.g.bytes(at: a1[1], 500)
        XCTAssertEqual(got[10], 2, "num_buffers")
        XCTAssertEqual(got[11], 0)
        XCTAssertEqual(Array(got[12...]), Array(frame[12...]))
        XCTAssertEqual(b.net.metrics.rxFrames, 1)
        XCTAssertGreaterThan(b.line.triggers, 0)
    }

    func testWithoutMergeableBuffersAFrameMustFitOneChain() {
        let b = NetBed(features: VirtioFeature.version1)
        b.postReceive([1526], at: 0)
        b.backend.inbound = [netFrame(3000), netFrame(100)]
        b.d.notify(0)
        XCTAssertEqual(b.net.metrics.drops(.receiveTooLarge), 1)
        XCTAssertEqual(b.g.usedIndex, 1, "the chain went back and took the next frame")
        XCTAssertEqual(b.g.usedElement(0).len, 112)
    }

    func testAFrameWaitsForBuffersThenArrives() {
        let b = NetBed()
        b.backend.inbound = [netFrame(100)]
        b.d.notify(0)
        XCTAssertEqual(b.net.metrics.rxNoBuffers, 1)
        XCTAssertEqual(b.g.usedIndex, 0)
        XCTAssertTrue(b.backend.inbound.isEmpty, "read from the backend and held")
        b.postReceive([2048], at: 0)
        b.d.notify(0)
        XCTAssertEqual(b.g.usedIndex, 1)
        XCTAssertEqual(b.g.usedElement(0).len, 112)
    }

    func testHostileReceiveChainsAreReturnedEmptyAndCounted() {
        let b = NetBed()
        b.g.publish(b.g.chain(at: 0, [(b.g.alloc(64), 64, false), (b.g.alloc(2048), 2048, true)]))  // readable part
        b.g.publish(b.g.chain(at: 2, [(b.g.alloc(8), 8, true)]))                                     // smaller than the header
        b.postReceive([2048], at: 3)
        b.backend.inbound = [netFrame(100), netFrame(100), netFrame(100)]
        b.d.notify(0)
        XCTAssertEqual(b.net.metrics.drops(.receiveChainInvalid), 2)
        XCTAssertEqual(b.g.usedIndex, 3)
        XCTAssertEqual(b.g.usedElement(0).len, 0)
        XCTAssertEqual(b.g.usedElement(1).len, 0)
        XCTAssertEqual(b.g.usedElement(2).len, 112)
        XCTAssertFalse(b.d.needsReset)
    }

    func testPausedDeviceTouchesNothingUntilResumed() {
        let b = NetBed()
        b.postReceive([2048], at: 0)
        b.transmit(netFrame(60), pieces: [72], at: 0)
        b.backend.inbound = [netFrame(100)]
        b.net.pause()
        b.d.notify(0); b.d.notify(1)
        XCTAssertEqual(b.g.usedIndex, 0)
        XCTAssertEqual(b.tx.usedIndex, 0)
        XCTAssertTrue(b.backend.sent.isEmpty)
        b.net.resume()  // kicks both queues (inline here)
        XCTAssertEqual(b.g.usedIndex, 1)
        XCTAssertEqual(b.tx.usedIndex, 1)
    }

    func testTransmitRateLimitHoldsFramesUntilTheTimer() {
        let b = NetBed(txLimit: RateLimiterConfig(bandwidth: .init(size: 1000, refillTimeMs: 1000)))
        for i in 0..<3 { b.transmit(netFrame(600), pieces: [612], at: i) }
        b.d.notify(1)
        XCTAssertEqual(b.backend.sent.count, 1)
        XCTAssertEqual(b.armed.map(\.0), [VirtioNet.transmitQueue])
        XCTAssertEqual(b.armed.first?.1, 100_000_000, "the 200 missing bytes take 200 ms; the wait is capped at 100 ms")
        XCTAssertEqual(b.net.metrics.txRateLimited, 1)
        b.now = 100_000_000  // a notification before the timer: still blocked
        b.d.notify(1)
        XCTAssertEqual(b.backend.sent.count, 1)
        b.now = 700_000_000
        b.d.notify(1)
        XCTAssertEqual(b.backend.sent.count, 2)
    }

    func testReceiveRateLimitLeavesTheFrameWaiting() {
        let b = NetBed(rxLimit: RateLimiterConfig(ops: .init(size: 1, refillTimeMs: 1000)))
        b.postReceive([2048], at: 0); b.postReceive([2048], at: 1)
        b.backend.inbound = [netFrame(100), netFrame(100)]
        b.d.notify(0)
        XCTAssertEqual(b.g.usedIndex, 1)
        XCTAssertEqual(b.armed.map(\.0), [VirtioNet.receiveQueue])
        b.now = 1_000_000_000
        b.d.notify(0)
        XCTAssertEqual(b.g.usedIndex, 2)
    }

    func testBackendGoneTakesTheLinkDownOnce() {
        let b = NetBed()
        b.postReceive([2048], at: 0)
        b.backend.gone = true
        let before = b.line.triggers
        b.d.notify(0)
        b.d.notify(0)
        XCTAssertEqual(b.net.metrics.linkDownEvents, 1)
        XCTAssertEqual(b.reports.count, 1)
        XCTAssertTrue(b.reports[0].contains("fake0 is gone"), b.reports[0])
        XCTAssertEqual(b.t.read(offset: VirtioMMIORegister.config + 6, size: 2), 0, "link down in config status")
        XCTAssertNotEqual(b.t.interrupt.status & VirtioInterruptBit.configChange, 0)
        XCTAssertGreaterThan(b.line.triggers, before)
        b.transmit(netFrame(60), pieces: [72], at: 0)
        b.d.notify(1)
        XCTAssertEqual(b.tx.usedIndex, 1, "transmit chains are returned, not held")
    }
}

final class MACAddressTests: XCTestCase {
    func testParsing() {
        XCTAssertEqual(MACAddress("52:54:00:AB:cd:ef")?.bytes, [0x52, 0x54, 0, 0xab, 0xcd, 0xef])
        XCTAssertEqual(MACAddress("52-54-00-ab-cd-ef")?.description, "52:54:00:ab:cd:ef")
        for bad in ["", "52:54:00:ab:cd", "52:54:00:ab:cd:ef:01", "5:54:00:ab:cd:ef", "zz:54:00:ab:cd:ef", "525400abcdef"] {
            XCTAssertNil(MACAddress(bad), bad)
        }
        let m = MACAddress.local(seed: 7)
        XCTAssertEqual(m.bytes[0], 0x02)
        XCTAssertFalse(m.isMulticast)
        XCTAssertNotEqual(m, MACAddress.local(seed: 8))
    }
}
