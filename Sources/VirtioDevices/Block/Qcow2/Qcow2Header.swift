/// The qcow2 header (docs/interop/qcow2.txt in QEMU): the fixed fields of versions 2
/// and 3, and the header extensions this implementation reads. Parsed from the first
/// cluster of the image and validated before any other metadata is touched.
public struct Qcow2Header: Equatable {
    public static let magic: UInt32 = 0x5146_49fb  // "QFI\xfb"
    /// Bytes the fixed part takes in version 2 (version 3 says in header_length).
    static let version2Length = 72
    static let version3MinimumLength = 104

    /// Incompatible feature bits (byte 72).
    public enum Incompatible {
        public static let dirty: UInt64 = 1 << 0            // refcounts may be stale (lazy refcounts)
        public static let corrupt: UInt64 = 1 << 1          // metadata known to be inconsistent
        public static let externalData: UInt64 = 1 << 2     // guest data in another file
        public static let compressionType: UInt64 = 1 << 3  // compression_type field is not zlib
        public static let extendedL2: UInt64 = 1 << 4       // 128-bit L2 entries with subclusters
        static let known: UInt64 = dirty | corrupt | externalData | compressionType | extendedL2
    }
    /// Compatible feature bit 0: refcounts may be updated lazily (needs the dirty bit).
    public static let lazyRefcounts: UInt64 = 1 << 0

    /// Header extension types (after the fixed header, 8-byte aligned).
    enum Extension {
        static let end: UInt32 = 0
        static let backingFormat: UInt32 = 0xe279_2aca
        static let featureNames: UInt32 = 0x6803_f857
        static let bitmaps: UInt32 = 0x2385_2875
        static let encryption: UInt32 = 0x0537_be77
        static let externalData: UInt32 = 0x4441_5441
    }

    public var version: UInt32
    public var backingFileOffset: UInt64
    public var backingFileSize: UInt32
    public var clusterBits: UInt32
    public var size: UInt64
    public var cryptMethod: UInt32
    public var l1Size: UInt32
    public var l1TableOffset: UInt64
    public var refcountTableOffset: UInt64
    public var refcountTableClusters: UInt32
    public var snapshotCount: UInt32
    public var snapshotsOffset: UInt64
    public var incompatibleFeatures: UInt64 = 0
    public var compatibleFeatures: UInt64 = 0
    public var autoclearFeatures: UInt64 = 0
    public var refcountOrder: UInt32 = 4
    public var headerLength: UInt32 = UInt32(version2Length)
    public var compressionType: UInt8 = 0
    /// The backing file name as stored (relative names are relative to the image's directory).
    public var backingFile: String?
    public var backingFormat: String?
    public var hasEncryptionExtension = false
    public var hasExternalDataExtension = false

    public var clusterSize: Int { 1 << Int(clusterBits) }

    /// Byte offsets of the fields the image updates in place.
    enum Field {
        static let refcountTable = 48      // refcount_table_offset u64, refcount_table_clusters u32
        static let incompatible = 72
        static let autoclear = 88
    }

    /// Parse and validate `bytes`, the image's first bytes (at least its first cluster,
    /// or all of a shorter file). Throws `Qcow2Error` naming `path`.
    public static func parse(_ bytes: [UInt8], path: String) throws -> Qcow2Header {
        func fail(_ reason: String) -> Qcow2Error { .invalidHeader(path: path, reason: reason) }
        guard bytes.count >= 4 else { throw Qcow2Error.tooSmall(path: path) }
        guard Qcow2Bytes.load(UInt32.self, bytes, 0) == magic else { throw Qcow2Error.notQcow2(path: path) }
        guard bytes.count >= version2Length else { throw Qcow2Error.tooSmall(path: path) }
        func u32(_ at: Int) -> UInt32 { Qcow2Bytes.load(UInt32.self, bytes, at) }
        func u64(_ at: Int) -> UInt64 { Qcow2Bytes.load(UInt64.self, bytes, at) }
        var h = Qcow2Header(
            version: u32(4), backingFileOffset: u64(8), backingFileSize: u32(16), clusterBits: u32(20), size: u64(24),
            cryptMethod: u32(32), l1Size: u32(36), l1TableOffset: u64(40), refcountTableOffset: u64(48),
            refcountTableClusters: u32(56), snapshotCount: u32(60), snapshotsOffset: u64(64))
        guard h.version == 2 || h.version == 3 else { throw Qcow2Error.unsupportedVersion(path: path, version: h.version) }
        guard (9...21).contains(h.clusterBits) else { throw fail("cluster_bits \(h.clusterBits) is outside 9...21") }
        let clusterSize = h.clusterSize
        guard bytes.count >= version2Length else { throw Qcow2Error.tooSmall(path: path) }
        if h.version == 3 {
            guard bytes.count >= version3MinimumLength else { throw Qcow2Error.tooSmall(path: path) }
            h.incompatibleFeatures = u64(72)
            h.compatibleFeatures = u64(80)
            h.autoclearFeatures = u64(88)
            h.refcountOrder = u32(96)
            h.headerLength = u32(100)
            guard h.headerLength >= version3MinimumLength, h.headerLength % 8 == 0,
                  Int(h.headerLength) <= min(clusterSize, bytes.count) else {
                throw fail("header_length \(h.headerLength) is invalid for \(clusterSize)-byte clusters")
            }
            if h.headerLength > 104 { h.compressionType = bytes[104] }
        }
        if h.cryptMethod != 0 { throw Qcow2Error.encrypted(path: path) }
        let unknown = h.incompatibleFeatures & ~Incompatible.known
        if unknown != 0 { throw Qcow2Error.unknownIncompatibleFeatures(path: path, bits: unknown) }
        if h.incompatibleFeatures & Incompatible.externalData != 0 { throw Qcow2Error.externalDataFile(path: path) }
        if h.incompatibleFeatures & Incompatible.extendedL2 != 0 {
            throw Qcow2Error.unsupportedFeature(path: path, feature: "extended L2 entries (subclusters)")
        }
        if h.incompatibleFeatures & Incompatible.compressionType != 0 || h.compressionType != 0 {
            guard h.compressionType == 0 else {
                throw Qcow2Error.unsupportedFeature(path: path, feature: "compression type \(h.compressionType) (only zlib)")
            }
        }
        guard h.refcountOrder <= 6 else { throw fail("refcount_order \(h.refcountOrder) is above 6") }
        guard h.size % 512 == 0 else { throw fail("virtual size \(h.size) is not a multiple of 512") }
        // Host offsets are 56-bit in L1/L2/refcount entries: QEMU's limits.
        let maxOffset: UInt64 = 1 << 56
        guard h.size <= maxOffset else { throw fail("virtual size \(h.size) is too large") }
        let cs = UInt64(clusterSize)
        let l2Coverage = cs * (cs / 8)
        let neededL1 = (h.size + l2Coverage - 1) / l2Coverage
        guard UInt64(h.l1Size) >= neededL1 else { throw fail("L1 table of \(h.l1Size) entries cannot cover \(h.size) bytes") }
        guard UInt64(h.l1Size) * 8 <= 32 << 20 else { throw fail("L1 table of \(h.l1Size) entries is larger than 32 MiB") }
        guard h.l1TableOffset % cs == 0, h.l1TableOffset < maxOffset, h.l1Size == 0 || h.l1TableOffset != 0 else {
            throw fail("L1 table offset \(hex(h.l1TableOffset)) is not a cluster boundary")
        }
        guard h.refcountTableOffset % cs == 0, h.refcountTableOffset != 0, h.refcountTableOffset < maxOffset else {
            throw fail("refcount table offset \(hex(h.refcountTableOffset)) is not a cluster boundary")
        }
        guard h.refcountTableClusters > 0, UInt64(h.refcountTableClusters) * cs <= 8 << 20 else {
            throw fail("refcount table of \(h.refcountTableClusters) clusters is empty or larger than 8 MiB")
        }
        try h.parseExtensions(bytes, path: path)
        if h.hasEncryptionExtension { throw Qcow2Error.encrypted(path: path) }
        if h.hasExternalDataExtension { throw Qcow2Error.externalDataFile(path: path) }
        if h.backingFileOffset != 0 {
            let start = h.backingFileOffset, count = UInt64(h.backingFileSize)
            guard count > 0, count <= 1023, start < UInt64(min(clusterSize, bytes.count)),
                  start + count <= UInt64(min(clusterSize, bytes.count)) else {
                throw fail("backing file name at \(start) (\(count) bytes) is outside the first cluster")
            }
            h.backingFile = String(decoding: bytes[Int(start)..<Int(start + count)], as: UTF8.self)
        }
        return h
    }

    /// Walk the header extensions between the fixed header and the end of the first
    /// cluster (or the backing file name, which follows them).
    private mutating func parseExtensions(_ bytes: [UInt8], path: String) throws {
        var at = version == 2 ? Self.version2Length : Int(headerLength)
        at = (at + 7) & ~7
        var limit = min(clusterSize, bytes.count)
        if backingFileOffset != 0 && backingFileOffset < UInt64(limit) { limit = Int(backingFileOffset) }
        while at + 8 <= limit {
            let type = Qcow2Bytes.load(UInt32.self, bytes, at)
            let length = Int(Qcow2Bytes.load(UInt32.self, bytes, at + 4))
            if type == Extension.end { return }
            let dataStart = at + 8
            guard length <= limit - dataStart else {
                throw Qcow2Error.invalidHeader(path: path, reason: "header extension \(hex(type)) of \(length) bytes runs past \(limit)")
            }
            switch type {
            case Extension.backingFormat:
                backingFormat = String(decoding: bytes[dataStart..<dataStart + length], as: UTF8.self)
            case Extension.encryption: hasEncryptionExtension = true
            case Extension.externalData: hasExternalDataExtension = true
            default: break  // feature names, bitmaps (autoclear), unknown: ignored as the spec allows
            }
            at = dataStart + ((length + 7) & ~7)
        }
    }
}
