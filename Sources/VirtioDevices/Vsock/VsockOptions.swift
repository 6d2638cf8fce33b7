import Glibc
import KVMKit

/// `--vsock cid=N,uds=PATH` (Firecracker's hybrid vsock): the guest's CID (≥ 3) and the
/// Unix socket the host connects to; guest-initiated connections go to `PATH_<port>`.
public struct VsockOptions: Equatable, Sendable {
    public var cid: UInt64
    public var udsPath: String

    public init(cid: UInt64, udsPath: String) throws(VsockOptionsError) {
        self.cid = cid
        self.udsPath = udsPath
        try validate()
    }

    public init(parsing text: String) throws(VsockOptionsError) {
        var cid: UInt64?, path: String?
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            if part.hasPrefix("cid=") {
                guard let c = UInt64(part.dropFirst(4)) else { throw .syntax(text) }
                cid = c
            } else if part.hasPrefix("uds="), part.count > 4 {
                path = String(part.dropFirst(4))
            } else {
                throw .syntax(text)
            }
        }
        guard let cid, let path else { throw .syntax(text) }
        try self.init(cid: cid, udsPath: path)
    }

    /// CID 0-2 are reserved (hypervisor, local, host) and the top value is VMADDR_CID_ANY;
    /// the path (plus the longest `_<port>` suffix) must fit sun_path, in a directory
    /// that exists.
    func validate() throws(VsockOptionsError) {
        guard cid >= 3, cid < UInt64(UInt32.max) else { throw .reservedCID(cid) }
        let longest = UnixSocketAddress.maxPathBytes - "_4294967295".utf8.count
        guard !udsPath.isEmpty, udsPath.utf8.count <= longest else { throw .pathTooLong(udsPath, max: longest) }
        let dir = udsPath.contains("/") ? String(udsPath[..<udsPath.lastIndex(of: "/")!]) : "."
        var st = stat()
        guard stat(dir.isEmpty ? "/" : dir, &st) == 0, st.st_mode & S_IFMT == S_IFDIR else { throw .noDirectory(udsPath) }
    }
}

public enum VsockOptionsError: Error, Equatable, CustomStringConvertible {
    case syntax(String)
    case reservedCID(UInt64)
    case pathTooLong(String, max: Int)
    case noDirectory(String)

    public var description: String {
        switch self {
        case .syntax(let t): return "--vsock \(t): expected cid=N,uds=PATH"
        case .reservedCID(let c): return "--vsock: cid \(c) is reserved; use 3 to 4294967294"
        case .pathTooLong(let p, let m): return "--vsock: socket path \(p) is longer than \(m) bytes (with _<port> it must fit a Unix socket address)"
        case .noDirectory(let p): return "--vsock: the directory of socket path \(p) does not exist"
        }
    }
}
