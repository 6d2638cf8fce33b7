import Glibc

/// `--serial stdio`: the VMM's own stdin and stdout.
///
/// - stdin a terminal: raw mode and the Ctrl-A escape keys (x quits, h helps, Ctrl-A
///   Ctrl-A sends 0x01; d only makes sense for `swiftvmm attach` and says so).
/// - stdin a pipe or file: bytes go to the guest verbatim; EOF stops reading stdin, not
///   the VM. Files (which epoll cannot watch) are read whenever the guest has room.
/// - stdout: written without blocking; when the terminal is slow the unwritten rest is
///   held (at most one 4 KiB chunk) and guest output waits in the device's bounded
///   buffer, which drops and counts when full. A regular-file stdout is written plainly.
final class StdioConsoleHost: ConsoleHost {
    private unowned let backend: ConsoleBackend
    private var loop: EventLoop { backend.loop }

    private var rawMode: TerminalRawMode?
    private var parser: EscapeKeyParser?

    private var input: (fd: Int32, owned: Bool) = (-1, false)
    private var inputPolled = false
    private var inputRegistered = false
    private var inputOpen = false

    private var output: (fd: Int32, owned: Bool) = (-1, false)
    private var outputPolled = false
    private var outputRegistered = false
    private var outputBroken = false

    private static let chunk = 4096
    private let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: StdioConsoleHost.chunk, alignment: 16)
    private let pending = UnsafeMutableRawBufferPointer.allocate(byteCount: StdioConsoleHost.chunk, alignment: 16)
    private var pendingStart = 0
    private var pendingEnd = 0
    private(set) var discardedBytes: UInt64 = 0

    /// The process's stdin and stdout; other fds for tests (a pty pair).
    private let stdinFD: Int32
    private let stdoutFD: Int32

    init(backend: ConsoleBackend, stdin: Int32 = 0, stdout: Int32 = 1) {
        self.backend = backend
        self.stdinFD = stdin
        self.stdoutFD = stdout
    }

    deinit {
        readBuffer.deallocate()
        pending.deallocate()
    }

    func start() throws {
        // Output first, so a failure leaves the terminal untouched.
        if ConsoleIO.isRegularFile(stdoutFD) {
            output = (stdoutFD, false)
        } else {
            output = try ConsoleIO.nonblockingCopy(of: stdoutFD, forWriting: true)
            outputPolled = true
        }
        do {
            try startInput()
        } catch {
            closeInput()
            rawMode?.restore()
            rawMode = nil
            if input.fd >= 0 { ConsoleIO.release(input) }
            input = (-1, false)
            ConsoleIO.release(output)
            output = (-1, false)
            throw error
        }
    }

    private func startInput() throws {
        if TerminalRawMode.isTerminal(stdinFD) {
            rawMode = try TerminalRawMode(fd: stdinFD)
            parser = EscapeKeyParser()
        }
        inputOpen = true
        if ConsoleIO.isRegularFile(stdinFD) {
            input = (stdinFD, false)
        } else {
            input = try ConsoleIO.nonblockingCopy(of: stdinFD, forWriting: false)
            inputPolled = true
        }
        if inputPolled {
            do {
                try registerInput()
            } catch EventLoopError.systemCall(_, EPERM, _) {
                inputPolled = false  // e.g. /dev/null: readable at any time
            }
        }
        if !inputPolled { pumpUnpolledInput() }
    }

    private func registerInput() throws {
        guard !inputRegistered else { return }
        try loop.register(fd: input.fd, events: .readable) { [unowned self] _ in self.readInput() }
        inputRegistered = true
    }

    // MARK: input

    private func readInput() {
        guard inputOpen else { return }
        if backend.feeder.isBlocked { pauseInput(); return }
        let n = read(input.fd, readBuffer.baseAddress, readBuffer.count)
        if n < 0 {
            if errno == EAGAIN || errno == EINTR { return }
            closeInput()  // EIO: the terminal went away
            return
        }
        if n == 0 { closeInput(); return }  // EOF: the VM keeps running
        process(n)
        if !backend.feeder.flush() { pauseInput() }
    }

    private func pumpUnpolledInput() {
        while inputOpen, !backend.feeder.isBlocked, !backend.quitRequested {
            let n = read(input.fd, readBuffer.baseAddress, readBuffer.count)
            if n < 0, errno == EINTR { continue }
            if n <= 0 { closeInput(); return }
            process(n)
            backend.feeder.flush()
        }
    }

    private func process(_ count: Int) {
        for i in 0..<count {
            let byte = readBuffer[i]
            guard parser != nil else { backend.feeder.append(byte); continue }
            switch parser!.feed(byte) {
            case .byte(let b): backend.feeder.append(b)
            case .pending: break
            case .command(.literalEscape, _): backend.feeder.append(EscapeKeyParser.escapeByte)
            case .command(.quit, _):
                backend.feeder.flush()
                closeInput()
                backend.requestQuit()
                return
            case .command(.help, _): notice(EscapeKeyParser.helpText(detachAvailable: false))
            case .command(.detach, _): notice("\r\n[swiftvmm: Ctrl-A d detaches 'swiftvmm attach' sessions; Ctrl-A x quits]\r\n")
            case .command(.unknown, _): break
            }
        }
    }

    /// Stop reading while the guest is not taking input (unregistering, not just dropping
    /// EPOLLIN, because a hung-up pipe reports EPOLLHUP regardless).
    private func pauseInput() {
        guard inputRegistered else { return }
        loop.unregister(fd: input.fd)
        inputRegistered = false
    }

    func inputResumed() {
        guard inputOpen else { return }
        if inputPolled {
            try? registerInput()
        } else {
            pumpUnpolledInput()
        }
    }

    private func closeInput() {
        guard inputOpen else { return }
        inputOpen = false
        pauseInput()
    }

    private func notice(_ text: String) {
        ConsoleIO.writeAll(output.fd, text, socket: false, deadline: ConsoleIO.monotonicMillis() + 100)
    }

    // MARK: output

    var acceptsOutput: Bool { pendingStart == pendingEnd }

    func write(_ bytes: UnsafeRawBufferPointer) {
        if outputBroken { discardedBytes += UInt64(bytes.count); return }
        guard outputPolled else {
            if !ConsoleIO.writeAll(output.fd, bytes, socket: false, deadline: ConsoleIO.monotonicMillis() + 1000) {
                outputBroken = true
            }
            return
        }
        switch ConsoleIO.writeSome(output.fd, bytes, socket: false) {
        case .wrote(let n):
            if n < bytes.count { hold(UnsafeRawBufferPointer(rebasing: bytes[n...])) }
        case .wouldBlock:
            hold(bytes)
        case .failed:
            outputBroken = true  // EPIPE, EIO: stop writing, keep the VM running
            discardedBytes += UInt64(bytes.count)
        }
    }

    private func hold(_ bytes: UnsafeRawBufferPointer) {
        let n = min(bytes.count, pending.count)
        if let src = bytes.baseAddress, n > 0 { pending.baseAddress!.copyMemory(from: src, byteCount: n) }
        discardedBytes += UInt64(bytes.count - n)
        pendingStart = 0
        pendingEnd = n
        if !outputRegistered {
            do {
                try loop.register(fd: output.fd, events: .writable) { [unowned self] _ in self.outputWritable() }
                outputRegistered = true
            } catch {
                outputBroken = true
                pendingStart = 0
                pendingEnd = 0
            }
        }
    }

    private func outputWritable() {
        if pendingStart < pendingEnd {
            let chunk = UnsafeRawBufferPointer(rebasing: pending[pendingStart..<pendingEnd])
            switch ConsoleIO.writeSome(output.fd, chunk, socket: false) {
            case .wrote(let n): pendingStart += n
            case .wouldBlock: return
            case .failed:
                outputBroken = true
                discardedBytes += UInt64(pendingEnd - pendingStart)
                pendingStart = pendingEnd
            }
        }
        if pendingStart >= pendingEnd {
            pendingStart = 0
            pendingEnd = 0
            loop.unregister(fd: output.fd)
            outputRegistered = false
            backend.pumpOutput()
        }
    }

    func writeFinal(_ bytes: UnsafeRawBufferPointer, deadline: Int64) {
        flushPending(deadline: deadline)
        if outputBroken { return }
        if !ConsoleIO.writeAll(output.fd, bytes, socket: false, deadline: deadline) { outputBroken = true }
    }

    private func flushPending(deadline: Int64) {
        if pendingStart < pendingEnd, !outputBroken {
            let chunk = UnsafeRawBufferPointer(rebasing: pending[pendingStart..<pendingEnd])
            if !ConsoleIO.writeAll(output.fd, chunk, socket: false, deadline: deadline) { outputBroken = true }
        }
        pendingStart = 0
        pendingEnd = 0
    }

    func close(deadline: Int64) {
        closeInput()
        flushPending(deadline: deadline)
        if outputRegistered { loop.unregister(fd: output.fd); outputRegistered = false }
        rawMode?.restore()
        rawMode = nil
        if input.fd >= 0 { ConsoleIO.release(input) }
        input = (-1, false)
        if output.fd >= 0 { ConsoleIO.release(output) }
        output = (-1, false)
    }
}
