import Foundation
import Glibc
import KVMKit
import Synchronization
import XCTest
@testable import VMMCore

/// The API server over a real Unix socket.
final class APIServerTests: XCTestCase {
    private var path = ""
    private var server: APIServer?
    private let handled = Counter()

    override func setUp() {
        path = "/tmp/swiftvmm-api-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
    }

    override func tearDown() {
        server?.stop()
        server?.join()
        server = nil
        unlink(path)
    }

    /// Echo server: GET /big answers 32 KiB; anything else echoes method, path and body.
    private func startServer(_ configure: (inout APIServer.Options) -> Void = { _ in }) throws -> APIServer {
        var options = APIServer.Options()
        configure(&options)
        let s = APIServer(path: path, options: options) { [handled] request in
            handled.value.add(1, ordering: .relaxed)
            if request.path == "/big" { return HTTPResponse(status: .ok, body: [UInt8](repeating: 0x61, count: 32 * 1024)) }
            return .json(["method": .string(request.method.rawValue), "path": .string(request.path),
                          "body": .string(String(decoding: request.body, as: UTF8.self))])
        }
        try s.start()
        server = s
        return s
    }

    func testRequestsKeepAliveAndPipelining() throws {
        _ = try startServer()
        let c = try APITestClient(path)
        c.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        let first = try XCTUnwrap(c.response())
        XCTAssertEqual(first.status, 200)
        XCTAssertEqual(first.headers["content-type"], "application/json")
        XCTAssertEqual(first.headers["server"], "swiftvmm")
        XCTAssertEqual(first.body, #"{"method":"GET","path":"/a","body":""}"#)
        // Three pipelined requests in one write, answered in order on the same connection.
        c.send("PUT /b HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}GET /c HTTP/1.1\r\n\r\nPATCH /d HTTP/1.1\r\nContent-Length: 1\r\n\r\nx")
        let three = c.responses(3).responses
        XCTAssertEqual(three.map(\.body), [#"{"method":"PUT","path":"/b","body":"{}"}"#,
                                           #"{"method":"GET","path":"/c","body":""}"#,
                                           #"{"method":"PATCH","path":"/d","body":"x"}"#])
        c.send("GET /e HTTP/1.1\r\nConnection: close\r\n\r\n")
        let last = c.responses(2)
        XCTAssertEqual(last.responses.first?.headers["connection"], "close")
        XCTAssertTrue(last.eof, "Connection: close ends the connection")
    }

    func testManyClientsAtOnce() throws {
        _ = try startServer()
        let clients = try (0..<24).map { _ in try APITestClient(path) }
        // Interleave: every client sends half its request, then every client the rest.
        for (i, c) in clients.enumerated() { c.send("GET /client/\(i) HT") }
        for c in clients { c.send("TP/1.1\r\n\r\n") }
        for (i, c) in clients.enumerated() {
            XCTAssertEqual(c.response()?.body, #"{"method":"GET","path":"/client/\#(i)","body":""}"#)
        }
    }

    func testSlowWriterDoesNotBlockOthers() throws {
        _ = try startServer()
        let slow = try APITestClient(path)
        let request = Array("PUT /slow HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello".utf8)
        for b in request.prefix(20) { slow.send([b]); usleep(2000) }
        let other = try APITestClient(path)
        let t0 = APIServer.nowMillis()
        other.send("GET /fast HTTP/1.1\r\n\r\n")
        XCTAssertEqual(other.response()?.status, 200)
        XCTAssertLessThan(APIServer.nowMillis() - t0, 1000)
        for b in request.dropFirst(20) { slow.send([b]); usleep(1000) }
        XCTAssertEqual(slow.response()?.body, #"{"method":"PUT","path":"/slow","body":"hello"}"#)
    }

    /// A client that pipelines requests for large responses and never reads stalls only
    /// itself: the server stops reading it, serves others, and delivers everything later.
    func testSlowReaderIsBackpressuredNotBuffered() throws {
        _ = try startServer()
        let greedy = try APITestClient(path)
        let requests = 60
        let blob = Array(String(repeating: "GET /big HTTP/1.1\r\n\r\n", count: requests).utf8)
        let sender = Thread { greedy.send(blob) }  // may block in send() once the server stops reading
        sender.start()
        usleep(200_000)
        XCTAssertLessThan(handled.value.load(ordering: .relaxed), requests, "the server must stop reading a client that does not read")
        let other = try APITestClient(path)
        other.send("GET /other HTTP/1.1\r\n\r\n")
        XCTAssertEqual(other.response()?.status, 200)
        let t0 = APIServer.nowMillis()
        let all = greedy.responses(requests, timeoutMillis: 10_000).responses
        print("slow reader: \(all.count) responses in \(APIServer.nowMillis() - t0) ms, handled \(handled.value.load(ordering: .relaxed))")
        XCTAssertEqual(all.count, requests)
        XCTAssertTrue(all.allSatisfy { $0.body.count == 32 * 1024 })
    }

    func testClientDisconnectingMidRequest() throws {
        let s = try startServer()
        for _ in 0..<20 {
            let c = try APITestClient(path)
            c.send("PUT /x HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"partial\":")
        }  // each client is closed here, mid-body
        let c = try APITestClient(path)
        c.send("GET /after HTTP/1.1\r\n\r\n")
        XCTAssertEqual(c.response()?.status, 200)
        XCTAssertEqual(handled.value.load(ordering: .relaxed), 1, "no partial request reached the handler")
        s.stop()
        s.join()
        XCTAssertEqual(s.openConnections, 0)
        XCTAssertEqual(s.connectionsAccepted, 21)
    }

    func testOversizeRequestGets413AndServerKeepsServing() throws {
        _ = try startServer()
        let c = try APITestClient(path)
        c.send("PUT /drives/rootfs HTTP/1.1\r\nContent-Length: 60000\r\n\r\n")
        c.send([UInt8](repeating: 0x20, count: 60000))
        let r = c.responses(1)
        XCTAssertEqual(r.responses.first?.status, 413)
        XCTAssertEqual(r.responses.first?.body, #"{"fault_message":"Request of 60054 bytes is larger than the limit of 51200 bytes."}"#)
        XCTAssertTrue(r.eof || c.sawEOF())
        let next = try APITestClient(path)
        next.send("GET / HTTP/1.1\r\n\r\n")
        XCTAssertEqual(next.response()?.status, 200)
        XCTAssertEqual(handled.value.load(ordering: .relaxed), 1)
    }

    func testMalformedRequestGetsFaultAndClose() throws {
        _ = try startServer()
        let c = try APITestClient(path)
        c.send("DELETE /drives/a HTTP/1.1\r\n\r\n")
        let r = c.responses(1)
        XCTAssertEqual(r.responses.first?.status, 400)
        XCTAssertEqual(r.responses.first?.body, #"{"fault_message":"Unsupported HTTP method DELETE (GET, PUT and PATCH are)."}"#)
        XCTAssertTrue(r.eof || c.sawEOF())
    }

    func testHeaderAndBodyTimeouts() throws {
        let s = try startServer { $0.timeouts.headerMillis = 200; $0.timeouts.bodyMillis = 300 }
        let head = try APITestClient(path)
        head.send("GET / HT")
        let body = try APITestClient(path)
        body.send("PUT /x HTTP/1.1\r\nContent-Length: 10\r\n\r\n12")
        let idle = try APITestClient(path)
        let t0 = APIServer.nowMillis()
        // A slowloris dribbling bytes does not extend its deadline.
        let drip = try APITestClient(path)
        for b in "GET /slowloris HTTP/1.1\r\n".utf8.prefix(8) { drip.send([b]); usleep(50_000) }
        let r1 = head.responses(1, timeoutMillis: 3000)
        XCTAssertEqual(r1.responses.first?.status, 408)
        XCTAssertEqual(r1.responses.first?.body, #"{"fault_message":"Request not received in time."}"#)
        XCTAssertEqual(body.responses(1, timeoutMillis: 3000).responses.first?.status, 408)
        XCTAssertEqual(drip.responses(1, timeoutMillis: 3000).responses.first?.status, 408)
        XCTAssertLessThan(APIServer.nowMillis() - t0, 2000)
        XCTAssertTrue(head.sawEOF())
        // An idle keep-alive connection is not timed out.
        idle.send("GET /idle HTTP/1.1\r\n\r\n")
        XCTAssertEqual(idle.response()?.status, 200)
        XCTAssertEqual(handled.value.load(ordering: .relaxed), 1)
        XCTAssertGreaterThanOrEqual(s.timeoutsFired, 0)
    }

    func testExpectContinue() throws {
        _ = try startServer()
        let c = try APITestClient(path)
        c.send("PUT /vm HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        XCTAssertEqual(c.response()?.status, 100)
        c.send("{}")
        XCTAssertEqual(c.response()?.body, #"{"method":"PUT","path":"/vm","body":"{}"}"#)
    }

    func testConnectionLimitEvictsTheLongestIdle() throws {
        _ = try startServer { $0.maxConnections = 2 }
        let a = try APITestClient(path)
        a.send("GET /a HTTP/1.1\r\n\r\n")
        XCTAssertEqual(a.response()?.status, 200)
        usleep(20_000)
        let b = try APITestClient(path)
        b.send("GET /b HTTP/1.1\r\n\r\n")
        XCTAssertEqual(b.response()?.status, 200)
        let c = try APITestClient(path)
        c.send("GET /c HTTP/1.1\r\n\r\n")
        XCTAssertEqual(c.response()?.status, 200)
        XCTAssertTrue(a.sawEOF(), "the longest-idle connection made room")
        b.send("GET /b2 HTTP/1.1\r\n\r\n")
        XCTAssertEqual(b.response()?.status, 200)
        // Both connections mid-request: a third client is refused with 503, not queued forever.
        b.send("GET /b3 HT")
        c.send("GET /c2 HT")
        usleep(50_000)
        let d = try APITestClient(path)
        let refused = d.responses(1)
        XCTAssertEqual(refused.responses.first?.status, 503)
        XCTAssertEqual(refused.responses.first?.body, #"{"fault_message":"Too many API connections."}"#)
        b.send("TP/1.1\r\n\r\n")
        XCTAssertEqual(b.response()?.status, 200)
    }

    /// Out of file descriptors, the server pauses accepting instead of spinning on a
    /// listening socket that stays readable, and serves the waiting clients afterwards.
    func testEMFILEBacksOffWithoutSpinning() throws {
        let s = try startServer()
        let clients = (0..<3).map { _ in socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        defer { clients.forEach { close($0) } }
        var saved = rlimit()
        XCTAssertEqual(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &saved), 0)
        // /proc needs fds: read outside the tight window, once the thread has named itself.
        var cpuBefore = apiThreadCPUTicks()
        for _ in 0..<100 where cpuBefore == nil {
            usleep(10_000)
            cpuBefore = apiThreadCPUTicks()
        }
        let probe = open("/dev/null", O_RDONLY)
        close(probe)
        var tight = saved
        tight.rlim_cur = rlim_t(probe)  // the next fd any thread opens fails with EMFILE
        XCTAssertEqual(setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &tight), 0)
        for c in clients {
            let rc = try UnixSocketAddress.withAddress(path) { connect(c, $0, $1) }
            XCTAssertEqual(rc, 0)
        }
        usleep(500_000)
        XCTAssertEqual(setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &saved), 0)
        let cpuAfter = apiThreadCPUTicks()
        XCTAssertGreaterThanOrEqual(s.acceptBackoffs, 1)
        XCTAssertLessThanOrEqual(s.acceptBackoffs, 20, "one attempt per back-off period, not a spin")
        if let before = cpuBefore, let after = cpuAfter {
            XCTAssertLessThan(after - before, 10, "the API thread used \(after - before) ticks in 0.5 s")
        } else {
            XCTFail("no swiftvmm-api thread in /proc/self/task")
        }
        for c in clients {
            let request = Array("GET / HTTP/1.1\r\n\r\n".utf8)
            _ = request.withUnsafeBytes { send(c, $0.baseAddress, $0.count, 0) }
            var p = pollfd(fd: c, events: Int16(POLLIN), revents: 0)
            XCTAssertEqual(poll(&p, 1, 3000), 1, "served once fds are available again")
        }
    }

    /// utime + stime of the thread named swiftvmm-api.
    private func apiThreadCPUTicks() -> Int? {
        guard let dir = opendir("/proc/self/task") else { return nil }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let tid = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard tid.first?.isNumber == true,
                  let comm = try? String(contentsOfFile: "/proc/self/task/\(tid)/comm", encoding: .utf8),
                  comm.hasPrefix("swiftvmm-api")
            else { continue }
            let statText = (try? String(contentsOfFile: "/proc/self/task/\(tid)/stat", encoding: .utf8)) ?? ""
            guard let paren = statText.lastIndex(of: ")") else { return nil }
            let fields = statText[statText.index(after: paren)...].split(separator: " ")
            // After the command: state is field 3, utime 14, stime 15 (1-based in proc(5)).
            guard fields.count > 12, let u = Int(fields[11]), let s = Int(fields[12]) else { return nil }
            return u + s
        }
        return nil
    }

    func testSocketFileRules() throws {
        let s = try startServer()
        var st = stat()
        XCTAssertEqual(lstat(path, &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
        // A live socket is never replaced.
        let second = APIServer(path: path) { _ in .noContent }
        XCTAssertThrowsError(try second.start()) { error in
            XCTAssertEqual(error as? APIServerError, .socketInUse(path: path))
            XCTAssertEqual("\(error)", "api: \(path) is in use by another running server (refusing to replace it)")
        }
        XCTAssertEqual(try APITestClient(path).fd >= 0, true, "the first server still owns its socket")
        s.stop()
        XCTAssertEqual(lstat(path, &st), -1, "stop() removes the socket file")
        s.join()
        server = nil

        // A stale socket (bound, nobody listening) is replaced.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        _ = try UnixSocketAddress.withAddress(path) { bind(fd, $0, $1) }
        close(fd)
        XCTAssertEqual(lstat(path, &st), 0)
        _ = try startServer()
        let c = try APITestClient(path)
        c.send("GET / HTTP/1.1\r\n\r\n")
        XCTAssertEqual(c.response()?.status, 200)
        server?.stop()
        server?.join()
        server = nil

        // Any other file is left alone.
        let file = open(path, O_CREAT | O_WRONLY, 0o644)
        close(file)
        XCTAssertThrowsError(try APIServer(path: path) { _ in .noContent }.start()) { error in
            XCTAssertEqual(error as? APIServerError, .pathIsNotSocket(path: path))
        }
        XCTAssertEqual(lstat(path, &st), 0)
        XCTAssertThrowsError(try APIServer(path: "/tmp/" + String(repeating: "x", count: 120)) { _ in .noContent }.start())
    }
}

final class Counter: Sendable {
    let value = Atomic<Int>(0)
}
