/// Firecracker's rate limiter (`rate_limiter/src/lib.rs`) as a pure value: a bandwidth
/// and an ops token bucket. When a request does not fit, the limiter is *blocked* until
/// `wakeTime`; the device arms a timer for it and calls `timerFired(now:)` when it
/// expires, then retries. Blocked, it refuses everything, so a stream of small requests
/// cannot starve a waiting large one.
///
/// One deviation: Firecracker always retries after 100 ms; here the wait is the time
/// until the refused request's tokens are in (at least 1 ms, at most 100 ms). With a
/// fixed 100 ms, a bucket of 100 ms worth is full before the retry and the refill above
/// its size is lost when the retry comes late.
public struct RateLimiter: Equatable, Sendable {
    /// The longest a refused request waits before the next try (Firecracker's
    /// REFILL_TIMER_INTERVAL_MS), and the shortest.
    public static let retryInterval: UInt64 = 100_000_000
    public static let minimumRetry: UInt64 = 1_000_000

    public private(set) var bandwidth: TokenBucket?
    public private(set) var ops: TokenBucket?
    /// While set, requests are refused until the timer at this time fires.
    public private(set) var wakeTime: UInt64?
    public private(set) var metrics = RateLimiterMetrics()

    public init(_ config: RateLimiterConfig, now: UInt64) {
        func bucket(_ b: RateLimiterConfig.Bucket?) -> TokenBucket? {
            guard let b else { return nil }
            let (ns, over) = b.refillTimeMs.multipliedReportingOverflow(by: 1_000_000)
            return TokenBucket(size: b.size, oneTimeBurst: b.oneTimeBurst, refillTime: over ? UInt64.max : ns, now: now)
        }
        bandwidth = bucket(config.bandwidth)
        ops = bucket(config.ops)
    }

    public var isBlocked: Bool { wakeTime != nil }
    public var isUnlimited: Bool { bandwidth == nil && ops == nil }

    /// One operation of `bytes` bytes: true if it may go now. Both buckets must agree;
    /// if the second refuses, the first gets its tokens back.
    public mutating func consume(bytes: UInt64, now: UInt64) -> Bool {
        if isUnlimited { return true }
        if wakeTime != nil { metrics.throttled &+= 1; return false }
        var extra: UInt64 = 0
        if var b = bandwidth {
            switch b.reduce(bytes, now: now) {
            case .success: break
            case .failure:
                bandwidth = b
                return block(now, Self.retry(b.timeUntil(bytes)))
            case .overConsumption(let ns): extra = ns
            }
            bandwidth = b
        }
        if var o = ops {
            switch o.reduce(1, now: now) {
            case .success: break
            case .failure:
                ops = o
                if extra == 0 { bandwidth?.returnTokens(bytes) }
                return block(now, Self.retry(o.timeUntil(1)))
            case .overConsumption(let ns): extra = max(extra, ns)
            }
            ops = o
        }
        if extra > 0 { arm(now, extra); metrics.overConsumptions &+= 1 }
        metrics.allowedBytes &+= bytes
        metrics.allowedOps &+= 1
        return true
    }

    static func retry(_ wait: UInt64) -> UInt64 { min(retryInterval, max(minimumRetry, wait)) }

    private mutating func block(_ now: UInt64, _ after: UInt64) -> Bool {
        arm(now, after)
        metrics.throttled &+= 1
        return false
    }

    private mutating func arm(_ now: UInt64, _ after: UInt64) {
        wakeTime = now &+ after < now ? UInt64.max : now &+ after
    }

    /// The timer armed for `wakeTime` expired: unblock (early firings are ignored).
    /// Returns true when the device should retry its pending work.
    public mutating func timerFired(now: UInt64) -> Bool {
        guard let w = wakeTime, now >= w else { return false }
        wakeTime = nil
        return true
    }

    /// Replace the buckets (the API's PATCH); unblocks, so the device retries at once.
    public mutating func update(_ config: RateLimiterConfig, now: UInt64) {
        let m = metrics
        self = RateLimiter(config, now: now)
        metrics = m
    }
}

extension RateLimiter {
    /// The buckets' levels, refilled up to `now` (a copy: the limiter is not changed).
    public func levels(now: UInt64) -> RateLimiterLevels {
        func level(_ b: TokenBucket?) -> RateLimiterLevels.Bucket? {
            guard var b else { return nil }
            b.replenish(now: now)
            return b.level
        }
        return RateLimiterLevels(bandwidth: level(bandwidth), ops: level(ops))
    }

    /// A limiter with `config`'s buckets at the saved `levels`; refill counts from `now`.
    /// A bucket the levels lack (a new device, or a file from before they were saved) starts full.
    public init(_ config: RateLimiterConfig, levels: RateLimiterLevels, now: UInt64) {
        self.init(config, now: now)
        if let b = bandwidth, let l = levels.bandwidth { bandwidth = b.holding(l) }
        if let o = ops, let l = levels.ops { ops = o.holding(l) }
    }
}

/// Counters of one rate limiter.
public struct RateLimiterMetrics: Equatable, Sendable {
    /// Requests refused (the device waited for the timer).
    public var throttled: UInt64 = 0
    /// Requests larger than a whole bucket, let through with a penalty wait.
    public var overConsumptions: UInt64 = 0
    public var allowedBytes: UInt64 = 0
    public var allowedOps: UInt64 = 0
}
