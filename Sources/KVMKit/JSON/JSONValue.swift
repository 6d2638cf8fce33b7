/// A JSON document as a value (RFC 8259). Numbers keep integers exact; objects keep their
/// members in document order, so what is read and written back reads the same.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

/// A JSON number: integers that fit 64 bits stay integers; anything with a fraction or an
/// exponent, or an integer beyond UInt64, is a Double.
public enum JSONNumber: Sendable, Equatable {
    case int(Int64)
    /// Only integers above Int64.max: every other integer is `.int`.
    case uint(UInt64)
    case double(Double)
}

/// One member of an object.
public struct JSONMember: Sendable, Equatable {
    public var key: String
    public var value: JSONValue
    public init(key: String, value: JSONValue) {
        self.key = key
        self.value = value
    }
}

/// An object's members in order. Keys are unique (the parser rejects duplicates; the
/// subscript setter replaces). Lookups are linear: API objects have a handful of members.
public struct JSONObject: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    public private(set) var members: [JSONMember] = []

    public init() {}

    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        for (k, v) in elements { self[k] = v }
    }

    public var count: Int { members.count }
    public var isEmpty: Bool { members.isEmpty }
    public var keys: [String] { members.map(\.key) }

    public subscript(key: String) -> JSONValue? {
        get { members.first { $0.key == key }?.value }
        set {
            let index = members.firstIndex { $0.key == key }
            switch (index, newValue) {
            case (let i?, let v?): members[i].value = v
            case (let i?, nil): members.remove(at: i)
            case (nil, let v?): members.append(JSONMember(key: key, value: v))
            case (nil, nil): break
            }
        }
    }

    /// Appends without looking for an existing key: for builders and the parser, which
    /// guarantee uniqueness themselves.
    mutating func appendUnchecked(_ key: String, _ value: JSONValue) {
        members.append(JSONMember(key: key, value: value))
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .number(.int(value)) }
    public init(floatLiteral value: Double) { self = .number(.double(value)) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        var object = JSONObject()
        for (k, v) in elements { object[k] = v }
        self = .object(object)
    }
}

extension JSONValue {
    public init(_ value: Int) { self = .number(.int(Int64(value))) }
    public init(_ value: UInt64) { self = value <= UInt64(Int64.max) ? .number(.int(Int64(value))) : .number(.uint(value)) }
    public init(_ value: String?) { self = value.map { .string($0) } ?? .null }
    public init(_ values: [String]) { self = .array(values.map { .string($0) }) }

    /// A short name of the value's type, for error messages ("expected a string, got an array").
    public var typeName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number(.double): return "a number"
        case .number: return "an integer"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }
}
