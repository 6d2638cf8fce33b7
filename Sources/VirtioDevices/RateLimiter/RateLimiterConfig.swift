/// A rate limiter as configured (Firecracker's `RateLimiterConfig`): an optional bucket
/// for bytes (`bandwidth`) and one for operations (`ops`). Absent buckets do not limit.
public struct RateLimiterConfig: Equatable, Sendable {
    /// One bucket: `size` tokens per `refillTimeMs` milliseconds, plus `oneTimeBurst`
    /// tokens available once at the start.
    public struct Bucket: Equatable, Sendable {
        public var size: UInt64
        public var oneTimeBurst: UInt64
        public var refillTimeMs: UInt64

        public init(size: UInt64, oneTimeBurst: UInt64 = 0, refillTimeMs: UInt64) {
            self.size = size; self.oneTimeBurst = oneTimeBurst; self.refillTimeMs = refillTimeMs
        }
    }

    public var bandwidth: Bucket?
    public var ops: Bucket?

    public init(bandwidth: Bucket? = nil, ops: Bucket? = nil) {
        self.bandwidth = bandwidth; self.ops = ops
    }

    /// Neither bucket: nothing is limited.
    public var isUnlimited: Bool { bandwidth == nil && ops == nil }

    /// Firecracker treats a zero size or refill time as "no bucket"; so do we, but a
    /// refill time too large to express in nanoseconds is an error.
    public func validate(_ what: String) throws(RateLimiterConfigError) {
        for (name, b) in [("bandwidth", bandwidth), ("ops", ops)] {
            guard let b else { continue }
            if b.refillTimeMs > UInt64.max / 1_000_000 { throw .refillTimeTooLarge(what: "\(what) \(name)", ms: b.refillTimeMs) }
        }
    }
}

public enum RateLimiterConfigError: Error, Equatable, CustomStringConvertible {
    case refillTimeTooLarge(what: String, ms: UInt64)
    case malformed(what: String, text: String)

    public var description: String {
        switch self {
        case .refillTimeTooLarge(let w, let ms): return "\(w) rate limiter: refill time \(ms) ms is too large"
        case .malformed(let w, let t): return "\(w): '\(t)' is not SIZE/MS[/BURST] (e.g. 10000000/1000)"
        }
    }
}

extension RateLimiterConfig.Bucket {
    /// `SIZE/MS[/BURST]`, the CLI's short form of a bucket (e.g. `bw=10000000/1000`).
    public init(parsing text: String, what: String) throws(RateLimiterConfigError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3, let size = UInt64(parts[0]), let ms = UInt64(parts[1]),
              size > 0, ms > 0 else { throw .malformed(what: what, text: text) }
        var burst: UInt64 = 0
        if parts.count == 3 {
            guard let b = UInt64(parts[2]) else { throw .malformed(what: what, text: text) }
            burst = b
        }
        self.init(size: size, oneTimeBurst: burst, refillTimeMs: ms)
    }
}
