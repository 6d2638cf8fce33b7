import XCTest
@testable import KVMKit

final class I8042Tests: XCTestCase {
    private var resets = 0
    private var kbc: I8042!

    override func setUp() {
        resets = 0
        kbc = I8042(onReset: { [unowned self] in self.resets += 1 })
    }

    private var status: UInt8 { UInt8(kbc.read(offset: 4, size: 1)) }
    private var data: UInt8 { UInt8(kbc.read(offset: 0, size: 1)) }
    private func command(_ c: UInt8) { kbc.write(offset: 4, size: 1, value: UInt32(c)) }
    private func send(_ d: UInt8) { kbc.write(offset: 0, size: 1, value: UInt32(d)) }

    func testIdleStatusHasNoDataAndIsNotBusy() {
        XCTAssertEqual(status & 0x03, 0, "no output, input buffer empty (reboot=k waits on it)")
        XCTAssertNotEqual(status, 0xFF, "a controller is present")
    }

    func testResetCommandCallsHandler() {
        command(0xFE)
        XCTAssertEqual(resets, 1)
        command(0xFF)  // pulses no line
        XCTAssertEqual(resets, 1)
    }

    func testOutputPortWriteWithBitZeroClearResets() {
        command(0xD1)
        send(0x03)  // A20 on, reset inactive
        XCTAssertEqual(resets, 0)
        command(0xD0)
        XCTAssertEqual(data, 0x03)
        command(0xD1)
        send(0x02)
        XCTAssertEqual(resets, 1)
    }

    func testCommandsAreAnswered() {
        command(0xAA)
        XCTAssertEqual(status & 0x01, 0x01)
        XCTAssertEqual(data, 0x55)
        XCTAssertEqual(status & 0x01, 0)
        command(0xAB)
        XCTAssertEqual(data, 0x00)
        command(0x20)
        XCTAssertEqual(data, 0x45)
        command(0x60)
        send(0x30)
        command(0x20)
        XCTAssertEqual(data, 0x30)
        XCTAssertEqual(status & 0x04, 0, "system flag follows the command byte")
        command(0xD3)
        send(0x5A)
        XCTAssertEqual(status & 0x21, 0x21, "aux byte waiting")
        XCTAssertEqual(data, 0x5A)
        command(0x12)  // unknown: ignored
        XCTAssertEqual(status & 0x01, 0)
        XCTAssertEqual(resets, 0)
    }

    func testKeyboardBytesAreAcknowledgedAndQueueIsBounded() {
        send(0xFF)
        XCTAssertEqual(data, 0xFA)
        XCTAssertEqual(data, 0xAA)
        for _ in 0..<100 { command(0xAA) }
        var n = 0
        while status & 0x01 != 0 { _ = data; n += 1 }
        XCTAssertEqual(n, I8042.outputQueueLimit)
    }
}

final class ACPISleepRegistersTests: XCTestCase {
    func testS5PoweroffCallsHandler() {
        var poweroffs = 0
        let regs = ACPISleepRegisters(onPoweroff: { poweroffs += 1 })
        regs.write(offset: 0, size: 1, value: UInt32(5 << 2))  // SLP_TYP without SLP_EN
        XCTAssertEqual(poweroffs, 0)
        regs.write(offset: 0, size: 1, value: UInt32(5 << 2 | 0x20))
        XCTAssertEqual(poweroffs, 1)
        XCTAssertEqual(ACPISleepRegisters.poweroffSleepType, 5)
    }

    func testOtherSleepStatesWakeAtOnce() {
        var poweroffs = 0
        let regs = ACPISleepRegisters(onPoweroff: { poweroffs += 1 })
        XCTAssertEqual(regs.read(offset: 1, size: 1), 0)
        regs.write(offset: 0, size: 1, value: UInt32(3 << 2 | 0x20))  // S3
        XCTAssertEqual(poweroffs, 0)
        XCTAssertEqual(regs.read(offset: 1, size: 1), 0x80, "WAK_STS")
        regs.write(offset: 1, size: 1, value: 0x80)  // write 1 to clear
        XCTAssertEqual(regs.read(offset: 1, size: 1), 0)
        XCTAssertEqual(regs.read(offset: 0, size: 1), 0)
        regs.write(offset: 0, size: 2, value: UInt32(5 << 2 | 0x20))  // wide write, low byte = control
        XCTAssertEqual(poweroffs, 1)
        regs.write(offset: 7, size: 1, value: 0xFF)
        XCTAssertEqual(regs.read(offset: 7, size: 1), 0xFF)
    }
}

final class DiscardDeviceTests: XCTestCase {
    func testReadsAllOnesIgnoresWrites() {
        let post = PostPort()
        post.write(offset: UInt16(0x0), size: 1, value: UInt32(0x12))
        XCTAssertEqual(post.read(offset: UInt16(0), size: 1), 0xFF)
        XCTAssertEqual(post.read(offset: UInt16(0), size: 2), 0xFFFF)
        XCTAssertEqual(post.read(offset: UInt16(0), size: 4), 0xFFFF_FFFF)
        XCTAssertEqual(post.read(offset: UInt64(0), size: 8), UInt64.max)
        XCTAssertEqual(DiscardDevice.postPort, 0x80)
    }
}

final class PlatformDeviceStateTests: XCTestCase {
    func testI8042StateRoundTrip() throws {
        let kbc = I8042(onReset: {})
        kbc.write(offset: 4, size: 1, value: 0xAA)
        kbc.write(offset: 4, size: 1, value: 0xD3)
        kbc.write(offset: 0, size: 1, value: 0x11)
        kbc.write(offset: 4, size: 1, value: 0x60)
        let state = kbc.captureState()
        XCTAssertEqual(state.outputBytes, [0x55, 0x11])
        XCTAssertEqual(state.outputFromAux, [false, true])
        XCTAssertEqual(state.pendingCommand, 0x60)
        let copy = I8042(onReset: {})
        try copy.restoreState(state)
        XCTAssertEqual(copy.captureState(), state)
        copy.write(offset: 0, size: 1, value: 0x00)  // completes the pending 0x60
        XCTAssertEqual(copy.captureState().commandByte, 0x00)
        var bad = state
        bad.pendingCommand = 0xAA
        XCTAssertThrowsError(try copy.restoreState(bad))
        bad = state
        bad.outputFromAux = []
        XCTAssertThrowsError(try copy.restoreState(bad))
    }

    func testACPISleepStatusRoundTrip() {
        let regs = ACPISleepRegisters(onPoweroff: {})
        regs.write(offset: 0, size: 1, value: UInt32(1 << 2 | 0x20))
        let copy = ACPISleepRegisters(onPoweroff: {})
        copy.sleepStatus = regs.sleepStatus
        XCTAssertEqual(copy.read(offset: 1, size: 1), 0x80)
    }
}
