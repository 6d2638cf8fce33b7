import Foundation
import XCTest

/// virtio devices through `swiftvmm run`, driven by the probe kernel's own drivers.
final class RunVirtioProbeTests: XCTestCase {
    func testBlkRngConsoleSelfTestsPass() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        var rng = SystemRandomNumberGenerator()
        var image = (0..<65536).map { _ in UInt8.random(in: 0...255, using: &rng) }
        image += [UInt8](repeating: 0, count: 4 << 20)
        let disk = try temporaryFile("disk.img", bytes: image)
        let crc = crc32Hex(Array(image.prefix(65536)))
        let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--memory", "128",
                                                      "--disk", "\(disk),id=probe-disk", "--rng", "--console", "hvc",
                                                      "--cmdline", probeCommandLine("console=ttyS0 probe.run=all probe.blk_crc32=\(crc)")],
                               timeout: 30)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let lines = Set(r.stdout.split(whereSeparator: { $0.isNewline }).map(String.init))
        XCTAssertEqual(printedValue(r.stdout, after: "blk: crc32(first 65536 bytes)="), crc, "the CRC the probe computed is ours")
        for test in ["virtio", "blk", "rng", "console", "cmdline"] {
            XCTAssertTrue(lines.contains("PROBE PASS \(test)"), "\(test): \(r.stdout)")
        }
        XCTAssertTrue(r.stdout.contains("swiftvmm probe: hello on virtio-console"), "virtio-console output reaches the host console")
        XCTAssertNotNil(r.stdout.range(of: #"PROBE DONE pass=\d+ fail=0"#, options: .regularExpression), r.stdout)
        let after = [UInt8](try Data(contentsOf: URL(fileURLWithPath: disk)))
        XCTAssertEqual(after, image, "the probe's write test restores the disk")
    }

    func testReadOnlyDiskIsOfferedReadOnly() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        let disk = try temporaryFile("ro.img", bytes: [UInt8](repeating: 0xAB, count: 1 << 20))
        let crc = crc32Hex([UInt8](repeating: 0xAB, count: 65536))
        let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--memory", "64", "--disk", "\(disk),ro",
                                                      "--cmdline", "console=ttyS0 probe.run=blk probe.blk_crc32=\(crc)"], timeout: 30)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("PROBE PASS blk"), r.stdout)
        XCTAssertTrue(r.stdout.contains(" ro"), "the probe sees VIRTIO_BLK_F_RO: \(r.stdout)")
    }

    /// A disk whose first 64 KiB are not what the test wrote fails the probe's blk test.
    func testWrongDiskChecksumFails() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        let image = [UInt8](repeating: 0x5A, count: 1 << 20)
        let disk = try temporaryFile("disk.img", bytes: image)
        var wrong = Array(image.prefix(65536))
        wrong[4096] ^= 1
        let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--memory", "64", "--disk", disk,
                                                      "--cmdline", "console=ttyS0 probe.run=blk probe.blk_crc32=\(crc32Hex(wrong))"],
                               timeout: 30)
        XCTAssertTrue(r.stdout.contains("PROBE FAIL blk: crc32 differs from the expected one"), r.stdout)
        XCTAssertTrue(r.stdout.contains("PROBE DONE pass=0 fail=1"), r.stdout)
        let missing = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--memory", "64", "--disk", disk,
                                                            "--cmdline", "console=ttyS0 probe.run=blk"], timeout: 30)
        XCTAssertTrue(missing.stdout.contains("PROBE FAIL blk: expected crc32 not given"), missing.stdout)
    }

    func testDiskBadInputs() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        let odd = try temporaryFile("odd.img", bytes: [UInt8](repeating: 0, count: 1000))
        var r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--disk", odd], timeout: 30)
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("\(odd) is 1000 bytes, not a multiple of 512"), r.stderr)
        XCTAssertEqual(r.stdout, "")

        r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--disk", "/nonexistent/disk.img"], timeout: 30)
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.contains("/nonexistent/disk.img"), r.stderr)

        r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--disk", "\(odd),bogus=1"], timeout: 30)
        XCTAssertEqual(r.status, 2, r.stderr)
    }

    func testTwoVMsCannotShareAWritableDisk() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        let disk = try temporaryFile("shared.img", bytes: [UInt8](repeating: 0, count: 1 << 20))
        let first = Process()
        first.executableURL = swiftvmmExecutable()
        first.arguments = ["run", "--kernel", kernel, "--memory", "64", "--disk", disk, "--serial", "none"]
        let keepOpen = Pipe()
        first.standardInput = keepOpen
        try first.run()
        defer { kill(first.processIdentifier, SIGKILL); first.waitUntilExit() }
        usleep(500_000)
        let second = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--memory", "64", "--disk", disk], timeout: 30)
        XCTAssertEqual(second.status, 2)
        XCTAssertTrue(second.stderr.contains("in use by another process"), second.stderr)
    }
}
