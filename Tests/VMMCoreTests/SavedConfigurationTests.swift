import Foundation
import KVMKit
import VirtioDevices
@testable import VMMCore
import XCTest

/// The saved configuration carries the taps and the vsock device, so a restoring process
/// re-creates them; a file written before they were saved still decodes (without them).
final class SavedConfigurationTests: XCTestCase {
    func testNetAndVsockRoundTrip() throws {
        var c = VMConfiguration()
        c.machine.memSizeMiB = 64
        var n0 = NetOptions(tap: "tap0", mac: MACAddress("52:54:00:12:34:56"), id: "eth0")
        n0.rxLimit = RateLimiterConfig(bandwidth: .init(size: 1000, oneTimeBurst: 5, refillTimeMs: 100))
        n0.txLimit = RateLimiterConfig(ops: .init(size: 10, refillTimeMs: 1000))
        c.networkInterfaces = [n0, NetOptions(tap: "tap1")]
        c.vsock = try VsockOptions(cid: 7, udsPath: "/tmp/v.sock")
        let back = try SavedConfiguration(decoding: SavedConfiguration(c).encodedBytes, context: "test").configuration
        XCTAssertEqual(back.networkInterfaces, c.networkInterfaces)
        XCTAssertEqual(back.vsock, c.vsock)
        XCTAssertEqual(back.machine.memSizeMiB, 64)
    }

    func testAFileFromBeforeNetAndVsockDecodesWithoutThem() throws {
        var c = VMConfiguration()
        c.entropy = true
        let bytes = SavedConfiguration(c).encodedBytes
        // The earlier format ended before the interface count (u32) and the vsock fields
        // (flag, u64 CID, u64 length + path bytes): 4 + 1 + 8 + 8.
        let old = Array(bytes.dropLast(21))
        let back = try SavedConfiguration(decoding: old, context: "test").configuration
        XCTAssertTrue(back.entropy)
        XCTAssertEqual(back.networkInterfaces, [])
        XCTAssertNil(back.vsock)
    }

    /// Each drive's rate limit is saved (a restored disk stays limited); a file from before
    /// they were saved decodes with unlimited drives.
    func testDriveRateLimitsRoundTrip() throws {
        var c = VMConfiguration()
        c.drives = [VMConfiguration.Drive(id: "a", path: "/a.img", readOnly: false, isRootDevice: false,
                                          rateLimit: RateLimiterConfig(bandwidth: .init(size: 1 << 20, oneTimeBurst: 7, refillTimeMs: 1000),
                                                                       ops: .init(size: 100, refillTimeMs: 1000))),
                    VMConfiguration.Drive(id: "b", path: "/b.img", readOnly: true, isRootDevice: false)]
        let bytes = SavedConfiguration(c).encodedBytes
        let back = try SavedConfiguration(decoding: bytes, context: "test").configuration
        XCTAssertEqual(back.drives.map(\.rateLimit), c.drives.map(\.rateLimit))
        // Two saved limits of two buckets each (flag, size, burst, refill time).
        let old = try SavedConfiguration(decoding: Array(bytes.dropLast(2 * 2 * 25)), context: "test").configuration
        XCTAssertEqual(old.drives.map(\.id), ["a", "b"])
        XCTAssertTrue(old.drives.allSatisfy { $0.rateLimit.isUnlimited })
        for cut in 1..<(2 * 2 * 25) { XCTAssertThrowsError(try SavedConfiguration(decoding: Array(bytes.dropLast(cut)), context: "test")) }
    }

    func testHostileNetAndVsockFieldsAreRefused() throws {
        var c = VMConfiguration()
        c.vsock = try VsockOptions(cid: 7, udsPath: "/tmp/v.sock")
        var bytes = SavedConfiguration(c).encodedBytes
        // The CID (8 bytes before the path's length and bytes) set to 2, a reserved one.
        let cidAt = bytes.count - "/tmp/v.sock".utf8.count - 8 - 8
        bytes[cidAt] = 2
        XCTAssertThrowsError(try SavedConfiguration(decoding: bytes, context: "test"))
        // Truncated anywhere in the new fields: an error, never a crash.
        let full = SavedConfiguration(c).encodedBytes
        for cut in 1..<30 { XCTAssertThrowsError(try SavedConfiguration(decoding: Array(full.dropLast(cut)), context: "test")) }
    }
}
