import Foundation
import XCTest

/// The terminal is raw while the VM runs and restored on every way out.
final class TerminalTests: XCTestCase {
    func startProbeShell(_ pty: PseudoTerminal) throws -> Process {
        try requireKVMDevice()
        let p = try startOnTerminal(pty, ["run", "--kernel", try probeKernel(), "--memory", "64"])
        pty.waitFor("probe> ")
        return p
    }

    func assertRaw(_ pty: PseudoTerminal, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(pty.modes.lflag & tcflag_t(ICANON | ECHO), 0, "raw while running", file: file, line: line)
    }

    func assertRestored(_ pty: PseudoTerminal, _ before: (lflag: tcflag_t, iflag: tcflag_t, oflag: tcflag_t),
                        file: StaticString = #filePath, line: UInt = #line) {
        let after = pty.modes
        XCTAssertEqual(after.lflag, before.lflag, "local modes restored", file: file, line: line)
        XCTAssertEqual(after.iflag, before.iflag, "input modes restored", file: file, line: line)
        XCTAssertEqual(after.oflag, before.oflag, "output modes restored", file: file, line: line)
        XCTAssertNotEqual(after.lflag & tcflag_t(ICANON), 0, file: file, line: line)
    }

    func testCtrlAXQuitsAndRestores() throws {
        let pty = try PseudoTerminal()
        let before = pty.modes
        let p = try startProbeShell(pty)
        assertRaw(pty)
        pty.sendBytes([0x01, UInt8(ascii: "x")])
        XCTAssertTrue(waitForExit(p))
        XCTAssertEqual(p.terminationStatus, 0)
        assertRestored(pty, before)
    }

    func testCtrlAHPrintsHelpAndCtrlACtrlAPassesThrough() throws {
        let pty = try PseudoTerminal()
        let p = try startProbeShell(pty)
        let mark = pty.count
        pty.sendBytes([0x01, UInt8(ascii: "h")])
        pty.waitFor("Ctrl-A x", after: mark)
        // A typed command still works after the escape.
        pty.send("echo typed-after-help\r")
        pty.waitFor("\ntyped-after-help", after: mark)
        // Ctrl-A Ctrl-A is one literal Ctrl-A for the guest, and the 'x' after it does not quit:
        // the probe's `keys` shows the bytes it received.
        let keysMark = pty.count
        pty.send("keys\r")
        pty.waitFor("keys: type a line", after: keysMark)
        pty.sendBytes([0x01, 0x01, UInt8(ascii: "x"), UInt8(ascii: "\r")])
        pty.waitFor("keys: 01 78\r", after: keysMark)  // the line ends here: exactly these two bytes
        XCTAssertTrue(p.isRunning, "Ctrl-A Ctrl-A x did not quit")
        pty.sendBytes([0x01, UInt8(ascii: "x")])
        XCTAssertTrue(waitForExit(p))
        XCTAssertEqual(p.terminationStatus, 0)
    }

    func testSIGTERMRestores() throws {
        let pty = try PseudoTerminal()
        let before = pty.modes
        let p = try startProbeShell(pty)
        assertRaw(pty)
        kill(p.processIdentifier, SIGTERM)
        XCTAssertTrue(waitForExit(p))
        XCTAssertEqual(p.terminationReason, .uncaughtSignal)
        XCTAssertEqual(p.terminationStatus, SIGTERM)
        assertRestored(pty, before)
    }

    func testGuestCrashRestores() throws {
        let pty = try PseudoTerminal()
        let before = pty.modes
        let p = try startProbeShell(pty)
        pty.send("crash\r")
        XCTAssertTrue(waitForExit(p))
        XCTAssertEqual(p.terminationStatus, 1)
        pty.waitFor("guest crashed")
        assertRestored(pty, before)
    }

    func testGuestPoweroffRestores() throws {
        let pty = try PseudoTerminal()
        let before = pty.modes
        let p = try startProbeShell(pty)
        pty.send("poweroff\r")
        XCTAssertTrue(waitForExit(p))
        XCTAssertEqual(p.terminationStatus, 0)
        assertRestored(pty, before)
    }
}
