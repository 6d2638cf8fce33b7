import Foundation
import TestSupport
import XCTest
@testable import VirtioDevices

/// QEMU's image tools (Debian's qemu-utils): images are made and judged by them.
enum QemuImg {
    /// Skip visibly without qemu-img, but fail under CI=true (make deps installs it).
    static func require() throws {
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-img") && FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-io") { return }
        if ProcessInfo.processInfo.environment["CI"] == "true" {
            XCTFail("CI=true but qemu-img/qemu-io (qemu-utils) are missing")
            throw XCTSkip("failed: no qemu-utils")
        }
        print("SKIPPED (qemu-utils not installed)")
        throw XCTSkip("qemu-utils not installed")
    }

    @discardableResult
    static func run(_ tool: String, _ args: [String]) throws -> ToolRun {
        try ToolRun("/usr/bin/" + tool, args)
    }

    /// Run and require exit 0.
    @discardableResult
    static func ok(_ tool: String, _ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let r = try run(tool, args)
        if r.status != 0 { XCTFail("\(tool) \(args.joined(separator: " ")) exited \(r.status): \(r.output)", file: file, line: line) }
        return r.output
    }

    /// `qemu-img check`: 0 clean, 3 leaked clusters only, 2 corruption, 1 not checked.
    static func check(_ path: String) throws -> ToolRun { try run("qemu-img", ["check", path]) }

    /// The image's guest contents as QEMU reads them (`qemu-img convert -O raw`).
    static func contents(_ path: String) throws -> [UInt8] {
        let raw = path + ".converted.raw"
        defer { unlink(raw) }
        try ok("qemu-img", ["convert", "-O", "raw", path, raw])
        return [UInt8](FileManager.default.contents(atPath: raw) ?? Data())
    }
}

/// A scratch directory removed at the end of a test.
final class ScratchDirectory {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "qcow2-test-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
}

/// Everything a backend holds, read through the BlockBackend API.
func readAll(_ b: BlockBackend, chunk: Int = 1 << 20) throws -> [UInt8] {
    var out = [UInt8](repeating: 0xee, count: Int(b.size))
    var at = 0
    while at < out.count {
        let n = min(chunk, out.count - at)
        try out.withUnsafeMutableBytes { try b.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[at..<at + n]), at: UInt64(at)) }
        at += n
    }
    return out
}

/// A small deterministic generator (tests must be reproducible).
struct SplitMix {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
