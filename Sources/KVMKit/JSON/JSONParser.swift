/// A strict RFC 8259 parser: one value, optional whitespace around it, nothing else. No
/// comments, trailing commas, single quotes, NaN, leading zeros, control characters in
/// strings, lone surrogates or invalid UTF-8; duplicate object keys are rejected too (a
/// request that says two things is not guessed at). Depth and size are bounded, so hostile
/// input costs at most `maxBytes` of work and `maxDepth` stack frames.
public struct JSONParser {
    public struct Limits: Sendable {
        public var maxDepth: Int
        public var maxBytes: Int
        public init(maxDepth: Int = 64, maxBytes: Int = 1 << 20) {
            self.maxDepth = maxDepth
            self.maxBytes = maxBytes
        }
    }

    public static func parse(_ bytes: [UInt8], limits: Limits = Limits()) throws(JSONParseError) -> JSONValue {
        try bytes.withUnsafeBufferPointer { (buffer) throws(JSONParseError) -> JSONValue in
            var parser = JSONParser(input: buffer, limits: limits)
            return try parser.document()
        }
    }

    public static func parse(_ text: String, limits: Limits = Limits()) throws(JSONParseError) -> JSONValue {
        try parse(Array(text.utf8), limits: limits)
    }

    private let input: UnsafeBufferPointer<UInt8>
    private let limits: Limits
    private var pos = 0
    private var depth = 0

    private init(input: UnsafeBufferPointer<UInt8>, limits: Limits) {
        self.input = input
        self.limits = limits
    }

    // MARK: structure

    private mutating func document() throws(JSONParseError) -> JSONValue {
        if input.count > limits.maxBytes {
            throw JSONParseError(offset: limits.maxBytes, reason: "document is larger than \(limits.maxBytes) bytes")
        }
        skipWhitespace()
        let value = try self.value()
        skipWhitespace()
        if pos < input.count { throw fail("unexpected data after the JSON value") }
        return value
    }

    private mutating func value() throws(JSONParseError) -> JSONValue {
        guard pos < input.count else { throw fail("unexpected end of input, expected a value") }
        switch input[pos] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw fail("expected a value")
        }
    }

    private mutating func enter() throws(JSONParseError) {
        depth += 1
        if depth > limits.maxDepth { throw fail("nesting deeper than \(limits.maxDepth) levels") }
    }

    private mutating func object() throws(JSONParseError) -> JSONValue {
        try enter()
        pos += 1  // {
        var object = JSONObject()
        var seen = Set<String>()
        skipWhitespace()
        if consume(UInt8(ascii: "}")) {
            depth -= 1
            return .object(object)
        }
        while true {
            skipWhitespace()
            guard pos < input.count, input[pos] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let keyOffset = pos
            let key = try string()
            if !seen.insert(key).inserted {
                throw JSONParseError(offset: keyOffset, reason: "duplicate key \"\(key)\"")
            }
            skipWhitespace()
            guard consume(UInt8(ascii: ":")) else { throw fail("expected ':'") }
            skipWhitespace()
            object.appendUnchecked(key, try value())
            skipWhitespace()
            if consume(UInt8(ascii: ",")) { continue }
            if consume(UInt8(ascii: "}")) { break }
            throw fail("expected ',' or '}'")
        }
        depth -= 1
        return .object(object)
    }

    private mutating func array() throws(JSONParseError) -> JSONValue {
        try enter()
        pos += 1  // [
        var elements: [JSONValue] = []
        skipWhitespace()
        if consume(UInt8(ascii: "]")) {
            depth -= 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try value())
            skipWhitespace()
            if consume(UInt8(ascii: ",")) { continue }
            if consume(UInt8(ascii: "]")) { break }
            throw fail("expected ',' or ']'")
        }
        depth -= 1
        return .array(elements)
    }

    private mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let n = word.utf8CodeUnitCount
        var i = 0
        while i < n {
            guard pos + i < input.count, input[pos + i] == word.utf8Start[i] else {
                throw JSONParseError(offset: pos + i, reason: "invalid literal, expected '\(word)'")
            }
            i += 1
        }
        pos += n
    }

    // MARK: strings

    private mutating func string() throws(JSONParseError) -> String {
        let start = pos
        pos += 1  // opening quote
        // Fast path: no escapes, the bytes are the string.
        var scan = pos
        while scan < input.count {
            let b = input[scan]
            if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") || b < 0x20 { break }
            scan += 1
        }
        if scan < input.count, input[scan] == UInt8(ascii: "\"") {
            let slice = UnsafeBufferPointer(rebasing: input[pos..<scan])
            guard let s = String(validating: slice, as: UTF8.self) else {
                throw JSONParseError(offset: start, reason: "invalid UTF-8 in string")
            }
            pos = scan + 1
            return s
        }
        var bytes = Array(UnsafeBufferPointer(rebasing: input[pos..<scan]))
        pos = scan
        while true {
            guard pos < input.count else { throw fail("unterminated string") }
            let b = input[pos]
            if b == UInt8(ascii: "\"") {
                pos += 1
                break
            }
            if b < 0x20 { throw fail("control character in string (must be escaped)") }
            if b != UInt8(ascii: "\\") {
                bytes.append(b)
                pos += 1
                continue
            }
            pos += 1
            guard pos < input.count else { throw fail("unterminated string") }
            let e = input[pos]
            pos += 1
            switch e {
            case UInt8(ascii: "\""): bytes.append(e)
            case UInt8(ascii: "\\"): bytes.append(e)
            case UInt8(ascii: "/"): bytes.append(e)
            case UInt8(ascii: "b"): bytes.append(0x08)
            case UInt8(ascii: "f"): bytes.append(0x0C)
            case UInt8(ascii: "n"): bytes.append(0x0A)
            case UInt8(ascii: "r"): bytes.append(0x0D)
            case UInt8(ascii: "t"): bytes.append(0x09)
            case UInt8(ascii: "u"): appendUTF8(try unicodeEscape(), to: &bytes)
            default:
                pos -= 1
                throw fail("invalid escape '\\\(Character(Unicode.Scalar(e)))'")
            }
        }
        guard let s = String(validating: bytes, as: UTF8.self) else {
            throw JSONParseError(offset: start, reason: "invalid UTF-8 in string")
        }
        return s
    }

    /// After "\u": four hex digits, and a second escape for a surrogate pair.
    private mutating func unicodeEscape() throws(JSONParseError) -> Unicode.Scalar {
        let escapeStart = pos - 2
        let first = try hex4()
        if (0xDC00...0xDFFF).contains(first) {
            throw JSONParseError(offset: escapeStart, reason: "lone low surrogate in \\u escape")
        }
        if (0xD800...0xDBFF).contains(first) {
            guard pos + 1 < input.count, input[pos] == UInt8(ascii: "\\"), input[pos + 1] == UInt8(ascii: "u") else {
                throw JSONParseError(offset: escapeStart, reason: "lone high surrogate in \\u escape")
            }
            pos += 2
            let second = try hex4()
            guard (0xDC00...0xDFFF).contains(second) else {
                throw JSONParseError(offset: escapeStart, reason: "lone high surrogate in \\u escape")
            }
            let value = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            // Always valid: 0x10000...0x10FFFF.
            return Unicode.Scalar(value) ?? "\u{FFFD}"
        }
        return Unicode.Scalar(first) ?? "\u{FFFD}"  // non-surrogate BMP values are scalars
    }

    private mutating func hex4() throws(JSONParseError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard pos < input.count else { throw fail("unterminated \\u escape") }
            let b = input[pos]
            let digit: UInt32
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(b - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(b - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(b - UInt8(ascii: "A") + 10)
            default: throw fail("expected a hex digit in \\u escape")
            }
            value = value << 4 | digit
            pos += 1
        }
        return value
    }

    private func appendUTF8(_ scalar: Unicode.Scalar, to bytes: inout [UInt8]) {
        UTF8.encode(scalar) { bytes.append($0) }
    }

    // MARK: numbers

    /// -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
    private mutating func number() throws(JSONParseError) -> JSONNumber {
        let start = pos
        let negative = consume(UInt8(ascii: "-"))
        guard pos < input.count, isDigit(input[pos]) else { throw fail("expected a digit") }
        var magnitude: UInt64 = 0
        var overflow = false
        if input[pos] == UInt8(ascii: "0") {
            pos += 1
            if pos < input.count, isDigit(input[pos]) { throw fail("leading zero in number") }
        } else {
            while pos < input.count, isDigit(input[pos]) {
                let (m1, o1) = magnitude.multipliedReportingOverflow(by: 10)
                let (m2, o2) = m1.addingReportingOverflow(UInt64(input[pos] - UInt8(ascii: "0")))
                overflow = overflow || o1 || o2
                magnitude = m2
                pos += 1
            }
        }
        var isInteger = true
        if consume(UInt8(ascii: ".")) {
            isInteger = false
            guard pos < input.count, isDigit(input[pos]) else { throw fail("expected a digit after '.'") }
            while pos < input.count, isDigit(input[pos]) { pos += 1 }
        }
        if pos < input.count, input[pos] == UInt8(ascii: "e") || input[pos] == UInt8(ascii: "E") {
            isInteger = false
            pos += 1
            if pos < input.count, input[pos] == UInt8(ascii: "+") || input[pos] == UInt8(ascii: "-") { pos += 1 }
            guard pos < input.count, isDigit(input[pos]) else { throw fail("expected a digit in the exponent") }
            while pos < input.count, isDigit(input[pos]) { pos += 1 }
        }
        if isInteger, !overflow {
            if !negative {
                return magnitude <= UInt64(Int64.max) ? .int(Int64(magnitude)) : .uint(magnitude)
            }
            if magnitude <= UInt64(Int64.max) { return .int(-Int64(magnitude)) }
            if magnitude == UInt64(Int64.max) + 1 { return .int(Int64.min) }
        }
        let text = String(decoding: UnsafeBufferPointer(rebasing: input[start..<pos]), as: UTF8.self)
        guard let d = Double(text), d.isFinite else {
            throw JSONParseError(offset: start, reason: "number out of range")
        }
        return .double(d)
    }

    // MARK: bytes

    @inline(__always) private func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }

    @inline(__always) private mutating func consume(_ b: UInt8) -> Bool {
        if pos < input.count, input[pos] == b {
            pos += 1
            return true
        }
        return false
    }

    private mutating func skipWhitespace() {
        while pos < input.count {
            switch input[pos] {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    private func fail(_ reason: String) -> JSONParseError {
        JSONParseError(offset: pos, reason: pos >= input.count && !reason.hasPrefix("unexpected end") ? "unexpected end of input, " + reason : reason)
    }
}
