/// The binary encoding every saved state uses: little-endian fixed-width integers,
/// length-prefixed byte strings and arrays. No Foundation; nothing is trusted on decode.

/// Why saved state bytes could not be decoded. `context` names the field being read.
public enum StateDecodingError: Error, Equatable, CustomStringConvertible {
    /// The bytes ended before the field did.
    case truncated(context: String, offset: Int)
    /// A field holds a value no writer produces (a count too large, an unknown tag …).
    case invalid(context: String, detail: String)

    public var description: String {
        switch self {
        case let .truncated(context, offset): return "state truncated at byte \(offset) while reading \(context)"
        case let .invalid(context, detail): return "invalid \(context): \(detail)"
        }
    }
}

/// A value that writes itself as bytes and reads itself back.
public protocol StateCodable {
    func encode(to writer: inout StateWriter)
    init(from reader: inout StateReader) throws
}

extension StateCodable {
    /// The value's encoding on its own.
    public var encodedBytes: [UInt8] {
        var w = StateWriter()
        encode(to: &w)
        return w.bytes
    }

    /// Decode a value that must fill `bytes` exactly.
    public init(decoding bytes: [UInt8], context: String) throws {
        var r = StateReader(bytes, context: context)
        self = try Self(from: &r)
        try r.expectEnd()
    }
}

public struct StateWriter {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func write<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func write(_ value: Bool) { write(UInt8(value ? 1 : 0)) }

    /// A length (u64) followed by the bytes.
    public mutating func write(bytes b: [UInt8]) {
        write(UInt64(b.count))
        bytes.append(contentsOf: b)
    }

    public mutating func write(_ s: String) { write(bytes: Array(s.utf8)) }

    /// A count (u32) followed by each element.
    public mutating func write<T: StateCodable>(_ values: [T]) {
        write(UInt32(truncatingIfNeeded: values.count))
        for v in values { v.encode(to: &self) }
    }

    public mutating func write<T: StateCodable>(_ value: T) { value.encode(to: &self) }

    /// A trivially copyable C struct (a KVM ioctl payload) as its raw bytes.
    public mutating func writePOD<T>(_ value: T) {
        withUnsafeBytes(of: value) { bytes.append(contentsOf: $0) }
    }
}

public struct StateReader {
    private let bytes: [UInt8]
    public private(set) var offset = 0
    /// What is being decoded, for error messages.
    public let context: String

    public init(_ bytes: [UInt8], context: String) {
        self.bytes = bytes
        self.context = context
    }

    public var remaining: Int { bytes.count - offset }

    private mutating func take(_ n: Int, _ what: String) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= remaining else { throw StateDecodingError.truncated(context: "\(context) \(what)", offset: offset) }
        defer { offset += n }
        return bytes[offset..<(offset + n)]
    }

    public mutating func read<T: FixedWidthInteger>(_ type: T.Type = T.self, _ what: String = "integer") throws -> T {
        let s = try take(MemoryLayout<T>.size, what)
        var v: T = 0
        withUnsafeMutableBytes(of: &v) { $0.copyBytes(from: s) }
        return T(littleEndian: v)
    }

    public mutating func readBool(_ what: String = "flag") throws -> Bool {
        let b: UInt8 = try read(UInt8.self, what)
        guard b <= 1 else { throw StateDecodingError.invalid(context: "\(context) \(what)", detail: "boolean byte \(b)") }
        return b == 1
    }

    /// Length-prefixed bytes; the length may not exceed what is left (nor `limit`).
    public mutating func readBytes(_ what: String = "bytes", limit: Int = Int.max) throws -> [UInt8] {
        let n: UInt64 = try read(UInt64.self, "\(what) length")
        guard n <= UInt64(remaining) else { throw StateDecodingError.truncated(context: "\(context) \(what)", offset: offset) }
        guard n <= UInt64(limit) else {
            throw StateDecodingError.invalid(context: "\(context) \(what)", detail: "\(n) bytes, at most \(limit) allowed")
        }
        return Array(try take(Int(n), what))
    }

    public mutating func readString(_ what: String = "string") throws -> String {
        let b = try readBytes(what, limit: 4096)
        return String(decoding: b, as: UTF8.self)
    }

    public mutating func read<T: StateCodable>(_ type: T.Type = T.self) throws -> T { try T(from: &self) }

    /// A counted array; each element must take at least one byte, so a huge count in a
    /// short input fails as truncated instead of allocating.
    public mutating func readArray<T: StateCodable>(_ type: T.Type = T.self, _ what: String, limit: Int = 1 << 20) throws -> [T] {
        let n: UInt32 = try read(UInt32.self, "\(what) count")
        guard Int(n) <= limit else {
            throw StateDecodingError.invalid(context: "\(context) \(what)", detail: "\(n) elements, at most \(limit) allowed")
        }
        guard Int(n) <= remaining else { throw StateDecodingError.truncated(context: "\(context) \(what)", offset: offset) }
        var out: [T] = []
        out.reserveCapacity(Int(n))
        for _ in 0..<n { out.append(try T(from: &self)) }
        return out
    }

    /// A trivially copyable C struct written with `writePOD`.
    public mutating func readPOD<T>(_ type: T.Type, _ what: String) throws -> T {
        let s = try take(MemoryLayout<T>.size, what)
        return s.withUnsafeBytes { $0.loadUnaligned(as: T.self) }
    }

    /// Fails unless every byte was consumed (trailing garbage is corruption).
    public func expectEnd() throws {
        if remaining != 0 {
            throw StateDecodingError.invalid(context: context, detail: "\(remaining) unexpected trailing bytes")
        }
    }
}
