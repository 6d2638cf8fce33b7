import Foundation
import TestSupport
import XCTest

/// The probe is a real guest: a VMM nobody here wrote (QEMU's microvm, PVH entry) boots it.
final class ProbeUnderQEMUTests: XCTestCase {
    func testQEMUMicrovmBootsProbeELF() throws {
        try requireKVMDevice()
        let qemu = URL(fileURLWithPath: "/usr/bin/qemu-system-x86_64")
        guard FileManager.default.fileExists(atPath: qemu.path) else {
            throw missingPrerequisite("/usr/bin/qemu-system-x86_64 is missing (Debian: qemu-system-x86)")
        }
        let elf = repositoryRoot().appendingPathComponent("guests/out/probe.elf").path
        _ = try probeKernel()
        let r = try runProcess(qemu, ["-M", "microvm", "-accel", "kvm", "-kernel", elf, "-nographic", "-no-reboot",
                                      "-append", "console=ttyS0 probe.run=serial,cmdline"], timeout: 60)
        XCTAssertTrue(r.stdout.contains("swiftvmm probe "), r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("entry pvh"), "QEMU enters through the PVH note: \(r.stdout)")
        XCTAssertTrue(r.stdout.contains("PROBE PASS serial"), r.stdout)
    }
}
