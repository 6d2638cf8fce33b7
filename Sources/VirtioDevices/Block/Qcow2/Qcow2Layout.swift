/// Sizes and index arithmetic derived from the header, and the meaning of L1/L2 entries.
struct Qcow2Layout {
    let clusterBits: Int
    let clusterSize: Int
    /// Entries per L2 table (one cluster of u64).
    let l2Entries: Int
    let refcountOrder: Int
    /// Entries per refcount block (one cluster of refcount_bits-wide entries).
    let refcountBlockEntries: Int
    let version: UInt32

    /// Host offset bits of L1, L2 (standard) and refcount table entries (9..55).
    static let offsetMask: UInt64 = 0x00ff_ffff_ffff_fe00
    /// L1/L2 entry: the cluster's refcount is exactly 1 (writable in place).
    static let copied: UInt64 = 1 << 63
    /// L2 entry: a compressed cluster.
    static let compressed: UInt64 = 1 << 62
    /// L2 entry (version 3): the cluster reads as zeros.
    static let zero: UInt64 = 1

    init(header h: Qcow2Header) {
        clusterBits = Int(h.clusterBits)
        clusterSize = 1 << clusterBits
        l2Entries = clusterSize / 8
        refcountOrder = Int(h.refcountOrder)
        refcountBlockEntries = (clusterSize * 8) >> refcountOrder
        version = h.version
    }

    var clusterMask: UInt64 { UInt64(clusterSize - 1) }
    var bytesPerL2: UInt64 { UInt64(clusterSize) * UInt64(l2Entries) }

    func l1Index(_ guestOffset: UInt64) -> Int { Int(guestOffset / bytesPerL2) }
    func l2Index(_ guestOffset: UInt64) -> Int { Int((guestOffset >> UInt64(clusterBits)) & UInt64(l2Entries - 1)) }

    /// What an L2 entry says about its guest cluster.
    enum Mapping: Equatable {
        /// Not in this image: the backing file, or zeros.
        case unallocated
        /// Reads as zeros; `host` is a preallocated cluster that may be reused (or nil).
        case zero(host: UInt64?, copied: Bool)
        case data(host: UInt64, copied: Bool)
        /// `length` bytes of raw deflate at `host` (not cluster aligned).
        case compressed(host: UInt64, length: Int)
    }

    /// Decode an L2 entry; throws a corruption reason for entries that cannot be valid.
    func mapping(ofL2Entry e: UInt64) throws(Qcow2LayoutError) -> Mapping {
        if e & Self.compressed != 0 {
            // Compressed: offset in the low (62 - (cluster_bits - 8)) bits, then the
            // number of additional 512-byte sectors the compressed data spans.
            let shift = UInt64(62 - (clusterBits - 8))
            let host = e & ((1 << shift) - 1)
            let sectors = ((e >> shift) & ((1 << UInt64(clusterBits - 8)) - 1)) + 1
            let length = Int(sectors * 512) - Int(host & 511)
            return .compressed(host: host, length: length)
        }
        let host = e & Self.offsetMask
        let copied = e & Self.copied != 0
        if e & Self.zero != 0 {
            guard version >= 3 else { throw .zeroFlagInVersion2(entry: e) }
            guard host & clusterMask == 0 else { throw .unalignedCluster(entry: e) }
            return .zero(host: host == 0 ? nil : host, copied: copied)
        }
        if host == 0 { return .unallocated }
        guard host & clusterMask == 0 else { throw .unalignedCluster(entry: e) }
        return .data(host: host, copied: copied)
    }

    /// The host clusters compressed data at [host, host+length) touches.
    func clustersSpanned(host: UInt64, length: Int) -> (first: UInt64, count: UInt64) {
        let first = host >> UInt64(clusterBits)
        let last = (host + UInt64(max(length, 1)) - 1) >> UInt64(clusterBits)
        return (first, last - first + 1)
    }
}

enum Qcow2LayoutError: Error, CustomStringConvertible {
    case zeroFlagInVersion2(entry: UInt64)
    case unalignedCluster(entry: UInt64)

    var description: String {
        switch self {
        case .zeroFlagInVersion2(let e): return "L2 entry \(hex(e)) has the zero flag in a version 2 image"
        case .unalignedCluster(let e): return "L2 entry \(hex(e)) points inside a cluster"
        }
    }
}
