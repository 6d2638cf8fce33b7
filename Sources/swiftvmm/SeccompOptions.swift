import Glibc
import KVMKit

/// `--no-seccomp` / `--seccomp-filter FILE` / the built-in filters (the default), on
/// `swiftvmm run` and on Firecracker's command line.
struct SeccompOptions {
    var noSeccomp: Bool
    var filterPath: String?

    func policy() throws -> SeccompPolicy {
        if noSeccomp {
            guard filterPath == nil else { throw ValidationError("--no-seccomp and --seccomp-filter exclude each other") }
            return .disabled
        }
        guard let path = filterPath else { return .allowLists }
        return .filters(try SeccompFilterFile.parse(try readSmallFile(path, limit: SeccompFilterFile.maxBytes), path: path))
    }
}

extension RunOptions {
    func seccompPolicy() throws -> SeccompPolicy {
        try SeccompOptions(noSeccomp: noSeccomp, filterPath: seccompFilter).policy()
    }
}

/// A whole file of at most `limit` bytes (a larger one reads as limit + 1 bytes, which the
/// parser refuses by size).
private func readSmallFile(_ path: String, limit: Int) throws(SeccompError) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw .badFilterFile(path: path, problem: "cannot open: \(errnoText(errno))") }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: limit + 1)
    var filled = 0
    while filled < bytes.count {
        let n = bytes[filled...].withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw .badFilterFile(path: path, problem: "cannot read: \(errnoText(errno))")
        }
        if n == 0 { break }
        filled += n
    }
    return Array(bytes[..<filled])
}
