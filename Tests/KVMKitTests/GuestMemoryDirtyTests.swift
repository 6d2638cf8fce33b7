@testable import KVMKit
import XCTest

/// Device writes land in the dirty bitmap while tracking, reads never do.
final class GuestMemoryDirtyTests: XCTestCase {
    func pages(_ m: GuestMemory) -> [[UInt64]] { m.takeDeviceDirtyPages() }

    func set(_ bitmaps: [[UInt64]]) -> [(Int, Int)] {
        var out: [(Int, Int)] = []
        DirtyPages(bitmaps: bitmaps).forEachPage { r, p in out.append((r, Int(p))) }
        return out
    }

    func testWritesAreTrackedOnlyWhileOn() throws {
        let m = try GuestMemory(layout: [(0, 1 << 20), (0x1000_0000, 1 << 20)])
        try m.write(at: 0x1000, bytes: [1])
        XCTAssertTrue(set(pages(m)).isEmpty, "not tracking: nothing recorded")
        m.trackDeviceWrites(true)
        XCTAssertTrue(m.isTrackingDeviceWrites)
        try m.write(at: 0x1000, bytes: [1])
        try m.store(UInt32(7), at: 0x2FFE)              // straddles pages 2 and 3
        try m.zero(at: 0x1000_0000 + 0x5000, length: 1)  // second region, page 5
        try m.withMutableSlice(at: 0x40000, length: 0x2000) { $0[0] = 1 }  // pages 64, 65
        _ = try m.readBytes(at: 0x8000, count: 16)
        _ = try m.load(UInt64.self, at: 0x9000)
        _ = try m.readSlice(at: 0xA000, length: 4096)
        XCTAssertTrue(m.isValid(address: 0xB000, length: 1))
        let got = set(pages(m))
        XCTAssertEqual(got.map(\.0), [0, 0, 0, 0, 0, 1])
        XCTAssertEqual(got.map(\.1), [1, 2, 3, 64, 65, 5])
        XCTAssertTrue(set(pages(m)).isEmpty, "taking clears")
        m.trackDeviceWrites(false)
        try m.write(at: 0x1000, bytes: [1])
        XCTAssertTrue(set(pages(m)).isEmpty)
    }

    func testLargeWriteMarksWholeWords() throws {
        let m = try GuestMemory(layout: [(0, 4 << 20)])
        m.trackDeviceWrites(true)
        try m.zero(at: 0x3000, length: 200 * 4096)  // pages 3 ... 202
        let got = set(pages(m)).map(\.1)
        XCTAssertEqual(got, Array(3...202))
    }
}
