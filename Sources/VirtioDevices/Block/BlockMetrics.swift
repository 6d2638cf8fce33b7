/// Counters of one virtio-blk device.
public struct BlockMetrics: Equatable {
    public var reads: UInt64 = 0
    public var writes: UInt64 = 0
    public var flushes: UInt64 = 0
    public var getIDs: UInt64 = 0
    public var discards: UInt64 = 0
    public var writeZeroes: UInt64 = 0
    public var bytesRead: UInt64 = 0
    public var bytesWritten: UInt64 = 0
    /// Requests the guest got IOERR for because they were malformed or out of range.
    public var invalidRequests: UInt64 = 0
    /// Requests of a type the device does not implement (UNSUPP).
    public var unsupportedRequests: UInt64 = 0
    /// Requests that failed in the backend (IOERR).
    public var backendErrors: UInt64 = 0
    /// Times a request waited for the rate limiter (`bw=`/`iops=`).
    public var rateLimited: UInt64 = 0
    public var lastError: String?
}
