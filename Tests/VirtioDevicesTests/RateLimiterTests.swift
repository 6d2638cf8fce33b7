import KVMKit
import XCTest
@testable import VirtioDevices

final class TokenBucketTests: XCTestCase {
    let ms: UInt64 = 1_000_000

    func testStartsFullAndRefillsLinearly() throws {
        var b = try XCTUnwrap(TokenBucket(size: 1000, refillTime: 1000 * ms, now: 0))
        XCTAssertEqual(b.reduce(1000, now: 0), .success)
        XCTAssertEqual(b.reduce(1, now: 0), .failure)
        XCTAssertEqual(b.budget, 0)
        // 250 ms later a quarter of the bucket is back.
        XCTAssertEqual(b.reduce(251, now: 250 * ms), .failure)
        XCTAssertEqual(b.budget, 250)
        XCTAssertEqual(b.reduce(250, now: 250 * ms), .success)
        // Never above size, however long we wait.
        b.replenish(now: 100_000 * ms)
        XCTAssertEqual(b.budget, 1000)
    }

    func testFrequentSmallRefillsLoseNothing() throws {
        // 3 tokens per 10 ns: refilling every 1 ns earns 0.3 tokens each time.
        var b = try XCTUnwrap(TokenBucket(size: 3, refillTime: 10, now: 0))
        XCTAssertEqual(b.reduce(3, now: 0), .success)
        for t in 1...10 { b.replenish(now: UInt64(t)) }
        XCTAssertEqual(b.budget, 3)
    }

    func testOneTimeBurstIsSpentFirstAndNeverRefills() throws {
        var b = try XCTUnwrap(TokenBucket(size: 100, oneTimeBurst: 500, refillTime: 1000 * ms, now: 0))
        XCTAssertEqual(b.reduce(400, now: 0), .success)
        XCTAssertEqual(b.oneTimeBurst, 100)
        XCTAssertEqual(b.budget, 100)
        XCTAssertEqual(b.reduce(150, now: 0), .success)  // 100 burst + 50 budget
        XCTAssertEqual(b.oneTimeBurst, 0)
        XCTAssertEqual(b.budget, 50)
        b.replenish(now: 10_000 * ms)
        XCTAssertEqual(b.oneTimeBurst, 0)
        XCTAssertEqual(b.budget, 100)
    }

    func testOverConsumptionEmptiesAndReportsTheWait() throws {
        var b = try XCTUnwrap(TokenBucket(size: 100, refillTime: 1000 * ms, now: 0))
        // 300 tokens from a 100-token bucket: allowed, the 200 extra take 2 s to refill.
        XCTAssertEqual(b.reduce(300, now: 0), .overConsumption(extraNanoseconds: 2000 * ms))
        XCTAssertEqual(b.budget, 0)
        XCTAssertEqual(b.timeUntil(50), 500 * ms)
    }

    func testInvalidBucketsAreRefused() {
        XCTAssertNil(TokenBucket(size: 0, refillTime: 1, now: 0))
        XCTAssertNil(TokenBucket(size: 1, refillTime: 0, now: 0))
    }

    func testHugeValuesDoNotTrap() throws {
        var b = try XCTUnwrap(TokenBucket(size: .max, oneTimeBurst: .max, refillTime: .max, now: .max - 1))
        XCTAssertEqual(b.reduce(.max, now: .max), .success)
        b.replenish(now: 0)  // time going backwards is ignored
        XCTAssertEqual(b.reduce(.max, now: .max), .success)
        var c = try XCTUnwrap(TokenBucket(size: 1, refillTime: 1, now: 0))
        _ = c.reduce(.max, now: 0)
        c.replenish(now: .max)
        XCTAssertEqual(c.budget, 1)
    }
}

final class RateLimiterTests: XCTestCase {
    let ms: UInt64 = 1_000_000

    func testUnlimitedAllowsEverything() {
        var l = RateLimiter(RateLimiterConfig(), now: 0)
        for _ in 0..<1000 { XCTAssertTrue(l.consume(bytes: 1 << 20, now: 0)) }
        XCTAssertFalse(l.isBlocked)
    }

    func testBandwidthBlocksUntilTheTimer() {
        var l = RateLimiter(RateLimiterConfig(bandwidth: .init(size: 1000, refillTimeMs: 100)), now: 0)
        XCTAssertTrue(l.consume(bytes: 600, now: 0))
        XCTAssertFalse(l.consume(bytes: 600, now: 0))
        XCTAssertEqual(l.wakeTime, 20 * ms, "the 200 missing tokens take 20 ms")
        // Blocked: even a request that would fit waits for the timer.
        XCTAssertFalse(l.consume(bytes: 1, now: 10 * ms))
        XCTAssertFalse(l.timerFired(now: 10 * ms), "an early firing does not unblock")
        XCTAssertTrue(l.timerFired(now: 20 * ms))
        XCTAssertTrue(l.consume(bytes: 600, now: 20 * ms))
        XCTAssertEqual(l.metrics.throttled, 2)
        XCTAssertEqual(l.metrics.allowedBytes, 1200)
        // The wait is at least 1 ms and at most Firecracker's 100 ms.
        var slow = RateLimiter(RateLimiterConfig(bandwidth: .init(size: 10, refillTimeMs: 100_000)), now: 0)
        XCTAssertTrue(slow.consume(bytes: 5, now: 0))
        XCTAssertFalse(slow.consume(bytes: 10, now: 0))
        XCTAssertEqual(slow.wakeTime, RateLimiter.retryInterval)
        var fast = RateLimiter(RateLimiterConfig(bandwidth: .init(size: 1_000_000, refillTimeMs: 1)), now: 0)
        XCTAssertTrue(fast.consume(bytes: 1_000_000, now: 0))
        XCTAssertFalse(fast.consume(bytes: 1, now: 0))
        XCTAssertEqual(fast.wakeTime, RateLimiter.minimumRetry)
    }

    func testOpsBucketRefusalReturnsTheBytes() {
        var l = RateLimiter(RateLimiterConfig(bandwidth: .init(size: 1000, refillTimeMs: 1000),
                                              ops: .init(size: 1, refillTimeMs: 1000)), now: 0)
        XCTAssertTrue(l.consume(bytes: 100, now: 0))
        XCTAssertFalse(l.consume(bytes: 100, now: 0))
        XCTAssertEqual(l.bandwidth?.budget, 900, "bytes taken for a refused op are given back")
    }

    func testOversizedRequestPassesThenWaitsForTheExcess() {
        var l = RateLimiter(RateLimiterConfig(bandwidth: .init(size: 1000, refillTimeMs: 1000)), now: 0)
        XCTAssertTrue(l.consume(bytes: 3000, now: 0))
        XCTAssertEqual(l.wakeTime, 2000 * ms)
        XCTAssertEqual(l.metrics.overConsumptions, 1)
        XCTAssertFalse(l.consume(bytes: 1, now: 1000 * ms))
    }

    /// The long-run rate a limiter lets through is its configured rate: 1 MB/s for 10 s
    /// of simulated time with 1500-byte frames, retrying when the timer fires.
    func testLongRunThroughputMatchesTheConfiguredRate() {
        var l = RateLimiter(RateLimiterConfig(bandwidth: .init(size: 100_000, refillTimeMs: 100)), now: 0)
        var now: UInt64 = 0, sent: UInt64 = 0
        while now < 10_000 * ms {
            if l.consume(bytes: 1500, now: now) { sent += 1500; continue }
            now = l.wakeTime ?? now
            _ = l.timerFired(now: now)
        }
        let rate = Double(sent) / 10.0
        XCTAssertEqual(rate, 1_000_000, accuracy: 1_000_000 * 0.02)
    }

    /// A snapshot keeps what the buckets had left: the limiter rebuilt from the levels (on
    /// another clock base, as in a new process) refuses what the saved one would have,
    /// then refills at the configured rate.
    func testLevelsCarryOverToARestoredLimiter() throws {
        let config = RateLimiterConfig(bandwidth: .init(size: 1000, oneTimeBurst: 300, refillTimeMs: 100),
                                       ops: .init(size: 10, refillTimeMs: 1000))
        var l = RateLimiter(config, now: 0)
        XCTAssertTrue(l.consume(bytes: 1100, now: 0), "the burst's 300, then 800 of the 1000")
        let levels = l.levels(now: 10 * ms)
        XCTAssertEqual(levels, RateLimiterLevels(bandwidth: .init(budget: 300, oneTimeBurst: 0), ops: .init(budget: 9, oneTimeBurst: 0)),
                       "200 left plus the 100 earned in 10 ms; one op taken")
        XCTAssertEqual(l.bandwidth?.budget, 200, "taking the levels does not change the limiter")
        let back = try RateLimiterLevels(decoding: levels.encodedBytes, context: "test")
        XCTAssertEqual(back, levels)

        let base: UInt64 = 5_000 * ms
        var r = RateLimiter(config, levels: back, now: base)
        XCTAssertFalse(r.consume(bytes: 400, now: base), "300 bytes left, not a full bucket")
        XCTAssertEqual(r.wakeTime, base + 10 * ms, "the missing 100 take 10 ms")
        XCTAssertTrue(r.timerFired(now: base + 10 * ms))
        XCTAssertTrue(r.consume(bytes: 400, now: base + 10 * ms))
        // A fresh limiter of the same configuration would have let it through at once.
        var fresh = RateLimiter(config, now: base)
        XCTAssertTrue(fresh.consume(bytes: 400, now: base))
    }

    /// Levels come from a file: never more than a bucket's size or its configured burst, a
    /// bucket without saved levels starts full, levels without a bucket limit nothing, and
    /// a truncated record is an error.
    func testRestoredLevelsAreBoundedByTheConfiguration() throws {
        let config = RateLimiterConfig(bandwidth: .init(size: 1000, oneTimeBurst: 300, refillTimeMs: 100),
                                       ops: .init(size: 10, refillTimeMs: 1000))
        let r = RateLimiter(config, levels: RateLimiterLevels(bandwidth: .init(budget: .max, oneTimeBurst: .max)), now: 0)
        XCTAssertEqual(r.bandwidth?.budget, 1000)
        XCTAssertEqual(r.bandwidth?.oneTimeBurst, 300)
        XCTAssertEqual(r.ops?.budget, 10)
        let unlimited = RateLimiter(RateLimiterConfig(), levels: RateLimiterLevels(ops: .init(budget: 0, oneTimeBurst: 0)), now: 0)
        XCTAssertTrue(unlimited.isUnlimited)
        let bytes = RateLimiterLevels(bandwidth: .init(budget: 1, oneTimeBurst: 2)).encodedBytes
        for cut in 1...bytes.count {
            XCTAssertThrowsError(try RateLimiterLevels(decoding: Array(bytes.dropLast(cut)), context: "test"))
        }
    }

    func testUpdateReplacesBucketsAndUnblocks() {
        var l = RateLimiter(RateLimiterConfig(bandwidth: .init(size: 10, refillTimeMs: 1000)), now: 0)
        XCTAssertFalse(l.consume(bytes: 5, now: 0) && l.consume(bytes: 6, now: 0))
        XCTAssertTrue(l.isBlocked)
        l.update(RateLimiterConfig(), now: 0)
        XCTAssertFalse(l.isBlocked)
        XCTAssertTrue(l.consume(bytes: 1 << 30, now: 0))
        XCTAssertEqual(l.metrics.throttled, 1, "counters survive an update")
    }

    func testBucketShortForm() throws {
        XCTAssertEqual(try RateLimiterConfig.Bucket(parsing: "1000/100", what: "rx"), .init(size: 1000, refillTimeMs: 100))
        XCTAssertEqual(try RateLimiterConfig.Bucket(parsing: "1000/100/5000", what: "rx"),
                       .init(size: 1000, oneTimeBurst: 5000, refillTimeMs: 100))
        for bad in ["", "1000", "0/100", "10/0", "a/b", "1/2/3/4", "1/2/x"] {
            XCTAssertThrowsError(try RateLimiterConfig.Bucket(parsing: bad, what: "rx"), bad)
        }
    }
}
