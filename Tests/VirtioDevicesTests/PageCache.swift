import Foundation
import Glibc
import TestSupport

/// Page-cache state of a whole file from cachestat(2) (Linux 6.5; glibc 2.36 has no
/// wrapper): how the tests see that a flush really wrote the file's dirty pages back.
struct PageCacheState: Equatable {
    var cached: UInt64, dirty: UInt64, writeback: UInt64
}

/// glibc's syscall(2), declared with this call's fixed arguments (it is variadic in C,
/// which Swift cannot call; on x86-64 the fixed-argument call is the same).
@_silgen_name("syscall")
private func syscallCachestat(_ number: Int, _ fd: Int32, _ range: UnsafeRawPointer, _ stat: UnsafeMutableRawPointer,
                              _ flags: UInt32) -> Int

private let sysCachestat = 451  // x86-64

func pageCacheState(of path: String) throws -> PageCacheState {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw NSError(domain: NSPOSIXErrorDomain, code: Int(errno), userInfo: [NSFilePathErrorKey: path]) }
    defer { close(fd) }
    var range: (UInt64, UInt64) = (0, 0)  // offset 0, length 0: to the end of the file
    var stat: (UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0)
    let r = withUnsafePointer(to: &range) { rp in
        withUnsafeMutablePointer(to: &stat) { sp in syscallCachestat(sysCachestat, fd, rp, sp, 0) }
    }
    if r != 0 { throw missingPrerequisite("cachestat(2) failed with errno \(errno) (needs Linux 6.5)") }
    return PageCacheState(cached: stat.0, dirty: stat.1, writeback: stat.2)
}

/// A directory on the file system the build lives on (not a tmpfs, where nothing is ever
/// written back): .build/<config>/test-scratch.
func diskBackedScratchDirectory() throws -> String {
    let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("test-scratch").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}
