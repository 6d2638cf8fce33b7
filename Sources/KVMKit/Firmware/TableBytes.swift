/// A growing little-endian byte buffer for firmware tables, with the fixed-width and
/// fixed-length-text fields the ACPI and MP specifications use.
struct TableBytes {
    var bytes: [UInt8] = []

    init() {}
    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var count: Int { bytes.count }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { appendLE(v) }
    mutating func u32(_ v: UInt32) { appendLE(v) }
    mutating func u64(_ v: UInt64) { appendLE(v) }
    mutating func append(_ other: [UInt8]) { bytes += other }
    mutating func zeros(_ n: Int) { bytes += [UInt8](repeating: 0, count: n) }

    /// `text` as ASCII, cut or padded with `pad` to exactly `length` bytes
    /// (OEM ids, signatures, MP bus type strings).
    mutating func ascii(_ text: String, length: Int, pad: UInt8 = 0x20) {
        var field = Array(text.utf8.prefix(length))
        field += [UInt8](repeating: pad, count: length - field.count)
        bytes += field
    }

    mutating func set32(_ v: UInt32, at offset: Int) { setLE(v, at: offset) }
    mutating func set16(_ v: UInt16, at offset: Int) { setLE(v, at: offset) }

    private mutating func appendLE<T: FixedWidthInteger>(_ v: T) {
        var x = v.littleEndian
        withUnsafeBytes(of: &x) { bytes += $0 }
    }

    private mutating func setLE<T: FixedWidthInteger>(_ v: T, at offset: Int) {
        for i in 0..<MemoryLayout<T>.size { bytes[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
    }

    /// Store at `offset` the byte that makes `bytes[range]` sum to zero mod 256
    /// (the checksum rule shared by ACPI and MP tables). The byte at `offset` must be
    /// inside `range` and is treated as zero while summing.
    mutating func fixChecksum(at offset: Int, over range: Range<Int>) {
        bytes[offset] = 0
        bytes[offset] = checksumByte(bytes[range])
    }
}

/// The byte that, added to `bytes`, makes the sum zero mod 256.
func checksumByte<C: Collection>(_ bytes: C) -> UInt8 where C.Element == UInt8 {
    let sum = bytes.reduce(UInt8(0)) { $0 &+ $1 }
    return 0 &- sum
}

