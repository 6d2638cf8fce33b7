import Foundation
import XCTest

/// virtio-vsock through `swiftvmm run --vsock`, driven by the probe kernel's driver:
/// the guest connects to a host listener at PATH_5000, then the host CONNECTs to the
/// guest's port 6000 and gets 100 KiB echoed (more than the guest's 64 KiB credit, so
/// credit must flow back).
final class VsockProbeTests: XCTestCase {
    func testBothDirectionsThroughTheUnixSocket() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftvmm-vsock-\(getpid())-\(UUID().uuidString.prefix(6))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/v.sock"
        let listener = try UnixTestSocket.listen(path + "_5000")
        defer { close(listener) }

        final class Results: @unchecked Sendable { var fromGuest = ""; var echo: [UInt8] = []; var okLine = ""; var eof = false }
        let results = Results()
        var sent = [UInt8](repeating: 0, count: 100 * 1024)
        for i in sent.indices { sent[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
        let payload = sent
        let host = Thread {
            // Guest → host.
            let c = accept(listener, nil, nil)
            guard c >= 0 else { return }
            results.fromGuest = String(decoding: UnixTestSocket.read(c, count: 15), as: UTF8.self)
            UnixTestSocket.write(c, Array("pong from host".utf8))
            results.eof = UnixTestSocket.read(c, count: 1).isEmpty
            close(c)
            // Host → guest.
            guard let s = UnixTestSocket.connect(path, within: 20) else { return }
            UnixTestSocket.write(s, Array("CONNECT 6000\n".utf8))
            results.okLine = String(decoding: UnixTestSocket.readLine(s), as: UTF8.self)
            let reader = Thread { results.echo = UnixTestSocket.read(s, count: payload.count) }
            reader.start()
            UnixTestSocket.write(s, payload)
            while results.echo.count < payload.count && reader.isExecuting { usleep(10_000) }
            while !reader.isFinished { usleep(10_000) }
            shutdown(s, Int32(SHUT_WR))
            close(s)
        }
        host.start()
        let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--memory", "64", "--vsock", "cid=3,uds=\(path)",
                                                      "--cmdline", "console=ttyS0 probe.run=vsock probe.vsock_connect=5000 probe.vsock_listen=6000"],
                               timeout: 90)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("vsock: guest cid 3"), r.stdout)
        XCTAssertTrue(r.stdout.contains("host replied \"pong from host\""), r.stdout)
        XCTAssertTrue(r.stdout.contains("echoed \(payload.count) bytes"), r.stdout)
        XCTAssertTrue(r.stdout.contains("PROBE PASS vsock"), r.stdout)
        XCTAssertEqual(results.fromGuest, "ping from guest")
        XCTAssertTrue(results.eof, "the guest's close reached the host as EOF")
        XCTAssertTrue(results.okLine.hasPrefix("OK ") && UInt32(results.okLine.dropFirst(3).dropLast()) != nil, results.okLine)
        XCTAssertEqual(results.echo.count, payload.count)
        XCTAssertTrue(results.echo == payload, "the echo matches byte for byte")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "the socket file is removed at exit")
    }

    func testBadVsockOptionsAreBadInput() throws {
        let long = "/tmp/" + String(repeating: "v", count: 100)
        let cases: [(String, String)] = [
            ("cid=2,uds=/tmp/v.sock", "swiftvmm: --vsock: cid 2 is reserved; use 3 to 4294967294\n"),
            ("cid=0,uds=/tmp/v.sock", "swiftvmm: --vsock: cid 0 is reserved; use 3 to 4294967294\n"),
            ("cid=3,uds=\(long)", "swiftvmm: --vsock: socket path \(long) is longer than 96 bytes (with _<port> it must fit a Unix socket address)\n"),
            ("cid=3,uds=/nonexistent-swiftvmm/v.sock", "swiftvmm: --vsock: the directory of socket path /nonexistent-swiftvmm/v.sock does not exist\n"),
            ("cid=3", "swiftvmm: --vsock cid=3: expected cid=N,uds=PATH\n"),
        ]
        for (spec, message) in cases {
            let r = try runProcess(swiftvmmExecutable(), ["run", "--vsock", spec], timeout: 30)
            XCTAssertEqual(r.status, 2, "\(spec): \(r.stderr)")
            XCTAssertEqual(r.stderr, message, spec)
            XCTAssertEqual(r.stdout, "")
        }
        // A path that is a regular file; and bad input elsewhere leaves no socket behind.
        let file = try temporaryFile("not-a-socket", bytes: [1])
        var r = try runProcess(swiftvmmExecutable(), ["run", "--vsock", "cid=3,uds=\(file)"], timeout: 30)
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "swiftvmm: vsock socket path \(file) exists and is not a socket\n")
        let socketPath = (file as NSString).deletingLastPathComponent + "/v.sock"
        r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", "/nonexistent-kernel", "--vsock", "cid=3,uds=\(socketPath)"], timeout: 30)
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: socketPath), "no socket file after bad input")
    }
}

/// Blocking Unix stream sockets for a test's host side.
enum UnixTestSocket {
    static func address(_ path: String) -> sockaddr_un {
        var a = sockaddr_un()
        a.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &a.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        return a
    }

    static func listen(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var a = address(path)
        let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard rc == 0, Glibc.listen(fd, 4) == 0 else { throw NSError(domain: "listen \(path)", code: Int(errno)) }
        return fd
    }

    /// Connect, retrying until the socket exists and accepts (or `within` seconds pass).
    static func connect(_ path: String, within seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var a = address(path)
            let rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
            if rc == 0 { return fd }
            close(fd)
            usleep(20_000)
        }
        return nil
    }

    static func write(_ fd: Int32, _ bytes: [UInt8]) {
        var done = 0
        while done < bytes.count {
            let n = bytes[done...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            done += n
        }
    }

    /// Up to `count` bytes; fewer at EOF.
    static func read(_ fd: Int32, count: Int) -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while out.count < count {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, min($0.count, count - out.count), 0) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return out
    }

    static func readLine(_ fd: Int32) -> [UInt8] {
        var out: [UInt8] = []
        var b: UInt8 = 0
        while recv(fd, &b, 1, 0) == 1 {
            out.append(b)
            if b == UInt8(ascii: "\n") { break }
        }
        return out
    }
}
