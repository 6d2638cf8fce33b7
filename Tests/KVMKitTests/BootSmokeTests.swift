import Foundation
import XCTest
@testable import KVMKit

/// Debian's bzImage through the product's own path on the real /dev/kvm: `Machine` loads it,
/// writes the firmware tables and sets the boot vCPU up (CPUID, MSRs, FPU, LAPIC, entry
/// state — a refused `KVM_SET_MSRS` fails the test, as it fails `swiftvmm run`). Success is
/// the decompressor's first message on COM1 (on a PVM host nothing later arrives in
/// reasonable time).
final class BootSmokeTests: XCTestCase {
    func testDebianKernelPrintsKASLRDisabled() throws {
        let text = try boot(try linuxGuestFile("vmlinuz"), until: "KASLR disabled", seconds: 30)
        XCTAssertTrue(text.contains("KASLR disabled: 'nokaslr' on cmdline."), text)
    }

    /// Boot `path` in a `Machine` (one vCPU, 256 MiB) until COM1 has printed `marker` or
    /// `seconds` have passed; the console text. A guest crash fails the test.
    func boot(_ path: String, until marker: String, seconds: Double, elfEntry: ELFEntryKind? = nil) throws -> String {
        let kvm = try requireKVM()
        let machine = try Machine(configuration: MachineConfiguration(
            kernelPath: path, commandLine: "earlyprintk=ttyS0 console=ttyS0 nokaslr", memoryMiB: 256, elfEntry: elfEntry), kvm: kvm)
        try machine.boot()
        let start = Date()
        try machine.start()
        var text = ""
        while Date().timeIntervalSince(start) < seconds && !text.contains(marker) && !machine.control.isStopped {
            text += String(decoding: machine.serialOutput.readAll(), as: UTF8.self)
            usleep(20_000)
        }
        machine.shutdown()
        text += String(decoding: machine.serialOutput.readAll(), as: UTF8.self)
        let reason = machine.wait()
        if case .guestCrash(let why, let dump) = reason { XCTFail("guest crashed: \(why)\n\(dump)") }
        if case .vmmError(let why) = reason { XCTFail("VMM error: \(why)") }
        print("serial after \(String(format: "%.2f", Date().timeIntervalSince(start))) s: \(text.debugDescription)")
        return text
    }
}
