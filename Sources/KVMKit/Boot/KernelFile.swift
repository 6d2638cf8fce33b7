import Glibc

/// A kernel file of either kind swiftvmm boots, told apart by its magic bytes.
public enum LinuxKernel {
    case bzImage(BzImage)
    case elf(ELFKernel)

    /// Larger than any kernel; stops a mistaken `--kernel` from reading a disk image.
    public static let maximumFileSize: UInt64 = 512 << 20

    public init(bytes: [UInt8], path: String) throws {
        if ELFKernel.hasMagic(bytes) {
            self = .elf(try ELFKernel(bytes: bytes, path: path))
        } else {
            self = .bzImage(try BzImage(bytes: bytes, path: path))  // "no HdrS magic" if not
        }
    }

    public init(contentsOf path: String) throws {
        let bytes = try readWholeFile(path, limit: Self.maximumFileSize)
        try self.init(bytes: bytes, path: path)
    }

    public var path: String {
        switch self {
        case .bzImage(let k): return k.path
        case .elf(let k): return k.path
        }
    }
}

/// Read a regular file into memory (Glibc only). Errors name the path.
func readWholeFile(_ path: String, limit: UInt64) throws -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw BootError(path: path, .cannotRead(errno: errno)) }
    defer { close(fd) }
    let size = try fileSize(fd, path: path)
    if size > limit { throw BootError(path: path, .badHeader("file is \(mib(size)) MiB, larger than any kernel")) }
    // Uninitialized storage: preadFully fills every byte or throws (then nothing is
    // counted as initialized). Zero-filling first cost a full extra pass over a 14 MB
    // distribution kernel, which is noticeable in the nested test bed's emulated L1.
    return try [UInt8](unsafeUninitializedCapacity: Int(size)) { buffer, initialized in
        try preadFully(fd, into: UnsafeMutableRawBufferPointer(buffer), offset: 0, path: path)
        initialized = buffer.count
    }
}

/// Size of a regular file; a directory or device is refused with EISDIR / EINVAL text.
func fileSize(_ fd: Int32, path: String) throws -> UInt64 {
    var st = stat()
    if fstat(fd, &st) != 0 { throw BootError(path: path, .cannotRead(errno: errno)) }
    if (st.st_mode & S_IFMT) == S_IFDIR { throw BootError(path: path, .cannotRead(errno: EISDIR)) }
    if (st.st_mode & S_IFMT) != S_IFREG { throw BootError(path: path, .cannotRead(errno: EINVAL)) }
    return UInt64(st.st_size)
}

/// pread until `buffer` is full; EOF first is a short read (the file shrank).
func preadFully(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, offset: UInt64, path: String) throws {
    var done = 0
    while done < buffer.count {
        let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
        if n < 0 {
            if errno == EINTR { continue }
            throw BootError(path: path, .cannotRead(errno: errno))
        }
        if n == 0 { throw BootError(path: path, .shortRead(expected: UInt64(buffer.count), got: UInt64(done))) }
        done += n
    }
}
