/// Writing JSON: compact (`{"a":1}`) for the wire, or pretty (two-space indent, one member
/// per line) for people. Non-finite doubles, which JSON cannot express, are written as null.
extension JSONValue {
    public func encoded(pretty: Bool = false) -> String {
        var out = ""
        write(to: &out, pretty: pretty, indent: 0)
        return out
    }

    public func encodedBytes(pretty: Bool = false) -> [UInt8] { Array(encoded(pretty: pretty).utf8) }

    private func write(to out: inout String, pretty: Bool, indent: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(.int(let i)): out += String(i)
        case .number(.uint(let u)): out += String(u)
        case .number(.double(let d)): out += d.isFinite ? "\(d)" : "null"
        case .string(let s): Self.writeQuoted(s, to: &out)
        case .array(let elements):
            if elements.isEmpty { out += "[]"; return }
            out += "["
            for (i, e) in elements.enumerated() {
                if i > 0 { out += "," }
                if pretty { Self.newline(&out, indent + 1) }
                e.write(to: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { Self.newline(&out, indent) }
            out += "]"
        case .object(let object):
            if object.isEmpty { out += "{}"; return }
            out += "{"
            for (i, m) in object.members.enumerated() {
                if i > 0 { out += "," }
                if pretty { Self.newline(&out, indent + 1) }
                Self.writeQuoted(m.key, to: &out)
                out += pretty ? ": " : ":"
                m.value.write(to: &out, pretty: pretty, indent: indent + 1)
            }
            if pretty { Self.newline(&out, indent) }
            out += "}"
        }
    }

    private static func newline(_ out: inout String, _ level: Int) {
        out += "\n"
        out += String(repeating: "  ", count: level)
    }

    private static let hexDigits: [Character] = Array("0123456789abcdef")

    static func writeQuoted(_ s: String, to out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    out += "\\u00"
                    out.append(hexDigits[Int(u.value >> 4)])
                    out.append(hexDigits[Int(u.value & 0xF)])
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }
}
