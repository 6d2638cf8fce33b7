@testable import KVMKit
import XCTest
@testable import VirtioDevices

final class TransportTests: XCTestCase {
    typealias R = VirtioMMIORegister
    var guest: FakeGuest!
    var line: RecordingLine!
    var rng: VirtioRng!
    var t: VirtioMMIOTransport!
    var d: MMIODriver!

    override func setUp() {
        guest = FakeGuest()
        line = RecordingLine()
        rng = VirtioRng()
        t = try! VirtioMMIOTransport(device: rng, memory: guest.memory, interrupt: line, notify: .inline)
        d = MMIODriver(t: t)
    }

    func testIdentificationRegisters() {
        XCTAssertEqual(d.r(R.magicValue), 0x7472_6976)
        XCTAssertEqual(d.r(R.version), 2)
        XCTAssertEqual(d.r(R.deviceID), 4)
        XCTAssertEqual(d.r(R.vendorID), R.vendor)
        XCTAssertEqual(d.deviceFeatures & VirtioFeature.version1, VirtioFeature.version1)
        XCTAssertEqual(d.deviceFeatures & VirtioFeature.eventIndex, VirtioFeature.eventIndex)
        d.w(R.deviceFeaturesSel, 7)
        XCTAssertEqual(d.r(R.deviceFeatures), 0)
    }

    func testWrongWidthAndUnknownRegistersAreCountedNotFatal() {
        XCTAssertEqual(t.read(offset: R.magicValue, size: 1), 0)
        XCTAssertEqual(t.read(offset: 0x002, size: 4), 0)
        XCTAssertEqual(d.r(R.queueDescLow), 0)  // write-only
        d.w(R.magicValue, 1)                   // read-only
        d.w(0x0f0, 1)
        XCTAssertEqual(t.metrics.invalidAccesses, 5)
    }

    func testStatusSequenceAndReset() {
        XCTAssertTrue(d.negotiate(VirtioFeature.version1))
        d.setupQueue(0, size: 16, desc: guest.descTable, avail: guest.avail, used: guest.used)
        d.driverOK()
        XCTAssertEqual(d.status, 0xf)
        XCTAssertEqual(t.metrics.activations, 1)
        d.w(R.status, 0)
        XCTAssertEqual(d.status, 0)
        d.w(R.queueSel, 0)
        XCTAssertEqual(d.r(R.queueReady), 0)
        XCTAssertEqual(t.metrics.resets, 2)
    }

    func testOutOfOrderStatusIsIgnored() {
        d.w(R.status, VirtioStatus.driver)  // DRIVER without ACKNOWLEDGE
        XCTAssertEqual(d.status, 0)
        d.w(R.status, VirtioStatus.acknowledge)
        d.w(R.status, VirtioStatus.acknowledge | VirtioStatus.driver | VirtioStatus.driverOK)  // skips FEATURES_OK
        XCTAssertEqual(d.status, VirtioStatus.acknowledge)
        d.w(R.status, VirtioStatus.acknowledge | VirtioStatus.driver)
        d.w(R.status, VirtioStatus.acknowledge)  // clearing a bit
        XCTAssertEqual(d.status, VirtioStatus.acknowledge | VirtioStatus.driver)
        XCTAssertEqual(t.metrics.invalidStatusTransitions, 3)
        d.w(R.status, VirtioStatus.failed)
        XCTAssertNotEqual(d.status & VirtioStatus.failed, 0)
    }

    func testFeaturesOKRequiresVersion1() {
        XCTAssertFalse(d.negotiate(0))
        XCTAssertEqual(d.status & VirtioStatus.featuresOK, 0)
    }

    func testFeaturesOKRefusesUnofferedFeatures() {
        XCTAssertFalse(d.negotiate(VirtioFeature.version1 | 1 << 34))  // RING_PACKED not offered
        XCTAssertTrue(d.negotiate(VirtioFeature.version1 | VirtioFeature.eventIndex))
    }

    func testDriverFeaturesIgnoredAfterFeaturesOK() {
        XCTAssertTrue(d.negotiate(VirtioFeature.version1))
        d.w(R.driverFeaturesSel, 1); d.w(R.driverFeatures, 0)
        XCTAssertEqual(t.metrics.invalidAccesses, 1)
    }

    func testQueueNumMaxAndMissingQueue() {
        d.w(R.queueSel, 0)
        XCTAssertEqual(d.r(R.queueNumMax), UInt32(VirtioRng.queueSize))
        d.w(R.queueSel, 1)
        XCTAssertEqual(d.r(R.queueNumMax), 0)
        d.w(R.queueNum, 8)  // no such queue
        XCTAssertEqual(t.metrics.invalidAccesses, 1)
    }

    func testBadQueueSizeSetsNeedsResetAtDriverOK() {
        _ = d.negotiate(VirtioFeature.version1)
        d.setupQueue(0, size: 12, desc: guest.descTable, avail: guest.avail, used: guest.used)
        d.driverOK()
        XCTAssertTrue(d.needsReset)
        XCTAssertEqual(d.r(R.interruptStatus) & VirtioInterruptBit.configChange, VirtioInterruptBit.configChange)
        XCTAssertEqual(line.triggers, 1)
        // Notifications are ignored until reset; reset clears NEEDS_RESET.
        d.notify(0)
        d.w(R.status, 0)
        XCTAssertEqual(d.status, 0)
        XCTAssertEqual(d.r(R.interruptStatus), 0)
    }

    func testRingOutOfRangeSetsNeedsReset() {
        _ = d.negotiate(VirtioFeature.version1)
        d.setupQueue(0, size: 16, desc: 0xffff_0000_0000, avail: guest.avail, used: guest.used)
        d.driverOK()
        XCTAssertTrue(d.needsReset)
        XCTAssertNotNil(t.metrics.lastError)
    }

    func testQueueRegistersFrozenOnceReady() {
        _ = d.negotiate(VirtioFeature.version1)
        d.setupQueue(0, size: 16, desc: guest.descTable, avail: guest.avail, used: guest.used)
        d.w(R.queueNum, 3)  // ignored: queue is ready
        d.driverOK()
        XCTAssertFalse(d.needsReset)
    }

    func testInterruptStatusAndAck() {
        d.start(guest)
        let buf = guest.alloc(32)
        guest.setDescriptor(0, buf, 32, VirtqDescriptorFlag.write)
        guest.publish(0)
        d.notify(0)
        XCTAssertEqual(d.r(R.interruptStatus), VirtioInterruptBit.usedBuffer)
        XCTAssertEqual(line.triggers, 1)
        d.w(R.interruptACK, VirtioInterruptBit.usedBuffer)
        XCTAssertEqual(d.r(R.interruptStatus), 0)
    }

    func testHostileChainSetsNeedsResetAndConfigInterrupt() {
        d.start(guest)
        let a = guest.alloc(16)
        guest.setDescriptor(0, a, 16, VirtqDescriptorFlag.next | VirtqDescriptorFlag.write, next: 0)
        guest.publish(0)
        d.notify(0)
        XCTAssertTrue(d.needsReset)
        XCTAssertEqual(d.r(R.interruptStatus), VirtioInterruptBit.configChange)
        // The driver writing back status with the bit set keeps it; more notifies are ignored.
        d.w(R.status, d.status)
        d.notify(0)
        XCTAssertTrue(d.needsReset)
        XCTAssertEqual(guest.usedIndex, 0)
    }

    func testEventFDNotifyMode() throws {
        let t2 = try VirtioMMIOTransport(device: VirtioRng(), memory: guest.memory, interrupt: line)
        XCTAssertEqual(t2.notifyEventFDs.count, 1)
        let d2 = MMIODriver(t: t2)
        d2.start(guest)
        let buf = guest.alloc(8)
        guest.setDescriptor(0, buf, 8, VirtqDescriptorFlag.write)
        guest.publish(0)
        d2.notify(0)  // MMIO fallback: signals the eventfd, does not process inline
        XCTAssertEqual(guest.usedIndex, 0)
        var value: UInt64 = 0
        XCTAssertEqual(read(t2.notifyEventFDs[0], &value, 8), 8)
        XCTAssertEqual(value, 1)
        t2.handleNotify(queue: 0)  // what the event loop does
        XCTAssertEqual(guest.usedIndex, 1)
    }

    func testConfigGenerationAndConfigSpace() {
        XCTAssertEqual(d.r(R.configGeneration), 0)
        t.configChanged()
        XCTAssertEqual(d.r(R.configGeneration), 1)
        XCTAssertEqual(t.read(offset: 0x100, size: 1), 0)
        XCTAssertEqual(t.read(offset: 0x1000, size: 4), 0)
    }
}
