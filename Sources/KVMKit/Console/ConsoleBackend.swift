import Glibc

/// One host-side destination of a guest console (stdio, file, socket, none), driven by
/// `ConsoleBackend` on the event-loop thread. Internal.
protocol ConsoleHost: AnyObject {
    /// Open fds, switch the terminal, register with the loop.
    func start() throws
    /// False while the host cannot take output (slow stdout): the backend then leaves it
    /// in the guest's bounded buffer, which fills and counts drops.
    var acceptsOutput: Bool { get }
    func write(_ bytes: UnsafeRawBufferPointer)
    /// The input feeder drained after being blocked: read host input again.
    func inputResumed()
    /// Shutdown path (loop no longer dispatching): write these bytes, waiting up to
    /// `deadline` (monotonic ms).
    func writeFinal(_ bytes: UnsafeRawBufferPointer, deadline: Int64)
    /// Unregister, close, restore the terminal, remove files. Idempotent.
    func close(deadline: Int64)
}

/// The host side of a guest console: moves guest output to stdout, a file or a socket
/// client, and host input (keystrokes, with the Ctrl-A escape keys on a terminal) into
/// the guest device with backpressure. Everything runs on `loop`'s thread.
///
/// Usage (VMM):
///
///     let loop = try EventLoop()
///     let console = ConsoleBackend(mode: try ConsoleMode(parsing: "stdio"), port: uartPort,
///                                  loop: loop) { vm.requestStop(reason: .userQuit) }
///     try console.start()          // raw mode now; restored by shutdown/exit/signals
///     try loop.start()
///     ... VM runs ...
///     loop.stop(); loop.join()
///     console.shutdown()            // flushes the last guest output, restores the terminal
public final class ConsoleBackend {
    public let mode: ConsoleMode
    let loop: EventLoop
    let port: ConsoleGuestPort
    let feeder: ConsoleInputFeeder
    /// Called on the loop thread for Ctrl-A x (stdio, or a socket client). The VMM should
    /// stop the VM and exit with status 0 (as QEMU does).
    let onQuit: () -> Void
    private var host: ConsoleHost!
    private let staging = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
    private var started = false
    private var isShutDown = false
    private(set) var quitRequested = false

    /// Guest output bytes taken from the port (delivered, or discarded by `none`).
    public private(set) var outputBytes: UInt64 = 0
    /// Host input bytes the guest device accepted.
    public var inputBytes: UInt64 { feeder.bytesDelivered }

    /// Counters for `swiftvmm` to report at exit. Drops for a full guest-side buffer are
    /// counted there (`BoundedOutputBuffer.droppedBytes`), not here. Loop thread, or after
    /// the loop stopped.
    public struct Metrics: Equatable, Sendable {
        public var outputBytes: UInt64 = 0
        public var inputBytes: UInt64 = 0
        /// Output thrown away on the host side: stdout failed (EPIPE, EIO) or a file write failed.
        public var hostDiscardedBytes: UInt64 = 0
        /// Output a lagging socket client never saw (it fell more than 64 KiB behind).
        public var clientSkippedBytes: UInt64 = 0
        public var clientsServed: UInt64 = 0
        public var clientsRefusedBusy: UInt64 = 0
    }

    public var metrics: Metrics {
        var m = Metrics(outputBytes: outputBytes, inputBytes: inputBytes)
        if let stdio = host as? StdioConsoleHost { m.hostDiscardedBytes = stdio.discardedBytes }
        if let file = host as? FileConsoleHost { m.hostDiscardedBytes = file.discardedBytes }
        if let server = host as? ConsoleSocketServer {
            m.clientSkippedBytes = server.skippedBytes
            m.clientsServed = server.clientsServed
            m.clientsRefusedBusy = server.clientsRefusedBusy
        }
        return m
    }

    public convenience init(mode: ConsoleMode, port: ConsoleGuestPort, loop: EventLoop, onQuit: @escaping () -> Void) {
        self.init(mode: mode, port: port, loop: loop, stdio: (0, 1), onQuit: onQuit)
    }

    /// `stdio`: the fds `.stdio` uses instead of 0 and 1 (tests drive it through a pty).
    init(mode: ConsoleMode, port: ConsoleGuestPort, loop: EventLoop, stdio: (input: Int32, output: Int32),
         onQuit: @escaping () -> Void) {
        self.mode = mode
        self.loop = loop
        self.port = port
        self.feeder = ConsoleInputFeeder(port: port)
        self.onQuit = onQuit
        switch mode {
        case .stdio: host = StdioConsoleHost(backend: self, stdin: stdio.input, stdout: stdio.output)
        case .file(let path): host = FileConsoleHost(path: path)
        case .socket(let path): host = ConsoleSocketServer(path: path, backend: self)
        case .none: host = DiscardConsoleHost()
        }
    }

    deinit {
        shutdown()
        staging.deallocate()
    }

    /// For `.socket`: the server, e.g. to see whether a client is attached.
    public var socketServer: ConsoleSocketServer? { host as? ConsoleSocketServer }

    /// Open the host side and register with the loop (call before `loop.start()`, or on
    /// the loop thread). Ignores SIGPIPE process-wide: a vanished reader of stdout or of
    /// the socket must be an error return, not the death of the VMM.
    public func start() throws {
        guard !started else { return }
        signal(SIGPIPE, SIG_IGN)
        try host.start()
        do {
            try loop.register(fd: port.notifyFD, events: .readable) { [unowned self] _ in self.portNotified() }
        } catch {
            host.close(deadline: 0)
            throw error
        }
        started = true
        pumpOutput()
    }

    /// Stop the console: final guest output is written (waiting at most `flushMillis` for a
    /// slow terminal or client), the terminal restored, fds closed, the socket removed.
    /// Call after the loop has stopped (or on its thread). Idempotent.
    public func shutdown(flushMillis: Int64 = 500) {
        guard !isShutDown else { return }
        isShutDown = true
        guard started else { return }
        loop.unregister(fd: port.notifyFD)
        let deadline = ConsoleIO.monotonicMillis() + flushMillis
        while ConsoleIO.monotonicMillis() < deadline {
            let n = port.drainOutput(into: staging)
            if n <= 0 { break }
            outputBytes += UInt64(n)
            host.writeFinal(UnsafeRawBufferPointer(rebasing: staging[0..<min(n, staging.count)]), deadline: deadline)
        }
        host.close(deadline: deadline)
    }

    // MARK: loop-thread plumbing used by the hosts

    private func portNotified() {
        var counter: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &counter) { read(port.notifyFD, $0.baseAddress, 8) }
        pumpOutput()
        if feeder.isBlocked, feeder.flush() { host.inputResumed() }
    }

    /// Move guest output to the host while it accepts it.
    func pumpOutput() {
        while host.acceptsOutput {
            let n = port.drainOutput(into: staging)
            if n <= 0 { return }
            outputBytes += UInt64(n)
            host.write(UnsafeRawBufferPointer(rebasing: staging[0..<min(n, staging.count)]))
        }
    }

    func requestQuit() {
        guard !quitRequested else { return }
        quitRequested = true
        onQuit()
    }
}

/// `--serial none`: output read and dropped so the guest never sees a full buffer.
final class DiscardConsoleHost: ConsoleHost {
    func start() throws {}
    var acceptsOutput: Bool { true }
    func write(_ bytes: UnsafeRawBufferPointer) {}
    func inputResumed() {}
    func writeFinal(_ bytes: UnsafeRawBufferPointer, deadline: Int64) {}
    func close(deadline: Int64) {}
}
