/// The methods Firecracker's API uses. Any other method is answered 400 by the parser, as Firecracker does.
public enum HTTPMethod: String, Sendable, Equatable, CaseIterable {
    case get = "GET"
    case put = "PUT"
    case patch = "PATCH"
}

public struct HTTPHeader: Sendable, Equatable {
    public let name: String
    public let value: String
}

/// One parsed request: the target split at '?', headers in order, the body as bytes.
public struct HTTPRequest: Sendable, Equatable {
    public var method: HTTPMethod
    /// The path as sent (origin form, starts with '/'); not percent-decoded.
    public var path: String
    /// What followed '?', if anything.
    public var query: String?
    /// "HTTP/1.1" or "HTTP/1.0".
    public var version: String
    public var headers: [HTTPHeader]
    public var body: [UInt8]
    /// Whether the connection stays open after the response (HTTP/1.1 unless
    /// "Connection: close"; HTTP/1.0 only with "Connection: keep-alive").
    public var keepAlive: Bool

    public init(method: HTTPMethod, path: String, query: String? = nil, version: String = "HTTP/1.1",
                headers: [HTTPHeader] = [], body: [UInt8] = [], keepAlive: Bool = true) {
        self.method = method
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.body = body
        self.keepAlive = keepAlive
    }

    /// The first header with this name (case-insensitive).
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.name.lowercased() == wanted }?.value
    }
}

/// A request the parser refuses: the status to answer with and a one-line reason. The
/// connection is closed after the answer, since the stream cannot be resynchronised.
public struct HTTPError: Error, Sendable, Equatable, CustomStringConvertible {
    public let status: HTTPStatus
    public let message: String

    public init(_ status: HTTPStatus, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { "\(status.code): \(message)" }
}
