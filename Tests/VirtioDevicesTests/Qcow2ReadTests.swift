import Foundation
import XCTest
@testable import VirtioDevices

/// qcow2 reads compared with what `qemu-img convert -O raw` makes of the same image.
final class Qcow2ReadTests: XCTestCase {
    static let clusterSizes = (9...21).map { 1 << $0 }

    /// Data, zero clusters (v3) and holes written by qemu-io across cluster boundaries.
    func makeImage(_ path: String, clusterSize: Int, compat: String, size: Int) throws {
        try QemuImg.ok("qemu-img", ["create", "-q", "-f", "qcow2", "-o", "cluster_size=\(clusterSize),compat=\(compat)", path, "\(size)"])
        var cmds = ["write -P 0x11 0 4k", "write -P 0x22 \(clusterSize - 512) 1k", "write -P 0x33 \(size / 2) \(min(size / 4, 3 * clusterSize))",
                    "write -P 0x44 \(size - 4096) 4096"]
        if compat == "1.1" { cmds += ["write -z \(size / 2 + clusterSize) \(clusterSize)", "write -z 0 \(clusterSize)"] }
        for c in cmds { try QemuImg.ok("qemu-io", ["-f", "qcow2", "-c", c, path]) }
    }

    func testEveryClusterSizeBothVersionsReadsAsQemu() throws {
        try QemuImg.require()
        let dir = ScratchDirectory()
        for cs in Self.clusterSizes {
            for compat in ["0.10", "1.1"] {
                let path = dir.file("c\(cs)-\(compat).qcow2")
                let size = max(4 << 20, 4 * cs)
                try makeImage(path, clusterSize: cs, compat: compat, size: size)
                let image = try DiskImage.open(path: path, readOnly: true)
                XCTAssertTrue(image is Qcow2Image, "\(path) detected as qcow2")
                XCTAssertEqual(image.size, UInt64(size))
                let ours = try readAll(image, chunk: 3 * 512 + 65536)
                XCTAssertTrue(ours == (try QemuImg.contents(path)), "cluster size \(cs), compat \(compat): contents differ from qemu-img's")
            }
        }
    }

    func testCompressedClustersReadAsQemu() throws {
        try QemuImg.require()
        let dir = ScratchDirectory()
        for cs in [512, 4096, 65536, 2 << 20] {
            let raw = dir.file("src.raw"), packed = dir.file("packed-\(cs).qcow2")
            // Text-like data (it compresses), a run of one byte, a hole, random-ish bytes.
            var bytes = [UInt8](repeating: 0, count: 4 << 20)
            for i in 0..<(1 << 20) { bytes[i] = UInt8(97 + (i * 7 + i / 977) % 26) }
            for i in (1 << 20)..<(1 << 20) + 300_000 { bytes[i] = 0x5a }
            var rng = SplitMix(state: UInt64(cs))
            for i in (3 << 20)..<(3 << 20) + 100_000 { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
            XCTAssertTrue(FileManager.default.createFile(atPath: raw, contents: Data(bytes)))
            try QemuImg.ok("qemu-img", ["convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=\(cs)", raw, packed])
            let check = try QemuImg.check(packed)
            XCTAssertEqual(check.status, 0)
            XCTAssertTrue(check.output.contains("compressed clusters") && !check.output.contains(" 0.00% compressed"),
                          "the image holds compressed clusters: \(check.output)")
            let image = try DiskImage.open(path: packed, readOnly: true)
            XCTAssertTrue(try readAll(image) == bytes, "compressed, cluster size \(cs)")
            XCTAssertTrue(try QemuImg.contents(packed) == bytes)
        }
    }
}
