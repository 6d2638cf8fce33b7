import CKVM
import Foundation
import Glibc
import XCTest
@testable import KVMKit

/// Debian's bzImage through the whole Boot/ path on the real /dev/kvm: layout, loader,
/// zero page, page tables, GDT, entry state, CPUID, MSRs, FPU. Success is the decompressor's
/// first message on COM1 (on a PVM host nothing later arrives in reasonable time).
final class BootSmokeTests: XCTestCase {
    func testDebianKernelPrintsKASLRDisabled() throws {
        guard let dir = linuxGuestDirectory() else {
            throw XCTSkip("no guests/out/linux/vmlinuz (run guests/linux/build, or set SWIFTVMM_LINUX_DIR)")
        }
        let text = try boot(dir + "/vmlinuz", until: "KASLR disabled", seconds: 30)
        XCTAssertTrue(text.contains("KASLR disabled"), text)
    }

    /// Opt-in (slow on PVM): the ELF vmlinux through the 64-bit or PVH entry, until the
    /// kernel's first earlyprintk line (or SWIFTVMM_SLOW_MARKER). SWIFTVMM_SLOW_BOOT=linux64|pvh.
    func testDebianVmlinuxEarlyPrintk() throws {
        guard let dir = linuxGuestDirectory(), let mode = ProcessInfo.processInfo.environment["SWIFTVMM_SLOW_BOOT"] else {
            throw XCTSkip("set SWIFTVMM_SLOW_BOOT=linux64|pvh and have guests/out/linux/vmlinux")
        }
        let marker = ProcessInfo.processInfo.environment["SWIFTVMM_SLOW_MARKER"] ?? "Linux version"
        let text = try boot(dir + "/vmlinux", until: marker, seconds: 300, elfEntry: mode == "pvh" ? .pvh : .linux64)
        XCTAssertTrue(text.contains(marker), text)
    }

    func boot(_ path: String, until marker: String, seconds: Double, elfEntry: ELFEntryKind? = nil) throws -> String {
        let kvm = try requireKVM()
        let vm = try kvm.createVM()
        let layout = try GuestRAMLayout(memoryMiB: 256)
        let memory = try GuestMemory(layout: layout.regions)
        try vm.setMemory(memory)
        try vm.setTSSAddress(GuestRAMLayout.tssAddress)
        try vm.setIdentityMapAddress(GuestRAMLayout.identityMapAddress)

        let kernel = try LinuxKernel(contentsOf: path)
        let loaded = try LinuxLoader.load(kernel, into: memory, layout: layout,
                                          commandLine: "earlyprintk=ttyS0 console=ttyS0 nokaslr", elfEntry: elfEntry)
        let vcpu = try vm.createVCPU(id: 0)
        let supported = try kvm.supportedCPUID().map(CPUIDEntry.init)
        try vcpu.setCPUID(GuestCPUID.entries(from: supported, vcpu: 0, cpuCount: 1,
                                             tscKHz: vcpu.tscKHz().map { UInt32($0) }).map(\.kvm))
        var sregs = try vcpu.getSpecialRegisters()
        loaded.entry.apply(to: &sregs)
        try vcpu.setSpecialRegisters(sregs)
        try vcpu.setRegisters(loaded.entry.kvmRegs)
        try vcpu.setFPU(FPUState().kvm)
        do { try vcpu.setMSRs(BootMSRs.entries) } catch { print("note: boot MSRs refused: \(error)") }

        // Stop the vCPU after `seconds` whatever it is doing.
        VCPUKick.install()
        let me = pthread_self()
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            if done.wait(timeout: .now() + seconds) == .timedOut { VCPUKick.kick(vcpu, thread: me) }
        }
        defer { done.signal() }

        let start = Date()
        var serial: [UInt8] = []
        loop: while Date().timeIntervalSince(start) < seconds {
            let exit = try vcpu.run()
            switch exit {
            case .ioOut(let port, _, _, let data):
                if port == 0x3F8 { serial += data }
                if String(decoding: serial, as: UTF8.self).contains(marker) { break loop }
            case .ioIn(let port, _, _, let data):
                // Minimal 16550: transmitter always empty, nothing received.
                storeLittleEndian(port == 0x3FD ? 0x60 : (port >= 0x3F8 && port <= 0x3FF ? 0 : 0xFF), into: data)
            case .mmioRead(_, _, let data):
                storeLittleEndian(UInt64.max, into: data)
            case .mmioWrite, .interrupted:
                continue
            default:
                let regs = try? vcpu.getRegisters()
                XCTFail("unexpected exit \(exit) at rip \(regs.map { hex($0.rip) } ?? "?")")
                break loop
            }
        }
        let text = String(decoding: serial, as: UTF8.self)
        print("serial after \(String(format: "%.2f", Date().timeIntervalSince(start))) s: \(text.debugDescription)")
        return text
    }
}
