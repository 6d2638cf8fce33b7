import CKVM
import Glibc

/// An epoll loop that calls a closure when a registered file descriptor is ready.
/// Devices (ioeventfds), the console (terminal, socket) and timers hang off one loop run
/// on its own thread (`start()`), or on the caller's thread (`run()`, e.g. the attach
/// client). Handlers run on the loop thread, one at a time, and must not block.
///
/// `register`, `modify`, `unregister` and `stop` may be called from any thread, including
/// from a handler. After `unregister` returns, no *new* call of that handler starts; a call
/// already running on the loop thread (when unregistering from another thread) finishes.
///
/// Dispatch allocates nothing: the epoll token carries the fd and a registration
/// generation, so a stale event for an fd that was unregistered (or re-registered) within
/// the same `epoll_wait` batch is dropped instead of reaching the wrong handler.
public final class EventLoop: @unchecked Sendable {
    public struct Events: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let readable = Events(rawValue: EPOLLIN.rawValue)
        public static let writable = Events(rawValue: EPOLLOUT.rawValue)
        /// The peer closed its end (stream sockets, pipes): reported, never requested.
        public static let hangup = Events(rawValue: EPOLLHUP.rawValue)
        public static let peerClosedWrite = Events(rawValue: EPOLLRDHUP.rawValue)
        public static let error = Events(rawValue: EPOLLERR.rawValue)
        public static let edgeTriggered = Events(rawValue: EPOLLET.rawValue)
    }

    public typealias Handler = (Events) -> Void

    private struct Slot {
        var generation: UInt32 = 0
        var handler: Handler?
    }

    private static let wakeToken = UInt64.max
    private static let maxEventsPerWait = 64

    let epollFD: Int32
    private let wake: EventFD
    private let lock = Lock()
    private var slots: [Slot] = []          // indexed by fd; guarded by lock
    private var nextGeneration: UInt32 = 1   // guarded by lock
    private var stopRequested = false        // guarded by lock
    private var running = false              // guarded by lock
    private var loopThread: pthread_t = 0    // valid while running
    private var spawnedThread: pthread_t?
    private var threadName = "swiftvmm-io"
    private var failureHandler: (@Sendable (EventLoopError) -> Void)?
    private var threadKind = ThreadKind.vmm
    /// Why the loop thread ended, if `run()` threw on the thread `start()` created.
    public private(set) var threadError: EventLoopError?

    public init() throws {
        let fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        if fd < 0 { throw EventLoopError.systemCall("epoll_create1", errno: errno, context: "create the loop") }
        epollFD = fd
        do {
            wake = try EventFD()
        } catch {
            close(fd)
            throw error
        }
        var ev = epoll_event()
        ev.events = EPOLLIN.rawValue
        ev.data.u64 = Self.wakeToken
        if epoll_ctl(epollFD, EPOLL_CTL_ADD, wake.fd, &ev) < 0 {
            let e = errno
            close(fd)
            throw EventLoopError.systemCall("epoll_ctl", errno: e, context: "add the wakeup eventfd")
        }
    }

    deinit {
        stop()
        join()
        close(epollFD)
    }

    // MARK: registration

    /// Watch `fd` for `events` (level-triggered unless `.edgeTriggered` is included).
    /// A regular file or other fd epoll cannot watch fails with errno EPERM.
    public func register(fd: Int32, events: Events, handler: @escaping Handler) throws {
        guard fd >= 0 else { throw EventLoopError.systemCall("epoll_ctl", errno: EBADF, context: "register fd \(fd)") }
        try lock.withLock {
            let index = Int(fd)
            if index >= slots.count { slots.append(contentsOf: repeatElement(Slot(), count: index + 1 - slots.count)) }
            if slots[index].handler != nil { throw EventLoopError.alreadyRegistered(fd: fd) }
            let generation = nextGeneration
            nextGeneration = nextGeneration &+ 1 == 0 ? 1 : nextGeneration &+ 1
            var ev = epoll_event()
            ev.events = events.rawValue
            ev.data.u64 = UInt64(generation) << 32 | UInt64(UInt32(bitPattern: fd))
            if epoll_ctl(epollFD, EPOLL_CTL_ADD, fd, &ev) < 0 {
                throw EventLoopError.systemCall("epoll_ctl", errno: errno, context: "register fd \(fd)")
            }
            slots[index] = Slot(generation: generation, handler: handler)
        }
    }

    /// Change the events watched on a registered fd (e.g. add `.writable` while output is
    /// pending, drop `.readable` while input is backpressured).
    public func modify(fd: Int32, events: Events) throws {
        try lock.withLock {
            let index = Int(fd)
            guard fd >= 0, index < slots.count, slots[index].handler != nil else { throw EventLoopError.notRegistered(fd: fd) }
            var ev = epoll_event()
            ev.events = events.rawValue
            ev.data.u64 = UInt64(slots[index].generation) << 32 | UInt64(UInt32(bitPattern: fd))
            if epoll_ctl(epollFD, EPOLL_CTL_MOD, fd, &ev) < 0 {
                throw EventLoopError.systemCall("epoll_ctl", errno: errno, context: "modify fd \(fd)")
            }
        }
    }

    /// Stop watching `fd`. Call before closing it. Unregistering an fd that is not
    /// registered is a no-op, so cleanup paths can call it unconditionally.
    public func unregister(fd: Int32) {
        let released = lock.withLock { () -> Handler? in
            let index = Int(fd)
            guard fd >= 0, index < slots.count, let handler = slots[index].handler else { return nil }
            slots[index].handler = nil
            // EBADF/ENOENT: the fd was closed already, which removed it from the set.
            _ = epoll_ctl(epollFD, EPOLL_CTL_DEL, fd, nil)
            return handler
        }
        _ = released  // the closure (and what it captures) is released outside the lock
    }

    public func isRegistered(fd: Int32) -> Bool {
        lock.withLock { fd >= 0 && Int(fd) < slots.count && slots[Int(fd)].handler != nil }
    }

    // MARK: running

    /// Run the loop on the calling thread until `stop()`.
    public func run() throws {
        try lock.withLock {
            if running { throw EventLoopError.alreadyRunning }
            running = true
            loopThread = pthread_self()
        }
        defer {
            lock.withLock {
                running = false
                stopRequested = false
            }
        }

        let events = UnsafeMutablePointer<epoll_event>.allocate(capacity: Self.maxEventsPerWait)
        defer { events.deallocate() }
        while true {
            if lock.withLock({ stopRequested }) { return }
            let n = epoll_wait(epollFD, events, Int32(Self.maxEventsPerWait), -1)
            if n < 0 {
                if errno == EINTR { continue }
                throw EventLoopError.systemCall("epoll_wait", errno: errno, context: "wait for events")
            }
            for i in 0..<Int(n) {
                dispatch(events[i])
            }
        }
    }

    /// Run the loop on a new thread named `name` (at most 15 characters are kept), under
    /// `threadKind`'s seccomp filter (`Seccomp.processPolicy`). `onFailure` runs on that
    /// thread if the loop ends with an error (epoll itself failed), so the owner can stop
    /// the VM instead of running on without devices.
    public func start(name: String = "swiftvmm-io", threadKind: ThreadKind = .vmm,
                      onFailure: (@Sendable (EventLoopError) -> Void)? = nil) throws {
        if lock.withLock({ running || spawnedThread != nil }) { throw EventLoopError.alreadyRunning }
        threadName = name
        failureHandler = onFailure
        self.threadKind = threadKind
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread: pthread_t = 0
        let rc = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            let loop = Unmanaged<EventLoop>.fromOpaque(raw).takeRetainedValue()
            _ = ckvm_set_current_thread_name(loop.threadName)
            Seccomp.installOnThreadStart(loop.threadKind)
            do { try loop.run() } catch {
                let e = error as? EventLoopError ?? .systemCall("run", errno: EIO, context: "\(error)")
                loop.threadError = e
                loop.failureHandler?(e)
            }
            return nil
        }, context)
        if rc != 0 {
            Unmanaged<EventLoop>.fromOpaque(context).release()
            throw EventLoopError.systemCall("pthread_create", errno: rc, context: "start the loop thread")
        }
        lock.withLock { spawnedThread = thread }
    }

    /// Ask the loop to return after the handlers of the current batch. Any thread.
    public func stop() {
        lock.withLock { stopRequested = true }
        wake.signal()
    }

    /// Wait for the thread `start()` created to end. No-op otherwise, and on that thread.
    public func join() {
        guard let thread = lock.withLock({ spawnedThread }), pthread_equal(thread, pthread_self()) == 0 else { return }
        pthread_join(thread, nil)
        lock.withLock { spawnedThread = nil }
    }

    /// True when called from the thread currently running the loop.
    public var isOnLoopThread: Bool {
        lock.withLock { running && pthread_equal(loopThread, pthread_self()) != 0 }
    }

    @inline(__always)
    private func dispatch(_ event: epoll_event) {
        let token = event.data.u64
        if token == Self.wakeToken {
            wake.drain()
            return
        }
        let index = Int(UInt32(truncatingIfNeeded: token))
        let generation = UInt32(truncatingIfNeeded: token >> 32)
        let handler = lock.withLock { () -> Handler? in
            guard index < slots.count, slots[index].generation == generation else { return nil }
            return slots[index].handler
        }
        handler?(Events(rawValue: event.events))
    }
}
