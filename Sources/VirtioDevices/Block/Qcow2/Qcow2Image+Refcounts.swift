/// Refcounts: reading and changing them through the refcount-block cache, finding a
/// free cluster, and growing the refcount structures (new blocks, a larger table).
extension Qcow2Image {
    /// The cache slot of the refcount block covering `cluster`, or nil if the refcount
    /// table has no block there (all its clusters have refcount 0).
    func refcountSlot(cluster: UInt64) throws -> Int? {
        let t = cluster / UInt64(layout.refcountBlockEntries)
        guard t < UInt64(refcountTable.count) else { return nil }
        let offset = refcountTable[Int(t)] & Qcow2Layout.offsetMask
        if offset == 0 { return nil }
        if let s = refcountCache.slot(of: offset) { return s }
        guard offset & layout.clusterMask == 0 else { throw corrupt("refcount block offset \(hex(offset)) is not cluster aligned") }
        let bytes = try readCluster(at: offset, what: "refcount block")
        if refcountCache.isFull {
            let v = refcountCache.victim()
            // Increments may reach disk at any time; decrements are only applied once no
            // reference is left on disk. So a refcount block can be written whenever.
            if refcountCache.slots[v].dirty { try writeRefcountBlock(v) }
            refcountCache.remove(v)
        }
        return refcountCache.insert(offset: offset, bytes: bytes, dirty: false)
    }

    func writeRefcountBlock(_ slot: Int) throws {
        let s = refcountCache.slots[slot]
        try s.bytes.withUnsafeBytes { try storage.write(from: $0, at: s.offset) }
        refcountCache.markClean(slot)
        refcountsUnsynced = true
    }

    func refcount(cluster: UInt64) throws -> UInt64 {
        guard let s = try refcountSlot(cluster: cluster) else { return 0 }
        return refcountCache.refcount(s, entry: Int(cluster % UInt64(layout.refcountBlockEntries)), order: layout.refcountOrder)
    }

    /// Add `delta` (+1 or -1) to a cluster's refcount; over- or underflow is corruption.
    func changeRefcount(cluster: UInt64, by delta: Int) throws {
        guard let s = try refcountSlot(cluster: cluster) else {
            throw corrupt("cluster \(cluster) has no refcount block")
        }
        let e = Int(cluster % UInt64(layout.refcountBlockEntries))
        let old = refcountCache.refcount(s, entry: e, order: layout.refcountOrder)
        let max: UInt64 = layout.refcountOrder == 6 ? .max : (1 << UInt64(1 << layout.refcountOrder)) - 1
        if delta < 0 && old == 0 { throw corrupt("refcount of cluster \(cluster) would go below zero") }
        if delta > 0 && old == max { throw corrupt("refcount of cluster \(cluster) would overflow") }
        let new = delta < 0 ? old - 1 : old + 1
        refcountCache.setRefcount(s, entry: e, order: layout.refcountOrder, new)
        if new == 0 {
            freeHint = min(freeHint, cluster)
            l2Cache.drop(offset: cluster << UInt64(layout.clusterBits))
            if inflated.map({ $0.host >> UInt64(layout.clusterBits) == cluster }) == true { inflated = nil }
        }
    }

    /// Find a cluster with refcount 0, give it refcount 1 and return its host offset.
    /// Clusters past the refcount table's reach get a new refcount block (placed in the
    /// first of them, describing itself) or a larger table first.
    func allocateCluster() throws -> UInt64 {
        let perBlock = UInt64(layout.refcountBlockEntries)
        // Free clusters are found near the end of the file at the latest; refcounts that
        // claim more than that are corrupt (and must not make this loop run for ages).
        let fileClusters = storage.length >> UInt64(layout.clusterBits)
        let limit = min(UInt64(1) << UInt64(56 - layout.clusterBits), fileClusters + Self.allocationSlack)
        var c = freeHint
        while c < limit {
            let t = c / perBlock
            if t >= UInt64(refcountTable.count) {
                try growRefcountTable(from: c)
                continue
            }
            if refcountTable[Int(t)] & Qcow2Layout.offsetMask == 0 {
                try addRefcountBlock(index: Int(t), at: c)
                c += 1
                continue
            }
            if try refcount(cluster: c) == 0 {
                try changeRefcount(cluster: c, by: 1)
                freeHint = c + 1
                return c << UInt64(layout.clusterBits)
            }
            c += 1
        }
        if limit < UInt64(1) << UInt64(56 - layout.clusterBits) {
            throw corrupt("refcounts claim every cluster up to \(limit), past the end of the file")
        }
        throw Qcow2Error.full(path: path)
    }

    /// Clusters past the end of the file the free-cluster search may look at (allocated
    /// metadata not yet written lies there).
    static let allocationSlack: UInt64 = 1 << 16

    /// A new refcount block for table entry `index`, stored in cluster `at` (inside its
    /// own range, so it counts itself): block on disk, synced, then the table entry.
    func addRefcountBlock(index: Int, at cluster: UInt64) throws {
        var block = Qcow2ClusterCache(clusterSize: layout.clusterSize, budgetBytes: 0)
        let s = block.insert(offset: 0, bytes: [UInt8](repeating: 0, count: layout.clusterSize), dirty: false)
        block.setRefcount(s, entry: Int(cluster % UInt64(layout.refcountBlockEntries)), order: layout.refcountOrder, 1)
        let offset = cluster << UInt64(layout.clusterBits)
        try block.slots[s].bytes.withUnsafeBytes { try storage.write(from: $0, at: offset) }
        try storage.flush()
        refcountTable[index] = offset
        try Qcow2Bytes.encode(offset).withUnsafeBytes {
            try storage.write(from: $0, at: header.refcountTableOffset + UInt64(index) * 8)
        }
    }

    /// Replace the refcount table by a larger one, placed with the refcount blocks that
    /// cover it from cluster `start` on (all past the old table's reach, so free):
    /// new blocks and table written and synced, then the header switched and synced,
    /// then the old table's clusters freed.
    func growRefcountTable(from start: UInt64) throws {
        let cs = UInt64(layout.clusterSize), perBlock = UInt64(layout.refcountBlockEntries)
        var entries = UInt64(refcountTable.count) * 2
        var tableClusters: UInt64 = 0, blocks: UInt64 = 0
        while true {
            tableClusters = (entries * 8 + cs - 1) / cs
            entries = tableClusters * cs / 8
            blocks = 0
            while true {
                let needed = (start + tableClusters + blocks - 1) / perBlock - start / perBlock + 1
                if needed == blocks { break }
                blocks = needed
            }
            if (start + tableClusters + blocks - 1) / perBlock < entries { break }
            entries *= 2
        }
        guard tableClusters * cs <= 8 << 20 else { throw Qcow2Error.full(path: path) }
        let firstBlock = start / perBlock
        let used = start..<(start + tableClusters + blocks)
        var newTable = refcountTable + [UInt64](repeating: 0, count: Int(entries) - refcountTable.count)
        for k in 0..<blocks {
            var block = Qcow2ClusterCache(clusterSize: layout.clusterSize, budgetBytes: 0)
            let s = block.insert(offset: 0, bytes: [UInt8](repeating: 0, count: layout.clusterSize), dirty: false)
            let range = (firstBlock + k) * perBlock..<(firstBlock + k + 1) * perBlock
            for c in max(range.lowerBound, used.lowerBound)..<min(range.upperBound, used.upperBound) {
                block.setRefcount(s, entry: Int(c % perBlock), order: layout.refcountOrder, 1)
            }
            let offset = (start + tableClusters + k) * cs
            try block.slots[s].bytes.withUnsafeBytes { try storage.write(from: $0, at: offset) }
            newTable[Int(firstBlock + k)] = offset
        }
        var bytes = [UInt8](repeating: 0, count: Int(tableClusters * cs))
        for (i, e) in newTable.enumerated() { Qcow2Bytes.store(e, &bytes, i * 8) }
        try bytes.withUnsafeBytes { try storage.write(from: $0, at: start * cs) }
        try storage.flush()
        var field = Qcow2Bytes.encode(start * cs)
        field += Qcow2Bytes.encode(UInt32(tableClusters))
        try writeHeaderField(Qcow2Header.Field.refcountTable, field)
        try storage.flush()
        let old = (header.refcountTableOffset / cs, UInt64(header.refcountTableClusters))
        header.refcountTableOffset = start * cs
        header.refcountTableClusters = UInt32(tableClusters)
        refcountTable = newTable
        for c in old.0..<(old.0 + old.1) { try changeRefcount(cluster: c, by: -1) }
    }
}
