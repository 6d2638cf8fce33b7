/// A bounded cache of metadata clusters (L2 tables or refcount blocks) keyed by their
/// host offset, least recently used first out. Tables are modified in the cache and
/// written back by the image (`Qcow2Image+Metadata`), which decides the order.
struct Qcow2ClusterCache {
    struct Slot {
        var offset: UInt64
        var bytes: [UInt8]
        var dirty: Bool
        var lastUse: UInt64
    }

    let capacity: Int
    private(set) var slots: [Slot] = []
    private var index: [UInt64: Int] = [:]
    private var clock: UInt64 = 0

    /// At least two tables, else as many as fit in `budgetBytes`.
    init(clusterSize: Int, budgetBytes: Int) {
        capacity = max(2, budgetBytes / clusterSize)
    }

    var isFull: Bool { slots.count >= capacity }
    var hasDirty: Bool { slots.contains { $0.dirty } }

    mutating func slot(of offset: UInt64) -> Int? {
        guard let i = index[offset] else { return nil }
        clock &+= 1
        slots[i].lastUse = clock
        return i
    }

    /// Add a table; the caller made room (`victim()` written back and `remove`d) first.
    mutating func insert(offset: UInt64, bytes: [UInt8], dirty: Bool) -> Int {
        clock &+= 1
        slots.append(Slot(offset: offset, bytes: bytes, dirty: dirty, lastUse: clock))
        index[offset] = slots.count - 1
        return slots.count - 1
    }

    /// The least recently used slot.
    func victim() -> Int {
        var best = 0
        for i in slots.indices where slots[i].lastUse < slots[best].lastUse { best = i }
        return best
    }

    mutating func remove(_ i: Int) {
        index[slots[i].offset] = nil
        let last = slots.count - 1
        if i != last {
            slots[i] = slots[last]
            index[slots[i].offset] = i
        }
        slots.removeLast()
    }

    /// Forget a table whose cluster was freed (its contents no longer matter).
    mutating func drop(offset: UInt64) {
        if let i = index[offset] { remove(i) }
    }

    mutating func markClean(_ i: Int) { slots[i].dirty = false }

    func load64(_ i: Int, entry: Int) -> UInt64 { Qcow2Bytes.load(UInt64.self, slots[i].bytes, entry * 8) }

    mutating func store64(_ i: Int, entry: Int, _ v: UInt64) {
        Qcow2Bytes.store(v, &slots[i].bytes, entry * 8)
        slots[i].dirty = true
    }

    /// Refcount entry `entry` of a refcount block of `1 << order`-bit entries. Sub-byte
    /// entries are packed least significant first, as QEMU does.
    func refcount(_ i: Int, entry: Int, order: Int) -> UInt64 {
        let b = slots[i].bytes
        switch order {
        case 0, 1, 2:
            let bits = 1 << order, perByte = 8 >> order
            return UInt64(b[entry / perByte] >> UInt8(bits * (entry % perByte))) & ((1 << UInt64(bits)) - 1)
        case 3: return UInt64(b[entry])
        case 4: return UInt64(Qcow2Bytes.load(UInt16.self, b, entry * 2))
        case 5: return UInt64(Qcow2Bytes.load(UInt32.self, b, entry * 4))
        default: return Qcow2Bytes.load(UInt64.self, b, entry * 8)
        }
    }

    mutating func setRefcount(_ i: Int, entry: Int, order: Int, _ v: UInt64) {
        slots[i].dirty = true
        switch order {
        case 0, 1, 2:
            let bits = 1 << order, perByte = 8 >> order
            let shift = UInt8(bits * (entry % perByte))
            let mask = UInt8((1 << bits) - 1) << shift
            let old = slots[i].bytes[entry / perByte]
            slots[i].bytes[entry / perByte] = (old & ~mask) | (UInt8(truncatingIfNeeded: v) << shift & mask)
        case 3: slots[i].bytes[entry] = UInt8(truncatingIfNeeded: v)
        case 4: Qcow2Bytes.store(UInt16(truncatingIfNeeded: v), &slots[i].bytes, entry * 2)
        case 5: Qcow2Bytes.store(UInt32(truncatingIfNeeded: v), &slots[i].bytes, entry * 4)
        default: Qcow2Bytes.store(v, &slots[i].bytes, entry * 8)
        }
    }
}
