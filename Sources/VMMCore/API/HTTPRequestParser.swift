/// An incremental HTTP/1.1 request parser with no I/O: give it the bytes received so far
/// on a connection (the same buffer, grown), it answers "need more", one complete request
/// and how many bytes it used, or an error with the status to answer. After a request,
/// drop the consumed bytes and call again: the rest may already hold the next request
/// (pipelining). Work is linear in the bytes received however they are split.
///
/// Limits (Firecracker's payload limit is 51200 bytes): the head (request line and
/// headers) at most `maxHeadBytes` (431, or 414 when the request line alone is longer),
/// `maxHeaderCount` headers (431), head plus body at most `maxRequestBytes` (413). Bodies
/// need Content-Length; any Transfer-Encoding is 501; a method other than GET, PUT
/// or PATCH is 400 (as Firecracker answers it); a version other than HTTP/1.0 or 1.1 is 505.
public struct HTTPRequestParser: Sendable {
    public struct Limits: Sendable {
        public var maxHeadBytes: Int
        public var maxHeaderCount: Int
        public var maxRequestBytes: Int
        public init(maxHeadBytes: Int = 8192, maxHeaderCount: Int = 64, maxRequestBytes: Int = 51200) {
            self.maxHeadBytes = maxHeadBytes
            self.maxHeaderCount = maxHeaderCount
            self.maxRequestBytes = maxRequestBytes
        }
    }

    public enum Result: Sendable, Equatable {
        case needMore
        case request(HTTPRequest, consumed: Int)
        case error(HTTPError)
    }

    public let limits: Limits
    /// Where the search for the end of the head resumes.
    private var scanned = 0
    private var head: Head?

    private struct Head: Sendable {
        var request: HTTPRequest
        var length: Int
        var contentLength: Int
        var expectsContinue: Bool
    }

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// True once the head of a request with "Expect: 100-continue" is parsed and its body
    /// has not all arrived: the server should send "100 Continue" (once).
    public var expectsContinue: Bool { head?.expectsContinue ?? false }

    /// True while part of a request has arrived (for the header and body timeouts).
    public var isInsideBody: Bool { head != nil }

    public mutating func parse(_ buffer: [UInt8]) -> Result {
        buffer.withUnsafeBufferPointer { parse($0) }
    }

    public mutating func parse(_ buffer: UnsafeBufferPointer<UInt8>) -> Result {
        if head == nil, let error = findHead(buffer) { return .error(error) }
        guard let h = head else { return .needMore }
        guard buffer.count >= h.length + h.contentLength else { return .needMore }
        var request = h.request
        request.body = Array(buffer[h.length..<(h.length + h.contentLength)])
        head = nil
        scanned = 0
        return .request(request, consumed: h.length + h.contentLength)
    }

    // MARK: head

    /// Sets `head` once the whole head is there; nil also while it is incomplete.
    private mutating func findHead(_ buffer: UnsafeBufferPointer<UInt8>) -> HTTPError? {
        // RFC 9112 2.2: ignore empty lines before the request line (a client's stray CRLF
        // after a body).
        var start = 0
        while start + 1 < buffer.count, buffer[start] == CR, buffer[start + 1] == LF { start += 2 }
        if start < buffer.count, buffer[start] == CR, start + 1 == buffer.count { return nil }
        var i = max(scanned, start + 3)
        var end = -1
        while i < buffer.count {
            if buffer[i] == LF, buffer[i - 1] == CR, buffer[i - 2] == LF, buffer[i - 3] == CR {
                end = i + 1
                break
            }
            i += 1
        }
        scanned = i
        if end < 0 {
            return buffer.count > limits.maxHeadBytes ? headTooLarge(buffer, start) : nil
        }
        if end > limits.maxHeadBytes { return headTooLarge(buffer, start) }
        switch parseHead(UnsafeBufferPointer(rebasing: buffer[start..<(end - 2)]), length: end) {
        case .success(let h):
            if h.contentLength > limits.maxRequestBytes - h.length {
                let total = h.contentLength == Int.max ? "more than \(limits.maxRequestBytes)" : String(h.length + h.contentLength)
                return HTTPError(.payloadTooLarge, "Request of \(total) bytes is larger than the limit of \(limits.maxRequestBytes) bytes.")
            }
            head = h
            return nil
        case .failure(let e):
            return e
        }
    }

    private func headTooLarge(_ buffer: UnsafeBufferPointer<UInt8>, _ start: Int) -> HTTPError {
        let lineEnd = buffer[start...].firstIndex(of: LF) ?? Int.max
        if lineEnd - start > limits.maxHeadBytes {
            return HTTPError(.uriTooLong, "Request line is longer than \(limits.maxHeadBytes) bytes.")
        }
        return HTTPError(.headerFieldsTooLarge, "Request headers are larger than \(limits.maxHeadBytes) bytes.")
    }

    /// `text` is the head up to and including the CRLF that ends the last header line.
    private func parseHead(_ text: UnsafeBufferPointer<UInt8>, length: Int) -> Swift.Result<Head, HTTPError> {
        var lines: [UnsafeBufferPointer<UInt8>] = []
        var lineStart = 0
        var i = 0
        while i < text.count {
            if text[i] == LF {
                guard i >= 1, text[i - 1] == CR else {
                    return .failure(HTTPError(.badRequest, "Bare LF in request head (lines end with CRLF)."))
                }
                lines.append(UnsafeBufferPointer(rebasing: text[lineStart..<(i - 1)]))
                lineStart = i + 1
            } else if text[i] == CR, i + 1 < text.count, text[i + 1] != LF {
                return .failure(HTTPError(.badRequest, "Bare CR in request head."))
            }
            i += 1
        }
        guard let requestLine = lines.first else { return .failure(HTTPError(.badRequest, "Empty request.")) }
        if lines.count - 1 > limits.maxHeaderCount {
            return .failure(HTTPError(.headerFieldsTooLarge, "More than \(limits.maxHeaderCount) request headers."))
        }

        let parts = requestLine.split(separator: SP, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else {
            return .failure(HTTPError(.badRequest, "Malformed request line (expected: METHOD /path HTTP/1.1)."))
        }
        let methodText = String(decoding: parts[0], as: UTF8.self)
        guard parts[0].allSatisfy(isTokenByte) else { return .failure(HTTPError(.badRequest, "Malformed method.")) }
        let versionText = String(decoding: parts[2], as: UTF8.self)
        guard isHTTPVersion(parts[2]) else {
            return .failure(HTTPError(.badRequest, "Malformed HTTP version."))
        }
        guard versionText == "HTTP/1.1" || versionText == "HTTP/1.0" else {
            return .failure(HTTPError(.versionNotSupported, "Unsupported HTTP version \(versionText) (HTTP/1.1 and HTTP/1.0 are)."))
        }
        guard let method = HTTPMethod(rawValue: methodText) else {
            return .failure(HTTPError(.badRequest, "Unsupported HTTP method \(methodText) (GET, PUT and PATCH are)."))
        }
        let target = parts[1]
        guard target.first == UInt8(ascii: "/"), target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            return .failure(HTTPError(.badRequest, "Malformed request target (expected a path starting with '/')."))
        }
        var path = String(decoding: target, as: UTF8.self)
        var query: String?
        if let q = path.firstIndex(of: "?") {
            query = String(path[path.index(after: q)...])
            path = String(path[..<q])
        }

        var headers: [HTTPHeader] = []
        var contentLength: Int?
        var expectsContinue = false
        var connectionTokens: [String] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0,
                  line[..<colon].allSatisfy(isTokenByte)
            else {
                if let first = line.first, first == SP || first == HTAB {
                    return .failure(HTTPError(.badRequest, "Folded header lines are not accepted."))
                }
                return .failure(HTTPError(.badRequest, "Malformed header line."))
            }
            var valueBytes = line[(colon + 1)...]
            while let f = valueBytes.first, f == SP || f == HTAB { valueBytes = valueBytes.dropFirst() }
            while let l = valueBytes.last, l == SP || l == HTAB { valueBytes = valueBytes.dropLast() }
            guard valueBytes.allSatisfy({ $0 == HTAB || ($0 >= 0x20 && $0 != 0x7F) }) else {
                return .failure(HTTPError(.badRequest, "Control character in a header value."))
            }
            let name = String(decoding: line[..<colon], as: UTF8.self)
            let value = String(decoding: valueBytes, as: UTF8.self)
            headers.append(HTTPHeader(name: name, value: value))
            switch name.lowercased() {
            case "content-length":
                guard !valueBytes.isEmpty, valueBytes.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                    return .failure(HTTPError(.badRequest, "Invalid Content-Length: \(value)."))
                }
                // More digits than any allowed size has: too large, without overflowing.
                let n = valueBytes.count > 12 ? Int.max : Int(value) ?? Int.max
                if let earlier = contentLength, earlier != n {
                    return .failure(HTTPError(.badRequest, "Conflicting Content-Length headers."))
                }
                contentLength = n
            case "transfer-encoding":
                return .failure(HTTPError(.notImplemented, "Transfer-Encoding \(value) is not supported; send the body with Content-Length."))
            case "expect":
                guard value.lowercased() == "100-continue" else {
                    return .failure(HTTPError(.expectationFailed, "Unsupported expectation: \(value)."))
                }
                expectsContinue = true
            case "connection":
                connectionTokens += value.lowercased().split(separator: ",").map { String($0.filter { $0 != " " && $0 != "\t" }) }
            default:
                break
            }
        }
        let keepAlive = versionText == "HTTP/1.1" ? !connectionTokens.contains("close") : connectionTokens.contains("keep-alive")
        let request = HTTPRequest(method: method, path: path, query: query, version: versionText,
                                  headers: headers, body: [], keepAlive: keepAlive)
        let bodyLength = contentLength ?? 0
        return .success(Head(request: request, length: length, contentLength: bodyLength,
                             expectsContinue: expectsContinue && bodyLength > 0))
    }

    private func isHTTPVersion(_ b: UnsafeBufferPointer<UInt8>.SubSequence) -> Bool {
        let a = Array(b)
        return a.count == 8 && a[0..<5].elementsEqual("HTTP/".utf8) && isDigit(a[5]) && a[6] == UInt8(ascii: ".") && isDigit(a[7])
    }
}

private let CR: UInt8 = 0x0D
private let LF: UInt8 = 0x0A
private let SP: UInt8 = 0x20
private let HTAB: UInt8 = 0x09

@inline(__always) private func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

/// RFC 9110 tchar.
private func isTokenByte(_ b: UInt8) -> Bool {
    switch b {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
        return true
    default:
        return "!#$%&'*+-.^_`|~".utf8.contains(b)
    }
}
