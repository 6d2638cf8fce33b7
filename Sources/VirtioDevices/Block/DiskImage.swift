import Glibc

/// Image formats `--disk` understands.
public enum DiskFormat: String, CaseIterable, Sendable {
    case raw, qcow2
}

/// Opens a disk image as a `BlockBackend`: the format from `--disk …,format=` or else
/// from the header (qcow2 magic; anything else is raw), and a qcow2 image's backing
/// chain (read-only, raw or qcow2), refusing loops and chains deeper than `maxDepth`.
public enum DiskImage {
    public static let maxDepth = 16

    public static func open(path: String, format: DiskFormat? = nil, readOnly: Bool) throws -> BlockBackend {
        try open(path: path, format: format, readOnly: readOnly, chain: [])
    }

    /// The format a file's first bytes say it has.
    public static func detect(_ file: ImageStorage) throws -> DiskFormat {
        guard file.length >= 4 else { return .raw }
        let magic = try Qcow2Image.readBytes(file, at: 0, count: 4)
        return Qcow2Bytes.load(UInt32.self, magic, 0) == Qcow2Header.magic ? .qcow2 : .raw
    }

    private static func open(path: String, format: DiskFormat?, readOnly: Bool,
                             chain: [(device: UInt64, inode: UInt64)]) throws -> BlockBackend {
        let file = try ImageFile(path: path, readOnly: readOnly)
        switch try format ?? detect(file) {
        case .raw:
            return try FileBlockBackend(file: file)
        case .qcow2:
            let header = try Qcow2Image.readHeader(file)
            var backing: BlockBackend?
            if let name = header.backingFile {
                let backingPath = name.hasPrefix("/") ? name : directory(of: path) + name
                let chain = chain + [file.identity]
                guard chain.count < maxDepth else { throw Qcow2Error.backingTooDeep(path: path, limit: maxDepth) }
                var st = stat()
                if stat(backingPath, &st) == 0, chain.contains(where: { $0 == (UInt64(st.st_dev), UInt64(st.st_ino)) }) {
                    throw Qcow2Error.backingLoop(path: path, backing: backingPath)
                }
                var backingFormat: DiskFormat?
                if let f = header.backingFormat {
                    guard let known = DiskFormat(rawValue: f) else { throw Qcow2Error.backingFormat(path: path, format: f) }
                    backingFormat = known
                }
                backing = try open(path: backingPath, format: backingFormat, readOnly: true, chain: chain)
            }
            return try Qcow2Image(storage: file, readOnly: readOnly, backing: backing)
        }
    }

    /// "dir/" of "dir/name", "" of "name" (relative backing names are relative to the image).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return String(path[...slash])
    }
}
