/// virtio-blk feature bits (virtio 1.2 §5.2.3).
public enum BlockFeature {
    public static let sizeMax: UInt64 = 1 << 1      // size_max is valid
    public static let segMax: UInt64 = 1 << 2       // seg_max is valid
    public static let readOnly: UInt64 = 1 << 5     // the device is read-only
    public static let blockSize: UInt64 = 1 << 6    // blk_size is valid
    public static let flush: UInt64 = 1 << 9        // FLUSH command (writeback cache)
    public static let discard: UInt64 = 1 << 13     // DISCARD command
    public static let writeZeroes: UInt64 = 1 << 14 // WRITE_ZEROES command
}

/// The device's configuration space (struct virtio_blk_config, §5.2.4), little-endian.
struct BlockConfig {
    var capacitySectors: UInt64
    var sizeMax: UInt32
    var segMax: UInt32
    var blockSize: UInt32 = 512
    var maxDiscardSectors: UInt32
    var maxDiscardSegments: UInt32
    var discardSectorAlignment: UInt32
    var maxWriteZeroesSectors: UInt32
    var maxWriteZeroesSegments: UInt32
    var writeZeroesMayUnmap: UInt8 = 1

    /// 0x3c bytes: up to write_zeroes_may_unmap and its padding.
    var bytes: [UInt8] {
        var b = [UInt8](repeating: 0, count: 0x3c)
        func put<T: FixedWidthInteger>(_ v: T, _ at: Int) {
            withUnsafeBytes(of: v.littleEndian) { for (i, x) in $0.enumerated() { b[at + i] = x } }
        }
        put(capacitySectors, 0x00)
        put(sizeMax, 0x08)
        put(segMax, 0x0c)
        // 0x10 geometry, 0x18 topology, 0x20 writeback/num_queues: not offered, zero.
        put(blockSize, 0x14)
        put(maxDiscardSectors, 0x24)
        put(maxDiscardSegments, 0x28)
        put(discardSectorAlignment, 0x2c)
        put(maxWriteZeroesSectors, 0x30)
        put(maxWriteZeroesSegments, 0x34)
        b[0x38] = writeZeroesMayUnmap
        return b
    }
}
