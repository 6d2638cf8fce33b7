import CKVM
import Foundation
import XCTest

/// A pty pair for driving swiftvmm as a person at a terminal would.
final class PseudoTerminal {
    let controller: Int32
    let terminal: Int32
    private var collected: [UInt8] = []

    init() throws {
        var c: Int32 = -1, t: Int32 = -1
        let r = ckvm_open_pty_pair(&c, &t)
        guard r == 0 else { throw NSError(domain: "pty", code: Int(-r)) }
        controller = c
        terminal = t
        _ = ckvm_fcntl_setfl(controller, ckvm_fcntl_getfl(controller) | O_NONBLOCK)
    }

    deinit {
        close(controller)
        close(terminal)
    }

    /// The terminal's current local and input flags (what raw mode changes).
    var modes: (lflag: tcflag_t, iflag: tcflag_t, oflag: tcflag_t) {
        var t = termios()
        tcgetattr(terminal, &t)
        return (t.c_lflag, t.c_iflag, t.c_oflag)
    }

    func send(_ s: String) {
        let bytes = Array(s.utf8)
        _ = bytes.withUnsafeBytes { write(controller, $0.baseAddress, $0.count) }
    }

    func sendBytes(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { write(controller, $0.baseAddress, $0.count) }
    }

    /// Everything read so far, as text.
    var output: String { String(decoding: collected, as: UTF8.self) }

    private func drain() {
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { read(controller, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            collected += buf[0..<n]
        }
    }

    /// Wait until the output contains `text` (after `from` bytes), or fail.
    @discardableResult
    func waitFor(_ text: String, after from: Int = 0, timeout: TimeInterval = 20,
                 file: StaticString = #filePath, line: UInt = #line) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            drain()
            let tail = collected.count > from ? String(decoding: collected[from...], as: UTF8.self) : ""
            if tail.contains(text) { return true }
            usleep(20_000)
        }
        XCTFail("timed out waiting for \(text.debugDescription); output:\n\(output)", file: file, line: line)
        return false
    }

    var count: Int { drain(); return collected.count }
}

/// Start swiftvmm with stdin/stdout/stderr on the terminal side of `pty`.
func startOnTerminal(_ pty: PseudoTerminal, _ args: [String]) throws -> Process {
    let p = Process()
    p.executableURL = swiftvmmExecutable()
    p.arguments = args
    let h = FileHandle(fileDescriptor: pty.terminal, closeOnDealloc: false)
    p.standardInput = h
    p.standardOutput = h
    p.standardError = h
    try p.run()
    return p
}

func waitForExit(_ p: Process, timeout: TimeInterval = 20) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(20_000) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit(); return false }
    return true
}
