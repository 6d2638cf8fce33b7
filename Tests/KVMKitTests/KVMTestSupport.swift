import CKVM
import Foundation
import KVMKit
import TestSupport
import XCTest

/// Open /dev/kvm for a test. Without it the test is skipped, visibly — except under
/// CI=true, where a missing /dev/kvm is a failure.
func requireKVM(file: StaticString = #filePath, line: UInt = #line) throws -> KVM {
    do {
        return try KVM()
    } catch {
        throw missingPrerequisite("/dev/kvm is not usable: \(error)", file: file, line: line)
    }
}

/// Point a fresh vCPU at `rip` in real mode with CS = 0 (flat below 64 KiB).
func startInRealMode(_ vcpu: VCPU, at rip: UInt64) throws {
    var sregs = try vcpu.getSpecialRegisters()
    sregs.cs.base = 0
    sregs.cs.selector = 0
    try vcpu.setSpecialRegisters(sregs)
    var regs = kvm_regs()
    regs.rip = rip
    regs.rflags = 2
    try vcpu.setRegisters(regs)
}
