@testable import KVMKit
import XCTest

final class ReplayRingTests: XCTestCase {
    private func append(_ ring: ReplayRing, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { ring.append($0) }
    }

    func testKeepsEverythingBelowCapacity() {
        let ring = ReplayRing(capacity: 16)
        append(ring, Array(0..<10))
        XCTAssertEqual(ring.contents(), Array(0..<10))
        XCTAssertEqual(ring.oldestPosition, 0)
        XCTAssertEqual(ring.endPosition, 10)
    }

    func testWraparoundKeepsLastCapacityBytes() {
        let ring = ReplayRing(capacity: 16)
        for chunk in stride(from: 0, to: 100, by: 7) {
            append(ring, (chunk..<min(chunk + 7, 100)).map { UInt8($0) })
        }
        XCTAssertEqual(ring.contents(), (84..<100).map { UInt8($0) })
        XCTAssertEqual(ring.oldestPosition, 84)
    }

    func testOversizedAppendKeepsTail() {
        let ring = ReplayRing(capacity: 8)
        append(ring, [1, 2, 3])
        append(ring, Array(10..<30))
        XCTAssertEqual(ring.contents(), Array(22..<30))
        XCTAssertEqual(ring.endPosition, 23)
    }

    func testDefaultKeepsExactly64KiB() {
        let ring = ReplayRing()
        XCTAssertEqual(ring.capacity, 65536)
        let total = 65536 * 3 + 1234
        var all: [UInt8] = []
        all.reserveCapacity(total)
        for i in 0..<total { all.append(UInt8(truncatingIfNeeded: i &* 31 &+ i >> 8)) }
        var offset = 0
        var step = 1
        while offset < total {  // uneven chunks cross the wrap point in many places
            let n = min(step, total - offset)
            append(ring, Array(all[offset..<offset + n]))
            offset += n
            step = step * 3 % 5000 + 1
        }
        XCTAssertEqual(ring.count, 65536)
        XCTAssertEqual(ring.contents(), Array(all.suffix(65536)))
    }

    func testCursorReadsAndClampsToOldest() {
        let ring = ReplayRing(capacity: 8)
        append(ring, Array(0..<6))
        XCTAssertEqual(Array(ring.contiguousBytes(from: 2)), [2, 3, 4, 5])
        append(ring, Array(6..<12))  // now holds 4..<12, wrapped at 8
        XCTAssertEqual(Array(ring.contiguousBytes(from: 0)), [4, 5, 6, 7])  // clamped, up to the wrap
        XCTAssertEqual(Array(ring.contiguousBytes(from: 8)), [8, 9, 10, 11])
        XCTAssertTrue(ring.contiguousBytes(from: 12).isEmpty)
        XCTAssertTrue(ring.contiguousBytes(from: 99).isEmpty)
    }
}
