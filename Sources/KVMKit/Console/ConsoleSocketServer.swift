import CKVM
import Glibc

/// `--serial socket:PATH`: the console served on a Unix stream socket for
/// `swiftvmm attach PATH` (or any client such as `socat - UNIX-CONNECT:PATH`).
///
/// - One client at a time. Another one gets the line "swiftvmm: console busy" and is
///   closed.
/// - The last 64 KiB of guest output are kept in a `ReplayRing`; a client that attaches
///   is sent them first. The client reads the ring through a cursor; a client that lags
///   by more than 64 KiB skips ahead (counted in `skippedBytes`), the guest never waits.
/// - The VM keeps running with no client.
/// - Client input goes through the escape keys: Ctrl-A x asks the VMM to quit, Ctrl-A d
///   disconnects the client, Ctrl-A h sends help, Ctrl-A Ctrl-A a literal 0x01. (The
///   attach client handles d and h itself and forwards the rest verbatim.)
/// - The socket file is created mode 0600. An existing live socket (something accepts
///   on it) is an error; a stale one is replaced; any other file is an error. The file is
///   removed on shutdown, at exit and on fatal signals.
/// - Out of file descriptors at accept (EMFILE, ENFILE, ENOBUFS, ENOMEM): the listening
///   socket stays readable, so the server stops watching it for `acceptBackoffMilliseconds`
///   instead of spinning, then tries again; a pending client waits in the backlog.
public final class ConsoleSocketServer: ConsoleHost {
    public static let acceptBackoffMilliseconds = 100
    public static let busyMessage = "swiftvmm: console busy\n"
    public static let detachedMessage = "\r\n[swiftvmm: detached]\r\n"

    public let path: String
    private unowned let backend: ConsoleBackend
    private var loop: EventLoop { backend.loop }
    public let replay: ReplayRing

    private var listenFD: Int32 = -1
    private var client: Int32 = -1
    private var clientCursor: UInt64 = 0
    private var clientEvents: EventLoop.Events = []
    private var parser = EscapeKeyParser()
    private let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)

    public private(set) var clientsServed: UInt64 = 0
    public private(set) var clientsRefusedBusy: UInt64 = 0
    public private(set) var skippedBytes: UInt64 = 0
    /// Times accepting paused because the process (or system) was out of descriptors.
    public private(set) var acceptBackoffs: UInt64 = 0
    private var backoffTimer: TimerFD?

    init(path: String, backend: ConsoleBackend, replayCapacity: Int = ReplayRing.defaultCapacity) {
        self.path = path
        self.backend = backend
        self.replay = ReplayRing(capacity: replayCapacity)
    }

    deinit { readBuffer.deallocate() }

    public var hasClient: Bool { client >= 0 }

    // MARK: start

    func start() throws {
        try removeStaleSocket()
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if fd < 0 { throw ConsoleError.systemCall("socket", errno: errno, context: "console socket \(path)") }
        do {
            let rc = try UnixSocketAddress.withAddress(path) { bind(fd, $0, $1) }
            if rc < 0 { throw ConsoleError.systemCall("bind", errno: errno, context: "console socket \(path)") }
            ConsoleExitCleanup.install()
            ConsoleExitCleanup.recordSocketPath(path)
            // Before listen(), connects are refused, so tightening the mode here is race-free.
            if chmod(path, 0o600) < 0 { throw ConsoleError.systemCall("chmod", errno: errno, context: "console socket \(path)") }
            if listen(fd, 4) < 0 { throw ConsoleError.systemCall("listen", errno: errno, context: "console socket \(path)") }
            let timer = try TimerFD()
            backoffTimer = timer
            try loop.register(fd: timer.fd, events: .readable) { [unowned self] _ in self.resumeAccepting() }
            try loop.register(fd: fd, events: .readable) { [unowned self] _ in self.acceptClients() }
        } catch {
            if let t = backoffTimer { loop.unregister(fd: t.fd) }
            backoffTimer = nil
            Glibc.close(fd)
            if UnixSocketAddress.fileType(path) == S_IFSOCK { unlink(path) }
            ConsoleExitCleanup.forgetSocketPath(path)
            throw error
        }
        listenFD = fd
    }

    private func removeStaleSocket() throws {
        switch try UnixSocketAddress.clearStaleSocket(path) {
        case .free, .removedStale: return
        case .liveSocket: throw ConsoleError.socketInUse(path: path)
        case .notSocket: throw ConsoleError.pathIsNotSocket(path: path)
        case .failed("connect", let e): throw ConsoleError.systemCall("connect", errno: e, context: "probe existing socket \(path)")
        case .failed(let call, let e): throw ConsoleError.systemCall(call, errno: e, context: "stale socket \(path)")
        }
    }

    // MARK: clients

    private func acceptClients() {
        while true {
            let fd = ckvm_accept_nonblock_cloexec(listenFD)
            if fd < 0 {
                if [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(-fd) { pauseAccepting() }
                return  // EAGAIN, or a transient error (ECONNABORTED)
            }
            if client >= 0 {
                clientsRefusedBusy += 1
                var message = Self.busyMessage
                message.withUTF8 { _ = ConsoleIO.writeSome(fd, UnsafeRawBufferPointer($0), socket: true) }
                Glibc.close(fd)
                continue
            }
            client = fd
            clientsServed += 1
            clientCursor = replay.oldestPosition  // replay history first
            parser = EscapeKeyParser()
            clientEvents = []
            updateClientEvents()
            if client >= 0 { flushToClient() }
        }
    }

    private func pauseAccepting() {
        guard let t = backoffTimer else { return }  // keep watching
        t.arm(after: UInt64(Self.acceptBackoffMilliseconds) * 1_000_000)
        acceptBackoffs += 1
        loop.unregister(fd: listenFD)
    }

    private func resumeAccepting() {
        backoffTimer?.drain()
        guard listenFD >= 0, !loop.isRegistered(fd: listenFD) else { return }
        do {
            try loop.register(fd: listenFD, events: .readable) { [unowned self] _ in self.acceptClients() }
        } catch {
            pauseAccepting()  // try again later rather than stop serving
            return
        }
        acceptClients()
    }

    /// Readable (and peer-closed) unless the guest is not taking input; writable while the
    /// client lags. Nothing wanted → not registered at all, because a closed peer reports
    /// EPOLLHUP whatever was asked for, which would spin while input is blocked.
    private func updateClientEvents() {
        guard client >= 0 else { return }
        var wanted: EventLoop.Events = []
        if !backend.feeder.isBlocked { wanted.formUnion([.readable, .peerClosedWrite]) }
        if clientCursor < replay.endPosition { wanted.insert(.writable) }
        let registered = loop.isRegistered(fd: client)
        if wanted.isEmpty {
            if registered { loop.unregister(fd: client) }
            clientEvents = []
            return
        }
        if wanted == clientEvents, registered { return }
        do {
            if registered {
                try loop.modify(fd: client, events: wanted)
            } else {
                try loop.register(fd: client, events: wanted) { [unowned self] events in self.clientEvent(events) }
            }
            clientEvents = wanted
        } catch {
            disconnectClient()
        }
    }

    private func clientEvent(_ events: EventLoop.Events) {
        if events.contains(.writable) { flushToClient() }
        guard client >= 0 else { return }
        if !backend.feeder.isBlocked {
            if !events.intersection([.readable, .hangup, .peerClosedWrite, .error]).isEmpty { readFromClient() }
        } else if !events.intersection([.hangup, .error]).isEmpty {
            disconnectClient()  // gone for good while we only wanted to write to it
        }
    }

    private func readFromClient() {
        guard client >= 0 else { return }
        if backend.feeder.isBlocked { updateClientEvents(); return }
        let n = read(client, readBuffer.baseAddress, readBuffer.count)
        if n < 0 {
            if errno == EAGAIN || errno == EINTR { return }
            disconnectClient()
            return
        }
        if n == 0 { disconnectClient(); return }
        for i in 0..<n {
            switch parser.feed(readBuffer[i]) {
            case .byte(let b): backend.feeder.append(b)
            case .pending: break
            case .command(.literalEscape, _): backend.feeder.append(EscapeKeyParser.escapeByte)
            case .command(.quit, _):
                backend.feeder.flush()
                backend.requestQuit()
                return
            case .command(.detach, _):
                backend.feeder.flush()
                sendNotice(Self.detachedMessage)
                disconnectClient()
                return
            case .command(.help, _): sendNotice(EscapeKeyParser.helpText(detachAvailable: true))
            case .command(.unknown, _): break
            }
        }
        backend.feeder.flush()
        updateClientEvents()
    }

    /// Best effort, out of band of the output stream (help, detach notices).
    private func sendNotice(_ text: String) {
        guard client >= 0 else { return }
        var copy = text
        copy.withUTF8 { _ = ConsoleIO.writeSome(client, UnsafeRawBufferPointer($0), socket: true) }
    }

    private func flushToClient() {
        while client >= 0 {
            if clientCursor < replay.oldestPosition {
                skippedBytes += replay.oldestPosition - clientCursor
                clientCursor = replay.oldestPosition
            }
            let chunk = replay.contiguousBytes(from: clientCursor)
            if chunk.isEmpty { break }
            switch ConsoleIO.writeSome(client, chunk, socket: true) {
            case .wrote(let n): clientCursor += UInt64(n)
            case .wouldBlock: updateClientEvents(); return
            case .failed: disconnectClient(); return
            }
        }
        updateClientEvents()
    }

    private func disconnectClient() {
        guard client >= 0 else { return }
        loop.unregister(fd: client)
        Glibc.close(client)
        client = -1
        clientEvents = []
    }

    // MARK: ConsoleHost

    var acceptsOutput: Bool { true }

    func write(_ bytes: UnsafeRawBufferPointer) {
        replay.append(bytes)
        if client >= 0, !clientEvents.contains(.writable) { flushToClient() }
    }

    func inputResumed() { updateClientEvents() }

    func writeFinal(_ bytes: UnsafeRawBufferPointer, deadline: Int64) {
        replay.append(bytes)
        flushFinal(deadline: deadline)
    }

    private func flushFinal(deadline: Int64) {
        while client >= 0 {
            if clientCursor < replay.oldestPosition { clientCursor = replay.oldestPosition }
            let chunk = replay.contiguousBytes(from: clientCursor)
            if chunk.isEmpty { return }
            if !ConsoleIO.writeAll(client, chunk, socket: true, deadline: deadline) { disconnectClient(); return }
            clientCursor += UInt64(chunk.count)
        }
    }

    func close(deadline: Int64) {
        flushFinal(deadline: deadline)
        disconnectClient()
        if let t = backoffTimer { loop.unregister(fd: t.fd) }
        backoffTimer = nil
        if listenFD >= 0 {
            loop.unregister(fd: listenFD)
            Glibc.close(listenFD)
            listenFD = -1
            unlink(path)
            ConsoleExitCleanup.forgetSocketPath(path)
        }
    }
}
