import XCTest
@testable import KVMKit

final class JSONTests: XCTestCase {
    private func parse(_ s: String, _ limits: JSONParser.Limits = .init()) throws(JSONParseError) -> JSONValue {
        try JSONParser.parse(s, limits: limits)
    }

    private func assertError(_ s: String, offset: Int, _ reason: String, limits: JSONParser.Limits = .init(),
                             file: StaticString = #filePath, line: UInt = #line) {
        do throws(JSONParseError) {
            let v = try parse(s, limits)
            XCTFail("parsed \(s.debugDescription) as \(v)", file: file, line: line)
        } catch {
            XCTAssertEqual(error.offset, offset, "offset for \(s.debugDescription): \(error)", file: file, line: line)
            XCTAssertTrue(error.reason.contains(reason), "\(error) should say \(reason)", file: file, line: line)
            XCTAssertTrue(error.description.hasPrefix("invalid JSON at byte \(offset): "), file: file, line: line)
        }
    }

    func testScalarsAndStructure() throws {
        XCTAssertEqual(try parse(" null "), .null)
        XCTAssertEqual(try parse("true"), .bool(true))
        XCTAssertEqual(try parse("false"), .bool(false))
        XCTAssertEqual(try parse("\"a\""), .string("a"))
        XCTAssertEqual(try parse("[]"), .array([]))
        XCTAssertEqual(try parse("{}"), .object(JSONObject()))
        let v = try parse(#"{"b": [1, -2, 3.5, "x", null], "a": {"c": false}}"#)
        guard case .object(let o) = v else { return XCTFail("not an object") }
        XCTAssertEqual(o.keys, ["b", "a"], "member order is the document's")
        XCTAssertEqual(o["b"], [1, -2, 3.5, "x", nil])
        XCTAssertEqual(o["a"], ["c": false])
        XCTAssertNil(o["zz"])
    }

    func testIntegersStayExact() throws {
        XCTAssertEqual(try parse("9007199254740993"), .number(.int(9_007_199_254_740_993)))
        XCTAssertEqual(try parse("9223372036854775807"), .number(.int(Int64.max)))
        XCTAssertEqual(try parse("-9223372036854775808"), .number(.int(Int64.min)))
        XCTAssertEqual(try parse("9223372036854775808"), .number(.uint(1 << 63)))
        XCTAssertEqual(try parse("18446744073709551615"), .number(.uint(UInt64.max)))
        XCTAssertEqual(try parse("18446744073709551616"), .number(.double(18446744073709551616.0)))
        XCTAssertEqual(try parse("-9223372036854775809"), .number(.double(-9223372036854775809.0)))
        XCTAssertEqual(try parse("-0"), .number(.int(0)))
        XCTAssertEqual(try parse("1e2"), .number(.double(100)))
        XCTAssertEqual(try parse("1E+2"), .number(.double(100)))
        XCTAssertEqual(try parse("0.5e-1"), .number(.double(0.05)))
        XCTAssertEqual(JSONValue.number(.uint(UInt64.max)).encoded(), "18446744073709551615")
        XCTAssertEqual(JSONValue.number(.int(Int64.min)).encoded(), "-9223372036854775808")
        XCTAssertEqual(JSONValue.number(.double(.nan)).encoded(), "null")
        XCTAssertEqual(JSONValue.number(.double(.infinity)).encoded(), "null")
    }

    func testStringsAndEscapes() throws {
        XCTAssertEqual(try parse(#""\u00e9\ud83d\ude00\n\t\"\\\/\b\f\r""#), .string("é😀\n\t\"\\/\u{8}\u{c}\r"))
        XCTAssertEqual(try parse("\"é😀\""), .string("é😀"))
        let tricky = JSONValue.string("a\"b\\c\n\u{1}\u{1f}é😀")
        XCTAssertEqual(tricky.encoded(), #""a\"b\\c\n\u0001\u001fé😀""#)
        XCTAssertEqual(try parse(tricky.encoded()), tricky)
    }

    func testErrorsNameTheByte() {
        assertError(#"{"a":1 "b":2}"#, offset: 7, "expected ',' or '}'")
        assertError("[1,2", offset: 4, "expected ',' or ']'")
        assertError("[1,]", offset: 3, "expected a value")
        assertError(#"{"a":1,}"#, offset: 7, "expected a string key")
        assertError(#"{"a" 1}"#, offset: 5, "expected ':'")
        assertError("", offset: 0, "unexpected end of input")
        assertError("   ", offset: 3, "unexpected end of input")
        assertError("01", offset: 1, "leading zero")
        assertError("-", offset: 1, "expected a digit")
        assertError("1.", offset: 2, "expected a digit after '.'")
        assertError("1e", offset: 2, "exponent")
        assertError("+1", offset: 0, "expected a value")
        assertError(".5", offset: 0, "expected a value")
        assertError("NaN", offset: 0, "expected a value")
        assertError("1e999", offset: 0, "number out of range")
        assertError("nul", offset: 3, "invalid literal")
        assertError("truex", offset: 4, "unexpected data after")
        assertError("1 2", offset: 2, "unexpected data after")
        assertError("\"abc", offset: 4, "unterminated string")
        assertError("\"a\u{1}\"", offset: 2, "control character")
        assertError(#""\x""#, offset: 2, "invalid escape")
        assertError(#""\u12""#, offset: 5, "hex digit")
        assertError(#""\ud800""#, offset: 1, "lone high surrogate")
        assertError(#""\udc00""#, offset: 1, "lone low surrogate")
        assertError(#""\ud800\u0041""#, offset: 1, "lone high surrogate")
        assertError(#"{"a":1,"a":2}"#, offset: 7, "duplicate key \"a\"")
        assertError("'a'", offset: 0, "expected a value")
        assertError("\u{FEFF}1", offset: 0, "expected a value")
        assertError("[1]//", offset: 3, "unexpected data after")
    }

    func testInvalidUTF8IsRejected() {
        for bytes: [UInt8] in [[0x22, 0xFF, 0x22], [0x22, 0xC3, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0x5C, 0x6E, 0xC0, 0x80, 0x22]] {
            XCTAssertThrowsError(try JSONParser.parse(bytes)) { error in
                XCTAssertEqual((error as? JSONParseError)?.reason, "invalid UTF-8 in string")
            }
        }
    }

    func testDepthAndSizeLimits() throws {
        let limits = JSONParser.Limits(maxDepth: 8, maxBytes: 64)
        XCTAssertNoThrow(try parse(String(repeating: "[", count: 8) + String(repeating: "]", count: 8), limits))
        assertError(String(repeating: "[", count: 9) + String(repeating: "]", count: 9), offset: 8, "nesting deeper than 8", limits: limits)
        assertError(String(repeating: "{\"a\":", count: 9) + "1" + String(repeating: "}", count: 9), offset: 40, "nesting deeper", limits: limits)
        assertError("\"" + String(repeating: "a", count: 70) + "\"", offset: 64, "larger than 64 bytes", limits: limits)
        // The default depth stops a stack-exhausting document early.
        let deep = String(repeating: "[", count: 100_000)
        assertError(deep, offset: 64, "nesting deeper than 64")
    }

    func testPrettyAndCompactEncoding() throws {
        let v: JSONValue = ["a": [1, 2], "b": ["c": nil], "e": [], "f": [:]]
        XCTAssertEqual(v.encoded(), #"{"a":[1,2],"b":{"c":null},"e":[],"f":{}}"#)
        XCTAssertEqual(v.encoded(pretty: true), """
            {
              "a": [
                1,
                2
              ],
              "b": {
                "c": null
              },
              "e": [],
              "f": {}
            }
            """)
        XCTAssertEqual(try parse(v.encoded(pretty: true)), v)
    }

    func testObjectSubscriptKeepsOrderAndReplaces() {
        var o: JSONObject = ["x": 1, "y": 2]
        o["x"] = 3
        o["z"] = 4
        o["y"] = nil
        XCTAssertEqual(o.keys, ["x", "z"])
        XCTAssertEqual(o["x"], 3)
    }

    /// Random documents survive encode → parse in both styles (a seeded generator, so a
    /// failure reproduces).
    func testRandomDocumentsRoundTrip() throws {
        var rng = SplitMix(seed: 0x5EED)
        for _ in 0..<500 {
            let v = randomValue(&rng, depth: 0)
            XCTAssertEqual(try parse(v.encoded()), v)
            XCTAssertEqual(try parse(v.encoded(pretty: true)), v)
        }
    }

    private func randomValue(_ rng: inout SplitMix, depth: Int) -> JSONValue {
        switch rng.next() % (depth > 4 ? 5 : 7) {
        case 0: return .null
        case 1: return .bool(rng.next() & 1 == 1)
        case 2: return .number(.int(Int64(bitPattern: rng.next())))
        case 3: return .number(.double(Double(Int64(bitPattern: rng.next()) % 1_000_000) / 64))
        case 4:
            let alphabet: [Unicode.Scalar] = ["a", "\"", "\\", "\n", "\u{1}", "é", "😀", "/", " ", "\u{7f}"]
            var s = ""
            for _ in 0..<(rng.next() % 8) { s.unicodeScalars.append(alphabet[Int(rng.next() % UInt64(alphabet.count))]) }
            return .string(s)
        case 5: return .array((0..<(rng.next() % 4)).map { _ in randomValue(&rng, depth: depth + 1) })
        default:
            var o = JSONObject()
            for i in 0..<(rng.next() % 4) { o["k\(i)"] = randomValue(&rng, depth: depth + 1) }
            return .object(o)
        }
    }
}

private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
