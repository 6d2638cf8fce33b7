import Foundation
import XCTest

/// `swiftvmm run` end to end on this host's KVM with the probe kernel.
final class RunProbeTests: XCTestCase {
    func testProbeSelfTestsPassWithInitrd() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        var rng = SystemRandomNumberGenerator()
        let initrd = (0..<24 * 1024).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let path = try temporaryFile("initrd.bin", bytes: initrd)
        let crc = crc32Hex(initrd)
        let start = Date()
        let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--initrd", path, "--memory", "128",
                                                      "--cmdline", probeCommandLine("console=ttyS0 probe.run=all probe.initrd_crc32=\(crc)")],
                               timeout: 30)
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("swiftvmm probe "), r.stdout)
        XCTAssertTrue(r.stdout.contains("PROBE PASS initrd"), r.stdout)
        XCTAssertTrue(r.stdout.contains("PROBE PASS serial"), r.stdout)
        XCTAssertTrue(r.stdout.contains("PROBE PASS mmio"), r.stdout)
        XCTAssertTrue(r.stdout.contains("PROBE PASS e820"), r.stdout)
        XCTAssertTrue(r.stdout.contains("PROBE PASS cmdline"), r.stdout)
        XCTAssertEqual(printedValue(r.stdout, after: "initrd: crc32="), crc, "the CRC the probe computed is ours")
        XCTAssertNotNil(r.stdout.range(of: #"PROBE DONE pass=\d+ fail=0"#, options: .regularExpression), r.stdout)
        print("probe.run=all with a 24 KiB initrd: \(String(format: "%.2f", elapsed)) s")
    }

    func testWrongInitrdChecksumFails() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        let path = try temporaryFile("initrd.bin", bytes: Array(repeating: 7, count: 4096))
        let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--initrd", path, "--memory", "64",
                                                      "--cmdline", "console=ttyS0 probe.run=initrd probe.initrd_crc32=12345678"],
                               timeout: 30)
        XCTAssertTrue(r.stdout.contains("PROBE FAIL initrd: crc32 differs from the expected one"), r.stdout)
    }

    /// A missing or garbled expected CRC is a failure, never a pass.
    func testMissingOrGarbledExpectedChecksumFails() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        let path = try temporaryFile("initrd.bin", bytes: Array(repeating: 7, count: 4096))
        let cases = [("console=ttyS0 probe.run=initrd", "PROBE FAIL initrd: expected crc32 not given"),
                     ("console=ttyS0 probe.run=initrd probe.initrd_crc32=xyz", "PROBE FAIL initrd: expected crc32 is not 1-8 hex digits"),
                     ("console=ttyS0 probe.run=initrd probe.initrd_crc32=123456789", "PROBE FAIL initrd: expected crc32 is not 1-8 hex digits"),
                     ("console=ttyS0 probe.run=cmdline", "PROBE FAIL cmdline: probe.cmdline_crc32= missing")]
        for (cmdline, expected) in cases {
            let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--initrd", path, "--memory", "64",
                                                          "--cmdline", cmdline], timeout: 30)
            XCTAssertTrue(r.stdout.contains(expected), "\(cmdline): \(r.stdout)")
            XCTAssertTrue(r.stdout.contains("PROBE DONE pass=0 fail=1"), "\(cmdline): \(r.stdout)")
        }
    }

    /// The cmdline self-test recomputes the CRC of the line it received: one changed byte fails it.
    func testCommandLineChecksumIsChecked() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        let good = probeCommandLine("console=ttyS0 probe.run=cmdline probe.token=swiftvmm-\(getpid())")
        var r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--memory", "64", "--cmdline", good], timeout: 30)
        let lines = r.stdout.split(whereSeparator: { $0.isNewline }).map(String.init)
        XCTAssertTrue(lines.contains("cmdline: \(good)"), "the probe received the line as passed: \(r.stdout)")
        XCTAssertTrue(r.stdout.contains("PROBE PASS cmdline"), r.stdout)
        let altered = good.replacingOccurrences(of: "probe.token=swiftvmm-", with: "probe.token=swiftvmN-")
        r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--memory", "64", "--cmdline", altered], timeout: 30)
        XCTAssertTrue(r.stdout.contains("PROBE FAIL cmdline: crc32 differs from the expected one"), r.stdout)
    }

    func testShellAnswersStdin() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--memory", "64"],
                               stdin: Data("echo probe-ok\npoweroff\n".utf8), timeout: 30)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("probe> echo probe-ok"), r.stdout)
        XCTAssertTrue(r.stdout.contains("\nprobe-ok"), r.stdout)
        XCTAssertTrue(r.stderr.contains("guest reset"), "the probe powers off through the i8042 reset: \(r.stderr)")
    }

    func testDefaultKernelIsTheProbe() throws {
        try requireKVMDevice()
        _ = try probeKernel()
        let r = try runProcess(swiftvmmExecutable(), ["run", "--memory", "64"], stdin: Data("poweroff\n".utf8), timeout: 30)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("swiftvmm probe "), r.stdout)
    }

    func testGuestCrashExits1WithRegisterDump() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--memory", "64"],
                               stdin: Data("crash\n".utf8), timeout: 30)
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("swiftvmm: guest crashed: vCPU 0: triple fault"), r.stderr)
        XCTAssertTrue(r.stderr.contains("RIP="), r.stderr)
        XCTAssertTrue(r.stderr.contains("code at RIP: 0f 0b"), "ud2 is the faulting instruction: \(r.stderr)")
    }

    func testSerialToFileAndNone() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        let out = try temporaryFile("console.log", bytes: [])
        let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--memory", "64", "--serial", "file:\(out)",
                                                      "--cmdline", "console=ttyS0 probe.run=serial"], timeout: 30)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(r.stdout.contains("PROBE"))
        let log = try String(contentsOfFile: out, encoding: .utf8)
        XCTAssertTrue(log.contains("PROBE PASS serial"), log)
        let none = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--memory", "64", "--serial", "none",
                                                         "--cmdline", "console=ttyS0 probe.run=serial"], timeout: 30)
        XCTAssertEqual(none.status, 0)
        XCTAssertEqual(none.stdout, "")
    }

    func testSMPMachineBootsTheProbe() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--memory", "64", "--cpus", "4",
                                                      "--cmdline", probeCommandLine("console=ttyS0 probe.run=all")], timeout: 30)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let lines = Set(r.stdout.split(whereSeparator: { $0.isNewline }).map(String.init))
        XCTAssertTrue(lines.contains("smp: 4 CPUs in the MADT, this one apic=0"), r.stdout)
        // Every CPU reports itself: the boot CPU, and each AP from its own code after INIT-SIPI-SIPI.
        for cpu in 0..<4 {
            XCTAssertTrue(lines.contains("PROBE CPU \(cpu) online apic=\(cpu)"), "CPU \(cpu): \(r.stdout)")
        }
        XCTAssertTrue(lines.contains("PROBE PASS smp"), r.stdout)
        XCTAssertNotNil(r.stdout.range(of: #"PROBE DONE pass=\d+ fail=0"#, options: .regularExpression), r.stdout)
    }

    func testTimingsAreReported() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--memory", "64", "--timings",
                                                      "--cmdline", "console=ttyS0 probe.run=none"], timeout: 30)
        XCTAssertEqual(r.status, 0)
        XCTAssertNotNil(r.stderr.range(of: #"main → first KVM_RUN \d+\.\d{3} ms"#, options: .regularExpression), r.stderr)
    }
}
