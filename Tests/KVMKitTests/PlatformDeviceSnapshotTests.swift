@testable import KVMKit
import TestSupport
import XCTest

/// Save → encode → decode → build a new device from the state → it behaves the same.
final class PlatformDeviceSnapshotTests: XCTestCase {
    func reencode<S: StateCodable>(_ s: S) throws -> S { try S(decoding: s.encodedBytes, context: "test") }

    func testSerialRoundTripKeepsRegistersFIFOAndInterrupt() throws {
        let line = DeviceTestInterruptLine(), out = DeviceTestOutput()
        let uart = Serial16550(interrupt: line, output: out, inputFlowControl: .always)
        uart.write(offset: UInt16(3), size: 1, value: 0x83)  // DLAB
        uart.write(offset: UInt16(0), size: 1, value: 0x01)  // divisor 1
        uart.write(offset: UInt16(3), size: 1, value: 0x03)  // 8N1
        uart.write(offset: UInt16(2), size: 1, value: 0xC7)  // FIFOs on, trigger 14
        uart.write(offset: UInt16(1), size: 1, value: 0x01)  // receive interrupts
        uart.write(offset: UInt16(7), size: 1, value: 0x5A)
        XCTAssertEqual(uart.enqueueInput(Array("hello".utf8)), 5)
        XCTAssertEqual(uart.read(offset: UInt16(0), size: 1), UInt32(UInt8(ascii: "h")))
        let saved = try reencode(uart.captureState())

        let line2 = DeviceTestInterruptLine(), out2 = DeviceTestOutput()
        let copy = try Serial16550(state: saved, interrupt: line2, output: out2, inputFlowControl: .always)
        XCTAssertTrue(line2.isHigh, "the pending receive interrupt is driven on the new line")
        XCTAssertEqual(copy.read(offset: UInt16(2), size: 1), 0xCC, "character timeout, FIFOs enabled")
        let rest = (0..<4).map { _ in UInt8(copy.read(offset: UInt16(0), size: 1)) }
        XCTAssertEqual(rest, Array("ello".utf8))
        XCTAssertEqual(copy.read(offset: UInt16(7), size: 1), 0x5A)
        XCTAssertFalse(line2.isHigh)
        copy.write(offset: UInt16(0), size: 1, value: 0x41)
        XCTAssertEqual(out2.bytes, [0x41])
        XCTAssertEqual(copy.captureState().lineControl, 0x03)
    }

    func testSerialStateWithOverlongFIFOIsRefused() throws {
        var s = Serial16550.State()
        s.receiveFIFO = [1, 2]  // FIFOs disabled: RBR holds one byte
        XCTAssertThrowsError(try Serial16550(state: try reencode(s), interrupt: DeviceTestInterruptLine(), output: DeviceTestOutput()))
        var w = StateWriter()
        s.receiveFIFO = [UInt8](repeating: 0, count: 65)
        s.encode(to: &w)
        XCTAssertThrowsError(try Serial16550.State(decoding: w.bytes, context: "test"))
    }

    func testCMOSRoundTripKeepsNVRAMAndClockOffset() throws {
        let clock = SettableClock(1_700_000_000)
        let cmos = CMOS(ramBelow4GiB: 512 << 20, ramAbove4GiB: 0, clock: { clock.now })
        cmos.write(offset: 0, size: 1, value: 0x0B); cmos.write(offset: 1, size: 1, value: 0x06)  // binary, 24 h
        cmos.write(offset: 0, size: 1, value: 0x09); cmos.write(offset: 1, size: 1, value: 30)    // year 2030
        cmos.write(offset: 0, size: 1, value: 0x40); cmos.write(offset: 1, size: 1, value: 0x77)  // NVRAM byte
        cmos.write(offset: 0, size: 1, value: 0x80 | 0x35)                                        // NMI off, index 0x35
        let saved = try reencode(cmos.captureState())
        clock.advance(by: 10)
        let copy = try CMOS(state: saved, clock: { clock.now })
        XCTAssertTrue(copy.isNMIDisabled)
        XCTAssertEqual(copy.read(offset: 1, size: 1), cmos.read(offset: 1, size: 1), "same index, memory size byte")
        copy.write(offset: 0, size: 1, value: 0x09)
        cmos.write(offset: 0, size: 1, value: 0x09)
        XCTAssertEqual(copy.read(offset: 1, size: 1), 30, "the guest-set year survives")
        copy.write(offset: 0, size: 1, value: 0x40)
        XCTAssertEqual(copy.read(offset: 1, size: 1), 0x77)
        cmos.write(offset: 0, size: 1, value: 0x40)
        XCTAssertEqual(copy.captureState(), cmos.captureState())
    }

    func testI8042RoundTripKeepsQueueAndPendingCommand() throws {
        var resets = 0
        let kbc = I8042(onReset: { resets += 1 })
        kbc.write(offset: 4, size: 1, value: 0xAA)  // self-test → 0x55 queued
        kbc.write(offset: 4, size: 1, value: 0xD1)  // next data byte is the output port
        let saved = try reencode(kbc.captureState())
        var copyResets = 0
        let copy = try I8042(state: saved, onReset: { copyResets += 1 })
        XCTAssertEqual(copy.read(offset: 4, size: 1) & 1, 1, "output buffer full")
        XCTAssertEqual(copy.read(offset: 0, size: 1), 0x55)
        copy.write(offset: 0, size: 1, value: 0x00)  // output port bit 0 = 0: reset
        XCTAssertEqual(copyResets, 1)
        XCTAssertEqual(resets, 0)
    }

    func testI8042StateWithBadCommandIsRefused() throws {
        var s = I8042(onReset: {}).captureState()
        s.pendingCommand = 0x42
        XCTAssertThrowsError(try I8042(state: try reencode(s), onReset: {})) {
            XCTAssertEqual("\($0)", "i8042 state: 0x42 takes no data byte")
        }
    }

    func testACPISleepStatusRoundTrip() throws {
        var off = 0
        let acpi = ACPISleepRegisters(onPoweroff: { off += 1 })
        acpi.write(offset: 0, size: 1, value: 0x20 | (3 << 2))  // S3: sleeps and wakes at once
        let saved = try reencode(acpi.captureState())
        let copy = ACPISleepRegisters(state: saved, onPoweroff: { off += 10 })
        XCTAssertEqual(copy.read(offset: 1, size: 1), 0x80, "WAK_STS survives")
        copy.write(offset: 0, size: 1, value: 0x20 | (5 << 2))
        XCTAssertEqual(off, 10)
    }
}
