import XCTest
import CKVM
@testable import KVMKit

final class GuestRAMLayoutTests: XCTestCase {
    func e(_ a: UInt64, _ s: UInt64, _ t: E820Entry.Kind) -> E820Entry { E820Entry(address: a, size: s, type: t) }
    var lowFixed: [E820Entry] { [e(0, 0x9FC00, .ram), e(0x9FC00, 0x400, .reserved), e(0xE0000, 0x20000, .reserved)] }

    func test128MiB() throws {
        let l = try GuestRAMLayout(memoryMiB: 128)
        XCTAssertEqual(l.regions.map(\.guestAddress), [0])
        XCTAssertEqual(l.regions.map(\.size), [128 << 20])
        XCTAssertEqual(l.e820, lowFixed + [e(0x100000, (128 << 20) - 0x100000, .ram)])
    }

    func test3GiB() throws {
        let l = try GuestRAMLayout(memoryMiB: 3072)
        XCTAssertEqual(l.lowRAMEnd, 0xC000_0000)
        XCTAssertNil(l.highRAM)
        XCTAssertEqual(l.e820, lowFixed + [e(0x100000, 0xC000_0000 - 0x100000, .ram)])
    }

    func test4GiB() throws {
        let l = try GuestRAMLayout(memoryMiB: 4096)
        XCTAssertEqual(l.regions.map(\.guestAddress), [0, 0x1_0000_0000])
        XCTAssertEqual(l.regions.map(\.size), [0xC000_0000, 0x4000_0000])
        XCTAssertEqual(l.e820, lowFixed + [e(0x100000, 0xC000_0000 - 0x100000, .ram), e(0x1_0000_0000, 0x4000_0000, .ram)])
    }

    func test8GiB() throws {
        let l = try GuestRAMLayout(memoryMiB: 8192)
        XCTAssertEqual(l.highRAM?.guestAddress, 0x1_0000_0000)
        XCTAssertEqual(l.highRAM?.size, 0x1_4000_0000)
        XCTAssertEqual(l.e820.last, e(0x1_0000_0000, 0x1_4000_0000, .ram))
        // Nothing in the 3–4 GiB hole.
        XCTAssertFalse(l.e820.contains { $0.address < 0x1_0000_0000 && $0.address + $0.size > 0xC000_0000 })
        XCTAssertEqual(l.e820.reduce(0) { $0 + ($1.type == .ram ? $1.size : 0) }, (8 << 30) - 0x60400)
    }

    func testLimits() {
        XCTAssertThrowsError(try GuestRAMLayout(memoryMiB: 1))
        XCTAssertThrowsError(try GuestRAMLayout(memoryMiB: 1 << 40))
        XCTAssertNoThrow(try GuestRAMLayout(memoryMiB: 2))
    }
}

final class EntryStateTests: XCTestCase {
    func testPageTablesIdentityMapFirst4GiB() throws {
        let layout = try GuestRAMLayout(memoryMiB: 16)
        let memory = try makeMemory(layout)
        try BootPageTables.write(into: memory)
        for a: UInt64 in [0, 0x7000, 0x100_0200, 0xFEE0_0000, 0xFEC0_0000, 0xD000_0000, 0xFFFF_FFFF] {
            XCTAssertEqual(try BootPageTables.translate(a, in: memory), a, hex(a))
        }
        XCTAssertNil(try BootPageTables.translate(0x1_0000_0000, in: memory))
        XCTAssertEqual(try memory.load(UInt64.self, at: 0x9000), 0xA003)
        XCTAssertEqual(try memory.load(UInt64.self, at: 0xA018), 0xE003)
        XCTAssertEqual(try memory.load(UInt64.self, at: 0xB000), 0x83)
        XCTAssertEqual(BootPageTables.end, 0xF000)
        // Tables stay clear of boot_params (0x7000) and the command line (0x20000).
        XCTAssertLessThanOrEqual(LinuxLoader.bootParamsAddress + 4096, BootPageTables.pml4)
        XCTAssertLessThanOrEqual(BootPageTables.end, LinuxLoader.commandLineAddress)
    }

    func testGDTDescriptors() throws {
        XCTAssertEqual(BootGDT.descriptor(.code64), 0x00AF_9B00_0000_FFFF)
        XCTAssertEqual(BootGDT.descriptor(.code32), 0x00CF_9B00_0000_FFFF)
        XCTAssertEqual(BootGDT.descriptor(.data), 0x00CF_9300_0000_FFFF)
        XCTAssertEqual(BootGDT.descriptor(.tss), 0x0000_8B00_0000_0067)
        XCTAssertEqual(BootGDT.descriptors[0x10 / 8], BootGDT.descriptor(.code64))
        XCTAssertEqual(BootGDT.descriptors[0x18 / 8], BootGDT.descriptor(.data))
        XCTAssertEqual(BootGDT.limit, 47)
        XCTAssertLessThanOrEqual(BootGDT.address + UInt64(BootGDT.limit) + 1, BootGDT.idtAddress)
    }

    func testLinux64State() {
        let s = EntryState.linux64(entry: 0x100_0200)
        XCTAssertEqual(s.cs.selector, 0x10)
        XCTAssertEqual([s.ds, s.es, s.ss].map(\.selector), [0x18, 0x18, 0x18])
        XCTAssertEqual(s.cr0, 0x8000_0011)
        XCTAssertEqual(s.cr3, 0x9000)
        XCTAssertEqual(s.cr4, 0x20)
        XCTAssertEqual(s.efer, 0x500)
        XCTAssertEqual(s.rsi, 0x7000)
        XCTAssertEqual(s.rflags, 2)

        var sregs = kvm_sregs()
        sregs.apic_base = 0xFEE0_0900
        s.apply(to: &sregs)
        XCTAssertEqual(sregs.cs.l, 1)
        XCTAssertEqual(sregs.cs.db, 0)
        XCTAssertEqual(sregs.cs.s, 1)
        XCTAssertEqual(sregs.cs.selector, 0x10)
        XCTAssertEqual(sregs.ds.type, 3)
        XCTAssertEqual(sregs.tr.type, 11)
        XCTAssertEqual(sregs.tr.s, 0)
        XCTAssertEqual(sregs.ldt.unusable, 1)
        XCTAssertEqual(sregs.gdt.base, 0x500)
        XCTAssertEqual(sregs.efer, 0x500)
        XCTAssertEqual(sregs.apic_base, 0xFEE0_0900)  // untouched
        let regs = s.kvmRegs
        XCTAssertEqual(regs.rip, 0x100_0200)
        XCTAssertEqual(regs.rsi, 0x7000)
        XCTAssertEqual(regs.rflags, 2)
    }

    func testPVHState() {
        let s = EntryState.pvh32(entry: 0x100_0100)
        XCTAssertEqual(s.cr0, 0x11)
        XCTAssertEqual(s.efer, 0)
        XCTAssertEqual(s.cr4, 0)
        XCTAssertEqual(s.rbx, 0x7000)
        XCTAssertEqual(s.kvmRegs.rbx, 0x7000)
        XCTAssertEqual(s.cs.kvm.db, 1)
        XCTAssertEqual(s.cs.kvm.l, 0)
    }

    func testMSRsAndFPU() {
        let m = Dictionary(uniqueKeysWithValues: BootMSRs.entries.map { ($0.index, $0.value) })
        XCTAssertEqual(m[0x1A0], 1)
        XCTAssertEqual(m[0x2FF], 0x806)
        XCTAssertEqual(m[0x10], 0)
        for i: UInt32 in [0x174, 0x175, 0x176, 0xC000_0081, 0xC000_0082, 0xC000_0083, 0xC000_0084, 0xC000_0102] {
            XCTAssertEqual(m[i], 0)
        }
        let f = FPUState().kvm
        XCTAssertEqual(f.fcw, 0x37F)
        XCTAssertEqual(f.mxcsr, 0x1F80)
    }
}

final class GuestCPUIDTests: XCTestCase {
    let intel: [CPUIDEntry] = [
        CPUIDEntry(function: 0, eax: 0x1F, ebx: 0x756E_6547, ecx: 0x6C65_746E, edx: 0x4965_6E69),  // GenuineIntel
        CPUIDEntry(function: 1, eax: 0x906EA, ebx: 0x0810_0800, ecx: 0x7FFA_FBFF, edx: 0xBFEB_FBFF),
        CPUIDEntry(function: 4, index: 0, flags: 1, eax: 0x1C00_4121),  // L1d
        CPUIDEntry(function: 4, index: 3, flags: 1, eax: 0x1C03_C163),  // L3
        CPUIDEntry(function: 0xB, index: 0, flags: 1, eax: 1, ebx: 2, ecx: 0x100, edx: 7),
        CPUIDEntry(function: 0xB, index: 1, flags: 1, eax: 4, ebx: 8, ecx: 0x201, edx: 7),
        CPUIDEntry(function: 0x4000_0000, eax: 0x4000_0001, ebx: 1, ecx: 2, edx: 3),
        CPUIDEntry(function: 0x4000_0001, eax: 0x0100_7AFB),
        CPUIDEntry(function: 0x8000_0008, eax: 0x3027, ecx: 0),
    ]

    func testAPICIDsForFourVCPUs() {
        for vcpu in 0..<4 {
            let out = GuestCPUID.entries(from: intel, vcpu: vcpu, cpuCount: 4, tscKHz: 2_000_000)
            let leaf1 = out.first { $0.function == 1 }!
            XCTAssertEqual(leaf1.ebx >> 24, UInt32(vcpu))
            XCTAssertEqual((leaf1.ebx >> 16) & 0xFF, 4)
            XCTAssertEqual(leaf1.ebx & 0xFFFF, 0x0800)  // CLFLUSH size kept
            XCTAssertNotEqual(leaf1.ecx & (1 << 31), 0)
            XCTAssertNotEqual(leaf1.edx & (1 << 28), 0)
            let b = out.filter { $0.function == 0xB }
            XCTAssertEqual(b.map(\.index), [0, 1, 2])
            XCTAssertEqual(b.map(\.edx), [UInt32](repeating: UInt32(vcpu), count: 3))
            XCTAssertEqual(b[0].ebx, 1)
            XCTAssertEqual(b[0].ecx, 0x100)
            XCTAssertEqual(b[1].eax, 2)  // shift past 4 cores
            XCTAssertEqual(b[1].ebx, 4)
            XCTAssertEqual(b[1].ecx, 0x201)
            XCTAssertEqual(b[2].ecx >> 8, 0)
            let l4 = out.filter { $0.function == 4 }
            XCTAssertEqual(l4.map { $0.eax >> 26 }, [3, 3])
            XCTAssertEqual(l4.map { ($0.eax >> 14) & 0xFFF }, [0, 3])
            XCTAssertEqual(l4[0].eax & 0x3FFF, 0x0121)
            // AMD-only leaves untouched on Intel.
            XCTAssertEqual(out.first { $0.function == 0x8000_0008 }?.ecx, 0)
        }
    }

    func testHypervisorLeaves() {
        let out = GuestCPUID.entries(from: intel, vcpu: 0, cpuCount: 1, tscKHz: 2_500_000)
        let base = out.first { $0.function == 0x4000_0000 }!
        XCTAssertEqual(base.eax, 0x4000_0010)
        var sig: [UInt8] = []
        for r in [base.ebx, base.ecx, base.edx] { for i in 0..<4 { sig.append(UInt8(truncatingIfNeeded: r >> (8 * i))) } }
        XCTAssertEqual(sig, Array("KVMKVMKVM\0\0\0".utf8))
        XCTAssertEqual(out.first { $0.function == 0x4000_0001 }?.eax, 0x0100_7AFB)
        let tsc = out.first { $0.function == 0x4000_0010 }!
        XCTAssertEqual(tsc.eax, 2_500_000)
        XCTAssertEqual(tsc.ebx, 1_000_000)
        XCTAssertEqual(out.filter { $0.function == 0x4000_0000 }.count, 1)
        let leaf1 = out.first { $0.function == 1 }!
        XCTAssertEqual(leaf1.edx & (1 << 28), 0)  // one CPU: no HTT
        // Without a TSC frequency the max hypervisor leaf is the features leaf.
        let noTSC = GuestCPUID.entries(from: intel, vcpu: 0, cpuCount: 1, tscKHz: nil)
        XCTAssertEqual(noTSC.first { $0.function == 0x4000_0000 }?.eax, 0x4000_0001)
        XCTAssertFalse(noTSC.contains { $0.function == 0x4000_0010 })
    }

    func testAMDTopology() {
        let amd: [CPUIDEntry] = [
            CPUIDEntry(function: 0, eax: 0x10, ebx: 0x6874_7541, ecx: 0x444D_4163, edx: 0x6974_6E65),
            CPUIDEntry(function: 1, ebx: 0x0002_0800),
            CPUIDEntry(function: 0x8000_0001, ecx: 0x0040_0000),
            CPUIDEntry(function: 0x8000_0008, eax: 0x3030, ecx: 0x0001_700F),
            CPUIDEntry(function: 0x8000_001E, eax: 9, ebx: 0x0000_0105, ecx: 0x0000_0300),
        ]
        let out = GuestCPUID.entries(from: amd, vcpu: 2, cpuCount: 4, tscKHz: nil)
        let l8 = out.first { $0.function == 0x8000_0008 }!
        XCTAssertEqual(l8.ecx & 0xFF, 3)
        XCTAssertEqual((l8.ecx >> 12) & 0xF, 2)
        XCTAssertEqual(l8.ecx >> 16, 1)  // other bits kept
        let l1e = out.first { $0.function == 0x8000_001E }!
        XCTAssertEqual(l1e.eax, 2)
        XCTAssertEqual(l1e.ebx & 0xFFFF, 2)
        XCTAssertEqual(l1e.ecx & 0x7FF, 0)
        XCTAssertNotEqual(out.first { $0.function == 0x8000_0001 }!.ecx & 2, 0)
        XCTAssertEqual(out.first { $0.function == 1 }!.ebx >> 24, 2)
        XCTAssertFalse(out.contains { $0.function == 0xB })  // not offered by KVM: not invented
    }

    func testKVMConversion() {
        let e = CPUIDEntry(function: 7, index: 1, flags: 1, eax: 1, ebx: 2, ecx: 3, edx: 4)
        XCTAssertEqual(CPUIDEntry(e.kvm), e)
    }
}

final class BootLAPICTests: XCTestCase {
    func testLINTDeliveryModes() {
        var regs = [UInt8](repeating: 0, count: 1024)
        regs[0x350] = 0xFF; regs[0x351] = 0x04; regs[0x352] = 0x01  // vector 0xFF, mode NMI, masked
        BootLAPIC.configureLINT(&regs)
        XCTAssertEqual(regs[0x350], 0xFF)
        XCTAssertEqual(regs[0x351] & 0x07, 0x07)  // ExtINT
        XCTAssertEqual(regs[0x352], 0x01)  // other bits kept
        XCTAssertEqual(regs[0x361] & 0x07, 0x04)  // NMI
        var lapic = kvm_lapic_state()
        BootLAPIC.configureLINT(&lapic)
        let bytes = withUnsafeBytes(of: lapic.regs) { Array($0) }
        XCTAssertEqual(bytes[0x351], 0x07)
        XCTAssertEqual(bytes[0x361], 0x04)
    }
}
