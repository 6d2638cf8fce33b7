import CKVM
import Glibc
import KVMKit

/// Byte storage under a disk image format: a file (`ImageFile`) or, in tests and the
/// fuzzer, memory. Reads past the end throw; writes past the end extend.
public protocol ImageStorage: AnyObject {
    var path: String { get }
    var length: UInt64 { get }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws
    func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws
    /// Make written bytes durable (fdatasync).
    func flush() throws
    /// Grow (or shrink) to `length` bytes; new bytes read as zeros.
    func setLength(_ length: UInt64) throws
}

/// An open image file or block device, locked with flock for its life: exclusive when
/// writable, shared when read-only, so two VMs cannot open one image read-write (nor one
/// read-write while another reads it; backing files are shared).
public final class ImageFile: ImageStorage {
    public let path: String
    public let isReadOnly: Bool
    public let isBlockDevice: Bool
    /// Device and inode, to recognise one file under two names (backing-chain loops).
    public let identity: (device: UInt64, inode: UInt64)
    public private(set) var length: UInt64
    let fd: Int32

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
            try Self.lock(fd, path: path, readOnly: readOnly)
            length = size
            isBlockDevice = type == S_IFBLK
            identity = (UInt64(st.st_dev), UInt64(st.st_ino))
        } catch {
            close(fd)
            throw error
        }
        self.fd = fd
        self.path = path
        self.isReadOnly = readOnly
    }

    deinit { close(fd) }

    private static func lock(_ fd: Int32, path: String, readOnly: Bool) throws {
        let r = ckvm_flock(fd, (readOnly ? LOCK_SH : LOCK_EX) | LOCK_NB)
        if r == -EWOULDBLOCK { throw BlockBackendError.inUse(path: path) }
        if r < 0 { throw BlockBackendError.lock(path: path, errno: -r) }
    }

    /// Give the lock up (live migration hands the image to the destination process) and
    /// take it again (the destination failed: the source carries on).
    public func unlock() { _ = ckvm_flock(fd, LOCK_UN) }
    public func lock() throws { try Self.lock(fd, path: path, readOnly: isReadOnly) }

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
        let end = offset + UInt64(buffer.count)
        if end > length { length = end }
    }

    public func flush() throws {
        while fdatasync(fd) != 0 {
            if errno != EINTR { throw BlockBackendError.io(operation: "fdatasync", path: path, offset: 0, errno: errno) }
        }
    }

    public func setLength(_ newLength: UInt64) throws {
        while ftruncate(fd, off_t(newLength)) != 0 {
            if errno != EINTR { throw BlockBackendError.io(operation: "ftruncate", path: path, offset: newLength, errno: errno) }
        }
        length = newLength
    }
}
