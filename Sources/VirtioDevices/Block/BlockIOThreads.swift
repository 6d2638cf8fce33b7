import CKVM
import Glibc
import KVMKit

/// A parsed request on its way through a disk's I/O threads.
struct BlockJob {
    let head: UInt16
    /// Guest address of the status byte.
    let status: UInt64
    let request: BlockRequest
    let memory: GuestMemory
    /// Submission order (set by `submit`).
    var sequence: UInt64 = 0
    /// The device activation it belongs to; a reset makes older jobs stale.
    let generation: UInt64

    /// Requests a later flush must wait for.
    var isWrite: Bool {
        switch request.kind {
        case .write, .discard, .writeZeroes: return true
        default: return false
        }
    }
    var isFlush: Bool { request.kind == .flush }
}

/// What goes back to the guest for one job.
struct BlockCompletion {
    let head: UInt16
    let status: UInt64
    let statusByte: UInt8
    /// Bytes written into guest buffers, not counting the status byte.
    let written: UInt32
}

/// The I/O threads of one disk: they execute parsed requests off the event-loop thread,
/// several at once, and hand completions back in batches (one `publish` per batch, so
/// one used-ring update and at most one interrupt). A flush starts only after every
/// earlier write has finished; later requests do not wait for it.
///
/// They also take the queue's notifications themselves (`serve(notifyFD:handler:)`):
/// every idle thread waits in its own epoll on the queue's ioeventfd (EPOLLEXCLUSIVE, so
/// a notify wakes one of them) and on its own wake-up eventfd. The thread a notify wakes
/// pops the requests (the handler: the transport's `handleNotify`) and executes the
/// first itself; only further ones wake other threads. Through the event loop, every
/// request cost two sleeping threads woken in turn (loop, then I/O thread); this way one.
///
/// Owner: `VirtioBlock`, which starts the threads with the device and stops and joins
/// them in `shutdown()`. The lock guards only this queue; it is never held across I/O,
/// and neither `publish` nor the notify handler (both take the transport's lock) is
/// called with it held.
final class BlockIOThreads: @unchecked Sendable {
    typealias Execute = (BlockJob) -> BlockCompletion
    typealias Publish = ([BlockCompletion]) -> Void

    /// Completions handed back at once at most (more wait for the next batch).
    static let batchLimit = 32

    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    /// `pause()` and `reset()` wait here for `inFlight` / `executing` to drain.
    private let idle = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var pending: [BlockJob] = []
    /// (sequence, isWrite) of the jobs being executed.
    private var executing: [(sequence: UInt64, isWrite: Bool)] = []
    private var done: [BlockCompletion] = []
    /// Jobs reserved, queued, executing, or completed but not yet published.
    private var inFlight = 0
    private var paused = false
    private var stopping = false
    private var generation: UInt64 = 0
    private var nextSequence: UInt64 = 0
    /// Jobs submitted that no thread was woken for yet.
    private var unwoken = 0
    private var publisher: Publish?
    private var threads: [pthread_t] = []
    private let execute: Execute
    /// Per thread: its epoll instance and the eventfd that wakes it for a queued job.
    private let epollFDs: [Int32]
    private let wakeFDs: [EventFD]
    /// Threads waiting in epoll with nothing to do (a stack: the last to sleep is woken first).
    private var sleeping: [Int] = []
    /// Runs the queue's notification (set by `serve`).
    private var onNotify: (() -> Void)?
    private static let notifyToken: UInt64 = 1
    private static let wakeToken: UInt64 = 2

    init(threads count: Int, name: String, execute: @escaping Execute) throws {
        self.execute = execute
        let n = max(1, count)
        var epolls: [Int32] = []
        var wakes: [EventFD] = []
        do {
            for _ in 0..<n {
                let wake = try EventFD()
                let fd = epoll_create1(Int32(EPOLL_CLOEXEC))
                if fd < 0 { throw BlockBackendError.io(operation: "create the I/O threads' epoll for", path: name, offset: 0, errno: errno) }
                epolls.append(fd)
                wakes.append(wake)
                var ev = epoll_event()
                ev.events = EPOLLIN.rawValue
                ev.data.u64 = Self.wakeToken
                if epoll_ctl(fd, EPOLL_CTL_ADD, wake.fd, &ev) < 0 {
                    throw BlockBackendError.io(operation: "watch the I/O thread's wake-up eventfd for", path: name, offset: 0, errno: errno)
                }
            }
        } catch {
            for fd in epolls { close(fd) }
            throw error
        }
        epollFDs = epolls
        wakeFDs = wakes
        mutex.initialize(to: pthread_mutex_t())
        idle.initialize(to: pthread_cond_t())
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(idle, nil)
        for index in 0..<n {
            let context = Unmanaged.passRetained(ThreadStart(owner: self, index: index)).toOpaque()
            var thread: pthread_t = 0
            let rc = pthread_create(&thread, nil, { raw in
                guard let raw else { return nil }
                let start = Unmanaged<ThreadStart>.fromOpaque(raw).takeRetainedValue()
                start.owner.work(index: start.index)
                return nil
            }, context)
            if rc != 0 {
                Unmanaged<ThreadStart>.fromOpaque(context).release()
                stop()
                throw BlockBackendError.io(operation: "start I/O thread for", path: name, offset: 0, errno: rc)
            }
            locked { threads.append(thread) }
        }
    }

    private final class ThreadStart {
        let owner: BlockIOThreads
        let index: Int
        init(owner: BlockIOThreads, index: Int) { self.owner = owner; self.index = index }
    }

    deinit {
        for fd in epollFDs { close(fd) }
        pthread_cond_destroy(idle)
        pthread_mutex_destroy(mutex)
        idle.deallocate()
        mutex.deallocate()
    }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return body()
    }

    /// Take the queue's notifications: `fd` is its ioeventfd (level-triggered: the
    /// handler must drain it), `handler` pops and submits its requests. Call before the
    /// guest can notify; instead of registering `fd` with the event loop.
    func serve(notifyFD fd: Int32, handler: @escaping () -> Void) throws {
        for epoll in epollFDs {
            var ev = epoll_event()
            ev.events = EPOLLIN.rawValue | EPOLLEXCLUSIVE.rawValue
            ev.data.u64 = Self.notifyToken
            if epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &ev) < 0 {
                throw EventLoopError.systemCall("epoll_ctl", errno: errno, context: "a disk's I/O threads watch its notify eventfd \(fd)")
            }
        }
        locked { onNotify = handler }
    }

    // MARK: the device's side (under the transport lock)

    /// A new activation: completions go to `publish`; older jobs are stale.
    func activate(generation g: UInt64, publish: @escaping Publish) {
        locked { generation = g; publisher = publish }
    }

    /// Room for one more request, unless paused or stopping. Pair with `submit` or `unreserve`.
    func reserve() -> Bool {
        locked {
            if paused || stopping { return false }
            inFlight += 1
            return true
        }
    }

    func unreserve() {
        locked { inFlight -= 1; pthread_cond_broadcast(idle) }
    }

    /// Queued only: `wakeSubmitted()` starts it once the transport's lock is released.
    /// Woken at once, the thread read a 4 KiB request before the event loop let go of
    /// that lock and then blocked on it to publish: a contended lock (two futex calls and
    /// a context switch) on every request.
    func submit(_ job: BlockJob) {
        var job = job
        locked {
            nextSequence &+= 1
            job.sequence = nextSequence
            pending.append(job)
            unwoken += 1
        }
    }

    /// Wake one sleeping thread per job submitted since the last call, less the one the
    /// calling I/O thread (a notify it took) executes itself. A thread that finishes a job
    /// takes the next queued one itself, so a woken thread may find nothing left: a
    /// spurious wake-up, never a lost job.
    func wakeSubmitted() {
        let me = pthread_self()
        locked {
            var n = unwoken
            unwoken = 0
            if threads.contains(where: { pthread_equal($0, me) != 0 }) { n -= 1 }
            wakeSleeping(n)
        }
    }

    /// With the lock held.
    private func wakeSleeping(_ count: Int) {
        var n = count
        while n > 0, let t = sleeping.popLast() {
            wakeFDs[t].signal()
            n -= 1
        }
    }

    /// The driver reset the device: drop queued jobs and wait for executing ones (they
    /// write guest buffers); their completions are dropped. Publishing threads may be
    /// waiting for the transport lock the caller holds: they are not waited for (the
    /// transport drops completions for a queue that is no longer live).
    func reset(generation g: UInt64) {
        locked {
            generation = g
            publisher = nil
            inFlight -= pending.count + done.count
            pending.removeAll()
            done.removeAll()
            unwoken = 0
            while !executing.isEmpty { pthread_cond_wait(idle, mutex) }
            pthread_cond_broadcast(idle)
        }
    }

    // MARK: pause, stop

    /// No new requests are taken; returns when every taken one is complete and published.
    func pause() {
        locked {
            paused = true
            while inFlight > 0 { pthread_cond_wait(idle, mutex) }
        }
    }

    func resume() { locked { paused = false } }

    /// Finish what is queued, then end and join the threads. Idempotent.
    func stop() {
        let joined: [pthread_t] = locked {
            stopping = true
            for w in wakeFDs { w.signal() }
            let t = threads
            threads.removeAll()
            return t
        }
        for t in joined where pthread_equal(t, pthread_self()) == 0 { pthread_join(t, nil) }
    }

    // MARK: the threads

    /// The first queued job that may start: anything but a flush with an earlier write
    /// still queued or executing.
    private func takeRunnable() -> BlockJob? {
        for (i, job) in pending.enumerated() {
            if job.isFlush {
                let earlierWrite = pending[..<i].contains { $0.isWrite } || executing.contains { $0.isWrite && $0.sequence < job.sequence }
                if earlierWrite { continue }
            }
            pending.remove(at: i)
            return job
        }
        return nil
    }

    private func work(index: Int) {
        Seccomp.installOnThreadStart(.block)
        pthread_mutex_lock(mutex)
        while true {
            guard let job = takeRunnable() else {
                if stopping && pending.isEmpty { break }
                sleeping.append(index)
                pthread_mutex_unlock(mutex)
                let notified = waitForWork(index: index)
                pthread_mutex_lock(mutex)
                sleeping.removeAll { $0 == index }
                if notified, let handler = onNotify, !stopping {
                    pthread_mutex_unlock(mutex)
                    handler()
                    pthread_mutex_lock(mutex)
                }
                continue
            }
            executing.append((job.sequence, job.isWrite))
            pthread_mutex_unlock(mutex)
            let completion = execute(job)
            pthread_mutex_lock(mutex)
            executing.removeAll { $0.sequence == job.sequence }
            if job.generation == generation { done.append(completion) } else { inFlight -= 1 }
            // Hand back a batch when nothing else is ready to run (we would sleep) or it is full.
            let ready = takeRunnablePeek()
            if !done.isEmpty && (!ready || done.count >= Self.batchLimit) {
                let batch = done
                done.removeAll()
                let publish = publisher
                pthread_mutex_unlock(mutex)
                publish?(batch)
                pthread_mutex_lock(mutex)
                inFlight -= batch.count
            }
            // This thread takes the next runnable job itself; others are woken only for a
            // flush that this write may have unblocked (the loop would take it only after
            // its next job otherwise).
            if job.isWrite && pending.contains(where: { $0.isFlush }) { wakeSleeping(sleeping.count) }
            pthread_cond_broadcast(idle)
        }
        pthread_mutex_unlock(mutex)
    }

    /// Sleep in this thread's epoll until its wake-up eventfd or the queue's notify
    /// eventfd is readable; true for a notify.
    private func waitForWork(index: Int) -> Bool {
        var events = [epoll_event](repeating: epoll_event(), count: 2)
        while true {
            let n = epoll_wait(epollFDs[index], &events, 2, -1)
            if n < 0 && errno == EINTR { continue }
            var notified = false
            for e in events.prefix(max(0, Int(n))) {
                if e.data.u64 == Self.wakeToken { wakeFDs[index].drain() } else { notified = true }
            }
            return notified
        }
    }

    /// Whether some queued job could start now (without taking it).
    private func takeRunnablePeek() -> Bool {
        pending.enumerated().contains { i, job in
            !job.isFlush || !(pending[..<i].contains { $0.isWrite } || executing.contains { $0.isWrite && $0.sequence < job.sequence })
        }
    }
}
