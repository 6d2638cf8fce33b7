import Foundation
import XCTest

/// `swiftvmm run --elf-entry pvh` end to end: probe.elf entered through its PVH note
/// (XEN_ELFNOTE_PHYS32_ENTRY, 32-bit protected mode, hvm_start_info in EBX), with an
/// initrd (hvm_start_info's module list), the memory map, the command line and the
/// RSDP from hvm_start_info, and a second CPU started through the MADT.
final class RunPVHEntryTests: XCTestCase {
    func testPVHEntryBootsTheProbe() throws {
        try requireKVMDevice()
        let elf = try probeELF()
        var rng = SystemRandomNumberGenerator()
        let initrd = (0..<8 * 1024).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let path = try temporaryFile("initrd.bin", bytes: initrd)
        let crc = crc32Hex(initrd)
        let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", elf, "--elf-entry", "pvh", "--initrd", path,
                                                      "--memory", "64", "--cpus", "2",
                                                      "--cmdline", probeCommandLine("console=ttyS0 probe.run=all probe.initrd_crc32=\(crc)")],
                               timeout: 30)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("(entry pvh, info at 0x7000)"), "entered through the PVH note: \(r.stdout)")
        let lines = Set(r.stdout.split(whereSeparator: { $0.isNewline }).map(String.init))
        for test in ["serial", "e820", "initrd", "cmdline", "mmio", "smp"] {
            XCTAssertTrue(lines.contains("PROBE PASS \(test)"), "\(test): \(r.stdout)")
        }
        XCTAssertEqual(printedValue(r.stdout, after: "initrd: crc32="), crc)
        XCTAssertTrue(lines.contains("PROBE CPU 1 online apic=1"), r.stdout)
        XCTAssertNotNil(r.stdout.range(of: #"PROBE DONE pass=6 fail=0"#, options: .regularExpression), r.stdout)
    }

    /// Without --elf-entry an ELF with a 64-bit entry is entered there, not through PVH.
    func testELFDefaultsToThe64BitEntry() throws {
        try requireKVMDevice()
        let elf = try probeELF()
        let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", elf, "--memory", "64",
                                                      "--cmdline", probeCommandLine("console=ttyS0 probe.run=cmdline")], timeout: 30)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("(entry linux-64, "), r.stdout)
        XCTAssertTrue(r.stdout.contains("PROBE DONE pass=1 fail=0"), r.stdout)
    }
}
