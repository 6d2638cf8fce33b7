import Foundation
import XCTest
@testable import VirtioDevices

/// Writes through the BlockBackend API, judged by `qemu-img check` and `qemu-img compare`
/// against a raw image given the same writes.
final class Qcow2WriteTests: XCTestCase {
    func write(_ b: BlockBackend, _ bytes: [UInt8], at offset: Int) throws {
        try bytes.withUnsafeBytes { try b.write(from: $0, at: UInt64(offset)) }
    }

    func read(_ b: BlockBackend, _ offset: Int, _ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { try b.read(into: $0, at: UInt64(offset)) }
        return out
    }

    /// Random writes, write-zeroes and discards on `image`, mirrored in `mirror`. A
    /// discarded range may read as zeros or as before; what it reads is taken as truth.
    func randomWorkload(_ image: BlockBackend, _ mirror: inout [UInt8], seed: UInt64, ops: Int, flushEvery: Int = 16) throws {
        var rng = SplitMix(state: seed)
        let sectors = mirror.count / 512
        for op in 0..<ops {
            let start = rng.below(sectors)
            let count = 1 + rng.below(min(512, sectors - start))
            let (o, n) = (start * 512, count * 512)
            switch rng.below(10) {
            case 0..<7:
                let fill = UInt8(truncatingIfNeeded: rng.next())
                mirror.withUnsafeMutableBytes { m in
                    for s in 0..<count { memset(m.baseAddress! + o + s * 512, Int32(fill &+ UInt8(truncatingIfNeeded: s)), 512) }
                }
                try mirror.withUnsafeBytes { try image.write(from: UnsafeRawBufferPointer(rebasing: $0[o..<o + n]), at: UInt64(o)) }
            case 7, 8:
                try image.writeZeroes(offset: UInt64(o), length: UInt64(n), mayUnmap: rng.below(2) == 0)
                mirror.withUnsafeMutableBytes { _ = memset($0.baseAddress! + o, 0, n) }
            default:
                try image.discard(offset: UInt64(o), length: UInt64(n))
                let after = try read(image, o, n)
                let zeros = [UInt8](repeating: 0, count: 512)
                mirror.withUnsafeMutableBytes { m in
                    after.withUnsafeBytes { a in
                        for s in stride(from: 0, to: n, by: 512) {
                            let same = memcmp(a.baseAddress! + s, m.baseAddress! + o + s, 512) == 0
                            let zero = memcmp(a.baseAddress! + s, zeros, 512) == 0
                            if !same && !zero { XCTFail("discard at \(o): sector \(s / 512) is neither old nor zero") }
                        }
                        memcpy(m.baseAddress! + o, a.baseAddress!, n)
                    }
                }
            }
            if op % flushEvery == flushEvery - 1 { try image.flush() }
        }
    }

    func assertImage(_ path: String, matches mirror: [UInt8], dir: ScratchDirectory, _ what: String) throws {
        let check = try QemuImg.check(path)
        XCTAssertEqual(check.status, 0, "\(what): qemu-img check: \(check.output)")
        XCTAssertTrue(check.output.contains("No errors were found"), "\(what): \(check.output)")
        let raw = dir.file("mirror.raw")
        XCTAssertTrue(FileManager.default.createFile(atPath: raw, contents: Data(mirror)))
        let compare = try QemuImg.run("qemu-img", ["compare", "-f", "qcow2", "-F", "raw", path, raw])
        XCTAssertEqual(compare.status, 0, "\(what): qemu-img compare: \(compare.output)")
        let reopened = try DiskImage.open(path: path, readOnly: true)
        XCTAssertTrue(try readAll(reopened) == mirror, "\(what): reopened image reads back the writes")
    }

    func testRandomWritesZeroesDiscardsAreCleanAndMatchRaw() throws {
        try QemuImg.require()
        let dir = ScratchDirectory()
        // 512-byte clusters over 16 MiB also grow the refcount table (one cluster of it covers 8 MiB).
        for (cs, compat) in [(512, "1.1"), (4096, "0.10"), (65536, "1.1"), (65536, "0.10"), (2 << 20, "1.1"), (2 << 20, "0.10")] {
            let path = dir.file("w-\(cs)-\(compat).qcow2")
            let size = 16 << 20
            try QemuImg.ok("qemu-img", ["create", "-q", "-f", "qcow2", "-o", "cluster_size=\(cs),compat=\(compat)", path, "\(size)"])
            var mirror = [UInt8](repeating: 0, count: size)
            do {
                let image = try DiskImage.open(path: path, readOnly: false)
                try randomWorkload(image, &mirror, seed: UInt64(cs) &+ UInt64(compat.count), ops: 300)
                // Whole megabytes spread over the disk.
                for at in stride(from: 0, to: size, by: 4 << 20) {
                    mirror.withUnsafeMutableBytes { _ = memset($0.baseAddress! + at, Int32(at >> 20) | 0x80, 1 << 20) }
                    try mirror.withUnsafeBytes { try image.write(from: UnsafeRawBufferPointer(rebasing: $0[at..<at + (1 << 20)]), at: UInt64(at)) }
                }
                try image.close()
            }
            try assertImage(path, matches: mirror, dir: dir, "cluster size \(cs), compat \(compat)")
        }
    }

    func testWritesOverCompressedClustersAndBackingChain() throws {
        try QemuImg.require()
        let dir = ScratchDirectory()
        let size = 8 << 20
        let base = dir.file("base.raw"), mid = dir.file("mid.qcow2"), top = dir.file("top.qcow2")
        var bytes = [UInt8](repeating: 0, count: size)
        for i in 0..<size { bytes[i] = UInt8(97 + (i / 3 + i / 4099) % 26) }
        XCTAssertTrue(FileManager.default.createFile(atPath: base, contents: Data(bytes)))
        // mid: the base compressed (qcow2 over raw is then made a chain: mid over base).
        try QemuImg.ok("qemu-img", ["convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4096", base, mid])
        try QemuImg.ok("qemu-img", ["rebase", "-u", "-f", "qcow2", "-b", "base.raw", "-F", "raw", mid])
        try QemuImg.ok("qemu-io", ["-f", "qcow2", "-c", "write -P 0x77 1M 100k", mid])
        try QemuImg.ok("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", "-o", "cluster_size=65536", top])
        try QemuImg.ok("qemu-io", ["-f", "qcow2", "-c", "write -P 0x99 3M 64k", top])
        let baseBefore = FileManager.default.contents(atPath: base)
        var mirror = try QemuImg.contents(top)
        do {
            let image = try DiskImage.open(path: top, readOnly: false)
            XCTAssertNotNil((image as? Qcow2Image)?.backing as? Qcow2Image)
            XCTAssertTrue(try readAll(image) == mirror, "the chain reads as qemu-img reads it")
            try randomWorkload(image, &mirror, seed: 7, ops: 200)
            try image.close()
        }
        try assertImage(top, matches: mirror, dir: dir, "overlay on compressed qcow2 on raw")
        XCTAssertEqual(FileManager.default.contents(atPath: base), baseBefore, "backing files are never written")
        XCTAssertEqual(try QemuImg.check(mid).status, 0)

        // Writing into the compressed image itself replaces compressed clusters.
        var midMirror = try QemuImg.contents(mid)
        do {
            let midImage = try DiskImage.open(path: mid, readOnly: false)
            try randomWorkload(midImage, &midMirror, seed: 8, ops: 150)
            try midImage.close()
        }
        try assertImage(mid, matches: midMirror, dir: dir, "compressed image written")
    }

    func testLazyRefcountsKeepTheDirtyBitWhileOpen() throws {
        try QemuImg.require()
        let dir = ScratchDirectory()
        let path = dir.file("lazy.qcow2")
        try QemuImg.ok("qemu-img", ["create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on", path, "4M"])
        func incompatible() -> UInt8 { FileManager.default.contents(atPath: path)![79] }
        XCTAssertEqual(incompatible() & 1, 0)
        var mirror = [UInt8](repeating: 0, count: 4 << 20)
        do {
            let image = try DiskImage.open(path: path, readOnly: false)
            XCTAssertEqual(incompatible() & 1, 1, "dirty while open")
            try randomWorkload(image, &mirror, seed: 3, ops: 50)
            try image.close()
        }
        XCTAssertEqual(incompatible() & 1, 0, "clean after close")
        try assertImage(path, matches: mirror, dir: dir, "lazy refcounts")
    }

    /// Four threads at once, each on its own quarter of the disk (writes, reads of what it
    /// wrote, discards, flushes): reads run outside the image's lock, so this checks
    /// that they never see another cluster's data and the image stays consistent.
    func testConcurrentThreadsOnDisjointRanges() throws {
        try QemuImg.require()
        let dir = ScratchDirectory()
        let path = dir.file("concurrent.qcow2")
        let size = 16 << 20, quarter = size / 4
        try QemuImg.ok("qemu-img", ["create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", path, "\(size)"])
        var mirror = [UInt8](repeating: 0, count: size)
        let failures = NSLock()
        var problems: [String] = []
        do {
            let image = try DiskImage.open(path: path, readOnly: false)
            let base = mirror.withUnsafeMutableBytes { $0.baseAddress! }
            DispatchQueue.concurrentPerform(iterations: 4) { t in
                var rng = SplitMix(state: UInt64(t) + 100)
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 4096)
                defer { buffer.deallocate() }
                do {
                    for op in 0..<300 {
                        let n = 512 * (1 + rng.below(128))
                        let o = t * quarter + 512 * rng.below((quarter - n) / 512)
                        switch rng.below(8) {
                        case 0..<4:
                            memset(base + o, Int32(truncatingIfNeeded: rng.next()), n)
                            try image.write(from: UnsafeRawBufferPointer(start: base + o, count: n), at: UInt64(o))
                        case 4, 5:
                            try image.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n]), at: UInt64(o))
                            if memcmp(buffer.baseAddress!, base + o, n) != 0 {
                                failures.lock(); problems.append("thread \(t) op \(op): read at \(o) differs"); failures.unlock()
                            }
                        case 6:
                            try image.writeZeroes(offset: UInt64(o), length: UInt64(n), mayUnmap: true)
                            memset(base + o, 0, n)
                        default: try image.flush()
                        }
                    }
                } catch {
                    failures.lock(); problems.append("thread \(t): \(error)"); failures.unlock()
                }
            }
            try image.close()
        }
        XCTAssertEqual(problems, [])
        try assertImage(path, matches: mirror, dir: dir, "four threads")
    }
}
