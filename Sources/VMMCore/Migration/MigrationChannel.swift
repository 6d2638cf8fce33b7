import Glibc
import KVMKit

/// Where a migration goes: `unix:PATH` or `tcp:HOST:PORT` (HOST an IPv4 address or name).
public enum MigrationAddress: Equatable, Sendable, CustomStringConvertible {
    case unix(String)
    case tcp(host: String, port: UInt16)

    public init(parsing text: String) throws {
        // A socket path fits sockaddr_un's 108 bytes with its terminating NUL.
        if text.hasPrefix("unix:"), text.count > 5, text.utf8.count - 5 < 108 {
            self = .unix(String(text.dropFirst(5)))
            return
        }
        if text.hasPrefix("tcp:"), let colon = text.lastIndex(of: ":"), colon > text.index(text.startIndex, offsetBy: 3),
           let port = UInt16(text[text.index(after: colon)...]) {
            let host = String(text[text.index(text.startIndex, offsetBy: 4)..<colon])
            if !host.isEmpty { self = .tcp(host: host, port: port); return }
        }
        throw MigrationError.badAddress(text)
    }

    public var description: String {
        switch self {
        case .unix(let p): return "unix:\(p)"
        case let .tcp(h, p): return "tcp:\(h):\(p)"
        }
    }
}

/// Why a migration failed. The source keeps running in every case.
public enum MigrationError: Error, Equatable, CustomStringConvertible {
    case badAddress(String)
    case system(String, Int32)
    case peerClosed(String)
    case protocolError(String)
    case refused(String)

    public var description: String {
        switch self {
        case .badAddress(let a): return "migration address \(a): use unix:PATH or tcp:HOST:PORT"
        case let .system(what, e): return "migration: cannot \(what): \(errnoText(e))"
        case .peerClosed(let when): return "migration: the other side went away \(when)"
        case .protocolError(let why): return "migration: protocol error: \(why)"
        case .refused(let why): return "migration refused by the destination: \(why)"
        }
    }
}

/// A stream socket carrying framed messages: kind (u8), length (u64), payload.
final class MigrationChannel {
    enum Kind: UInt8 {
        case hello = 1, ready = 2, pages = 3, state = 4, running = 5, error = 6
    }

    static let maxPayload = 512 << 20
    let fd: Int32

    init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    static func connect(_ address: MigrationAddress) throws -> MigrationChannel {
        try withSocketAddress(address) { family, sa, len in
            let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if fd < 0 { throw MigrationError.system("create a socket", errno) }
            if Glibc.connect(fd, sa, len) != 0 {
                let e = errno
                close(fd)
                throw MigrationError.system("connect to \(address)", e)
            }
            if family == AF_INET { setNoDelay(fd) }
            return MigrationChannel(fd: fd)
        }
    }

    /// Listen on `address` and take one connection.
    static func accept(_ address: MigrationAddress) throws -> MigrationChannel {
        try withSocketAddress(address) { family, sa, len in
            let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if fd < 0 { throw MigrationError.system("create a socket", errno) }
            defer { close(fd) }
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            if case .unix(let path) = address { unlink(path) }
            if bind(fd, sa, len) != 0 { throw MigrationError.system("listen on \(address)", errno) }
            if listen(fd, 1) != 0 { throw MigrationError.system("listen on \(address)", errno) }
            let c = Glibc.accept(fd, nil, nil)
            if c < 0 { throw MigrationError.system("accept on \(address)", errno) }
            if case .unix(let path) = address { unlink(path) }
            if family == AF_INET { setNoDelay(c) }
            return MigrationChannel(fd: c)
        }
    }

    private static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    private static func withSocketAddress<T>(_ address: MigrationAddress,
                                             _ body: (Int32, UnsafePointer<sockaddr>, socklen_t) throws -> T) throws -> T {
        switch address {
        case .unix(let path):
            var sun = sockaddr_un()
            sun.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: sun.sun_path) else { throw MigrationError.badAddress("unix:\(path) (too long)") }
            withUnsafeMutableBytes(of: &sun.sun_path) { raw in
                for (i, b) in bytes.enumerated() { raw[i] = b }
                raw[bytes.count] = 0
            }
            return try withUnsafePointer(to: &sun) {
                try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    try body(AF_UNIX, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
        case let .tcp(host, port):
            var hints = addrinfo()
            hints.ai_family = AF_INET
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var result: UnsafeMutablePointer<addrinfo>?
            let r = getaddrinfo(host, String(port), &hints, &result)
            guard r == 0, let info = result, let sa = info.pointee.ai_addr else {
                throw MigrationError.badAddress("tcp:\(host):\(port) (cannot resolve \(host))")
            }
            defer { freeaddrinfo(result) }
            return try body(AF_INET, sa, info.pointee.ai_addrlen)
        }
    }

    // MARK: messages

    func send(_ kind: Kind, _ payload: [UInt8]) throws {
        try payload.withUnsafeBytes { try send(kind, $0) }
    }

    func send(_ kind: Kind, _ payload: UnsafeRawBufferPointer) throws {
        var header = StateWriter()
        header.write(kind.rawValue)
        header.write(UInt64(payload.count))
        try header.bytes.withUnsafeBytes { try writeAll($0) }
        try writeAll(payload)
    }

    /// Send several buffers as one message (a page batch without copying the pages).
    func send(_ kind: Kind, parts: [UnsafeRawBufferPointer]) throws {
        var header = StateWriter()
        header.write(kind.rawValue)
        header.write(UInt64(parts.reduce(0) { $0 + $1.count }))
        try header.bytes.withUnsafeBytes { try writeAll($0) }
        for p in parts { try writeAll(p) }
    }

    func receive() throws -> (Kind, [UInt8]) {
        var header = [UInt8](repeating: 0, count: 9)
        try header.withUnsafeMutableBytes { try readAll($0, when: "waiting for a message") }
        var r = StateReader(header, context: "migration message header")
        let rawKind = try r.read(UInt8.self), length = try r.read(UInt64.self)
        guard let kind = Kind(rawValue: rawKind) else { throw MigrationError.protocolError("unknown message kind \(rawKind)") }
        guard length <= UInt64(MigrationChannel.maxPayload) else { throw MigrationError.protocolError("a \(length)-byte message") }
        var payload = [UInt8](repeating: 0, count: Int(length))
        try payload.withUnsafeMutableBytes { try readAll($0, when: "in the middle of a message") }
        return (kind, payload)
    }

    private func writeAll(_ b: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < b.count {
            let n = Glibc.send(fd, b.baseAddress! + done, b.count - done, Int32(MSG_NOSIGNAL))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { throw MigrationError.peerClosed("while sending (\(errnoText(errno)))") }
            done += n
        }
    }

    private func readAll(_ b: UnsafeMutableRawBufferPointer, when: String) throws {
        var done = 0
        while done < b.count {
            let n = recv(fd, b.baseAddress! + done, b.count - done, 0)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { throw MigrationError.peerClosed(when) }
            done += n
        }
    }
}
