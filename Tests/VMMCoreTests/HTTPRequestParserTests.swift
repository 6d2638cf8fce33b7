import KVMKit
import XCTest
@testable import VMMCore

final class HTTPRequestParserTests: XCTestCase {
    private let put = Array("PUT /machine-config?x=1 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 35\r\n\r\n{\"vcpu_count\": 2, \"mem_size_mib\":1}".utf8)

    private func parseAll(_ bytes: [UInt8], limits: HTTPRequestParser.Limits = .init()) -> HTTPRequestParser.Result {
        var p = HTTPRequestParser(limits: limits)
        return p.parse(bytes)
    }

    private func assertError(_ text: String, _ code: Int, _ phrase: String, limits: HTTPRequestParser.Limits = .init(),
                             file: StaticString = #filePath, line: UInt = #line) {
        guard case .error(let e) = parseAll(Array(text.utf8), limits: limits) else {
            return XCTFail("no error for \(text.debugDescription)", file: file, line: line)
        }
        XCTAssertEqual(e.status.code, code, "\(e)", file: file, line: line)
        XCTAssertTrue(e.message.contains(phrase), "\(e.message) should contain \(phrase)", file: file, line: line)
    }

    func testCompleteRequest() {
        guard case .request(let r, let used) = parseAll(put) else { return XCTFail() }
        XCTAssertEqual(used, put.count)
        XCTAssertEqual(r.method, .put)
        XCTAssertEqual(r.path, "/machine-config")
        XCTAssertEqual(r.query, "x=1")
        XCTAssertEqual(r.header("content-type"), "application/json")
        XCTAssertEqual(r.header("HOST"), "localhost")
        XCTAssertEqual(String(decoding: r.body, as: UTF8.self), "{\"vcpu_count\": 2, \"mem_size_mib\":1}")
        XCTAssertTrue(r.keepAlive)
    }

    /// Fed in two pieces split at every byte boundary (and byte by byte), the same request.
    func testEverySplitGivesTheSameRequest() {
        guard case .request(let whole, _) = parseAll(put) else { return XCTFail() }
        for cut in 0...put.count {
            var p = HTTPRequestParser()
            var buffer = Array(put[..<cut])
            let first = p.parse(buffer)
            if cut < put.count { XCTAssertEqual(first, .needMore, "cut at \(cut)") }
            buffer += put[cut...]
            XCTAssertEqual(p.parse(buffer), .request(whole, consumed: put.count), "cut at \(cut)")
        }
        var p = HTTPRequestParser()
        var buffer: [UInt8] = []
        for (i, b) in put.enumerated() {
            buffer.append(b)
            let r = p.parse(buffer)
            XCTAssertEqual(r, i == put.count - 1 ? .request(whole, consumed: put.count) : .needMore)
        }
    }

    func testPipelinedRequests() {
        let get = Array("GET / HTTP/1.1\r\n\r\n".utf8)
        var buffer = get + put + Array("\r\n".utf8) + get
        var p = HTTPRequestParser()
        var seen: [String] = []
        while case .request(let r, let used) = p.parse(buffer) {
            seen.append("\(r.method.rawValue) \(r.path) \(r.body.count)")
            buffer.removeFirst(used)
        }
        XCTAssertEqual(seen, ["GET / 0", "PUT /machine-config 35", "GET / 0"])
        XCTAssertTrue(buffer.isEmpty)
    }

    func testKeepAliveRules() {
        func keep(_ s: String) -> Bool? {
            if case .request(let r, _) = parseAll(Array(s.utf8)) { return r.keepAlive }
            return nil
        }
        XCTAssertEqual(keep("GET / HTTP/1.1\r\n\r\n"), true)
        XCTAssertEqual(keep("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n"), false)
        XCTAssertEqual(keep("GET / HTTP/1.1\r\nConnection: upgrade, close\r\n\r\n"), false)
        XCTAssertEqual(keep("GET / HTTP/1.0\r\n\r\n"), false)
        XCTAssertEqual(keep("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"), true)
    }

    func testExpectContinue() {
        var p = HTTPRequestParser()
        let head = Array("PUT /vm HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n".utf8)
        XCTAssertEqual(p.parse(head), .needMore)
        XCTAssertTrue(p.expectsContinue)
        XCTAssertTrue(p.isInsideBody)
        guard case .request(let r, _) = p.parse(head + Array("{}".utf8)) else { return XCTFail() }
        XCTAssertEqual(r.body, Array("{}".utf8))
        XCTAssertFalse(p.expectsContinue)
        assertError("PUT /vm HTTP/1.1\r\nExpect: 102-processing\r\n\r\n", 417, "Unsupported expectation")
    }

    func testStatusForEachKindOfBadRequest() {
        assertError("DELETE /drives/a HTTP/1.1\r\n\r\n", 400, "Unsupported HTTP method DELETE")
        assertError("BREW / HTTP/1.1\r\n\r\n", 400, "Unsupported HTTP method")
        assertError("G(T / HTTP/1.1\r\n\r\n", 400, "Malformed method")
        assertError("GET / HTTP/2.0\r\n\r\n", 505, "Unsupported HTTP version HTTP/2.0")
        assertError("GET / HTTX/1.1\r\n\r\n", 400, "Malformed HTTP version")
        assertError("GET  / HTTP/1.1\r\n\r\n", 400, "Malformed request line")
        assertError("GET /\r\n\r\n", 400, "Malformed request line")
        assertError("GET http://x/ HTTP/1.1\r\n\r\n", 400, "request target")
        assertError("GET /a\u{7f} HTTP/1.1\r\n\r\n", 400, "request target")
        assertError("GET / HTTP/1.1\nHost: x\r\n\r\n", 400, "Bare LF")
        assertError("GET / HTTP/1.1\r\nHo\rst: x\r\n\r\n", 400, "Bare CR")
        assertError("GET / HTTP/1.1\r\nHost x\r\n\r\n", 400, "Malformed header line")
        assertError("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "Malformed header line")
        assertError("GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n", 400, "Folded header")
        assertError("GET / HTTP/1.1\r\nA: b\u{1}c\r\n\r\n", 400, "Control character")
        assertError("PUT / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "Invalid Content-Length")
        assertError("PUT / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, "Conflicting")
        assertError("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501, "Transfer-Encoding chunked is not supported")
    }

    func testSizeLimits() {
        // Firecracker's 51200-byte payload limit: over it is 413, before any body is read.
        assertError("PUT /drives/a HTTP/1.1\r\nContent-Length: 51200\r\n\r\n", 413, "larger than the limit of 51200 bytes")
        assertError("PUT / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413, "larger than the limit")
        let fits = "PUT / HTTP/1.1\r\nContent-Length: 51100\r\n\r\n"
        XCTAssertEqual(parseAll(Array(fits.utf8)), .needMore)
        let small = HTTPRequestParser.Limits(maxHeadBytes: 64, maxHeaderCount: 2, maxRequestBytes: 128)
        assertError("GET /" + String(repeating: "a", count: 80), 414, "Request line is longer than 64", limits: small)
        assertError("GET / HTTP/1.1\r\nA: " + String(repeating: "a", count: 80), 431, "headers are larger than 64", limits: small)
        assertError("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431, "More than 2 request headers", limits: small)
        XCTAssertEqual(parseAll(Array("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n".utf8), limits: small).isRequest, true)
    }

    func testResponseSerialisation() {
        let ok = HTTPResponse.json(["a": 1])
        XCTAssertEqual(String(decoding: ok.serialized(keepAlive: true), as: UTF8.self),
                       "HTTP/1.1 200 OK\r\nServer: swiftvmm\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}")
        XCTAssertEqual(String(decoding: HTTPResponse.noContent.serialized(keepAlive: false), as: UTF8.self),
                       "HTTP/1.1 204 No Content\r\nServer: swiftvmm\r\nConnection: close\r\n\r\n")
        let fault = HTTPResponse.fault(.badRequest, "bad \"x\"")
        XCTAssertEqual(String(decoding: fault.body, as: UTF8.self), #"{"fault_message":"bad \"x\""}"#)
    }
}

extension HTTPRequestParser.Result {
    var isRequest: Bool {
        if case .request = self { return true }
        return false
    }
}
