import Glibc

/// L1/L2 lookups through the L2 cache, L2 updates, and the ordered write-back of all
/// metadata (the crash-consistency rules are here).
extension Qcow2Image {
    /// What guest offset `g` maps to. Missing L2 tables mean unallocated.
    func mapping(at g: UInt64) throws -> Qcow2Layout.Mapping {
        let i = layout.l1Index(g)
        guard i < l1.count else { throw corrupt("guest offset \(g) is beyond the L1 table") }
        let l2Offset = l1[i] & Qcow2Layout.offsetMask
        if l2Offset == 0 { return .unallocated }
        let slot = try l2Slot(l2Offset)
        let entry = l2Cache.load64(slot, entry: layout.l2Index(g))
        do { return try layout.mapping(ofL2Entry: entry) } catch { throw corrupt(error.description) }
    }

    /// The cache slot of the L2 table at `offset`, read from disk on a miss.
    func l2Slot(_ offset: UInt64) throws -> Int {
        if let s = l2Cache.slot(of: offset) { return s }
        guard offset & layout.clusterMask == 0 else { throw corrupt("L2 table offset \(hex(offset)) is not cluster aligned") }
        let bytes = try readCluster(at: offset, what: "L2 table")
        try makeRoomInL2Cache()
        return l2Cache.insert(offset: offset, bytes: bytes, dirty: false)
    }

    func readCluster(at offset: UInt64, what: String) throws -> [UInt8] {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(layout.clusterSize))
        guard !overflow, end <= storage.length else {
            throw corrupt("\(what) at \(hex(offset)) is past the end of the file")
        }
        return try Self.readBytes(storage, at: offset, count: layout.clusterSize)
    }

    /// Evict the least recently used L2 table, writing it back first if dirty: after
    /// the refcounts of the clusters it may reference are on disk.
    func makeRoomInL2Cache() throws {
        guard l2Cache.isFull else { return }
        let v = l2Cache.victim()
        if l2Cache.slots[v].dirty {
            try writeBackRefcounts()
            try writeL2(v)
        }
        l2Cache.remove(v)
    }

    func writeL2(_ slot: Int) throws {
        let s = l2Cache.slots[slot]
        try s.bytes.withUnsafeBytes { try storage.write(from: $0, at: s.offset) }
        l2Cache.markClean(slot)
    }

    /// Set the L2 entry of guest offset `g`, allocating (zeroed) its L2 table if needed.
    func setL2Entry(at g: UInt64, _ entry: UInt64) throws {
        let i = layout.l1Index(g)
        guard i < l1.count else { throw corrupt("guest offset \(g) is beyond the L1 table") }
        var l2Offset = l1[i] & Qcow2Layout.offsetMask
        if l2Offset == 0 {
            if entry == 0 { return }
            l2Offset = try allocateCluster()
            try makeRoomInL2Cache()
            _ = l2Cache.insert(offset: l2Offset, bytes: [UInt8](repeating: 0, count: layout.clusterSize), dirty: true)
            l1[i] = l2Offset | Qcow2Layout.copied
            dirtyL1.insert(i)
        } else if l1[i] & Qcow2Layout.copied == 0 {
            throw corrupt("L2 table at \(hex(l2Offset)) is shared (no COPIED flag); cannot update it in place")
        }
        let slot = try l2Slot(l2Offset)
        l2Cache.store64(slot, entry: layout.l2Index(g), entry)
    }

    /// Write all metadata back in crash-safe order:
    /// 1. refcount blocks (increments for every newly used cluster), then fdatasync;
    /// 2. L2 tables; 3. fdatasync, then L1 entries (new L2 tables are on disk first);
    /// 4. fdatasync, then apply the frees (no entry on disk references them any more) and
    /// write the refcount blocks they changed.
    /// With lazy refcounts the first sync is skipped: the dirty bit covers stale refcounts.
    func commitMetadata() throws {
        if isReadOnly { return }
        try writeBackRefcounts()
        for s in l2Cache.slots.indices where l2Cache.slots[s].dirty { try writeL2(s) }
        if !dirtyL1.isEmpty {
            try storage.flush()
            for i in dirtyL1.sorted() {
                let bytes = Qcow2Bytes.encode(l1[i])
                try bytes.withUnsafeBytes { try storage.write(from: $0, at: header.l1TableOffset + UInt64(i) * 8) }
            }
            dirtyL1.removeAll()
        }
        if !pendingFrees.isEmpty {
            try storage.flush()
            // A read or write that looked up a cluster before it was dropped may still use it.
            while ioOutsideLock.load(ordering: .acquiring) > 0 { sched_yield() }
            let frees = pendingFrees
            pendingFrees.removeAll()
            for c in frees { try changeRefcount(cluster: c, by: -1) }
            // Lower refcounts may reach disk whenever; written now so a close leaves no leak.
            for s in refcountCache.slots.indices where refcountCache.slots[s].dirty { try writeRefcountBlock(s) }
        }
    }

    /// Write dirty refcount blocks and make them durable (step 1 of a commit; also
    /// before a dirty L2 table leaves the cache).
    func writeBackRefcounts() throws {
        for s in refcountCache.slots.indices where refcountCache.slots[s].dirty { try writeRefcountBlock(s) }
        if refcountsUnsynced {
            if !lazyRefcounts { try storage.flush() }
            refcountsUnsynced = false
        }
    }
}
