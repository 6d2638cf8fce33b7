/// Byte-level ASCII helpers. The API's grammar (methods, header names, paths, ids,
/// enum values) is ASCII; Unicode-aware String operations (case mapping, Character
/// splitting) would page the standard library's Unicode tables into the VMM for nothing.
enum ASCII {
    static func lowercased<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        String(decoding: bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    static func lowercased(_ s: String) -> String { lowercased(s.utf8) }

    static func isHexDigit(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66)
    }

    /// `s` split at every `separator` byte, empty pieces kept.
    static func split(_ s: String, _ separator: UInt8) -> [String] {
        s.utf8.split(separator: separator, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
    }
}
