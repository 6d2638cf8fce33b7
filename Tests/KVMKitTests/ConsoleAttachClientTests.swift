import Foundation
@testable import KVMKit
import XCTest

final class ConsoleAttachClientTests: XCTestCase {
    private var loop: EventLoop!
    private var port: FakeConsolePort!
    private var console: ConsoleBackend!
    private var path = ""
    private let lock = NSLock()
    private var quits = 0

    override func setUpWithError() throws {
        path = temporarySocketPath("attach-\(UInt32.random(in: 0...UInt32.max))")
        unlink(path)
        loop = try EventLoop()
        port = try FakeConsolePort()
        console = ConsoleBackend(mode: .socket(path: path), port: port, loop: loop) { [unowned self] in
            self.lock.lock(); self.quits += 1; self.lock.unlock()
        }
        try console.start()
        try loop.start()
    }

    override func tearDown() {
        loop.stop()
        loop.join()
        console.shutdown()
        unlink(path)
    }

    /// Runs a client on a background thread with pipes for its terminal.
    private final class Session {
        let input: [Int32]
        let output: [Int32]
        private let done = DispatchSemaphore(value: 0)
        private(set) var result: Result<ConsoleAttachClient.Outcome, Error>?

        init(path: String) {
            var i: [Int32] = [0, 0], o: [Int32] = [0, 0]
            pipe(&i); pipe(&o)
            input = i; output = o
            let (clientInput, clientOutput) = (i[0], o[1])
            Thread.detachNewThread { [self] in
                // Made on the thread that runs it: a client belongs to one thread.
                let client = ConsoleAttachClient(path: path, input: clientInput, output: clientOutput, escapeKeys: true)
                self.result = Result { try client.run() }
                self.done.signal()
            }
        }
        deinit { for fd in input + output { close(fd) } }

        func type(_ bytes: [UInt8]) { _ = bytes.withUnsafeBytes { write(input[1], $0.baseAddress, $0.count) } }

        func screen(until expected: String) -> String {
            var got: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: 4096)
            let end = Date().addingTimeInterval(5)
            while Date() < end, !String(decoding: got, as: UTF8.self).contains(expected) {
                var p = pollfd(fd: output[0], events: Int16(POLLIN), revents: 0)
                if poll(&p, 1, 20) <= 0 { continue }
                let n = buf.withUnsafeMutableBytes { read(output[0], $0.baseAddress, $0.count) }
                if n <= 0 { break }
                got.append(contentsOf: buf[0..<n])
            }
            return String(decoding: got, as: UTF8.self)
        }

        func wait() -> Result<ConsoleAttachClient.Outcome, Error>? {
            _ = done.wait(timeout: .now() + 5)
            return result
        }
    }

    func testDetachReattachReplayAndTyping() throws {
        port.guestWrites("Welcome\r\n# ")
        XCTAssertTrue(waitUntil { self.console.outputBytes == 11 })

        let first = Session(path: path)
        XCTAssertTrue(first.screen(until: "# ").contains("Welcome\r\n# "))
        first.type(Array("uname\r".utf8))
        XCTAssertTrue(waitUntil { self.port.receivedText == "uname\r" })
        port.guestWrites("Linux\r\n# ")
        XCTAssertTrue(first.screen(until: "Linux").contains("Linux"))
        first.type([0x01, 0x64])  // Ctrl-A d
        guard case .success(.detached)? = first.wait() else { return XCTFail("\(String(describing: first.result))") }
        XCTAssertTrue(waitUntil { !self.console.socketServer!.hasClient })

        port.guestWrites("while away\r\n")
        let second = Session(path: path)
        let replay = second.screen(until: "while away")
        XCTAssertTrue(replay.hasPrefix("Welcome\r\n# Linux\r\n# while away"), replay)
        second.type([0x01, 0x01, 0x01, 0x78])  // literal Ctrl-A, then Ctrl-A x: stop the VM
        XCTAssertTrue(waitUntil { self.lock.lock(); defer { self.lock.unlock() }; return self.quits == 1 })
        XCTAssertEqual(port.received.last, 0x01)
        // The VMM stops: the server closes the connection and the client ends.
        loop.stop()
        loop.join()
        console.shutdown()
        guard case .success(.closedByServer)? = second.wait() else { return XCTFail("\(String(describing: second.result))") }
    }

    func testBusy() throws {
        let holder = try TestClient(path: path)
        XCTAssertTrue(waitUntil { self.console.socketServer!.hasClient })
        let client = ConsoleAttachClient(path: path, input: holder.fd, output: holder.fd)  // never used
        XCTAssertThrowsError(try client.run()) { error in
            XCTAssertEqual(error as? ConsoleError, .consoleBusy(path: path))
            XCTAssertEqual("\(error)", "console: \(path) is busy (another client is attached)")
        }
    }

    func testConnectErrors() throws {
        let missing = path + ".missing"
        XCTAssertThrowsError(try ConsoleAttachClient(path: missing).run()) {
            XCTAssertEqual($0 as? ConsoleError, .noSuchSocket(path: missing))
        }
        let stale = path + ".stale"
        unlink(stale)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        _ = try UnixSocketAddress.withAddress(stale) { bind(fd, $0, $1) }
        close(fd)
        defer { unlink(stale) }
        XCTAssertThrowsError(try ConsoleAttachClient(path: stale).run()) {
            XCTAssertEqual($0 as? ConsoleError, .connectionRefused(path: stale))
        }
        XCTAssertThrowsError(try ConsoleAttachClient(path: "/proc/self/exe").run()) {
            XCTAssertEqual($0 as? ConsoleError, .pathIsNotSocket(path: "/proc/self/exe"))
        }
    }

    /// On a real terminal: raw while attached, restored after Ctrl-A d.
    func testTerminalRestoredAfterDetach() throws {
        let pty = try PtyPair()
        let original = pty.attributes()
        let done = DispatchSemaphore(value: 0)
        final class Box: @unchecked Sendable { var outcome: Result<ConsoleAttachClient.Outcome, Error>? }
        let box = Box()
        let (terminal, socketPath) = (pty.terminal, path)
        Thread.detachNewThread {
            let client = ConsoleAttachClient(path: socketPath, input: terminal, output: terminal)
            box.outcome = Result { try client.run() }
            done.signal()
        }
        XCTAssertTrue(waitUntil { pty.attributes().c_lflag & tcflag_t(ICANON) == 0 })
        pty.type([0x01, 0x68])
        XCTAssertTrue(pty.readScreen(until: "detach").contains("Ctrl-A d"))
        pty.type([0x01, 0x64])
        XCTAssertEqual(done.wait(timeout: .now() + 5), .success)
        guard case .success(.detached)? = box.outcome else { return XCTFail("\(String(describing: box.outcome))") }
        XCTAssertTrue(sameTerminalSettings(pty.attributes(), original))
    }
}
