import Glibc

/// A terminal switched to raw mode for a console, and switched back on `restore()`, on
/// deinit, at exit and on fatal signals (through `ConsoleExitCleanup`).
///
/// Raw is `cfmakeraw` (no echo, no line editing, no signal keys — Ctrl-C goes to the
/// guest — 8-bit input, VMIN 1) except that output post-processing keeps the terminal's
/// own setting, as QEMU does: the guest sends "\r\n" itself, and host messages printed
/// while raw still start on a fresh line.
public final class TerminalRawMode {
    public let fd: Int32
    public let saved: termios
    public private(set) var isActive = true

    public static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    public init(fd: Int32) throws {
        var original = termios()
        if tcgetattr(fd, &original) < 0 {
            throw ConsoleError.systemCall("tcgetattr", errno: errno, context: "read terminal settings of fd \(fd)")
        }
        var raw = original
        cfmakeraw(&raw)
        raw.c_oflag = original.c_oflag
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        self.fd = fd
        self.saved = original
        ConsoleExitCleanup.install()
        ConsoleExitCleanup.recordTerminal(fd: fd, saved: original)
        if tcsetattr(fd, TCSANOW, &raw) < 0 {
            let e = errno
            ConsoleExitCleanup.forgetTerminal()
            throw ConsoleError.systemCall("tcsetattr", errno: e, context: "set raw mode on fd \(fd)")
        }
    }

    deinit { restore() }

    /// Put the saved settings back. Idempotent.
    public func restore() {
        guard isActive else { return }
        isActive = false
        var original = saved
        _ = tcsetattr(fd, TCSANOW, &original)
        ConsoleExitCleanup.forgetTerminal()
    }
}
