/// One token bucket as Firecracker defines it (`rate_limiter/src/lib.rs`): `size` tokens
/// refill linearly over `refillTime` nanoseconds; `oneTimeBurst` extra tokens are spent
/// first and never come back. A pure value: time is passed in (`now`, nanoseconds of
/// any monotonic clock), so tests drive it without sleeping.
public struct TokenBucket: Equatable, Sendable {
    /// What `reduce` did.
    public enum Reduction: Equatable, Sendable {
        /// The tokens were taken.
        case success
        /// Not enough tokens; nothing was taken.
        case failure
        /// More than a whole bucket was asked for: allowed once, the bucket is emptied,
        /// and `extraNanoseconds` is how long the refill of the excess takes.
        case overConsumption(extraNanoseconds: UInt64)
    }

    public let size: UInt64
    public let refillTime: UInt64
    public private(set) var oneTimeBurst: UInt64
    public private(set) var budget: UInt64
    private var lastUpdate: UInt64
    private var remainder: UInt64 = 0

    /// `size` > 0 and `refillTime` > 0 (nanoseconds); the bucket starts full.
    public init?(size: UInt64, oneTimeBurst: UInt64 = 0, refillTime: UInt64, now: UInt64) {
        guard size > 0, refillTime > 0 else { return nil }
        self.size = size
        self.refillTime = refillTime
        self.oneTimeBurst = oneTimeBurst
        self.budget = size
        self.lastUpdate = now
    }

    /// Add the tokens earned since the last update (never above `size`). The fraction of
    /// a token earned so far is kept (`remainder`, in token-nanoseconds), so frequent
    /// calls lose no refill.
    public mutating func replenish(now: UInt64) {
        guard now > lastUpdate else { return }
        let elapsed = now - lastUpdate
        lastUpdate = now
        if elapsed >= refillTime { return fill() }
        // earned = (elapsed * size + remainder) / refillTime, in 128 bits.
        var (high, low) = elapsed.multipliedFullWidth(by: size)
        let (sum, carry) = low.addingReportingOverflow(remainder)
        low = sum
        if carry { high &+= 1 }
        if high >= refillTime { return fill() }
        let (tokens, rest) = refillTime.dividingFullWidth((high, low))
        let (total, over) = budget.addingReportingOverflow(tokens)
        if over || total >= size { return fill() }
        budget = total
        remainder = rest
    }

    private mutating func fill() {
        budget = size
        remainder = 0
    }

    /// Take `tokens`: the one-time burst first, then the budget (refilled up to `now`).
    public mutating func reduce(_ tokens: UInt64, now: UInt64) -> Reduction {
        var tokens = tokens
        if oneTimeBurst > 0 {
            if oneTimeBurst >= tokens {
                oneTimeBurst -= tokens
                return .success
            }
            tokens -= oneTimeBurst
            oneTimeBurst = 0
        }
        if tokens > budget {
            replenish(now: now)
            if tokens > budget {
                guard tokens > size else { return .failure }
                // Firecracker lets an oversized request through and empties the bucket;
                // the caller then waits for the refill of the excess.
                let excess = tokens - budget
                budget = 0
                remainder = 0
                return .overConsumption(extraNanoseconds: Self.duration(of: excess, size: size, refillTime: refillTime))
            }
        }
        budget -= tokens
        return .success
    }

    /// Give back tokens taken for an operation that did not happen (never above `size`).
    public mutating func returnTokens(_ tokens: UInt64) {
        budget = min(size, budget &+ tokens < budget ? size : budget &+ tokens)
    }

    /// Nanoseconds until `tokens` more are in the bucket (0 if they are there now).
    public func timeUntil(_ tokens: UInt64) -> UInt64 {
        tokens <= budget ? 0 : Self.duration(of: tokens - budget, size: size, refillTime: refillTime)
    }

    static func duration(of tokens: UInt64, size: UInt64, refillTime: UInt64) -> UInt64 {
        let (h, l) = tokens.multipliedFullWidth(by: refillTime)
        if h >= size { return UInt64.max }
        let (q, r) = size.dividingFullWidth((h, l))
        return q &+ (r > 0 ? 1 : 0)
    }
}

extension TokenBucket {
    var level: RateLimiterLevels.Bucket { RateLimiterLevels.Bucket(budget: budget, oneTimeBurst: oneTimeBurst) }

    /// This bucket holding `level` instead of being full; never more than its size and
    /// its configured burst (the level comes from a file).
    func holding(_ level: RateLimiterLevels.Bucket) -> TokenBucket {
        var b = self
        b.budget = Swift.min(level.budget, size)
        b.oneTimeBurst = Swift.min(level.oneTimeBurst, oneTimeBurst)
        return b
    }
}
