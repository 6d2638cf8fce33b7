import Foundation
import XCTest

/// Skip without qemu-img, but fail under CI=true (make deps installs qemu-utils).
func requireQemuImg() throws {
    if FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-img") { return }
    if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("CI=true but qemu-img (qemu-utils) is missing") }
    throw XCTSkip("qemu-utils not installed")
}

func qemuImg(_ args: [String]) throws -> ProcessResult {
    try runProcess(URL(fileURLWithPath: "/usr/bin/qemu-img"), args, timeout: 60)
}

/// qcow2 disks through `swiftvmm run`, written by the probe kernel's virtio-blk driver
/// and judged by QEMU's tools.
final class Qcow2ProbeTests: XCTestCase {

    /// The probe's blk test (crc of the first 64 KiB, then a write, read-back and restore
    /// of the last sector, then a flush) on a qcow2 overlay over a qcow2 base.
    func testProbeBlockTestOnAnOverlay() throws {
        try requireKVMDevice()
        try requireQemuImg()
        let kernel = try probeKernel()
        let base = try temporaryFile("base.qcow2", bytes: [])
        let dir = (base as NSString).deletingLastPathComponent
        let overlay = dir + "/overlay.qcow2"
        XCTAssertEqual(try qemuImg(["create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", base, "16M"]).status, 0)
        let pattern = (0..<65536).map { UInt8(truncatingIfNeeded: $0 * 7 + $0 / 251) }
        let raw = dir + "/pattern.raw"
        XCTAssertTrue(FileManager.default.createFile(atPath: raw, contents: Data(pattern)))
        XCTAssertEqual(try runProcess(URL(fileURLWithPath: "/usr/bin/qemu-img"),
                                      ["dd", "-f", "raw", "-O", "qcow2", "if=\(raw)", "of=\(base)", "bs=65536", "count=1"]).status, 0)
        XCTAssertEqual(try qemuImg(["create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", overlay]).status, 0)
        let crc = String(crc32(pattern), radix: 16)
        let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--memory", "64", "--disk", overlay,
                                                      "--cmdline", "console=ttyS0 probe.run=blk probe.blk_crc32=\(crc)"], timeout: 60)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("PROBE PASS blk"), r.stdout)
        let check = try qemuImg(["check", overlay])
        XCTAssertEqual(check.status, 0, check.stdout + check.stderr)
        XCTAssertTrue(check.stdout.contains("No errors were found"), check.stdout)
        // The probe restored what it wrote: the overlay reads as its base.
        let compare = try qemuImg(["compare", overlay, base])
        XCTAssertEqual(compare.status, 0, compare.stdout + compare.stderr)
        let map = try qemuImg(["map", "--output=json", overlay])
        XCTAssertTrue(map.stdout.contains("\"depth\": 0, \"present\": true"), "the overlay holds the probe's writes: \(map.stdout)")
    }

    /// The probe's write benchmark on qcow2 and on raw leaves equal images; a qcow2
    /// image whose VMM is SIGKILLed mid-benchmark still passes qemu-img check.
    func testWriteBenchmarkMatchesRawAndSurvivesSIGKILL() throws {
        try requireKVMDevice()
        try requireQemuImg()
        let kernel = try probeKernel()
        let raw = try temporaryFile("bench.raw", bytes: [UInt8](repeating: 0x5c, count: 32 << 20))
        let dir = (raw as NSString).deletingLastPathComponent
        let q = dir + "/bench.qcow2"
        XCTAssertEqual(try qemuImg(["convert", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=65536", raw, q]).status, 0)
        for disk in [raw, q] {
            let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--memory", "64", "--disk", disk,
                                                          "--cmdline", "console=ttyS0 probe.bench=blk:write:24"], timeout: 120)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(r.stdout.contains("BENCH BLK DONE op=write"), r.stdout)
        }
        XCTAssertEqual(try qemuImg(["check", q]).status, 0)
        let compare = try qemuImg(["compare", "-f", "qcow2", "-F", "raw", q, raw])
        XCTAssertEqual(compare.status, 0, compare.stdout + compare.stderr)

        var rng = SystemRandomNumberGenerator()
        for kill in 0..<3 {
            let fresh = dir + "/kill\(kill).qcow2"
            XCTAssertEqual(try qemuImg(["create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", fresh, "64M"]).status, 0)
            let p = Process()
            p.executableURL = swiftvmmExecutable()
            p.arguments = ["run", "--kernel", kernel, "--memory", "64", "--disk", fresh, "--cmdline", "console=ttyS0 probe.bench=blk:write:48"]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = FileHandle.nullDevice
            try p.run()
            var seen = Data()
            let deadline = Date().addingTimeInterval(30)
            while !String(decoding: seen, as: UTF8.self).contains("BENCH BLK START") && Date() < deadline && p.isRunning {
                seen += out.fileHandleForReading.availableData
            }
            usleep(UInt32.random(in: 0...400_000, using: &rng))
            Glibc.kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            let check = try qemuImg(["check", fresh])
            XCTAssertTrue(check.status == 0 || check.status == 3, "kill \(kill): \(check.stdout)\(check.stderr)")
            print("qcow2 kill \(kill): qemu-img check exit \(check.status) (\(p.terminationReason == .uncaughtSignal ? "killed" : "exited"))")
        }
    }
}
