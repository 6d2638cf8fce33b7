import KVMKit

/// The block device's rate limiter: each request costs one op and, for reads and writes,
/// its data bytes. A refused request goes back to the ring; the limiter's timer (on the
/// event loop) kicks the queue when its tokens are in.
extension VirtioBlock {
    func admit(_ request: BlockRequest) -> Bool {
        if limiter.isUnlimited { return true }
        var bytes: UInt64 = 0
        switch request.kind {
        case .read(_, let buffers), .write(_, let buffers): bytes = buffers.reduce(0) { $0 &+ UInt64($1.length) }
        default: break
        }
        if limiter.consume(bytes: bytes, now: clock()) {
            if let w = limiter.wakeTime { armTimer(w &- clock()) }  // an oversized request's penalty
            return true
        }
        executor.counters.withLock { $0.rateLimited &+= 1 }
        if let w = limiter.wakeTime { let now = clock(); armTimer(w > now ? w - now : 1) }
        return false
    }

    /// A blocked limiter whose time has come is unblocked; still blocked means wait.
    func limiterReady() -> Bool {
        guard limiter.isBlocked else { return true }
        return limiter.timerFired(now: clock())
    }

    /// Replace the limit (the API's PATCH on a live drive). Call with the transport's lock
    /// held (`withDeviceLocked`), then `retryWaiting()` without it: the buckets start full,
    /// as Firecracker's do after an update, and a request waiting for the old limit goes.
    public func replaceRateLimit(_ config: RateLimiterConfig) { limiter.update(config, now: clock()) }

    /// Kick the request queue (a paused transport keeps the kick for its resume).
    public func retryWaiting() { kick.withLock { $0 }?(0) }

    /// Give the limiter its timer on `loop`; every disk has one, as a limit can be set on
    /// a running drive.
    public func registerRateLimitTimer(with loop: EventLoop) throws {
        let timer = try TimerFD()
        armTimer = { timer.arm(after: $0) }
        try loop.register(fd: timer.fd, events: .readable) { [weak self] _ in
            timer.drain()
            let k = self?.kick.withLock { $0 }
            k?(0)
        }
    }
}
