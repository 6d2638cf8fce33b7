import KVMKit

extension VirtioVsock {
    /// Create the listener and hang it and every host stream on `loop`, edge-triggered:
    /// readiness only marks the fd and kicks the rx queue, where the work happens.
    public func register(with loop: EventLoop) throws {
        try listen()
        let rx: () -> Void = { [weak self] in
            let k = self?.kick.withLock { $0 }
            k?(VirtioVsock.rxQueue)
        }
        scheduleRx = rx
        watch = { [weak self] fd in
            try? loop.register(fd: fd, events: [.readable, .writable, .edgeTriggered]) { _ in self?.hostReady(fd) }
        }
        unwatch = { fd in loop.unregister(fd: fd) }
        let l = listener
        try loop.register(fd: l, events: [.readable, .edgeTriggered]) { [weak self] _ in self?.hostReady(l) }
    }
}
