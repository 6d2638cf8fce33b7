/// A request the API refuses: the HTTP status and Firecracker's one-line fault message.
public struct APIError: Error, Sendable, Equatable, CustomStringConvertible {
    public let status: HTTPStatus
    public let message: String

    public init(_ status: HTTPStatus = .badRequest, _ message: String) {
        self.status = status
        self.message = message
    }

    public var description: String { message }

    /// {"fault_message": "..."} with the status.
    public var response: HTTPResponse { .fault(status, message) }

    /// A body that does not decode, in Firecracker's words.
    static func body(_ detail: CustomStringConvertible) -> APIError {
        APIError(.badRequest, "An error occurred when deserializing the json body of a request: \(detail).")
    }
}

/// A JSON document that is valid JSON but not what was expected, naming where:
/// "drives[1].path_on_host: expected a string, got an integer".
public struct APIDecodeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The key path of the offending value ("" for the whole document).
    public let path: String
    public let problem: String

    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    public var description: String { path.isEmpty ? problem : "\(path): \(problem)" }
}
