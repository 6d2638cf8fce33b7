import Foundation
@testable import KVMKit
import XCTest
@testable import VirtioDevices

/// `--disk …,bw=,iops=`: requests wait for the token buckets, then complete in order.
final class BlockRateLimitTests: XCTestCase {
    func testReadsWaitForTheBandwidthBucket() throws {
        let path = makeImage(size: 64 * 1024)
        defer { unlink(path) }
        let guest = FakeGuest(queueSize: 64)
        var now: UInt64 = 0
        var armed: [UInt64] = []
        let block = try VirtioBlock(backend: try FileBlockBackend(path: path, readOnly: false), serial: "x",
                                rateLimit: RateLimiterConfig(bandwidth: .init(size: 4096, refillTimeMs: 1000)), clock: { now })
        block.armTimer = { armed.append($0) }
        let t = try VirtioMMIOTransport(device: block, memory: guest.memory, interrupt: RecordingLine(), notify: .inline)
        let d = MMIODriver(t: t)
        d.start(guest)
        // Notify, then wait for the I/O threads to complete what was admitted.
        func settle() { d.notify(0); block.pause(); block.resume() }
        var statuses: [UInt64] = []
        for i in 0..<3 {
            let h = guest.put(withUnsafeBytes(of: UInt32(0).littleEndian, Array.init) + [0, 0, 0, 0] + withUnsafeBytes(of: UInt64(8 * i).littleEndian, Array.init))
            let s = guest.alloc(1, fill: 0xff)
            guest.publish(guest.chain(at: 3 * i, [(h, 16, false), (guest.alloc(4096), 4096, true), (s, 1, true)]))
            statuses.append(s)
        }
        settle()
        XCTAssertEqual(guest.usedIndex, 1, "one 4 KiB read fits the bucket")
        XCTAssertEqual(armed, [100_000_000], "the next 4 KiB take a second; a retry comes after at most 100 ms")
        XCTAssertEqual(block.metrics.rateLimited, 1)
        now = 500_000_000
        settle()
        XCTAssertEqual(guest.usedIndex, 1, "still waiting")
        now = 1_000_000_000
        settle()
        XCTAssertEqual(guest.usedIndex, 2)
        XCTAssertEqual(guest.byte(at: statuses[1]), 0, "completed OK")
        XCTAssertEqual(guest.byte(at: statuses[2]), 0xff, "the third still waits")
    }

    /// The API's PATCH on a live drive: a request waiting for the old limit goes at once
    /// once the limit is lifted, and a limit set on an unlimited disk applies to the next one.
    func testLimitReplacedOnALiveDisk() throws {
        let path = makeImage(size: 64 * 1024)
        defer { unlink(path) }
        let guest = FakeGuest(queueSize: 64)
        var armed: [UInt64] = []
        let block = try VirtioBlock(backend: try FileBlockBackend(path: path, readOnly: false), serial: "x",
                                    rateLimit: RateLimiterConfig(ops: .init(size: 1, refillTimeMs: 3_600_000)), clock: { 0 })
        block.armTimer = { armed.append($0) }
        let t = try VirtioMMIOTransport(device: block, memory: guest.memory, interrupt: RecordingLine(), notify: .inline)
        let d = MMIODriver(t: t)
        d.start(guest)
        func settle() { block.pause(); block.resume() }
        func read(_ i: Int) {
            let h = guest.put(withUnsafeBytes(of: UInt32(0).littleEndian, Array.init) + [0, 0, 0, 0] + withUnsafeBytes(of: UInt64(8 * i).littleEndian, Array.init))
            guest.publish(guest.chain(at: 3 * i, [(h, 16, false), (guest.alloc(512), 512, true), (guest.alloc(1, fill: 0xff), 1, true)]))
        }
        read(0); read(1)
        d.notify(0); settle()
        XCTAssertEqual(guest.usedIndex, 1, "one request a hour: the second waits")
        t.withDeviceLocked { _, _ in block.replaceRateLimit(RateLimiterConfig()) }
        block.retryWaiting(); settle()
        XCTAssertEqual(guest.usedIndex, 2, "lifted: the waiting request went")
        t.withDeviceLocked { _, _ in block.replaceRateLimit(RateLimiterConfig(ops: .init(size: 1, refillTimeMs: 3_600_000))) }
        read(2); read(3)
        d.notify(0); settle()
        XCTAssertEqual(guest.usedIndex, 3, "limited again, with a full bucket of one")
        XCTAssertEqual(block.metrics.rateLimited, 2)
    }

    /// A disk rebuilt from its saved state keeps its limit (given again from the saved
    /// configuration) and what its buckets had left; a state saved before the levels
    /// were restores with full buckets.
    func testRestoredDiskKeepsItsLimitAndWhatWasLeft() throws {
        let path = makeImage(size: 64 * 1024)
        defer { unlink(path) }
        // Read-only: several backends share the image's lock, one per device built here.
        let limit = RateLimiterConfig(ops: .init(size: 4, refillTimeMs: 3_600_000))
        let block = try VirtioBlock(backend: try FileBlockBackend(path: path, readOnly: true), serial: "x", rateLimit: limit, clock: { 0 })
        for _ in 0..<3 { XCTAssertTrue(block.limiter.consume(bytes: 0, now: 0)) }
        let bytes = block.captureState().encodedBytes
        let state = try VirtioBlockState(decoding: bytes, context: "test")
        XCTAssertEqual(state.rateLimit, RateLimiterLevels(ops: .init(budget: 1, oneTimeBurst: 0)))

        let restored = try VirtioBlock(state: state, backend: try FileBlockBackend(path: path, readOnly: true), rateLimit: limit)
        XCTAssertEqual(restored.limiter.ops?.budget, 1)
        XCTAssertEqual(restored.limiter.ops?.size, 4)
        let unlimited = try VirtioBlock(state: state, backend: try FileBlockBackend(path: path, readOnly: true))
        XCTAssertTrue(unlimited.limiter.isUnlimited, "the limit comes from the configuration, not the levels")
        // The levels are the state's last field (flag + budget + burst per bucket: 34 bytes).
        let before = try VirtioBlockState(decoding: Array(bytes.dropLast(34)), context: "test")
        XCTAssertEqual(before.rateLimit, RateLimiterLevels())
        let full = try VirtioBlock(state: before, backend: try FileBlockBackend(path: path, readOnly: true), rateLimit: limit)
        XCTAssertEqual(full.limiter.ops?.budget, 4)
    }

    func testDiskOptionsTakeBuckets() throws {
        let o = try DiskOptions(parsing: "a.img,bw=1000000/100,iops=100/1000/50")
        XCTAssertEqual(o.rateLimit, RateLimiterConfig(bandwidth: .init(size: 1_000_000, refillTimeMs: 100),
                                                      ops: .init(size: 100, oneTimeBurst: 50, refillTimeMs: 1000)))
        XCTAssertThrowsError(try DiskOptions(parsing: "a.img,bw=fast")) {
            XCTAssertEqual("\($0)", "--disk a.img,bw=fast: bw: 'fast' is not SIZE/MS[/BURST] (e.g. 10000000/1000)")
        }
    }
}
