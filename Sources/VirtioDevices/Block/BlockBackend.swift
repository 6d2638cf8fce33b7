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

/// A raw image in a regular file or a block device. Locked with flock for the life of
/// the backend: exclusive when writable, shared when read-only, so two VMs cannot open
/// one image read-write (nor one read-write while another reads it).
public final class FileBlockBackend: BlockBackend {
    public let path: String
    public let size: UInt64
    public let isReadOnly: Bool
    public let isBlockDevice: Bool
    private let fd: Int32

    public init(path: String, readOnly: Bool) throws {
        let fd = open(path, (readOnly ? O_RDONLY : O_RDWR) | O_CLOEXEC)
        if fd < 0 { throw BlockBackendError.open(path: path, errno: errno) }
        do {
            var st = stat()
            if fstat(fd, &st) != 0 { throw BlockBackendError.stat(path: path, errno: errno) }
            let type = st.st_mode & S_IFMT
            var size: UInt64 = 0
            if type == S_IFBLK {
                let r = ckvm_blkgetsize64(fd, &size)
                if r < 0 { throw BlockBackendError.stat(path: path, errno: -r) }
            } else if type == S_IFREG {
                size = UInt64(st.st_size)
            } else {
                throw BlockBackendError.notAFileOrBlockDevice(path: path)
            }
            if size % 512 != 0 { throw BlockBackendError.sizeNotMultipleOf512(path: path, size: size) }
            let r = ckvm_flock(fd, (readOnly ? LOCK_SH : LOCK_EX) | LOCK_NB)
            if r == -EWOULDBLOCK { throw BlockBackendError.inUse(path: path) }
            if r < 0 { throw BlockBackendError.lock(path: path, errno: -r) }
            self.size = size
            self.isBlockDevice = type == S_IFBLK
        } catch {
            close(fd)
            throw error
        }
        self.fd = fd
        self.path = path
        self.isReadOnly = readOnly
    }

    deinit { close(fd) }

    /// Give the image lock up (live migration hands the disk to the destination process)
    /// and take it back (the destination failed: the source carries on).
    public func unlock() { _ = ckvm_flock(fd, LOCK_UN) }

    public func relock() throws {
        let r = ckvm_flock(fd, (isReadOnly ? LOCK_SH : LOCK_EX) | LOCK_NB)
        if r == -EWOULDBLOCK { throw BlockBackendError.inUse(path: path) }
        if r < 0 { throw BlockBackendError.lock(path: path, errno: -r) }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw BlockBackendError.io(operation: "read", path: path, offset: offset + UInt64(done), errno: errno)
            }
            if n == 0 { throw BlockBackendError.unexpectedEnd(path: path, offset: offset + UInt64(done)) }
            done += n
        }
    }

    public func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        var done = 0
        while done < buffer.count {
            let n = pwrite(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw BlockBackendError.io(operation: "write", path: path, offset: offset + UInt64(done), errno: errno)
            }
            done += n
        }
    }

    public func flush() throws {
        while fdatasync(fd) != 0 {
            if errno != EINTR { throw BlockBackendError.io(operation: "fdatasync", path: path, offset: 0, errno: errno) }
        }
    }

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
