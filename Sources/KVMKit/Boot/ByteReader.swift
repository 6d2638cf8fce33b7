/// Bounds-checked little-endian reads from a file image. `nil` when out of range, so
/// parsers turn a short file into a typed error rather than a trap.
struct ByteReader {
    let bytes: [UInt8]

    func u8(_ offset: Int) -> UInt8? {
        offset >= 0 && offset < bytes.count ? bytes[offset] : nil
    }

    func u16(_ offset: Int) -> UInt16? { int(offset, UInt16.self) }
    func u32(_ offset: Int) -> UInt32? { int(offset, UInt32.self) }
    func u64(_ offset: Int) -> UInt64? { int(offset, UInt64.self) }

    func int<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T? {
        let n = MemoryLayout<T>.size
        guard offset >= 0, offset <= bytes.count - n else { return nil }
        var v: T = 0
        for i in 0..<n { v |= T(bytes[offset + i]) << (8 * i) }
        return v
    }
}

/// Little-endian stores into a byte array (boot_params, start info), bounds already
/// guaranteed by the fixed layouts that use it.
extension Array where Element == UInt8 {
    mutating func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        for i in 0..<MemoryLayout<T>.size { self[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * i)) }
    }
}

@inline(__always) func alignUp(_ v: UInt64, _ a: UInt64) -> UInt64 { a <= 1 ? v : (v + a - 1) / a * a }
@inline(__always) func alignDown(_ v: UInt64, _ a: UInt64) -> UInt64 { a <= 1 ? v : v / a * a }
