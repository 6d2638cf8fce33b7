// libFuzzer target: KVMKit's strict JSON parser and encoder. Checks: no crash or hang on
// any bytes, errors point inside the input, and every document that parses re-encodes
// (compact and pretty) to text that parses back to the same value.
import KVMKit

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    let limits = JSONParser.Limits(maxDepth: 32, maxBytes: 64 * 1024)
    do {
        let value = try JSONParser.parse(input, limits: limits)
        for pretty in [false, true] {
            let text = value.encoded(pretty: pretty)
            let again: JSONValue
            do {
                again = try JSONParser.parse(text, limits: JSONParser.Limits(maxDepth: 32, maxBytes: 1 << 24))
            } catch {
                fatalError("re-encoded document does not parse: \(error)\n\(text)")
            }
            guard again == value || containsNaN(value) else { fatalError("round trip changed the value:\n\(text)") }
        }
    } catch {
        guard error.offset >= 0, error.offset <= max(size, limits.maxBytes) else { fatalError("offset \(error.offset) outside \(size)") }
    }
    return 0
}

/// Doubles compare unequal to themselves only when NaN, which the parser never makes.
func containsNaN(_ v: JSONValue) -> Bool {
    switch v {
    case .number(.double(let d)): return d.isNaN
    case .array(let a): return a.contains(where: containsNaN)
    case .object(let o): return o.members.contains { containsNaN($0.value) }
    default: return false
    }
}
