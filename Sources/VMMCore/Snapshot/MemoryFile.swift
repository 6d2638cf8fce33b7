import Glibc
import KVMKit

/// A snapshot's memory file: guest RAM, region after region, then one 4 KiB trailer page
/// that names the snapshot it belongs to:
///
///     magic "SWVMMEM1" | token u64 | RAM bytes u64 | zeros
///
/// The state file records the same token, so a state file is never paired with the
/// memory of another snapshot (a copy mix-up, or a crash between the two renames).
/// Files are written to a temporary name, fsynced and renamed, so a crash or kill while
/// writing leaves the previous snapshot as it was; the memory file is renamed first and
/// its previous version kept as `<path>.prev` until the new state file is in place.
enum MemoryFile {
    static let trailerSize: UInt64 = 4096
    static let magic = Array("SWVMMEM1".utf8)

    /// Write a full memory file (every page) under a temporary name; returns it. Pages
    /// that are all zero (most of a fresh guest) are left as holes: the file is sparse.
    static func writeFull(_ memory: GuestMemory, to path: String, token: UInt64) throws -> String {
        let tmp = temporaryName(path)
        let fd = try create(tmp)
        defer { close(fd) }
        if ftruncate(fd, off_t(memory.totalSize + trailerSize)) != 0 { throw SnapshotError.io("size \(tmp)", errno) }
        var offset: UInt64 = 0
        for r in memory.regions {
            try writeNonZero(fd, UnsafeRawBufferPointer(start: r.host, count: Int(r.size)), at: offset, path: tmp)
            offset += r.size
        }
        try finish(fd, ramBytes: offset, token: token, path: tmp)
        return tmp
    }

    /// Write a memory file that is `base` (the previous snapshot's) with the `dirty`
    /// pages taken from guest RAM; returns its temporary name.
    static func writeDiff(_ memory: GuestMemory, base: String, dirty: DirtyPages, to path: String, token: UInt64) throws -> String {
        let tmp = temporaryName(path)
        let fd = try create(tmp)
        defer { close(fd) }
        let src = open(base, O_RDONLY | O_CLOEXEC)
        if src < 0 { throw SnapshotError.io("open the base memory file \(base)", errno) }
        defer { close(src) }
        let ram = memory.totalSize
        if ftruncate(fd, off_t(ram + trailerSize)) != 0 { throw SnapshotError.io("size \(tmp)", errno) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var offset: UInt64 = 0
        while offset < ram {
            let n = try buffer.withUnsafeMutableBytes { b -> Int in
                let r = pread(src, b.baseAddress, Int(min(UInt64(b.count), ram - offset)), off_t(offset))
                if r <= 0 { throw SnapshotError.io("read the base memory file \(base)", r == 0 ? EIO : errno) }
                try writeNonZero(fd, UnsafeRawBufferPointer(rebasing: b[0..<r]), at: offset, path: tmp)
                return r
            }
            offset += UInt64(n)
        }
        var regionStart: [UInt64] = []
        var cursor: UInt64 = 0
        for r in memory.regions { regionStart.append(cursor); cursor += r.size }
        try dirty.forEachPage { region, page in
            let r = memory.regions[region]
            let start = page * GuestMemory.pageSize
            let length = min(GuestMemory.pageSize, r.size - start)
            try writeAll(fd, UnsafeRawBufferPointer(start: r.host + Int(start), count: Int(length)),
                         at: regionStart[region] + start, path: tmp)
        }
        try finish(fd, ramBytes: ram, token: token, path: tmp)
        return tmp
    }

    /// The token in `path`'s trailer, checking its magic and RAM size.
    static func token(of path: String, ramBytes: UInt64) throws -> UInt64 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SnapshotError.io("open the memory file \(path)", errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, UInt64(st.st_size) == ramBytes + trailerSize else {
            throw SnapshotError.memoryFile(path, "is \(st.st_size) bytes, expected \(ramBytes + trailerSize) for \(ramBytes >> 20) MiB of RAM")
        }
        var trailer = [UInt8](repeating: 0, count: 24)
        let n = trailer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 24, off_t(ramBytes)) }
        guard n == 24, Array(trailer.prefix(8)) == magic else { throw SnapshotError.memoryFile(path, "has no swiftvmm memory trailer") }
        var r = StateReader(Array(trailer[8...]), context: "memory file trailer")
        let token = try r.read(UInt64.self), size = try r.read(UInt64.self)
        guard size == ramBytes else { throw SnapshotError.memoryFile(path, "holds \(size) bytes of RAM, expected \(ramBytes)") }
        return token
    }

    /// Move the new memory file in place, keeping the old one as `.prev`.
    static func install(_ tmp: String, at path: String) throws {
        unlink(path + ".prev")
        if link(path, path + ".prev") != 0 && errno != ENOENT { throw SnapshotError.io("keep \(path) as \(path).prev", errno) }
        if rename(tmp, path) != 0 { throw SnapshotError.io("rename \(tmp) to \(path)", errno) }
        syncDirectory(of: path)
    }

    static func temporaryName(_ path: String) -> String { "\(path).tmp-\(getpid())" }

    static func create(_ path: String) throws -> Int32 {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        if fd < 0 { throw SnapshotError.io("create \(path)", errno) }
        return fd
    }

    /// Write the pages of `bytes` that are not all zero (the file was sized first, so the
    /// rest reads as zeros), coalescing runs into one write each.
    static func writeNonZero(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: UInt64, path: String) throws {
        let page = Int(GuestMemory.pageSize)
        var runStart: Int?
        var i = 0
        while i < bytes.count {
            let n = min(page, bytes.count - i)
            let zero = isZero(UnsafeRawBufferPointer(rebasing: bytes[i..<i + n]))
            if !zero && runStart == nil { runStart = i }
            if zero, let s = runStart {
                try writeAll(fd, UnsafeRawBufferPointer(rebasing: bytes[s..<i]), at: offset + UInt64(s), path: path)
                runStart = nil
            }
            i += n
        }
        if let s = runStart { try writeAll(fd, UnsafeRawBufferPointer(rebasing: bytes[s...]), at: offset + UInt64(s), path: path) }
    }

    /// Whether `bytes` (at most a page) are all zero.
    static func isZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.isEmpty || memcmp(bytes.baseAddress!, zeroPage, min(bytes.count, Int(GuestMemory.pageSize))) == 0
    }

    private static let zeroPage = UnsafeMutableRawPointer.allocate(byteCount: 4096, alignment: 4096).initializeMemory(
        as: UInt8.self, repeating: 0, count: 4096)

    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at offset: UInt64, path: String) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(offset + UInt64(done)))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { throw SnapshotError.io("write \(path)", n == 0 ? ENOSPC : errno) }
            done += n
        }
    }

    private static func finish(_ fd: Int32, ramBytes: UInt64, token: UInt64, path: String) throws {
        var w = StateWriter()
        w.write(token)
        w.write(ramBytes)
        var trailer = magic + w.bytes
        trailer += [UInt8](repeating: 0, count: Int(trailerSize) - trailer.count)
        try trailer.withUnsafeBytes { try writeAll(fd, $0, at: ramBytes, path: path) }
        if fsync(fd) != 0 { throw SnapshotError.io("fsync \(path)", errno) }
    }

    static func syncDirectory(of path: String) {
        let dir = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let fd = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { _ = fsync(fd); close(fd) }
    }
}

/// Why a snapshot could not be created or loaded. One line each.
public enum SnapshotError: Error, Equatable, CustomStringConvertible {
    case io(String, Int32)
    case memoryFile(String, String)
    case mismatchedFiles(state: String, memory: String)
    case noBaseForDiff

    public var description: String {
        switch self {
        case let .io(what, e): return "cannot \(what): \(errnoText(e))"
        case let .memoryFile(path, why): return "memory file \(path) \(why)"
        case let .mismatchedFiles(state, memory):
            return "memory file \(memory) does not belong to state file \(state) (another snapshot's, or one interrupted while being written)"
        case .noBaseForDiff: return "a Diff snapshot needs a Full snapshot of this VM first"
        }
    }
}
