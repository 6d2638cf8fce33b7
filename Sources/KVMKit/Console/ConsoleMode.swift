/// Where a guest console goes on the host (`--serial stdio|file:PATH|socket:PATH|none`).
public enum ConsoleMode: Equatable, Sendable, CustomStringConvertible {
    /// The VMM's stdin/stdout; raw mode and escape keys when stdin is a terminal.
    case stdio
    /// Output appended to a file (created or truncated); no input.
    case file(path: String)
    /// A Unix stream socket server for `swiftvmm attach PATH`.
    case socket(path: String)
    /// Output discarded, no input.
    case none

    public init(parsing text: String) throws {
        if text == "stdio" { self = .stdio; return }
        if text == "none" { self = .none; return }
        if text.hasPrefix("file:"), text.count > 5 { self = .file(path: String(text.dropFirst(5))); return }
        if text.hasPrefix("socket:"), text.count > 7 { self = .socket(path: String(text.dropFirst(7))); return }
        throw ConsoleError.invalidMode(text)
    }

    public var description: String {
        switch self {
        case .stdio: return "stdio"
        case .file(let p): return "file:\(p)"
        case .socket(let p): return "socket:\(p)"
        case .none: return "none"
        }
    }
}
