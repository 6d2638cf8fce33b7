import CKVM
import Glibc
import KVMKit

/// Where a virtio-blk device keeps its bytes. Offsets and lengths are in bytes and
/// already checked against `size` by the request parser.
public protocol BlockBackend: AnyObject {
    /// Size in bytes, a multiple of 512.
    var size: UInt64 { get }
    var isReadOnly: Bool { get }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws
    func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws
    /// Make completed writes durable (fdatasync).
    func flush() throws
    /// The range's contents no longer matter (a hint; may do nothing).
    func discard(offset: UInt64, length: UInt64) throws
    /// The range must read back as zeros; `mayUnmap` allows deallocating it.
    func writeZeroes(offset: UInt64, length: UInt64, mayUnmap: Bool) throws
    /// Write back cached metadata and mark the image clean (once, at shutdown).
    func close() throws
    /// The image format the bytes are read through (saved in snapshots).
    var format: DiskFormat { get }
    /// Live migration, with the device paused: leave the image as a clean close would
    /// and give its locks up, so the destination process can open it; afterwards this
    /// side writes nothing to it (`close()` does nothing) unless `takeBack()` is called.
    func handOver() throws
    /// The destination failed: lock the image again and carry on (a no-op if it was
    /// never handed over).
    func takeBack() throws
}

extension BlockBackend {
    /// A backend without cached state has nothing to do at close.
    public func close() throws {}
    public var format: DiskFormat { .raw }
    /// A backend without a file (tests, the fuzzer) has nothing to hand over.
    public func handOver() throws {}
    public func takeBack() throws {}
}

public enum BlockBackendError: Error, Equatable, CustomStringConvertible {
    case open(path: String, errno: Int32)
    case stat(path: String, errno: Int32)
    case notAFileOrBlockDevice(path: String)
    case sizeNotMultipleOf512(path: String, size: UInt64)
    case inUse(path: String)
    case lock(path: String, errno: Int32)
    case io(operation: String, path: String, offset: UInt64, errno: Int32)
    case unexpectedEnd(path: String, offset: UInt64)

    public var description: String {
        switch self {
        case .open(let p, let e): return "cannot open disk image \(p): \(errnoText(e))"
        case .stat(let p, let e): return "cannot stat disk image \(p): \(errnoText(e))"
        case .notAFileOrBlockDevice(let p): return "disk image \(p) is neither a regular file nor a block device"
        case .sizeNotMultipleOf512(let p, let s): return "disk image \(p) is \(s) bytes, not a multiple of 512"
        case .inUse(let p): return "disk image \(p) is in use by another process"
        case .lock(let p, let e): return "cannot lock disk image \(p): \(errnoText(e))"
        case .io(let op, let p, let o, let e): return "\(op) of disk image \(p) at byte \(o) failed: \(errnoText(e))"
        case .unexpectedEnd(let p, let o): return "disk image \(p) ended early at byte \(o)"
        }
    }
}

/// A raw image in a regular file or a block device (locked: see `ImageFile`).
public final class FileBlockBackend: BlockBackend {
    public let file: ImageFile
    public let size: UInt64
    public var path: String { file.path }
    public var isReadOnly: Bool { file.isReadOnly }
    public var isBlockDevice: Bool { file.isBlockDevice }
    private var fd: Int32 { file.fd }

    public convenience init(path: String, readOnly: Bool) throws {
        try self.init(file: ImageFile(path: path, readOnly: readOnly))
    }

    public init(file: ImageFile) throws {
        if file.length % 512 != 0 { throw BlockBackendError.sizeNotMultipleOf512(path: file.path, size: file.length) }
        self.file = file
        size = file.length
    }

    /// Written data is on disk already (the migration flushed); only the lock goes.
    public func handOver() throws { file.unlock() }
    public func takeBack() throws { try file.lock() }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        try file.read(into: buffer, at: offset)
    }

    public func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        try file.write(from: buffer, at: offset)
    }

    public func flush() throws { try file.flush() }

    public func discard(offset: UInt64, length: UInt64) throws {
        let r = ckvm_fallocate(fd, CKVM_FALLOC_PUNCH_HOLE | CKVM_FALLOC_KEEP_SIZE, Int64(offset), Int64(length))
        // A discard is a hint: a file system or device without hole punching ignores it.
        if r < 0 && r != -EOPNOTSUPP {
            throw BlockBackendError.io(operation: "discard", path: path, offset: offset, errno: -r)
        }
    }

    /// ZERO_RANGE, else (if allowed, or ZERO_RANGE is unsupported) a punched hole, else
    /// writing zeros — whichever the file system or device supports.
    public func writeZeroes(offset: UInt64, length: UInt64, mayUnmap: Bool) throws {
        let modes = mayUnmap
            ? [CKVM_FALLOC_PUNCH_HOLE | CKVM_FALLOC_KEEP_SIZE, CKVM_FALLOC_ZERO_RANGE | CKVM_FALLOC_KEEP_SIZE]
            : [CKVM_FALLOC_ZERO_RANGE | CKVM_FALLOC_KEEP_SIZE, CKVM_FALLOC_PUNCH_HOLE | CKVM_FALLOC_KEEP_SIZE]
        for mode in modes {
            let r = ckvm_fallocate(fd, mode, Int64(offset), Int64(length))
            if r == 0 { return }
            if r != -EOPNOTSUPP && r != -EINVAL && r != -ENODEV {
                throw BlockBackendError.io(operation: "write-zeroes", path: path, offset: offset, errno: -r)
            }
        }
        let chunk = 64 * 1024
        let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 16)
        defer { zeros.deallocate() }
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
        var done: UInt64 = 0
        while done < length {
            let n = Int(min(UInt64(chunk), length - done))
            try write(from: UnsafeRawBufferPointer(rebasing: zeros[0..<n]), at: offset + done)
            done += UInt64(n)
        }
    }
}
