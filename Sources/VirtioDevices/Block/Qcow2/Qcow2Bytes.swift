/// Big-endian field access for qcow2 metadata (every qcow2 integer is big-endian).
/// Callers check bounds: these index the array directly.
enum Qcow2Bytes {
    @inline(__always)
    static func load<T: FixedWidthInteger>(_: T.Type, _ bytes: [UInt8], _ at: Int) -> T {
        var v: T = 0
        for i in 0..<MemoryLayout<T>.size { v = v << 8 | T(bytes[at + i]) }
        return v
    }

    @inline(__always)
    static func store<T: FixedWidthInteger>(_ v: T, _ bytes: inout [UInt8], _ at: Int) {
        let n = MemoryLayout<T>.size
        for i in 0..<n { bytes[at + i] = UInt8(truncatingIfNeeded: v >> (8 * (n - 1 - i))) }
    }

    static func encode<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: MemoryLayout<T>.size)
        store(v, &b, 0)
        return b
    }
}
