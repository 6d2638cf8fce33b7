import Foundation
import Glibc
import KVMKit
@testable import VMMCore

/// A blocking Unix-socket client for the API server tests: send raw bytes, read until
/// a number of complete responses (or EOF) arrived, with a deadline.
final class APITestClient {
    let fd: Int32

    init(_ path: String) throws {
        let r = try UnixSocketAddress.connect(path)
        guard r.fd >= 0 else { throw APITestError("connect \(path): \(errnoText(r.errno))") }
        fd = r.fd
    }

    deinit { close(fd) }

    func send(_ text: String) { send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            off += n
        }
    }

    /// Read until `count` responses are complete, EOF, or `timeoutMillis`.
    func responses(_ count: Int, timeoutMillis: Int32 = 5000) -> (responses: [TestResponse], eof: Bool) {
        var buffer: [UInt8] = []
        var eof = false
        let deadline = APIServer.nowMillis() + Int64(timeoutMillis)
        while true {
            let parsed = TestResponse.parseAll(buffer)
            if parsed.count >= count || eof { return (parsed, eof) }
            let left = deadline - APIServer.nowMillis()
            if left <= 0 { return (parsed, eof) }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, Int32(left)) <= 0 { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { eof = true } else { buffer += chunk[0..<n] }
        }
    }

    func response(timeoutMillis: Int32 = 5000) -> TestResponse? { responses(1, timeoutMillis: timeoutMillis).responses.first }

    /// True if the server closed the connection within the time.
    func sawEOF(timeoutMillis: Int32 = 3000) -> Bool {
        let deadline = APIServer.nowMillis() + Int64(timeoutMillis)
        var chunk = [UInt8](repeating: 0, count: 65536)
        while APIServer.nowMillis() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 100) <= 0 { continue }
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { return true }
        }
        return false
    }
}

struct APITestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

struct TestResponse {
    var status: Int
    var headers: [String: String]
    var body: String

    /// Complete responses at the start of `bytes` (Content-Length framed; 1xx and 204 have none).
    static func parseAll(_ bytes: [UInt8]) -> [TestResponse] {
        var out: [TestResponse] = []
        var rest = bytes[...]
        while let end = rest.indices.first(where: { i in
            i + 3 < rest.endIndex && rest[i] == 13 && rest[i + 1] == 10 && rest[i + 2] == 13 && rest[i + 3] == 10
        }) {
            let head = String(decoding: rest[rest.startIndex..<end], as: UTF8.self)
            var lines = head.components(separatedBy: "\r\n")
            let statusLine = lines.removeFirst().split(separator: " ")
            let status = statusLine.count > 1 ? Int(statusLine[1]) ?? 0 : 0
            var headers: [String: String] = [:]
            for l in lines {
                if let c = l.firstIndex(of: ":") {
                    headers[l[..<c].lowercased()] = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
                }
            }
            let length = Int(headers["content-length"] ?? "0") ?? 0
            let bodyStart = end + 4
            guard rest.endIndex - bodyStart >= length else { break }
            out.append(TestResponse(status: status, headers: headers,
                                    body: String(decoding: rest[bodyStart..<(bodyStart + length)], as: UTF8.self)))
            rest = rest[(bodyStart + length)...]
        }
        return out
    }
}
