import Foundation
import XCTest
@testable import VirtioDevices

/// A process writing to a qcow2 image is SIGKILLed at random moments, 50 times:
/// `qemu-img check` must never find corruption (leaks are allowed), and every sector
/// holds what it held at the last completed flush, or what a later operation put there.
final class Qcow2CrashTests: XCTestCase {
    static let size = 4 << 20
    static let sectors = size / 512

    /// One operation of the workload; the same seed gives the same list in both processes.
    enum Op { case write(start: Int, count: Int, tag: UInt32), zero(start: Int, count: Int), discard(start: Int, count: Int), flush }

    static func operations(seed: UInt64, count: Int) -> [Op] {
        var rng = SplitMix(state: seed)
        return (0..<count).map { i in
            if i % 8 == 7 { return .flush }
            let start = rng.below(sectors), n = 1 + rng.below(min(256, sectors - start))
            switch rng.below(10) {
            case 0..<7: return .write(start: start, count: n, tag: UInt32(i + 1))
            case 7, 8: return .zero(start: start, count: n)
            default: return .discard(start: start, count: n)
            }
        }
    }

    /// Sector `s` written by the op tagged `tag`: the tag and sector number, repeated.
    static func fill(_ p: UnsafeMutableRawPointer, tag: UInt32, sector s: Int) {
        for w in 0..<64 {
            p.storeBytes(of: tag, toByteOffset: w * 8, as: UInt32.self)
            p.storeBytes(of: UInt32(s), toByteOffset: w * 8 + 4, as: UInt32.self)
        }
    }

    /// The child: run the ops, reporting each completed op index on `fd` (flushes too).
    static func runChild(path: String, ops: [Op], fd: Int32) -> Never {
        guard let image = try? DiskImage.open(path: path, readOnly: false) else { _exit(3) }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 256 * 512, alignment: 4096)
        for (i, op) in ops.enumerated() {
            do {
                switch op {
                case .write(let start, let n, let tag):
                    for k in 0..<n { fill(buffer + k * 512, tag: tag, sector: start + k) }
                    try image.write(from: UnsafeRawBufferPointer(start: buffer, count: n * 512), at: UInt64(start * 512))
                case .zero(let start, let n): try image.writeZeroes(offset: UInt64(start * 512), length: UInt64(n * 512), mayUnmap: start % 2 == 0)
                case .discard(let start, let n): try image.discard(offset: UInt64(start * 512), length: UInt64(n * 512))
                case .flush: try image.flush()
                }
            } catch { _exit(4) }
            var index = UInt32(i)
            _ = write(fd, &index, 4)
        }
        _exit(0)
    }

    func testSIGKILLAtRandomPointsNeverCorrupts() throws {
        try QemuImg.require()
        let dir = ScratchDirectory()
        var rng = SplitMix(state: 2026)
        var leaks = 0, totalOps = 0
        for iteration in 0..<50 {
            let cs = [512, 4096, 65536][iteration % 3]
            let compat = iteration % 2 == 0 ? "1.1" : "0.10"
            let path = dir.file("crash\(iteration).qcow2")
            try QemuImg.ok("qemu-img", ["create", "-q", "-f", "qcow2", "-o", "cluster_size=\(cs),compat=\(compat)", path, "\(Self.size)"])
            let ops = Self.operations(seed: UInt64(iteration) &* 7919, count: 100_000)
            var fds: [Int32] = [0, 0]
            XCTAssertEqual(pipe(&fds), 0)
            let pid = fork()
            if pid == 0 {
                close(fds[0])
                Self.runChild(path: path, ops: ops, fd: fds[1])
            }
            close(fds[1])
            usleep(useconds_t(20_000 + rng.below(400_000)))
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            var reported = [UInt8]()
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(fds[0], &chunk, chunk.count)
                if n <= 0 { break }
                reported += chunk[0..<n]
            }
            close(fds[0])
            XCTAssertEqual(status & 0x7f, SIGKILL, "iteration \(iteration): the child was killed, not finished (status \(status))")
            let completed = reported.count / 4
            totalOps += completed

            let check = try QemuImg.check(path)
            XCTAssertTrue(check.status == 0 || check.status == 3, "iteration \(iteration) (\(cs), \(compat)): qemu-img check: \(check.output)")
            if check.status == 3 { leaks += 1 }

            // The last flush that completed, and the ops that may have run after it.
            let lastFlush = (0..<completed).last { if case .flush = ops[$0] { return true } else { return false } } ?? -1
            var durable = [Int64](repeating: 0, count: Self.sectors)  // tag, 0 zeros, -1 anything (discarded)
            var later = [Set<Int64>](repeating: [], count: Self.sectors)
            for i in 0..<min(completed + 1, ops.count) {
                let into: (Int, Int64) -> Void = i <= lastFlush ? { durable[$0] = $1 } : { later[$0].insert($1) }
                switch ops[i] {
                case .write(let start, let n, let tag): for s in start..<start + n { into(s, Int64(tag)) }
                case .zero(let start, let n): for s in start..<start + n { into(s, 0) }
                case .discard(let start, let n): for s in start..<start + n { into(s, -1) }
                case .flush: break
                }
            }
            let contents = try readAll(try DiskImage.open(path: path, readOnly: true))
            var bad = 0
            let zero = [UInt8](repeating: 0, count: 512)
            let expected = UnsafeMutableRawPointer.allocate(byteCount: 512, alignment: 8)
            defer { expected.deallocate() }
            contents.withUnsafeBytes { c in
                for s in 0..<Self.sectors {
                    let p = c.baseAddress! + s * 512
                    let tag = p.loadUnaligned(as: UInt32.self)
                    var found: Int64 = -2  // neither zeros nor a whole sector of one write
                    if memcmp(p, zero, 512) == 0 { found = 0 } else {
                        Self.fill(expected, tag: tag, sector: s)
                        if memcmp(expected, p, 512) == 0 { found = Int64(tag) }
                    }
                    if found == durable[s] || later[s].contains(found) { continue }
                    if found != -2 && (durable[s] == -1 || later[s].contains(-1)) { continue }
                    bad += 1
                }
            }
            XCTAssertEqual(bad, 0, "iteration \(iteration) (\(cs), \(compat)): \(bad) sectors lost flushed data (\(completed) ops done, last flush at \(lastFlush))")
            unlink(path)
        }
        print("crash test: 50 kills, \(totalOps) operations completed in all, \(leaks) images with leaked clusters, no corruption")
        XCTAssertGreaterThan(totalOps, 50 * 8, "the children got past their first flushes")
    }
}
