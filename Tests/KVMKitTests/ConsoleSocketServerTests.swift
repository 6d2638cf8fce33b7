import Foundation
@testable import KVMKit
import XCTest

final class ConsoleSocketServerTests: XCTestCase {
    private var loop: EventLoop!
    private var port: FakeConsolePort!
    private var console: ConsoleBackend!
    private var path = ""
    private var quits = 0

    override func setUpWithError() throws {
        path = temporarySocketPath(shortName)
        unlink(path)
        loop = try EventLoop()
        port = try FakeConsolePort()
        console = ConsoleBackend(mode: .socket(path: path), port: port, loop: loop) { [unowned self] in self.quits += 1 }
        try console.start()
        try loop.start()
    }

    override func tearDown() {
        loop.stop()
        loop.join()
        console.shutdown()
        unlink(path)
    }

    private var shortName: String { String(name.split(separator: " ").last ?? "x").filter { $0.isLetter } }

    func testAttachReplayInputBusyDetachReattach() throws {
        port.guestWrites("boot message 1\r\n")
        port.guestWrites("login: ")
        XCTAssertTrue(waitUntil { self.console.outputBytes == 23 })

        let first = try TestClient(path: path)
        XCTAssertTrue(first.read(until: "login: ").hasSuffix("boot message 1\r\nlogin: "))

        first.send("root\r")
        XCTAssertTrue(waitUntil { self.port.receivedText == "root\r" })

        port.guestWrites("# ")
        XCTAssertTrue(first.read(until: "# ").hasSuffix("login: # "))

        let second = try TestClient(path: path)
        XCTAssertEqual(second.read(until: "\n"), "swiftvmm: console busy\n")
        second.read()
        XCTAssertTrue(second.sawEOF)

        // Ctrl-A d from a raw client: detached notice, connection closed, VM untouched.
        first.send(bytes: [0x01, 0x64])
        XCTAssertTrue(first.read(until: "detached").contains("[swiftvmm: detached]"))
        first.read()
        XCTAssertTrue(first.sawEOF)
        XCTAssertEqual(quits, 0)

        port.guestWrites("output while detached\r\n")
        XCTAssertTrue(waitUntil { !self.console.socketServer!.hasClient })
        let third = try TestClient(path: path)
        let replay = third.read(until: "while detached\r\n")
        XCTAssertEqual(replay, "boot message 1\r\nlogin: # output while detached\r\n")
        third.send(bytes: [0x01, 0x01, 0x41])  // Ctrl-A Ctrl-A sends one 0x01
        XCTAssertTrue(waitUntil { self.port.received.suffix(2) == [0x01, 0x41] })
        XCTAssertEqual(console.metrics.clientsRefusedBusy, 1)
        XCTAssertEqual(console.metrics.clientsServed, 2)
        XCTAssertEqual(console.metrics.inputBytes, 7)
    }

    func testCtrlAxFromClientRequestsQuit() throws {
        let client = try TestClient(path: path)
        client.send(bytes: [0x61, 0x01, 0x78])
        XCTAssertTrue(waitUntil { self.quits == 1 })
        XCTAssertEqual(port.receivedText, "a")
    }

    func testReplayIsLast64KiB() throws {
        var text = ""
        for i in 0..<10_000 { text += "line \(i)\n" }  // ~88 KiB
        port.guestWrites(text)
        XCTAssertTrue(waitUntil { self.console.outputBytes == UInt64(text.utf8.count) })
        let client = try TestClient(path: path)
        let got = client.read(until: "line 9999\n")
        XCTAssertEqual(got.utf8.count, 65536)
        XCTAssertEqual(Array(got.utf8), Array(text.utf8.suffix(65536)))
    }

    /// A client that does not read never holds up the guest: the server skips it ahead in
    /// the replay ring and counts what it missed; the newest output still arrives.
    func testLaggingClientSkipsAheadGuestNeverWaits() throws {
        let client = try TestClient(path: path)
        XCTAssertTrue(waitUntil { self.console.socketServer!.hasClient })
        let line = String(repeating: "y", count: 1023) + "\n"
        var total = 0
        for _ in 0..<1024 { port.guestWrites(line); total += line.utf8.count }  // 1 MiB
        port.guestWrites("THE END\n")
        total += 8
        XCTAssertTrue(waitUntil { self.console.outputBytes == UInt64(total) }, "guest output fully drained")
        let got = client.read(until: "THE END\n", timeout: 10)
        XCTAssertTrue(got.hasSuffix("THE END\n"))
        XCTAssertGreaterThan(console.metrics.clientSkippedBytes, 0)
        XCTAssertEqual(UInt64(got.utf8.count) + console.metrics.clientSkippedBytes, UInt64(total))
    }

    func testSocketFileIsPrivateAndRemovedOnShutdown() throws {
        var st = stat()
        XCTAssertEqual(lstat(path, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
        loop.stop()
        loop.join()
        console.shutdown()
        XCTAssertNotEqual(lstat(path, &st), 0)
    }

    func testLiveSocketIsRefusedStaleReplacedFileRefused() throws {
        let otherLoop = try EventLoop()
        let other = ConsoleBackend(mode: .socket(path: path), port: try FakeConsolePort(), loop: otherLoop) {}
        XCTAssertThrowsError(try other.start()) { error in
            XCTAssertEqual(error as? ConsoleError, .socketInUse(path: path))
            XCTAssertTrue("\(error)".contains("in use"))
        }

        // A stale socket: bound, never listening (what a killed VMM leaves behind).
        let stalePath = path + ".stale"
        unlink(stalePath)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        _ = try UnixSocketAddress.withAddress(stalePath) { bind(fd, $0, $1) }
        close(fd)
        let staleConsole = ConsoleBackend(mode: .socket(path: stalePath), port: try FakeConsolePort(), loop: otherLoop) {}
        XCTAssertNoThrow(try staleConsole.start())
        staleConsole.shutdown()
        XCTAssertNil(UnixSocketAddress.fileType(stalePath))

        let filePath = path + ".file"
        XCTAssertTrue(FileManager.default.createFile(atPath: filePath, contents: Data("x".utf8)))
        defer { unlink(filePath) }
        let fileConsole = ConsoleBackend(mode: .socket(path: filePath), port: try FakeConsolePort(), loop: otherLoop) {}
        XCTAssertThrowsError(try fileConsole.start()) { error in
            XCTAssertEqual(error as? ConsoleError, .pathIsNotSocket(path: filePath))
        }
        XCTAssertEqual(UnixSocketAddress.fileType(filePath), S_IFREG)
    }

    func testPathTooLong() throws {
        let otherLoop = try EventLoop()
        let long = "/tmp/" + String(repeating: "x", count: 120)
        let c = ConsoleBackend(mode: .socket(path: long), port: try FakeConsolePort(), loop: otherLoop) {}
        XCTAssertThrowsError(try c.start()) { XCTAssertEqual($0 as? ConsoleError, .socketPathTooLong(path: long)) }
    }
}

final class ConsoleInputBackpressureTests: XCTestCase {
    /// The device takes 4 bytes at a time; 3 KiB typed by a fast client all arrive, in
    /// order, with none lost, as the guest makes room.
    func testNoKeystrokeLostWhenGuestIsSlow() throws {
        let path = temporarySocketPath("backpressure")
        unlink(path)
        let loop = try EventLoop()
        let port = try FakeConsolePort(inputRoom: 4)
        let console = ConsoleBackend(mode: .socket(path: path), port: port, loop: loop) {}
        try console.start()
        try loop.start()
        defer {
            loop.stop(); loop.join(); console.shutdown()
        }
        let client = try TestClient(path: path)
        var typed: [UInt8] = []
        for i in 0..<3072 { typed.append(UInt8(0x20 + i % 90)) }
        client.send(bytes: typed)
        XCTAssertTrue(waitUntil { port.received.count == 4 })
        usleep(20_000)
        XCTAssertEqual(port.received.count, 4)  // nothing more without room
        var rounds = 0
        while port.received.count < typed.count, rounds < 10_000 {
            port.makeRoom(64)
            let before = port.received.count
            _ = waitUntil(1) { port.received.count > before || port.received.count == typed.count }
            rounds += 1
        }
        XCTAssertEqual(port.received, typed)
        XCTAssertEqual(console.inputBytes, UInt64(typed.count))
    }

    func testFeederKeepsUnacceptedBytes() throws {
        let port = try FakeConsolePort(inputRoom: 2)
        let feeder = ConsoleInputFeeder(port: port)
        for b in Array("hello".utf8) { feeder.append(b) }
        XCTAssertFalse(feeder.flush())
        XCTAssertTrue(feeder.isBlocked)
        XCTAssertEqual(port.receivedText, "he")
        XCTAssertFalse(feeder.flush())
        port.makeRoom(10)
        XCTAssertTrue(feeder.flush())
        XCTAssertFalse(feeder.isBlocked)
        XCTAssertEqual(port.receivedText, "hello")
    }
}
