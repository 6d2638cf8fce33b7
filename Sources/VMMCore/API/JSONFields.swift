import KVMKit

/// Strict decoding of one JSON object into a typed value: every member must be a known
/// field (checked up front, so a typo is reported even next to other errors), required
/// fields must be present, and each value must have the right type and range. A null is
/// the same as an absent optional field (as serde treats Option). Errors carry the key path.
struct JSONFields {
    let path: String
    private let object: JSONObject

    init(_ value: JSONValue, at path: String, known: [String]) throws {
        guard case .object(let object) = value else {
            throw APIDecodeError(path: path, problem: "expected an object, got \(value.typeName)")
        }
        for key in object.keys where !known.contains(key) {
            throw APIDecodeError(path: Self.join(path, key),
                                 problem: "unknown field, expected one of: " + known.joined(separator: ", "))
        }
        self.path = path
        self.object = object
    }

    static func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }

    func required<T>(_ key: String, _ decode: (JSONValue, String) throws -> T) throws -> T {
        guard let value = object[key], value != .null else {
            throw APIDecodeError(path: Self.join(path, key), problem: "missing required field")
        }
        return try decode(value, Self.join(path, key))
    }

    func optional<T>(_ key: String, _ decode: (JSONValue, String) throws -> T) throws -> T? {
        guard let value = object[key], value != .null else { return nil }
        return try decode(value, Self.join(path, key))
    }

    func has(_ key: String) -> Bool { object[key].map { $0 != .null } ?? false }
}

/// Decoders for single values, usable with `JSONFields.required` / `.optional`.
enum JSONDecode {
    static func string(_ v: JSONValue, _ path: String) throws -> String {
        guard case .string(let s) = v else { throw mismatch(path, "a string", v) }
        return s
    }

    static func nonEmptyString(_ v: JSONValue, _ path: String) throws -> String {
        let s = try string(v, path)
        if s.isEmpty { throw APIDecodeError(path: path, problem: "must not be empty") }
        return s
    }

    static func bool(_ v: JSONValue, _ path: String) throws -> Bool {
        guard case .bool(let b) = v else { throw mismatch(path, "a boolean", v) }
        return b
    }

    static func unsigned(_ v: JSONValue, _ path: String, in range: ClosedRange<UInt64> = 0...UInt64.max) throws -> UInt64 {
        let n: UInt64
        switch v {
        case .number(.int(let i)) where i >= 0: n = UInt64(i)
        case .number(.uint(let u)): n = u
        case .number(.int(let i)): throw outOfRange(path, range, String(i))
        default: throw mismatch(path, "an integer", v)
        }
        guard range.contains(n) else { throw outOfRange(path, range, String(n)) }
        return n
    }

    static func unsigned(in range: ClosedRange<UInt64>) -> (JSONValue, String) throws -> UInt64 {
        { v, p in try unsigned(v, p, in: range) }
    }

    /// One of a string enum's raw values; `caseInsensitive` accepts any spelling.
    static func choice<E: RawRepresentable & CaseIterable>(_ v: JSONValue, _ path: String, caseInsensitive: Bool = false) throws -> E
    where E.RawValue == String {
        let s = try string(v, path)
        let match = E.allCases.first { caseInsensitive ? $0.rawValue.lowercased() == s.lowercased() : $0.rawValue == s }
        guard let match else {
            let names = E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            throw APIDecodeError(path: path, problem: "expected one of \(names), got \(quoted(s))")
        }
        return match
    }

    private static func mismatch(_ path: String, _ expected: String, _ v: JSONValue) -> APIDecodeError {
        APIDecodeError(path: path, problem: "expected \(expected), got \(v.typeName)")
    }

    private static func outOfRange(_ path: String, _ range: ClosedRange<UInt64>, _ got: String) -> APIDecodeError {
        let bounds = range.upperBound == UInt64.max ? "at least \(range.lowerBound)" : "between \(range.lowerBound) and \(range.upperBound)"
        return APIDecodeError(path: path, problem: "must be \(bounds), got \(got)")
    }

    /// A user's string in a message: quoted, escaped, and cut short.
    static func quoted(_ s: String) -> String {
        let cut = s.count > 64 ? String(s.prefix(64)) + "…" : s
        return JSONValue.string(cut).encoded()
    }
}

/// Building response objects: optional members are left out, as serde's
/// skip_serializing_if does in Firecracker.
extension JSONObject {
    mutating func set(_ key: String, _ value: String?) { if let value { self[key] = .string(value) } }
    mutating func set(_ key: String, _ value: Bool?) { if let value { self[key] = .bool(value) } }
    mutating func set(_ key: String, _ value: UInt64?) { if let value { self[key] = JSONValue(value) } }
    mutating func set(_ key: String, _ value: JSONValue?) { if let value { self[key] = value } }
}
