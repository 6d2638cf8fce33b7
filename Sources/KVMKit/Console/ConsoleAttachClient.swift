import Glibc

/// `swiftvmm attach PATH`: connects the local terminal to a console served with
/// `--serial socket:PATH`.
///
/// - Raw mode on the local terminal (when `input` is one), restored on every way out
///   (return, thrown error, exit, fatal signals: `ConsoleExitCleanup`).
/// - Ctrl-A d detaches (`.detached`; the VM keeps running). Ctrl-A h prints help locally.
///   Every other Ctrl-A sequence is forwarded verbatim and handled by the server:
///   Ctrl-A x stops the VM (the server then closes the connection: `.closedByServer`),
///   Ctrl-A Ctrl-A sends a literal 0x01 to the guest.
/// - Errors are `ConsoleError`s with one-line descriptions: `.noSuchSocket`,
///   `.pathIsNotSocket`, `.connectionRefused` (stale socket, VM gone), `.consoleBusy`.
///
/// Runs its own `EventLoop` on the calling thread; `run()` blocks until the session ends.
public final class ConsoleAttachClient {
    public enum Outcome: Equatable, Sendable {
        /// Ctrl-A d: the VM keeps running. Suggested exit status 0.
        case detached
        /// The server closed the connection (VM stopped, or a server-side detach).
        /// Suggested exit status 0.
        case closedByServer
    }

    public let path: String
    private let inputFD: Int32
    private let outputFD: Int32
    private let useEscapeKeys: Bool?

    private var socketFD: Int32 = -1
    private var loop: EventLoop?
    private var parser = EscapeKeyParser()
    private var escapeKeys = true
    private var outcome: Outcome = .closedByServer
    private var failure: ConsoleError?
    private var inputOpen = true
    /// Bytes held back while they might still be the server's busy line.
    private var heldBack: [UInt8] = []
    private var streaming = false
    private let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)

    /// `escapeKeys`: nil = only when `input` is a terminal (the default); tests force it.
    public init(path: String, input: Int32 = 0, output: Int32 = 1, escapeKeys: Bool? = nil) {
        self.path = path
        self.inputFD = input
        self.outputFD = output
        self.useEscapeKeys = escapeKeys
    }

    deinit { buffer.deallocate() }

    /// Connect and relay until detached or closed. Throws before touching the terminal
    /// when the socket cannot be reached.
    public func run() throws -> Outcome {
        try connectSocket()
        defer {
            if socketFD >= 0 { close(socketFD) }
            socketFD = -1
        }
        let isTerminal = TerminalRawMode.isTerminal(inputFD)
        escapeKeys = useEscapeKeys ?? isTerminal
        let raw = isTerminal ? try TerminalRawMode(fd: inputFD) : nil
        defer { raw?.restore() }

        let loop = try EventLoop()
        self.loop = loop
        defer { self.loop = nil }
        try loop.register(fd: socketFD, events: [.readable, .peerClosedWrite]) { [unowned self] _ in self.socketReadable() }
        do {
            try loop.register(fd: inputFD, events: .readable) { [unowned self] _ in self.inputReadable() }
        } catch EventLoopError.systemCall(_, EPERM, _) {
            sendWholeFile()  // stdin is a regular file: epoll cannot watch it
        }
        try loop.run()
        loop.unregister(fd: inputFD)
        loop.unregister(fd: socketFD)
        if let failure { throw failure }
        return outcome
    }

    private func connectSocket() throws {
        guard let type = UnixSocketAddress.fileType(path, followSymlinks: true) else { throw ConsoleError.noSuchSocket(path: path) }
        guard type == S_IFSOCK else { throw ConsoleError.pathIsNotSocket(path: path) }
        let c = try UnixSocketAddress.connect(path)
        switch c.errno {
        case 0: socketFD = c.fd
        case ECONNREFUSED: throw ConsoleError.connectionRefused(path: path)
        case ENOENT: throw ConsoleError.noSuchSocket(path: path)
        default: throw ConsoleError.systemCall("connect", errno: c.errno, context: path)
        }
    }

    private func finish(_ result: Outcome) {
        outcome = result
        loop?.stop()
    }

    // MARK: server → terminal

    private func socketReadable() {
        let n = read(socketFD, buffer.baseAddress, buffer.count)
        if n < 0 {
            if errno == EAGAIN || errno == EINTR { return }
            flushHeldBack()
            finish(.closedByServer)
            return
        }
        if n == 0 {
            if !streaming, heldBack == Array(ConsoleSocketServer.busyMessage.utf8) {
                failure = .consoleBusy(path: path)
            } else {
                flushHeldBack()
            }
            finish(.closedByServer)
            return
        }
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
        if streaming {
            writeOut(bytes)
            return
        }
        // The busy line arrives right after connecting, then EOF. Hold output back only
        // while everything received could still be exactly that line.
        heldBack.append(contentsOf: bytes)
        let busy = Array(ConsoleSocketServer.busyMessage.utf8)
        if heldBack.count > busy.count || !busy.starts(with: heldBack) { flushHeldBack() }
    }

    private func flushHeldBack() {
        streaming = true
        if !heldBack.isEmpty {
            heldBack.withUnsafeBytes { writeOut($0) }
            heldBack = []
        }
    }

    private func writeOut(_ bytes: UnsafeRawBufferPointer) {
        // Blocking is fine here: the terminal is this process's only job, and the server
        // never waits for us (it skips ahead in its replay ring instead).
        _ = ConsoleIO.writeAll(outputFD, bytes, socket: false, deadline: Int64.max)
    }

    // MARK: terminal → server

    private func inputReadable() {
        guard inputOpen else { return }
        let n = read(inputFD, buffer.baseAddress, buffer.count)
        if n < 0 {
            if errno == EAGAIN || errno == EINTR { return }
            stopInput()
            return
        }
        if n == 0 { stopInput(); return }  // EOF on a pipe: keep showing output
        var out: [UInt8] = []
        out.reserveCapacity(n + 2)
        for i in 0..<n {
            let b = buffer[i]
            guard escapeKeys else { out.append(b); continue }
            switch parser.feed(b) {
            case .byte(let x): out.append(x)
            case .pending: break
            case .command(.detach, _):
                send(out)
                finish(.detached)
                return
            case .command(.help, _):
                writeText(Self.helpText)
            case .command(_, let key):
                out.append(EscapeKeyParser.escapeByte)  // x, Ctrl-A, others: the server decides
                out.append(key)
            }
        }
        send(out)
    }

    private func stopInput() {
        inputOpen = false
        loop?.unregister(fd: inputFD)
    }

    private func sendWholeFile() {
        while true {
            let n = read(inputFD, buffer.baseAddress, buffer.count)
            if n <= 0 { break }
            if !ConsoleIO.writeAll(socketFD, UnsafeRawBufferPointer(rebasing: buffer[0..<n]), socket: true, deadline: Int64.max) { break }
        }
        inputOpen = false
    }

    private func send(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        let ok = bytes.withUnsafeBytes { ConsoleIO.writeAll(socketFD, $0, socket: true, deadline: Int64.max) }
        if !ok { finish(.closedByServer) }
    }

    private func writeText(_ text: String) {
        var copy = text
        copy.withUTF8 { writeOut(UnsafeRawBufferPointer($0)) }
    }

    static let helpText = [
        "",
        "swiftvmm attach escape keys:",
        "  Ctrl-A d        detach (the VM keeps running)",
        "  Ctrl-A x        stop the VM",
        "  Ctrl-A h        this help",
        "  Ctrl-A Ctrl-A   send Ctrl-A to the guest",
        "",
    ].joined(separator: "\r\n")
}
