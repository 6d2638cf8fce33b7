import CKVM

/// Guest reads, writes, write-zeroes and discard, cluster by cluster.
extension Qcow2Image {
    enum ZeroMode { case discard, zeroUnmap, zeroKeep }

    /// Calls `body(guestOffset, offsetInBuffer, count)` for each piece of [offset,
    /// offset+length) that stays inside one cluster.
    func forEachCluster(_ offset: UInt64, _ length: Int, _ body: (UInt64, Int, Int) throws -> Void) rethrows {
        var done = 0
        while done < length {
            let g = offset + UInt64(done)
            let n = min(length - done, layout.clusterSize - Int(g & layout.clusterMask))
            try body(g, done, n)
            done += n
        }
    }

    /// Read under the lock; data-cluster runs are only collected in `dataRuns` (buffer
    /// range, host offset) for the caller to read after releasing it.
    func readLocked(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64,
                    dataRuns: inout [(range: Range<Int>, host: UInt64)]) throws {
        var done = 0
        while done < buffer.count {
            let g = offset + UInt64(done)
            let inCluster = Int(g & layout.clusterMask)
            var n = min(buffer.count - done, layout.clusterSize - inCluster)
            let m = try mapping(at: g)
            // Contiguous data clusters become one read.
            if case .data(let host, _) = m {
                while done + n < buffer.count, case .data(let next, _) = try mapping(at: g + UInt64(n)),
                      next == host + UInt64(inCluster + n) {
                    n += min(buffer.count - done - n, layout.clusterSize)
                }
            }
            if case .data(let host, _) = m {
                dataRuns.append((done..<done + n, host + UInt64(inCluster)))
            } else {
                try readPiece(UnsafeMutableRawBufferPointer(rebasing: buffer[done..<done + n]), guest: g, mapping: m)
            }
            done += n
        }
    }

    /// Read bytes of one cluster (or a run of contiguous data clusters) given its mapping.
    func readPiece(_ piece: UnsafeMutableRawBufferPointer, guest g: UInt64, mapping m: Qcow2Layout.Mapping) throws {
        let inCluster = Int(g & layout.clusterMask)
        switch m {
        case .unallocated: try readBacking(piece, at: g)
        case .zero: piece.initializeMemory(as: UInt8.self, repeating: 0)
        case .data(let host, _): try storage.read(into: piece, at: host + UInt64(inCluster))
        case .compressed(let host, let length):
            let bytes = try inflate(host: host, length: length)
            bytes.withUnsafeBytes { piece.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[inCluster..<inCluster + piece.count])) }
        }
    }

    /// Unallocated clusters read from the backing image; past its end (or without one), zeros.
    func readBacking(_ piece: UnsafeMutableRawBufferPointer, at g: UInt64) throws {
        var have = 0
        if let backing, g < backing.size {
            have = Int(min(UInt64(piece.count), backing.size - g))
            try backing.read(into: UnsafeMutableRawBufferPointer(rebasing: piece[0..<have]), at: g)
        }
        if have < piece.count { UnsafeMutableRawBufferPointer(rebasing: piece[have...]).initializeMemory(as: UInt8.self, repeating: 0) }
    }

    /// The cluster a compressed entry describes, inflated (the last one is cached).
    func inflate(host: UInt64, length: Int) throws -> [UInt8] {
        if let c = inflated, c.host == host { return c.bytes }
        guard host < storage.length else { throw corrupt("compressed cluster at \(hex(host)) is past the end of the file") }
        // The entry's length is rounded up to sectors; the file may end before that.
        let count = Int(min(UInt64(length), storage.length - host))
        let input = try Self.readBytes(storage, at: host, count: count)
        var output = [UInt8](repeating: 0, count: layout.clusterSize)
        let produced = input.withUnsafeBytes { i in
            output.withUnsafeMutableBytes { o in ckvm_inflate_raw(i.baseAddress, i.count, o.baseAddress, o.count) }
        }
        guard produced == layout.clusterSize else { throw Qcow2Error.decompression(path: path, offset: host) }
        inflated = (host, output)
        return output
    }

    /// Write under the lock; pieces that go in place into clusters we own alone are only
    /// collected in `inPlace` (buffer range, host offset) for the caller to write after
    /// releasing it. Everything that allocates or changes metadata happens here.
    func writeLocked(_ buffer: UnsafeRawBufferPointer, at offset: UInt64,
                     inPlace: inout [(range: Range<Int>, host: UInt64)]) throws {
        try forEachCluster(offset, buffer.count) { g, at, n in
            if case .data(let host, true) = try mapping(at: g) {
                let to = host + (g & layout.clusterMask)
                if let last = inPlace.last, last.range.upperBound == at, last.host + UInt64(last.range.count) == to {
                    inPlace[inPlace.count - 1].range = last.range.lowerBound..<at + n
                } else {
                    inPlace.append((at..<at + n, to))
                }
            } else {
                try writeCluster(UnsafeRawBufferPointer(rebasing: buffer[at..<at + n]), at: g)
            }
        }
        if pendingFrees.count > Self.pendingFreeLimit { try commitMetadata() }
    }

    /// Write `data` (nil: zeros) inside the cluster of guest offset `g`. In place when the
    /// cluster is ours alone; otherwise into a new cluster filled from the old contents
    /// (backing, compressed, zeros), then the L2 entry, then the old cluster freed.
    func writeCluster(_ data: UnsafeRawBufferPointer?, at g: UInt64, count: Int? = nil) throws {
        let n = data?.count ?? count ?? 0
        let inCluster = Int(g & layout.clusterMask)
        let cs = layout.clusterSize
        let m = try mapping(at: g)
        if case .data(let host, true) = m {
            try writeBytes(data, n, at: host + UInt64(inCluster))
            return
        }
        var reuse: UInt64?
        if case .zero(let host?, true) = m { reuse = host }
        let whole = inCluster == 0 && n == cs
        let oldIsZero: Bool
        switch m {
        case .zero: oldIsZero = true
        case .unallocated: oldIsZero = backing.map { g >= $0.size } ?? true
        default: oldIsZero = false
        }
        let fresh: Bool
        let host: UInt64
        if let reuse { host = reuse; fresh = false } else {
            host = try allocateCluster()
            fresh = host >= storage.length
        }
        if whole || (fresh && oldIsZero) {
            try writeBytes(data, n, at: host + UInt64(inCluster))
            if storage.length < host + UInt64(cs) { try storage.setLength(host + UInt64(cs)) }
        } else {
            var cluster = [UInt8](repeating: 0, count: cs)
            let base = g & ~layout.clusterMask
            if !oldIsZero { try cluster.withUnsafeMutableBytes { try readPiece($0, guest: base, mapping: m) } }
            cluster.withUnsafeMutableBytes { c in
                if let data { UnsafeMutableRawBufferPointer(rebasing: c[inCluster..<inCluster + n]).copyMemory(from: data) }
                else { UnsafeMutableRawBufferPointer(rebasing: c[inCluster..<inCluster + n]).initializeMemory(as: UInt8.self, repeating: 0) }
            }
            try cluster.withUnsafeBytes { try storage.write(from: $0, at: host) }
        }
        try setL2Entry(at: g, host | Qcow2Layout.copied)
        if reuse == nil { release(m) }
    }

    private func writeBytes(_ data: UnsafeRawBufferPointer?, _ n: Int, at offset: UInt64) throws {
        if let data { return try storage.write(from: data, at: offset) }
        let zeros = [UInt8](repeating: 0, count: n)
        try zeros.withUnsafeBytes { try storage.write(from: $0, at: offset) }
    }

    /// Queue the host clusters behind a mapping that is no longer referenced.
    func release(_ m: Qcow2Layout.Mapping) {
        switch m {
        case .data(let host, _), .zero(let host?, _): pendingFrees.append(host >> UInt64(layout.clusterBits))
        case .compressed(let host, let length):
            let span = layout.clustersSpanned(host: host, length: length)
            for c in span.first..<(span.first + span.count) { pendingFrees.append(c) }
        case .zero(nil, _), .unallocated: break
        }
    }

    /// Discard and write-zeroes. Whole clusters change their L2 entry (version 3: the
    /// zero flag; version 2 without a backing file: unallocated); partial clusters are
    /// written with zeros (write-zeroes) or left alone (discard, a hint).
    func zeroLocked(offset: UInt64, length: UInt64, mode: ZeroMode) throws {
        guard length > 0 else { return }
        var g = offset
        let end = offset + length
        while g < end {
            let inCluster = g & layout.clusterMask
            let n = min(end - g, UInt64(layout.clusterSize) - inCluster)
            let m = try mapping(at: g)
            let readsZero: Bool
            switch m {
            case .zero: readsZero = true
            case .unallocated: readsZero = backing.map { g >= $0.size } ?? true
            default: readsZero = false
            }
            if n == UInt64(layout.clusterSize) {
                try zeroWholeCluster(at: g, mapping: m, readsZero: readsZero, mode: mode)
            } else if mode != .discard && !readsZero {
                try writeCluster(nil, at: g, count: Int(n))
            }
            g += n
        }
        if pendingFrees.count > Self.pendingFreeLimit { try commitMetadata() }
    }

    private func zeroWholeCluster(at g: UInt64, mapping m: Qcow2Layout.Mapping, readsZero: Bool, mode: ZeroMode) throws {
        if layout.version >= 3 {
            if mode == .zeroKeep, case .data(let host, true) = m {
                return try setL2Entry(at: g, host | Qcow2Layout.copied | Qcow2Layout.zero)
            }
            if mode == .zeroKeep, case .zero(_?, true) = m { return }
            if m == .unallocated && backing == nil { return }
            if case .zero(nil, _) = m, mode != .discard || backing != nil { return }
            // Discard without a backing file leaves the cluster unallocated (reads zeros).
            try setL2Entry(at: g, mode == .discard && backing == nil ? 0 : Qcow2Layout.zero)
            release(m)
        } else if backing == nil {
            if m == .unallocated { return }
            try setL2Entry(at: g, 0)
            release(m)
        } else if mode != .discard && !readsZero {
            try writeCluster(nil, at: g, count: layout.clusterSize)
        }
    }
}
