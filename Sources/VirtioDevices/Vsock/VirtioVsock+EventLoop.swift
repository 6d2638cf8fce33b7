import Glibc
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
        watchListener = { [weak self] l in
            try loop.register(fd: l, events: [.readable, .edgeTriggered]) { [weak self] _ in self?.hostReady(l) }
        }
        try watchListener(listener)
    }
}

extension VirtioVsock: HostHandOver {
    /// Live migration, paused: close the listener and remove its socket file, so the
    /// destination (on this host, same path) can listen there. Connections stay here:
    /// the guest is told of the reset on the destination.
    public func handOver() throws {
        activity.withLock { _ in
            guard listener >= 0 else { return }
            let l = listener
            unwatch(l)
            removeSocketFile()
            close(l)
            ready.withLock { _ = $0.remove(l) }
            listener = -1
            handedOver = true
        }
    }

    /// The migration failed: listen again (replacing a stale file the destination left).
    public func takeBack() throws {
        try activity.withLock { _ in
            guard handedOver else { return }
            handedOver = false
            try listen()
            try watchListener(listener)
        }
    }
}
