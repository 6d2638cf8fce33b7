import CKVM
import Foundation
@testable import KVMKit
import XCTest

final class StdioConsoleTests: XCTestCase {
    func testTerminalSessionEscapeKeysAndRestore() throws {
        let pty = try PtyPair()
        let original = pty.attributes()
        let loop = try EventLoop()
        let port = try FakeConsolePort()
        let lock = NSLock()
        var quits = 0
        let console = ConsoleBackend(mode: .stdio, port: port, loop: loop, stdio: (pty.terminal, pty.terminal)) {
            lock.lock(); quits += 1; lock.unlock()
        }
        try console.start()
        try loop.start()
        XCTAssertEqual(pty.attributes().c_lflag & tcflag_t(ICANON | ECHO), 0, "raw while running")

        pty.type(Array("ls\r".utf8) + [0x03])  // Ctrl-C goes to the guest in raw mode
        XCTAssertTrue(waitUntil { port.received == Array("ls\r".utf8) + [0x03] }, "\(port.received)")

        port.guestWrites("bin  etc\r\n")
        // OPOST/ONLCR are kept (as QEMU does), so the guest's "\r\n" shows as "\r\r\n": harmless.
        XCTAssertTrue(pty.readScreen(until: "etc\r").contains("bin  etc\r"))

        pty.type([0x01, 0x68])  // help: on the terminal, not to the guest
        XCTAssertTrue(pty.readScreen(until: "Ctrl-A x").contains("quit"))
        pty.type([0x01, 0x01])
        XCTAssertTrue(waitUntil { port.received.last == 0x01 })
        XCTAssertEqual(port.received.count, 5)

        pty.type([0x01, 0x78])
        XCTAssertTrue(waitUntil { lock.lock(); defer { lock.unlock() }; return quits == 1 })
        port.guestWrites("last words\r\n")  // after quit, before the VMM exits
        loop.stop()
        loop.join()
        console.shutdown()
        XCTAssertTrue(pty.readScreen(until: "last words").contains("last words"), "final output is flushed")
        XCTAssertTrue(sameTerminalSettings(pty.attributes(), original), "terminal restored")
    }

    func testPipedInputIsVerbatimAndEOFKeepsRunning() throws {
        var input: [Int32] = [0, 0], output: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&input), 0)
        XCTAssertEqual(pipe(&output), 0)
        defer { close(input[0]); close(output[0]); close(output[1]) }
        let loop = try EventLoop()
        let port = try FakeConsolePort()
        var quits = 0
        let console = ConsoleBackend(mode: .stdio, port: port, loop: loop, stdio: (input[0], output[1])) { quits += 1 }
        try console.start()
        try loop.start()
        let bytes: [UInt8] = Array("echo hi\n".utf8) + [0x01, 0x78]  // no escape keys on a pipe
        _ = bytes.withUnsafeBytes { write(input[1], $0.baseAddress, $0.count) }
        close(input[1])  // EOF
        XCTAssertTrue(waitUntil { port.received == bytes })
        port.guestWrites("hi\n")
        var buf = [UInt8](repeating: 0, count: 16)
        let n = buf.withUnsafeMutableBytes { read(output[0], $0.baseAddress, $0.count) }
        XCTAssertEqual(Array(buf.prefix(max(0, n))), Array("hi\n".utf8))
        loop.stop()
        loop.join()
        console.shutdown()
        XCTAssertEqual(quits, 0)
        XCTAssertEqual(ckvm_fcntl_getfl(input[0]) & O_NONBLOCK, 0, "inherited fd flags untouched")
    }

    /// Nobody reads stdout: the loop does not block, output waits in the device buffer,
    /// and it all arrives once the reader catches up.
    func testSlowStdoutNeverBlocksTheLoop() throws {
        var input: [Int32] = [0, 0], output: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&input), 0)
        XCTAssertEqual(pipe(&output), 0)
        defer { close(input[0]); close(input[1]); close(output[0]); close(output[1]) }
        let loop = try EventLoop()
        let port = try FakeConsolePort()
        let console = ConsoleBackend(mode: .stdio, port: port, loop: loop, stdio: (input[0], output[1])) {}
        try console.start()
        try loop.start()
        let chunk = String(repeating: "x", count: 1000) + "\n"
        var sent = 0
        for _ in 0..<200 { port.guestWrites(chunk); sent += chunk.utf8.count }  // > 64 KiB pipe buffer
        XCTAssertTrue(waitUntil { port.pendingOutput > 0 && console.outputBytes < UInt64(sent) })
        // The loop still serves input while stdout is stuck.
        _ = Array("k".utf8).withUnsafeBytes { write(input[1], $0.baseAddress, 1) }
        XCTAssertTrue(waitUntil { port.receivedText == "k" })
        var total = 0
        var buf = [UInt8](repeating: 0, count: 65536)
        let end = Date().addingTimeInterval(5)
        while total < sent, Date() < end {
            let n = buf.withUnsafeMutableBytes { read(output[0], $0.baseAddress, $0.count) }
            if n > 0 { total += n }
        }
        XCTAssertEqual(total, sent)
        loop.stop()
        loop.join()
        console.shutdown()
    }

    func testFileMode() throws {
        let path = "/tmp/swiftvmm-test-\(getpid())-console.log"
        defer { unlink(path) }
        let loop = try EventLoop()
        let port = try FakeConsolePort()
        let console = ConsoleBackend(mode: try ConsoleMode(parsing: "file:\(path)"), port: port, loop: loop) {}
        try console.start()
        try loop.start()
        port.guestWrites("to the file\n")
        XCTAssertTrue(waitUntil { console.outputBytes == 12 })
        loop.stop()
        loop.join()
        console.shutdown()
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "to the file\n")
    }

    func testModeParsing() throws {
        XCTAssertEqual(try ConsoleMode(parsing: "stdio"), .stdio)
        XCTAssertEqual(try ConsoleMode(parsing: "none"), ConsoleMode.none)
        XCTAssertEqual(try ConsoleMode(parsing: "socket:/run/x.sock"), .socket(path: "/run/x.sock"))
        XCTAssertEqual(try ConsoleMode(parsing: "file:a:b"), .file(path: "a:b"))
        XCTAssertThrowsError(try ConsoleMode(parsing: "file:"))
        XCTAssertThrowsError(try ConsoleMode(parsing: "tty")) { XCTAssertTrue("\($0)".contains("tty")) }
    }
}
