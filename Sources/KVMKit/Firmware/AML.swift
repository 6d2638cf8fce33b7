/// A minimal AML (ACPI Machine Language) encoder: just what swiftvmm's DSDT needs —
/// Scope, Device, Name, Method/Return, integers, strings, EISA ids, packages and
/// resource-template buffers. Encodings follow ACPI 6.5 §20.2 (AML grammar).

/// Why an AML object could not be encoded.
public enum AMLError: Error, Equatable, CustomStringConvertible {
    /// A name path with an empty, over-long or non-[A-Z0-9_] segment (or a digit first).
    case invalidName(String)
    /// An EISA id that is not three capitals and four hex digits ("PNP0501").
    case invalidEISAID(String)
    /// A string with non-ASCII bytes or a NUL, which an AML String cannot carry.
    case invalidString(String)
    /// More than 255 package elements, or a method with more than 7 arguments.
    case tooManyElements(what: String, count: Int)
    /// An `IRQNoFlags` interrupt outside ISA IRQs 0-15.
    case invalidISAIRQ(UInt8)
    /// An object longer than a PkgLength can describe (2^28 - 1 bytes).
    case tooLong(bytes: Int)

    public var description: String {
        switch self {
        case .invalidName(let n): return "AML name \"\(n)\" is not a valid ACPI name path"
        case .invalidEISAID(let s): return "\"\(s)\" is not an EISA id (three capitals and four hex digits)"
        case .invalidString(let s): return "AML string \"\(s)\" must be ASCII without NUL"
        case .tooManyElements(let w, let c): return "\(w) has \(c) elements; AML allows at most 255 (7 method arguments)"
        case .invalidISAIRQ(let i): return "IRQNoFlags needs an ISA IRQ 0-15, not \(i)"
        case .tooLong(let b): return "AML object of \(b) bytes exceeds the 2^28-1 byte package length limit"
        }
    }
}

/// A term in a DSDT's term list.
public indirect enum AMLTerm: Equatable {
    /// `Scope (path) { terms }`
    case scope(String, [AMLTerm])
    /// `Device (name) { terms }`
    case device(String, [AMLTerm])
    /// `Name (name, data)`
    case name(String, AMLData)
    /// `Method (name, argCount, Serialized|NotSerialized) { terms }`
    case method(String, argCount: Int, serialized: Bool, [AMLTerm])
    /// `Return (data)`
    case returnValue(AMLData)
}

/// A data object: the value of a Name, a package element or a returned value.
public indirect enum AMLData: Equatable {
    case integer(UInt64)
    case string(String)
    /// A compressed EISA id such as "PNP0501", stored as a 32-bit integer (`EisaId ()`).
    case eisaID(String)
    case package([AMLData])
    case buffer([UInt8])
    /// `ResourceTemplate () { … }`: a buffer of descriptors closed by an End Tag.
    case resourceTemplate([ResourceDescriptor])
}

/// AML opcodes and prefixes used here (ACPI 6.5 §20.2).
enum AMLOp {
    static let zero: UInt8 = 0x00
    static let one: UInt8 = 0x01
    static let name: UInt8 = 0x08
    static let bytePrefix: UInt8 = 0x0A
    static let wordPrefix: UInt8 = 0x0B
    static let dwordPrefix: UInt8 = 0x0C
    static let stringPrefix: UInt8 = 0x0D
    static let qwordPrefix: UInt8 = 0x0E
    static let scope: UInt8 = 0x10
    static let buffer: UInt8 = 0x11
    static let package: UInt8 = 0x12
    static let method: UInt8 = 0x14
    static let dualNamePrefix: UInt8 = 0x2E
    static let multiNamePrefix: UInt8 = 0x2F
    static let extOpPrefix: UInt8 = 0x5B
    static let device: UInt8 = 0x82  // after extOpPrefix
    static let rootChar: UInt8 = 0x5C  // '\'
    static let parentPrefix: UInt8 = 0x5E  // '^'
    static let returnOp: UInt8 = 0xA4
}

extension AMLTerm {
    public func encode() throws -> [UInt8] {
        switch self {
        case .scope(let path, let terms):
            return [AMLOp.scope] + (try AML.withPkgLength(try AML.nameString(path) + AML.encode(terms)))
        case .device(let path, let terms):
            return [AMLOp.extOpPrefix, AMLOp.device]
                + (try AML.withPkgLength(try AML.nameString(path) + AML.encode(terms)))
        case .name(let path, let data):
            return [AMLOp.name] + (try AML.nameString(path)) + (try data.encode())
        case .method(let path, let argCount, let serialized, let terms):
            guard (0...7).contains(argCount) else { throw AMLError.tooManyElements(what: "method \(path)", count: argCount) }
            // MethodFlags: bits 0-2 argument count, bit 3 serialized, bits 4-7 sync level 0.
            let flags = UInt8(argCount) | (serialized ? 0x08 : 0)
            return [AMLOp.method] + (try AML.withPkgLength(try AML.nameString(path) + [flags] + AML.encode(terms)))
        case .returnValue(let data):
            return [AMLOp.returnOp] + (try data.encode())
        }
    }
}

extension AMLData {
    public func encode() throws -> [UInt8] {
        switch self {
        case .integer(let v): return AML.integer(v)
        case .string(let s):
            let utf8 = Array(s.utf8)
            guard utf8.allSatisfy({ $0 != 0 && $0 < 0x80 }) else { throw AMLError.invalidString(s) }
            return [AMLOp.stringPrefix] + utf8 + [0]
        case .eisaID(let id):
            return [AMLOp.dwordPrefix] + littleEndianBytes(try AML.eisaID(id))
        case .package(let elements):
            guard elements.count <= 255 else { throw AMLError.tooManyElements(what: "package", count: elements.count) }
            var body: [UInt8] = [UInt8(elements.count)]
            for e in elements { body += try e.encode() }
            return [AMLOp.package] + (try AML.withPkgLength(body))
        case .buffer(let bytes):
            return [AMLOp.buffer] + (try AML.withPkgLength(AML.integer(UInt64(bytes.count)) + bytes))
        case .resourceTemplate(let descriptors):
            return try AMLData.buffer(try ResourceDescriptor.template(descriptors)).encode()
        }
    }
}

/// Encoding primitives, exposed for tests.
public enum AML {
    /// Encode a sequence of terms back to back (a TermList).
    public static func encode(_ terms: [AMLTerm]) throws -> [UInt8] {
        var out: [UInt8] = []
        for t in terms { out += try t.encode() }
        return out
    }

    /// The shortest integer encoding: ZeroOp, OneOp, or a Byte/Word/DWord/QWord prefix.
    public static func integer(_ v: UInt64) -> [UInt8] {
        switch v {
        case 0: return [AMLOp.zero]
        case 1: return [AMLOp.one]
        case ...0xFF: return [AMLOp.bytePrefix, UInt8(v)]
        case ...0xFFFF: return [AMLOp.wordPrefix] + littleEndianBytes(UInt16(v))
        case ...0xFFFF_FFFF: return [AMLOp.dwordPrefix] + littleEndianBytes(UInt32(v))
        default: return [AMLOp.qwordPrefix] + littleEndianBytes(v)
        }
    }

    /// `PkgLength` followed by `body`. The encoded length counts its own bytes: one byte
    /// holds up to 63; otherwise bits 7-6 of the lead byte give 1-3 follow bytes, its low
    /// nibble the least significant 4 bits, and each follow byte the next 8.
    public static func withPkgLength(_ body: [UInt8]) throws -> [UInt8] {
        try pkgLength(forBody: body.count) + body
    }

    public static func pkgLength(forBody n: Int) throws -> [UInt8] {
        if n + 1 <= 0x3F { return [UInt8(n + 1)] }
        for follow in 1...3 {
            let total = n + 1 + follow
            guard total < 1 << (4 + 8 * follow) else { continue }
            var out = [UInt8(follow << 6) | UInt8(total & 0x0F)]
            for i in 0..<follow { out.append(UInt8(truncatingIfNeeded: total >> (4 + 8 * i))) }
            return out
        }
        throw AMLError.tooLong(bytes: n)
    }

    /// A NameString: optional `\` or `^…` prefix, then dot-separated segments of up to
    /// four characters, padded with `_` ("_SB" → "_SB_"). One segment is a NameSeg,
    /// two a DualNamePath, more a MultiNamePath; an empty path is the NullName.
    public static func nameString(_ path: String) throws -> [UInt8] {
        var rest = Substring(path)
        var out: [UInt8] = []
        if rest.first == "\\" {
            out.append(AMLOp.rootChar)
            rest = rest.dropFirst()
        } else {
            while rest.first == "^" {
                out.append(AMLOp.parentPrefix)
                rest = rest.dropFirst()
            }
        }
        if rest.isEmpty { return out + [0x00] }
        let segments = try rest.split(separator: ".", omittingEmptySubsequences: false).map { try nameSeg($0, in: path) }
        switch segments.count {
        case 1: out += segments[0]
        case 2: out += [AMLOp.dualNamePrefix] + segments[0] + segments[1]
        case ...255: out += [AMLOp.multiNamePrefix, UInt8(segments.count)] + segments.flatMap { $0 }
        default: throw AMLError.invalidName(path)
        }
        return out
    }

    /// One NameSeg: a capital or `_` first, then capitals, digits or `_`, padded to 4.
    static func nameSeg(_ seg: Substring, in path: String) throws -> [UInt8] {
        let chars = Array(seg.utf8)
        guard (1...4).contains(chars.count) else { throw AMLError.invalidName(path) }
        for (i, c) in chars.enumerated() {
            let upper = c >= 0x41 && c <= 0x5A, digit = c >= 0x30 && c <= 0x39, underscore = c == 0x5F
            guard upper || underscore || (digit && i > 0) else { throw AMLError.invalidName(path) }
        }
        return chars + [UInt8](repeating: 0x5F, count: 4 - chars.count)
    }

    /// Compress an EISA id: three letters as 5-bit values (letter - 0x40) packed big-endian
    /// into two bytes, then four hex digits as two bytes; read as a little-endian DWord.
    /// "PNP0501" → 0x0105D041.
    public static func eisaID(_ id: String) throws -> UInt32 {
        let c = Array(id.utf8)
        guard c.count == 7, c[0..<3].allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }) else { throw AMLError.invalidEISAID(id) }
        var digits: [UInt32] = []
        for h in c[3..<7] {
            switch h {
            case 0x30...0x39: digits.append(UInt32(h - 0x30))
            case 0x41...0x46: digits.append(UInt32(h - 0x41 + 10))
            default: throw AMLError.invalidEISAID(id)
            }
        }
        let vendor = UInt32(c[0] - 0x40) << 10 | UInt32(c[1] - 0x40) << 5 | UInt32(c[2] - 0x40)
        let b0 = vendor >> 8, b1 = vendor & 0xFF
        let b2 = digits[0] << 4 | digits[1], b3 = digits[2] << 4 | digits[3]
        return b0 | b1 << 8 | b2 << 16 | b3 << 24
    }
}

func littleEndianBytes<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
    (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) }
}
