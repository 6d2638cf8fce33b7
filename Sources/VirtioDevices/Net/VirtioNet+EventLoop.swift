import KVMKit

extension VirtioNet {
    /// Hang the device's own event sources on `loop`: the backend's fd (edge-triggered:
    /// each new frame kicks the receive queue, which reads until the tap is empty or the
    /// guest has no buffers) and one timer per direction for the rate limiters.
    /// Returns the fds to unregister at teardown.
    @discardableResult
    public func register(with loop: EventLoop) throws -> [Int32] {
        let rxTimer = try TimerFD(), txTimer = try TimerFD()
        let fd = backend.pollFD
        let kickQueue: (Int) -> Void = { [weak self] q in
            guard let self else { return }
            let k = self.kick.withLock { $0 }
            k?(q)
        }
        armTimer = { queue, ns in (queue == VirtioNet.receiveQueue ? rxTimer : txTimer).arm(after: ns) }
        watchWritable = { on in
            try? loop.modify(fd: fd, events: on ? [.readable, .writable, .edgeTriggered] : [.readable, .edgeTriggered])
        }
        backendGone = { loop.unregister(fd: fd) }
        watchBackend = {
            try loop.register(fd: fd, events: [.readable, .edgeTriggered]) { [weak self] events in
                if events.contains(.writable) {
                    self?.watchWritable(false)
                    kickQueue(VirtioNet.transmitQueue)
                }
                kickQueue(VirtioNet.receiveQueue)
            }
        }
        var fds: [Int32] = []
        if fd >= 0 {
            try watchBackend()
            fds.append(fd)
        }
        try loop.register(fd: rxTimer.fd, events: .readable) { _ in rxTimer.drain(); kickQueue(VirtioNet.receiveQueue) }
        try loop.register(fd: txTimer.fd, events: .readable) { _ in txTimer.drain(); kickQueue(VirtioNet.transmitQueue) }
        return fds + [rxTimer.fd, txTimer.fd]
    }

    /// Change the rate limiters (the API's PATCH); applied at the next batch, which this
    /// starts at once.
    public func updateRateLimiters(rx: RateLimiterConfig?, tx: RateLimiterConfig?) {
        pendingLimits.withLock { p in
            if let rx { p.rx = rx }
            if let tx { p.tx = tx }
        }
        let k = kick.withLock { $0 }
        k?(VirtioNet.receiveQueue)
        k?(VirtioNet.transmitQueue)
    }

    /// After this returns no batch is running and none starts: the device touches no
    /// guest memory and moves no frames until `resume()`.
    public func pause() { activity.withLock { $0 = true } }

    /// Continue, and catch up on whatever arrived or was posted meanwhile.
    public func resume() {
        activity.withLock { $0 = false }
        let k = kick.withLock { $0 }
        k?(VirtioNet.receiveQueue)
        k?(VirtioNet.transmitQueue)
    }
}

extension VirtioNet: HostHandOver {
    /// Live migration, paused: stop watching the tap and let it go (`NetBackend.handOver`).
    public func handOver() throws {
        guard !handedOver else { return }
        handedOver = true
        backendGone()
        try backend.handOver()
    }

    /// The migration failed: attach the tap again and watch it (unless the link is down:
    /// a gone tap stays unwatched).
    public func takeBack() throws {
        guard handedOver else { return }
        handedOver = false
        try backend.takeBack()
        if backend.pollFD >= 0 && linkUp { try watchBackend() }
    }
}
