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
        let r = try runProcess(qemu, ["-M", "microvm", "-accel", "kvm", "-smp", "2", "-kernel", elf, "-nographic", "-no-reboot",
                                      "-append", probeCommandLine("console=ttyS0 probe.run=serial,cmdline,smp")], timeout: 60)
        XCTAssertTrue(r.stdout.contains("swiftvmm probe "), r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("entry pvh"), "QEMU enters through the PVH note: \(r.stdout)")
        XCTAssertTrue(r.stdout.contains("PROBE PASS serial"), r.stdout)
        XCTAssertTrue(r.stdout.contains("PROBE PASS cmdline"), r.stdout)
        // QEMU's own MADT and LAPICs start the probe's second CPU the same way.
        XCTAssertTrue(r.stdout.contains("PROBE CPU 1 online apic=1"), r.stdout)
        XCTAssertTrue(r.stdout.contains("PROBE PASS smp"), r.stdout)
        XCTAssertTrue(r.stdout.contains("PROBE DONE pass=3 fail=0"), r.stdout)
    }
}
