import KVMKit

/// A response: status, optional JSON body. Serialised with Server, Content-Type and
/// Content-Length (none on 204, as RFC 9110 requires), and "Connection: close" when the
/// server is going to close.
public struct HTTPResponse: Sendable, Equatable {
    public static let serverName = "swiftvmm"

    public var status: HTTPStatus
    public var body: [UInt8]
    public var contentType: String

    public init(status: HTTPStatus, body: [UInt8] = [], contentType: String = "application/json") {
        self.status = status
        self.body = body
        self.contentType = contentType
    }

    public static func json(_ value: JSONValue, status: HTTPStatus = .ok) -> HTTPResponse {
        HTTPResponse(status: status, body: value.encodedBytes())
    }

    public static let noContent = HTTPResponse(status: .noContent)

    /// Firecracker's error body: {"fault_message": "..."}.
    public static func fault(_ status: HTTPStatus, _ message: String) -> HTTPResponse {
        json(["fault_message": .string(message)], status: status)
    }

    public func serialized(keepAlive: Bool) -> [UInt8] {
        var head = "HTTP/1.1 \(status.code) \(status.reason)\r\nServer: \(Self.serverName)\r\n"
        if status != .noContent {
            head += "Content-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
        }
        if !keepAlive { head += "Connection: close\r\n" }
        head += "\r\n"
        var bytes = Array(head.utf8)
        if status != .noContent { bytes += body }
        return bytes
    }
}
