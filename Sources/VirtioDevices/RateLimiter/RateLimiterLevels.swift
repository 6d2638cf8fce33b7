import KVMKit

/// What a rate limiter has left — each bucket's budget and unspent one-time burst — saved
/// with its device, so a restored or migrated VM goes on at the rate it had instead of
/// starting with full buckets (as Firecracker's snapshots do). The configuration is saved
/// apart (`SavedConfiguration`); a blocked limiter is not saved: the restored device
/// simply tries again.
public struct RateLimiterLevels: Equatable, Sendable, StateCodable {
    public struct Bucket: Equatable, Sendable {
        public var budget: UInt64
        public var oneTimeBurst: UInt64
        public init(budget: UInt64, oneTimeBurst: UInt64) { self.budget = budget; self.oneTimeBurst = oneTimeBurst }
    }

    public var bandwidth: Bucket?
    public var ops: Bucket?

    public init(bandwidth: Bucket? = nil, ops: Bucket? = nil) { self.bandwidth = bandwidth; self.ops = ops }

    public func encode(to w: inout StateWriter) {
        for b in [bandwidth, ops] { w.write(b != nil); w.write(b?.budget ?? 0); w.write(b?.oneTimeBurst ?? 0) }
    }

    public init(from r: inout StateReader) throws {
        func bucket(_ name: String) throws -> Bucket? {
            let has = try r.readBool("\(name) bucket saved")
            let budget = try r.read(UInt64.self, "\(name) budget"), burst = try r.read(UInt64.self, "\(name) one-time burst")
            return has ? Bucket(budget: budget, oneTimeBurst: burst) : nil
        }
        bandwidth = try bucket("bandwidth")
        ops = try bucket("ops")
    }
}
