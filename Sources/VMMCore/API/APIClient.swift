import Glibc
import KVMKit

/// A minimal HTTP/1.1 client for the control socket: what `swiftvmm pause|resume|info …`
/// use, so a person needs no curl. One request per connection.
public enum APIClient {
    public struct Response: Sendable, Equatable {
        public let status: Int
        public let body: [UInt8]
        public var text: String { String(decoding: body, as: UTF8.self) }
    }

    public enum ClientError: Error, CustomStringConvertible, Equatable {
        case connect(path: String, errno: Int32)
        case io(path: String, errno: Int32)
        case badResponse(path: String, String)
        case timedOut(path: String)

        public var description: String {
            switch self {
            case .connect(let p, let e): return "\(p): cannot connect: \(errnoText(e))"
            case .io(let p, let e): return "\(p): \(errnoText(e))"
            case .badResponse(let p, let why): return "\(p): bad response: \(why)"
            case .timedOut(let p): return "\(p): no response in time"
            }
        }
    }

    public static func send(socketPath: String, method: String, path: String, body: String? = nil,
                            timeoutSeconds: Int = 30) throws -> Response {
        let (fd, err) = try UnixSocketAddress.connect(socketPath)
        guard fd >= 0 else { throw ClientError.connect(path: socketPath, errno: err) }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let payload = Array((body ?? "").utf8)
        var request = "\(method) \(path) HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\nConnection: close\r\n"
        if body != nil { request += "Content-Type: application/json\r\nContent-Length: \(payload.count)\r\n" }
        let bytes = Array((request + "\r\n").utf8) + payload
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw errno == EAGAIN ? ClientError.timedOut(path: socketPath) : ClientError.io(path: socketPath, errno: errno)
            }
            sent += n
        }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            if let r = try parse(received, socketPath) { return r }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw errno == EAGAIN ? ClientError.timedOut(path: socketPath) : ClientError.io(path: socketPath, errno: errno)
            }
            if n == 0 {
                guard let r = try parse(received, socketPath, atEOF: true) else {
                    throw ClientError.badResponse(path: socketPath, "connection closed after \(received.count) bytes")
                }
                return r
            }
            received += chunk[0..<n]
        }
    }

    /// A complete response in `bytes`, or nil if more is needed.
    static func parse(_ bytes: [UInt8], _ socketPath: String, atEOF: Bool = false) throws -> Response? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = bytes.indices.dropLast(3).first(where: { Array(bytes[$0..<$0 + 4]) == separator }) else { return nil }
        let head = String(decoding: bytes[..<end], as: UTF8.self).split(separator: "\r\n")
        guard let statusLine = head.first else { throw ClientError.badResponse(path: socketPath, "empty") }
        let parts = statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
            throw ClientError.badResponse(path: socketPath, "status line \"\(statusLine)\"")
        }
        var length: Int?
        for line in head.dropFirst() {
            let kv = line.split(separator: ":", maxSplits: 1)
            if kv.count == 2, kv[0].lowercased() == "content-length" { length = Int(kv[1].trimmingSpaces) }
        }
        let bodyStart = end + 4
        if let length {
            guard bytes.count - bodyStart >= length else { return nil }
            return Response(status: status, body: Array(bytes[bodyStart..<bodyStart + length]))
        }
        return atEOF || status == 204 ? Response(status: status, body: Array(bytes[bodyStart...])) : nil
    }
}

extension Substring {
    var trimmingSpaces: String { String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed()) }
}
