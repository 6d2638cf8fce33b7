import Foundation
@testable import KVMKit
import XCTest

/// The terminal is restored when the process dies by a signal or calls exit() without
/// cleaning up: a child process (this test bundle, running only
/// `testRestoredAfterExitWithoutCleanup` with SWIFTVMM_TERMINAL_CHILD set) puts a pty into
/// raw mode on its stdin, then is killed or exits.
final class TerminalRestoreOnExitTests: XCTestCase {
    private static let modeVariable = "SWIFTVMM_TERMINAL_CHILD"

    /// The child's side: raw mode on stdin, then exit(3) or wait for the parent's signal.
    private func childSide(mode: String) throws -> Never {
        // The test runner has its own crash handlers; a VMM binary starts from the defaults.
        // (With a previous handler present, it gets the signal after the restore.)
        signal(SIGSEGV, SIG_DFL)
        let raw = try TerminalRawMode(fd: 0)
        _ = raw
        _ = "ready\n".withCString { write(1, $0, 6) }
        if mode == "exit" { exit(3) }
        sleep(30)  // waits for the parent's signal
        exit(4)
    }

    private func runChild(mode: String, signal: Int32?) throws -> (status: Int32, restored: Bool, output: String) {
        let pty = try PtyPair()
        let original = pty.attributes()
        let child = Process()
        child.executableURL = URL(fileURLWithPath: try String(contentsOfFile: "/proc/self/cmdline", encoding: .utf8)
            .split(separator: "\0").first.map(String.init) ?? "/proc/self/exe")
        child.arguments = ["KVMKitTests.TerminalRestoreOnExitTests/testRestoredAfterExitWithoutCleanup"]
        child.environment = ProcessInfo.processInfo.environment.merging([Self.modeVariable: mode]) { $1 }
        child.standardInput = FileHandle(fileDescriptor: pty.terminal, closeOnDealloc: false)
        let out = Pipe()
        child.standardOutput = out
        child.standardError = FileHandle.nullDevice
        try child.run()
        if let signal {
            XCTAssertTrue(waitUntil(20) { pty.attributes().c_lflag & tcflag_t(ICANON) == 0 }, "child entered raw mode")
            kill(child.processIdentifier, signal)
        }
        child.waitUntilExit()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let status = child.terminationReason == .uncaughtSignal ? -child.terminationStatus : child.terminationStatus
        return (status, sameTerminalSettings(pty.attributes(), original), text)
    }

    func testRestoredAfterSIGTERM() throws {
        let r = try runChild(mode: "signal", signal: SIGTERM)
        XCTAssertEqual(r.status, -SIGTERM, "dies by the re-raised signal")
        XCTAssertTrue(r.restored)
    }

    func testRestoredAfterSIGHUPAndCrashSignal() throws {
        for sig in [SIGHUP, SIGSEGV] {
            let r = try runChild(mode: "signal", signal: sig)
            XCTAssertEqual(r.status, -sig)
            XCTAssertTrue(r.restored, "signal \(sig)")
        }
    }

    /// SIGKILL cannot be caught: the one way out that leaves the terminal raw (`reset`
    /// fixes it). Also shows the checks above would notice a missing restore.
    func testNotRestoredAfterSIGKILL() throws {
        let r = try runChild(mode: "signal", signal: SIGKILL)
        XCTAssertEqual(r.status, -SIGKILL)
        XCTAssertFalse(r.restored)
    }

    /// Also the child's entry point (its process runs only this test, with the mode set).
    func testRestoredAfterExitWithoutCleanup() throws {
        if let mode = ProcessInfo.processInfo.environment[Self.modeVariable] { try childSide(mode: mode) }
        let r = try runChild(mode: "exit", signal: nil)
        XCTAssertEqual(r.status, 3)
        XCTAssertTrue(r.output.contains("ready"))
        XCTAssertTrue(r.restored)
    }
}
