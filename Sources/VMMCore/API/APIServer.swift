import CKVM
import Glibc
import KVMKit
import Synchronization

/// Firecracker's API transport: HTTP/1.1 on a Unix stream socket, served by its own
/// thread running its own `EventLoop`, never a vCPU thread. Each complete request is
/// passed to `handler` on that thread, synchronously, and its response queued.
///
/// A slow or hostile client cannot stall it: sockets are non-blocking, each connection
/// has its own buffers, a request head must arrive within `headerMillis` and its body
/// within `bodyMillis` (else 408 and close), responses a client does not read are dropped
/// with the connection after `writeMillis`, a client with `maxPendingOutput` bytes unread
/// is not read from (pipelining cannot grow memory), and at most `maxConnections` are
/// open: a new client then displaces the longest-idle one, or gets 503 when every
/// connection is mid-request. accept() failing for lack of fds (EMFILE, ENFILE)
/// pauses accepting for `acceptBackoffMillis` instead of spinning. Timers are one timerfd
/// armed for the earliest deadline only, so an idle server never wakes up.
///
/// The socket file is created mode 0600. A live socket at the path (something accepts
/// on it) or a non-socket file is an error; a stale socket is replaced. `stop()` removes
/// the file; `join()` waits for the thread and closes every fd.
public final class APIServer: @unchecked Sendable {
    public typealias Handler = (HTTPRequest) -> HTTPResponse

    public struct Timeouts: Sendable {
        public var headerMillis: Int64 = 10_000
        public var bodyMillis: Int64 = 10_000
        public var writeMillis: Int64 = 10_000
        public var acceptBackoffMillis: Int64 = 100
        public init() {}
    }

    public struct Options: Sendable {
        public var timeouts = Timeouts()
        public var limits = HTTPRequestParser.Limits()
        public var maxConnections = 32
        public var maxPendingOutput = 64 * 1024
        public init() {}
    }

    public let path: String
    public let options: Options
    private let handler: Handler

    private var loop: EventLoop?
    private var listenFD: Int32 = -1
    private var timer: TimerFD?
    private var socketInode: ino_t = 0
    private var connections: [Int32: APIConnection] = [:]
    private var acceptPausedUntil: Int64?
    private var accepting = true
    private let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * 1024, alignment: 16)
    /// start() and stop() may race from different threads.
    private let lifecycle = Mutex(Lifecycle())

    private struct Lifecycle {
        var started = false
        var socketRemoved = false
    }

    /// Counters, read from the loop thread or after `join()`.
    public private(set) var connectionsAccepted: UInt64 = 0
    public private(set) var requestsServed: UInt64 = 0
    public private(set) var timeoutsFired: UInt64 = 0
    public private(set) var acceptBackoffs: UInt64 = 0
    public private(set) var connectionsRefused: UInt64 = 0

    public init(path: String, options: Options = Options(), handler: @escaping Handler) {
        self.path = path
        self.options = options
        self.handler = handler
    }

    deinit {
        stop()
        join()
        readBuffer.deallocate()
    }

    // MARK: start and stop

    /// Bind, listen and start the API thread. On failure nothing is left behind.
    public func start() throws {
        try lifecycle.withLock { state throws(APIServerError) in
            if state.started { throw APIServerError.alreadyStarted }
            state.started = true
        }
        do {
            try bindSocket()
            let timer = try TimerFD()
            self.timer = timer
            let loop = try EventLoop()
            self.loop = loop
            try loop.register(fd: listenFD, events: .readable) { [unowned self] _ in self.acceptClients() }
            try loop.register(fd: timer.fd, events: .readable) { [unowned self] _ in self.timerFired() }
            try loop.start(name: "swiftvmm-api", threadKind: .api)
        } catch let e as EventLoopError {
            cleanUp()
            throw APIServerError.systemCall("event loop", errno: 0, context: e.description)
        } catch {
            cleanUp()
            throw error
        }
    }

    /// Ask the API thread to end and remove the socket file (no new client can connect).
    /// Any thread, including the handler's.
    public func stop() {
        loop?.stop()
        removeSocketFile()
    }

    /// Wait for the API thread to end, then close every connection. Not from the handler.
    public func join() {
        guard let loop, !loop.isOnLoopThread else { return }
        loop.join()
        cleanUp()
    }

    private func bindSocket() throws {
        guard !path.isEmpty, path.utf8.count <= UnixSocketAddress.maxPathBytes else {
            throw APIServerError.socketPathTooLong(path: path)
        }
        switch try UnixSocketAddress.clearStaleSocket(path) {
        case .free, .removedStale: break
        case .liveSocket: throw APIServerError.socketInUse(path: path)
        case .notSocket: throw APIServerError.pathIsNotSocket(path: path)
        case .failed(let call, let e): throw APIServerError.systemCall(call, errno: e, context: "existing socket \(path)")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw APIServerError.systemCall("socket", errno: errno, context: "API socket \(path)") }
        listenFD = fd
        // Bound under a temporary name and renamed once listening: clients (and tools that
        // wait for the file to appear) never find a socket that refuses connections.
        let temporary = "\(path).\(getpid()).tmp"
        let bindPath = temporary.utf8.count <= UnixSocketAddress.maxPathBytes ? temporary : path
        unlink(bindPath)
        let rc = try UnixSocketAddress.withAddress(bindPath) { bind(fd, $0, $1) }
        if rc < 0 { throw APIServerError.systemCall("bind", errno: errno, context: "API socket \(path)") }
        ConsoleExitCleanup.install()           // a SIGTERM/SIGINT unlinks the socket too
        ConsoleExitCleanup.recordSocketPath(path)
        do {
            // Before listen() connects are refused, so tightening the mode here is race-free.
            if chmod(bindPath, 0o600) < 0 { throw APIServerError.systemCall("chmod", errno: errno, context: "API socket \(path)") }
            if listen(fd, 64) < 0 { throw APIServerError.systemCall("listen", errno: errno, context: "API socket \(path)") }
            if bindPath != path, rename(bindPath, path) < 0 {
                throw APIServerError.systemCall("rename", errno: errno, context: "API socket \(path)")
            }
        } catch {
            if bindPath != path { unlink(bindPath) }
            throw error
        }
        var st = stat()
        if lstat(path, &st) == 0 { socketInode = st.st_ino }
    }

    /// Unlink the socket file if it is still the one this server bound.
    private func removeSocketFile() {
        lifecycle.withLock { state in
            guard !state.socketRemoved, socketInode != 0 else { return }
            state.socketRemoved = true
            var st = stat()
            if lstat(path, &st) == 0, st.st_ino == socketInode, (st.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
            ConsoleExitCleanup.forgetSocketPath(path)
        }
    }

    private func cleanUp() {
        removeSocketFile()
        for fd in connections.keys { loop?.unregister(fd: fd); close(fd) }
        connections.removeAll()
        if listenFD >= 0 { loop?.unregister(fd: listenFD); close(listenFD); listenFD = -1 }
        if let timer { loop?.unregister(fd: timer.fd) }
        timer = nil
    }

    // MARK: accepting

    private func acceptClients() {
        let now = Self.nowMillis()
        while true {
            let fd = ckvm_accept_nonblock_cloexec(listenFD)
            if fd < 0 {
                let e = -fd
                if e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM {
                    acceptBackoffs &+= 1
                    acceptPausedUntil = now &+ options.timeouts.acceptBackoffMillis
                    setAccepting(false)
                    armTimer()
                }
                return  // EAGAIN, or a connection that went away (ECONNABORTED)
            }
            if connections.count >= options.maxConnections, !evictIdleConnection() {
                // Every connection is mid-request (and bounded by its timeouts): refuse.
                connectionsRefused &+= 1
                let busy = HTTPResponse.fault(.serviceUnavailable, "Too many API connections.").serialized(keepAlive: false)
                _ = busy.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
                close(fd)
                continue
            }
            let connection = APIConnection(fd: fd, limits: options.limits, now: now)
            connections[fd] = connection
            connectionsAccepted &+= 1
            watch(connection)
        }
    }

    private func setAccepting(_ on: Bool) {
        guard on != accepting, let loop, listenFD >= 0 else { return }
        accepting = on
        try? loop.modify(fd: listenFD, events: on ? .readable : [])
    }

    /// Close the connection idle the longest, if any is idle.
    private func evictIdleConnection() -> Bool {
        guard let victim = connections.values.filter({ $0.isIdle }).min(by: { $0.lastActive < $1.lastActive }) else { return false }
        closeConnection(victim)
        return true
    }

    // MARK: connections

    private func connectionEvent(_ c: APIConnection, _ events: EventLoop.Events) {
        guard connections[c.fd] === c else { return }
        if events.contains(.writable) || !events.intersection([.error, .hangup]).isEmpty { flush(c) }
        guard connections[c.fd] === c else { return }
        if !events.intersection([.readable, .hangup, .peerClosedWrite, .error]).isEmpty, wantsInput(c) { readFrom(c) }
        guard connections[c.fd] === c else { return }
        settle(c)
    }

    private func wantsInput(_ c: APIConnection) -> Bool {
        !c.closeAfterWrite && c.pendingOutput < options.maxPendingOutput
    }

    private func readFrom(_ c: APIConnection) {
        let n = read(c.fd, readBuffer.baseAddress, readBuffer.count)
        if n < 0 {
            if errno == EAGAIN || errno == EINTR { return }
            closeConnection(c)
            return
        }
        c.lastActive = Self.nowMillis()
        if n == 0 {
            // The client closed its end: answer what is complete, then close.
            serve(c)
            c.closeAfterWrite = true
            c.input.removeAll()
            return
        }
        c.input.append(contentsOf: UnsafeRawBufferPointer(rebasing: readBuffer[0..<n]))
        serve(c)
    }

    /// Answer every complete request in the buffer, in order, while the client keeps up.
    private func serve(_ c: APIConnection) {
        while !c.closeAfterWrite, c.pendingOutput < options.maxPendingOutput {
            switch c.parser.parse(c.input) {
            case .needMore:
                if c.parser.expectsContinue, !c.sentContinue {
                    c.sentContinue = true
                    c.queue(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8))
                }
                return
            case .request(let request, let used):
                c.input.removeFirst(used)
                c.sentContinue = false
                requestsServed &+= 1
                let response = handler(request)
                c.queue(response.serialized(keepAlive: request.keepAlive))
                if !request.keepAlive { c.closeAfterWrite = true }
            case .error(let e):
                c.input.removeAll()
                c.queue(HTTPResponse.fault(e.status, e.message).serialized(keepAlive: false))
                c.closeAfterWrite = true
            }
        }
    }

    private func flush(_ c: APIConnection) {
        while c.pendingOutput > 0 {
            let n = c.output.withUnsafeBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return send(c.fd, base + c.outputOffset, c.pendingOutput, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { return }
                closeConnection(c)
                return
            }
            c.outputOffset += n
            c.lastActive = Self.nowMillis()
        }
    }

    /// After any event: write what can be written, serve requests held back by a slow
    /// reader, close when done, and watch exactly the events still needed.
    private func settle(_ c: APIConnection) {
        flush(c)
        while connections[c.fd] === c, !c.input.isEmpty, wantsInput(c) {
            let before = c.input.count
            serve(c)
            flush(c)
            if c.input.count == before { break }  // the rest is an incomplete request
        }
        guard connections[c.fd] === c else { return }
        if c.closeAfterWrite, c.pendingOutput == 0 {
            closeConnection(c)
            return
        }
        c.updatePhase(now: Self.nowMillis(), timeouts: options.timeouts)
        watch(c)
        armTimer()
    }

    private func watch(_ c: APIConnection) {
        guard let loop else { return }
        var wanted: EventLoop.Events = []
        if wantsInput(c) { wanted.formUnion([.readable, .peerClosedWrite]) }
        if c.pendingOutput > 0 { wanted.insert(.writable) }
        if c.watched == wanted { return }
        do {
            if c.watched == nil {
                try loop.register(fd: c.fd, events: wanted) { [unowned self, unowned c] events in self.connectionEvent(c, events) }
            } else {
                try loop.modify(fd: c.fd, events: wanted)
            }
            c.watched = wanted
        } catch {
            closeConnection(c)
        }
    }

    private func closeConnection(_ c: APIConnection) {
        guard connections[c.fd] === c else { return }
        loop?.unregister(fd: c.fd)
        close(c.fd)
        connections[c.fd] = nil
    }

    // MARK: timers

    private func timerFired() {
        timer?.drain()
        let now = Self.nowMillis()
        if let until = acceptPausedUntil, until <= now {
            acceptPausedUntil = nil
            setAccepting(true)
            acceptClients()
        }
        for c in Array(connections.values) {
            guard let deadline = c.deadline, deadline <= now, connections[c.fd] === c else { continue }
            timeoutsFired &+= 1
            switch c.phase {
            case .head, .body:
                c.input.removeAll()
                c.queue(HTTPResponse.fault(.requestTimeout, "Request not received in time.").serialized(keepAlive: false))
                c.closeAfterWrite = true
                settle(c)
            case .writing, .idle:
                closeConnection(c)
            }
        }
        armTimer()
    }

    /// One-shot at the earliest deadline, or disarmed when there is none.
    private func armTimer() {
        guard let timer else { return }
        var earliest = acceptPausedUntil
        for c in connections.values {
            if let d = c.deadline { earliest = min(earliest ?? d, d) }
        }
        if let earliest {
            timer.arm(after: UInt64(max(0, earliest - Self.nowMillis())) * 1_000_000)
        } else {
            timer.disarm()
        }
    }

    static func nowMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    // MARK: test support

    /// Connections open right now (loop thread, or after `join()`).
    var openConnections: Int { connections.count }
}
