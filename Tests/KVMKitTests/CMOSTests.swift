import TestSupport
import XCTest
@testable import KVMKit

final class CMOSTests: XCTestCase {
    /// 2026-11-21 14:05:09 UTC, a Saturday.
    private static let saturdayAfternoon: Int64 = 1_795_269_909
    private let gib: UInt64 = 1 << 30

    private func cmos(at time: Int64 = saturdayAfternoon, below: UInt64 = 3 << 30, above: UInt64 = 2 << 30) -> CMOS {
        CMOS(ramBelow4GiB: below, ramAbove4GiB: above, clock: { time })
    }

    private func read(_ c: CMOS, _ index: UInt8) -> UInt8 {
        c.write(offset: 0, size: 1, value: UInt32(index))
        return UInt8(c.read(offset: 1, size: 1))
    }

    private func write(_ c: CMOS, _ index: UInt8, _ value: UInt8) {
        c.write(offset: 0, size: 1, value: UInt32(index))
        c.write(offset: 1, size: 1, value: UInt32(value))
    }

    func testBCDTimeFromFixedClock() {
        let c = cmos()
        XCTAssertEqual(read(c, 0x00), 0x09)
        XCTAssertEqual(read(c, 0x02), 0x05)
        XCTAssertEqual(read(c, 0x04), 0x14)
        XCTAssertEqual(read(c, 0x06), 0x07, "Saturday = 7 (Sunday = 1)")
        XCTAssertEqual(read(c, 0x07), 0x21)
        XCTAssertEqual(read(c, 0x08), 0x11)
        XCTAssertEqual(read(c, 0x09), 0x26)
        XCTAssertEqual(read(c, 0x32), 0x20)
    }

    func testStatusRegisters() {
        let c = cmos()
        XCTAssertEqual(read(c, 0x0A), 0x26, "UIP clear, 32.768 kHz divider")
        XCTAssertEqual(read(c, 0x0B), 0x02, "24-hour, BCD")
        XCTAssertEqual(read(c, 0x0C), 0x00)
        XCTAssertEqual(read(c, 0x0D), 0x80, "valid RAM and time")
        write(c, 0x0A, 0xA6)
        XCTAssertEqual(read(c, 0x0A), 0x26, "UIP is read-only")
        write(c, 0x0D, 0x00)
        XCTAssertEqual(read(c, 0x0D), 0x80)
    }

    func testBinaryModeAndTwelveHourClock() {
        let c = cmos()
        write(c, 0x0B, 0x06)  // binary, 24-hour
        XCTAssertEqual(read(c, 0x00), 9)
        XCTAssertEqual(read(c, 0x04), 14)
        XCTAssertEqual(read(c, 0x07), 21)
        XCTAssertEqual(read(c, 0x09), 26)
        XCTAssertEqual(read(c, 0x32), 20)
        write(c, 0x0B, 0x04)  // binary, 12-hour
        XCTAssertEqual(read(c, 0x04), 0x80 | 2, "2 PM")
        write(c, 0x0B, 0x00)  // BCD, 12-hour
        XCTAssertEqual(read(c, 0x04), 0x82)
        let midnight = cmos(at: 1_795_221_000)  // 00:30
        write(midnight, 0x0B, 0x00)
        XCTAssertEqual(read(midnight, 0x04), 0x12, "12 AM")
        XCTAssertEqual(read(midnight, 0x02), 0x30)
    }

    func testCenturyRollover() {
        let c = cmos(at: 946_684_798)  // 1999-12-31 23:59:58
        XCTAssertEqual(read(c, 0x09), 0x99)
        XCTAssertEqual(read(c, 0x32), 0x19)
        XCTAssertEqual(read(c, 0x08), 0x12)
    }

    func testGuestSettingTheClockMovesAnOffset() {
        let clock = SettableClock(CMOSTests.saturdayAfternoon)
        let c = CMOS(ramBelow4GiB: gib, ramAbove4GiB: 0, clock: { clock.now })
        write(c, 0x02, 0x30)  // minutes := 30
        XCTAssertEqual(read(c, 0x02), 0x30)
        XCTAssertEqual(read(c, 0x04), 0x14)
        clock.advance(by: 60)
        XCTAssertEqual(read(c, 0x02), 0x31, "the clock keeps running")
        write(c, 0x09, 0x27)
        XCTAssertEqual(read(c, 0x09), 0x27)
        XCTAssertEqual(c.captureState().clockOffset, 25 * 60 + 365 * 86_400)
        // Nonsense BCD: 0xFF decodes leniently to 15 × 10 + 15 = 165 hours, taken modulo 24 = 21;
        // no trap, and the date does not move (165 hours would be days).
        let (minutes, day, month, year) = (read(c, 0x02), read(c, 0x07), read(c, 0x08), read(c, 0x09))
        write(c, 0x04, 0xFF)
        XCTAssertEqual(read(c, 0x04), 0x21)
        XCTAssertEqual([read(c, 0x02), read(c, 0x07), read(c, 0x08), read(c, 0x09)], [minutes, day, month, year])
    }

    func testMemorySizeFields() {
        let c = cmos(below: 3 * gib, above: 2 * gib)
        XCTAssertEqual(read(c, 0x15), 0x80)  // 640 KiB
        XCTAssertEqual(read(c, 0x16), 0x02)
        XCTAssertEqual(read(c, 0x17), 0xFF, "extended KiB capped at 0xFFFF")
        XCTAssertEqual(read(c, 0x18), 0xFF)
        // (3 GiB − 16 MiB) / 64 KiB = 48896 = 0xBF00
        XCTAssertEqual(read(c, 0x34), 0x00)
        XCTAssertEqual(read(c, 0x35), 0xBF)
        // 2 GiB / 64 KiB = 0x8000
        XCTAssertEqual(read(c, 0x5B), 0x00)
        XCTAssertEqual(read(c, 0x5C), 0x80)
        XCTAssertEqual(read(c, 0x5D), 0x00)
        let sum = (0x10...0x2D).reduce(0) { $0 + Int(read(c, UInt8($1))) }
        XCTAssertEqual(Int(read(c, 0x2E)) << 8 | Int(read(c, 0x2F)), sum)

        let small = cmos(below: 512 << 20, above: 0)
        XCTAssertEqual(read(small, 0x34), 0x00)
        XCTAssertEqual(read(small, 0x35), 0x1F, "(512 − 16) MiB / 64 KiB = 0x1F00")
        XCTAssertEqual(read(small, 0x5B) | read(small, 0x5C) | read(small, 0x5D), 0)
        let tiny = cmos(below: 8 << 20, above: 0)
        XCTAssertEqual(read(tiny, 0x34) | read(tiny, 0x35), 0)
        XCTAssertEqual(Int(read(tiny, 0x18)) << 8 | Int(read(tiny, 0x17)), 7 * 1024)
    }

    func testScratchBytesIndexPortAndNMI() throws {
        let c = cmos()
        write(c, 0x40, 0xAB)
        XCTAssertEqual(read(c, 0x40), 0xAB)
        c.write(offset: 0, size: 1, value: 0x80 | 0x40)
        XCTAssertTrue(c.isNMIDisabled)
        XCTAssertEqual(c.read(offset: 1, size: 1), 0xAB, "bit 7 is NMI, not index")
        XCTAssertEqual(c.read(offset: 0, size: 1), 0xFF, "index port is write-only")
        c.write(offset: 0, size: 1, value: 0x7F)
        XCTAssertFalse(c.isNMIDisabled)

        let state = c.captureState()
        let copy = cmos()
        try copy.restoreState(state)
        XCTAssertEqual(copy.captureState(), state)
        XCTAssertEqual(read(copy, 0x40), 0xAB)
        var bad = state
        bad.bytes = [0]
        XCTAssertThrowsError(try copy.restoreState(bad))
    }
}
