import CKVM
import Glibc
import Synchronization

/// Process-wide undo list for what the console changes outside the process: a terminal's
/// termios, file-status flags of inherited fds, and the socket file it created. Run at
/// `exit` (atexit hook) and from handlers for terminating and crashing signals, which then
/// put back the signal's previous disposition and re-raise it — the default action (the
/// shell sees the usual "killed by" status) or whatever handler was there before (e.g. the
/// Swift runtime's crash backtracer). A signal that was ignored (nohup) stays ignored.
///
/// Storage is fixed and preallocated; the signal path only calls async-signal-safe
/// functions (tcsetattr, fcntl, unlink, signal, raise).
public enum ConsoleExitCleanup {
    /// Signals after which the terminal is restored before the process dies: the polite
    /// ones and the crashes (a Swift runtime trap is SIGILL/SIGTRAP).
    public static let defaultSignals: [Int32] = [SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP]

    private static let maxFlagRestores = 4
    private static let maxPathBytes = 128
    private static let socketSlots = 2

    private struct Storage {
        var termiosArmed: UnsafeMutablePointer<Int32>
        var termiosFD: UnsafeMutablePointer<Int32>
        var termios: UnsafeMutablePointer<termios>
        var flagFDs: UnsafeMutablePointer<Int32>     // -1 = free
        var flagValues: UnsafeMutablePointer<Int32>
        /// `socketSlots` paths of maxPathBytes each (the console's and the API's); "" = free.
        var socketPath: UnsafeMutablePointer<CChar>
        var previousActions: UnsafeMutablePointer<sigaction>  // indexed by signal number
    }

    private static let signalSlots = 65  // NSIG on Linux

    /// Written under `state`'s lock; the signal path reads it without (a handler cannot
    /// take a lock), which is why this is the one unchecked global.
    nonisolated(unsafe) private static let storage: Storage = {
        let s = Storage(
            termiosArmed: .allocate(capacity: 1), termiosFD: .allocate(capacity: 1),
            termios: .allocate(capacity: 1), flagFDs: .allocate(capacity: maxFlagRestores),
            flagValues: .allocate(capacity: maxFlagRestores), socketPath: .allocate(capacity: maxPathBytes * socketSlots),
            previousActions: .allocate(capacity: signalSlots))
        s.previousActions.initialize(repeating: sigaction(), count: signalSlots)
        s.termiosArmed.pointee = 0
        s.termiosFD.pointee = -1
        s.termios.initialize(to: termios())
        s.flagFDs.initialize(repeating: -1, count: maxFlagRestores)
        s.flagValues.initialize(repeating: 0, count: maxFlagRestores)
        s.socketPath.initialize(repeating: 0, count: maxPathBytes * socketSlots)
        return s
    }()

    /// Whether `install` ran; its lock also orders the writers of `storage`.
    private static let state = Mutex(false)

    /// Install the atexit hook and the signal handlers (once). Called by the console
    /// itself; callable early by a CLI that wants the handlers in place first.
    /// Pass `signals: []` to keep the process's own signal handling (then call
    /// `runNow()` from it).
    public static func install(signals: [Int32] = defaultSignals) {
        state.withLock { installed in
            guard !installed else { return }
            installed = true
            _ = storage
            atexit { ConsoleExitCleanup.runNow() }
            let handler: @convention(c) (Int32) -> Void = { sig in
                ConsoleExitCleanup.runNow()
                if sig > 0, Int(sig) < ConsoleExitCleanup.signalSlots {
                    sigaction(sig, ConsoleExitCleanup.storage.previousActions + Int(sig), nil)
                } else {
                    signal(sig, SIG_DFL)
                }
                raise(sig)  // delivered to the previous disposition once this handler returns
            }
            let ignored = unsafeBitCast(SIG_IGN, to: Int.self)
            for sig in signals where sig > 0 && Int(sig) < signalSlots {
                var previous = sigaction()
                guard sigaction(sig, nil, &previous) == 0 else { continue }
                if unsafeBitCast(previous.__sigaction_handler.sa_handler, to: Int.self) == ignored { continue }
                storage.previousActions[Int(sig)] = previous
                var action = sigaction()
                action.__sigaction_handler.sa_handler = handler
                sigemptyset(&action.sa_mask)
                action.sa_flags = Int32(SA_ONSTACK)
                sigaction(sig, &action, nil)
            }
        }
    }

    /// Undo everything recorded. Idempotent, async-signal-safe.
    public static func runNow() {
        restoreTerminal()
        let s = storage
        for slot in 0..<socketSlots where s.socketPath[slot * maxPathBytes] != 0 {
            unlink(s.socketPath + slot * maxPathBytes)
            s.socketPath[slot * maxPathBytes] = 0
        }
    }

    /// Put back the terminal's mode and the file status flags only: what the seccomp
    /// reporter runs, on a thread whose filter may not allow unlink. Async-signal-safe.
    public static func restoreTerminal() {
        let s = storage
        if s.termiosArmed.pointee != 0 {
            s.termiosArmed.pointee = 0
            _ = tcsetattr(s.termiosFD.pointee, TCSANOW, s.termios)
        }
        for i in 0..<maxFlagRestores where s.flagFDs[i] >= 0 {
            _ = ckvm_fcntl_setfl(s.flagFDs[i], s.flagValues[i])
            s.flagFDs[i] = -1
        }
    }

    // MARK: records (called by the console, normal context)

    static func recordTerminal(fd: Int32, saved: termios) {
        state.withLock { _ in
            storage.termiosArmed.pointee = 0
            storage.termios.pointee = saved
            storage.termiosFD.pointee = fd
            storage.termiosArmed.pointee = 1
        }
    }

    static func forgetTerminal() {
        state.withLock { _ in
            storage.termiosArmed.pointee = 0
        }
    }

    static func recordFileStatusFlags(fd: Int32, flags: Int32) {
        state.withLock { _ in
            for i in 0..<maxFlagRestores where storage.flagFDs[i] == fd { return }  // keep the oldest
            for i in 0..<maxFlagRestores where storage.flagFDs[i] < 0 {
                storage.flagValues[i] = flags
                storage.flagFDs[i] = fd
                return
            }
        }
    }

    static func forgetFileStatusFlags(fd: Int32) {
        state.withLock { _ in
            for i in 0..<maxFlagRestores where storage.flagFDs[i] == fd { storage.flagFDs[i] = -1 }
        }
    }

    /// Remember a socket file to unlink if the process dies by a signal. Returns false when
    /// the path does not fit or both slots are taken (then signals do not unlink it).
    @discardableResult
    public static func recordSocketPath(_ path: String) -> Bool {
        state.withLock { _ in
            let bytes = Array(path.utf8)
            guard bytes.count < maxPathBytes,
                  let slot = (0..<socketSlots).first(where: { storage.socketPath[$0 * maxPathBytes] == 0 }) else { return false }
            let base = storage.socketPath + slot * maxPathBytes
            for (i, b) in bytes.enumerated() { base[i] = CChar(bitPattern: b) }
            base[bytes.count] = 0
            return true
        }
    }

    /// The socket was removed in the normal way: forget it.
    public static func forgetSocketPath(_ path: String) {
        state.withLock { _ in
            for slot in 0..<socketSlots where String(cString: storage.socketPath + slot * maxPathBytes) == path {
                storage.socketPath[slot * maxPathBytes] = 0
            }
        }
    }
}

extension ConsoleExitCleanup {
    /// Put back one fd's recorded flags now (normal shutdown of that fd's user).
    static func runFileStatusRestore(fd: Int32) {
        state.withLock { _ in
            for i in 0..<maxFlagRestores where storage.flagFDs[i] == fd {
                _ = ckvm_fcntl_setfl(fd, storage.flagValues[i])
                storage.flagFDs[i] = -1
            }
        }
    }
}
