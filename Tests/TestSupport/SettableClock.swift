import Synchronization

/// A clock a test sets and moves by hand, readable from any thread (CMOS's clock is
/// `@Sendable`: the device reads it on vCPU threads).
public final class SettableClock: Sendable {
    private let value: Mutex<Int64>
    public init(_ start: Int64) { value = Mutex(start) }
    public var now: Int64 { value.withLock { $0 } }
    public func advance(by delta: Int64) { value.withLock { $0 += delta } }
}
