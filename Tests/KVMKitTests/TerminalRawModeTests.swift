import CKVM
import Foundation
@testable import KVMKit
import XCTest

final class TerminalRawModeTests: XCTestCase {
    func testRawModeAndRestore() throws {
        let pty = try PtyPair()
        let original = pty.attributes()
        XCTAssertNotEqual(original.c_lflag & tcflag_t(ICANON), 0)

        let raw = try TerminalRawMode(fd: pty.terminal)
        let now = pty.attributes()
        XCTAssertEqual(now.c_lflag & tcflag_t(ICANON | ECHO | ISIG | IEXTEN), 0)
        XCTAssertEqual(now.c_iflag & tcflag_t(ICRNL | IXON), 0)
        XCTAssertEqual(now.c_oflag, original.c_oflag, "output post-processing is kept")
        XCTAssertFalse(sameTerminalSettings(now, original))

        raw.restore()
        XCTAssertTrue(sameTerminalSettings(pty.attributes(), original))
        raw.restore()  // idempotent
        XCTAssertTrue(sameTerminalSettings(pty.attributes(), original))
    }

    /// What the atexit hook and the signal handlers run.
    func testExitCleanupRestoresTerminal() throws {
        let pty = try PtyPair()
        let original = pty.attributes()
        let raw = try TerminalRawMode(fd: pty.terminal)
        XCTAssertFalse(sameTerminalSettings(pty.attributes(), original))
        ConsoleExitCleanup.runNow()
        XCTAssertTrue(sameTerminalSettings(pty.attributes(), original))
        _ = raw
    }

    func testNotATerminal() throws {
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&fds), 0)
        defer { close(fds[0]); close(fds[1]) }
        XCTAssertFalse(TerminalRawMode.isTerminal(fds[0]))
        XCTAssertThrowsError(try TerminalRawMode(fd: fds[0])) { XCTAssertTrue("\($0)".contains("tcgetattr")) }
    }
}
