import XCTest

/// The test side's own CRC32, which judges the probe's: pinned to the CRC-32/ISO-HDLC
/// (zlib) catalogue check value and to python3's zlib.
final class GuestFixtureTests: XCTestCase {
    func testCRC32MatchesTheStandardCheckValue() {
        XCTAssertEqual(crc32(Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(crc32([]), 0)
        XCTAssertEqual(crc32Hex([0]), "d202ef8d")
    }

    func testCRC32MatchesPythonZlib() throws {
        var rng = SystemRandomNumberGenerator()
        let data = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let path = try temporaryFile("data.bin", bytes: data)
        let r = try runProcess(URL(fileURLWithPath: "/usr/bin/python3"),
                               ["-c", "import sys, zlib; print('%08x' % zlib.crc32(open(sys.argv[1], 'rb').read()))", path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, crc32Hex(data) + "\n")
    }
}
