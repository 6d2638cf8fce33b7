import KVMKit
import XCTest

final class GuestMemoryTests: XCTestCase {
    /// Two adjacent regions [0x0, 0x1000) and [0x1000, 0x3000), then a gap, then [0x10000, 0x11000).
    func makeMemory() throws -> GuestMemory {
        try GuestMemory(layout: [(0, 0x1000), (0x1000, 0x2000), (0x10000, 0x1000)])
    }

    func testReadWriteAtEdges() throws {
        let m = try makeMemory()
        try m.store(UInt32(0xdeadbeef), at: 0)
        XCTAssertEqual(try m.load(UInt32.self, at: 0), 0xdeadbeef)
        try m.store(UInt32(0x01020304), at: 0x1000 - 4)
        XCTAssertEqual(try m.load(UInt32.self, at: 0x1000 - 4), 0x01020304)
        try m.store(UInt8(0x7f), at: 0x2fff)
        XCTAssertEqual(try m.load(UInt8.self, at: 0x2fff), 0x7f)
        try m.store(UInt64(42), at: 0x11000 - 8)
        XCTAssertEqual(try m.load(UInt64.self, at: 0x11000 - 8), 42)
        try m.write(at: 0x10010, bytes: [1, 2, 3])
        XCTAssertEqual(try m.readBytes(at: 0x10010, count: 3), [1, 2, 3])
    }

    func testLittleEndianLayout() throws {
        let m = try makeMemory()
        try m.store(UInt32(0x11223344), at: 0x100)
        XCTAssertEqual(try m.readBytes(at: 0x100, count: 4), [0x44, 0x33, 0x22, 0x11])
    }

    func testAccessAcrossTwoRegionsIsAnError() throws {
        let m = try makeMemory()
        XCTAssertThrowsError(try m.load(UInt32.self, at: 0x1000 - 2)) { e in
            XCTAssertEqual(e as? GuestMemoryError, .crossesRegions(address: 0xffe, length: 4))
        }
        XCTAssertThrowsError(try m.readBytes(at: 0x800, count: 0x1000))
    }

    func testAccessBeyondTheEndAndInGaps() throws {
        let m = try makeMemory()
        XCTAssertThrowsError(try m.load(UInt8.self, at: 0x3000)) { e in
            XCTAssertEqual(e as? GuestMemoryError, .outOfBounds(address: 0x3000, length: 1))
        }
        XCTAssertThrowsError(try m.load(UInt32.self, at: 0x2ffe)) { e in
            XCTAssertEqual(e as? GuestMemoryError, .outOfBounds(address: 0x2ffe, length: 4))
        }
        XCTAssertThrowsError(try m.load(UInt64.self, at: 0x11000 - 7))
        XCTAssertThrowsError(try m.store(UInt8(1), at: 0x5000))
        XCTAssertThrowsError(try m.slice(at: 0xFFFF_0000, length: 1))
    }

    func testOverflowingAddressPlusLength() throws {
        let m = try makeMemory()
        XCTAssertThrowsError(try m.slice(at: UInt64.max - 1, length: 4)) { e in
            XCTAssertEqual(e as? GuestMemoryError, .overflow(address: UInt64.max - 1, length: 4))
        }
        XCTAssertThrowsError(try m.slice(at: 0x10, length: UInt64.max))
        XCTAssertThrowsError(try m.load(UInt64.self, at: UInt64.max))
    }

    func testZeroLengthAtEndIsAllowedButNotPastIt() throws {
        let m = try makeMemory()
        XCTAssertEqual(try m.slice(at: 0x3000, length: 0).count, 0)
        XCTAssertThrowsError(try m.slice(at: 0x3001, length: 0))
    }

    func testOverlappingLayoutIsRefused() {
        XCTAssertThrowsError(try GuestMemory(layout: [(0, 0x2000), (0x1000, 0x1000)]))
    }

    func testErrorsSayWhere() {
        XCTAssertEqual(GuestMemoryError.outOfBounds(address: 0x3000, length: 1).description,
                       "guest range 0x3000+0x1 is outside guest memory")
    }
}
