import CKVM
import KVMKit
import XCTest

/// KVMKit against the real /dev/kvm: tiny hand-assembled guests whose exits we decode.
final class VCPUExitTests: XCTestCase {
    /// Run until HLT, handing each exit to `handle`; fails on anything unexpected.
    func runToHalt(_ vcpu: VCPU, maxExits: Int = 50, handle: (VMExit) -> Void) throws {
        for _ in 0..<maxExits {
            let exit = try vcpu.run()
            if case .halt = exit { return }
            if case .interrupted = exit { continue }
            handle(exit)
        }
        XCTFail("guest did not halt within \(maxExits) exits")
    }

    /// The common body: out a computed byte, write and read an unmapped MMIO address,
    /// echo the value read back on a second port, halt.
    func checkGuest(vcpu: VCPU, mmioAddress: UInt64) throws {
        var outs: [(UInt16, UInt64)] = []
        var mmioWrites: [(UInt64, Int, UInt64)] = []
        var mmioReads: [(UInt64, Int)] = []
        try runToHalt(vcpu) { exit in
            switch exit {
            case .ioOut(let port, let size, let count, _):
                XCTAssertEqual(size, 1)
                XCTAssertEqual(count, 1)
                outs.append((port, exit.writtenValue))
            case .mmioWrite(let address, let size, _):
                mmioWrites.append((address, size, exit.writtenValue))
            case .mmioRead(let address, let size, let data):
                mmioReads.append((address, size))
                storeLittleEndian(0x5A, into: data)
            default:
                XCTFail("unexpected exit \(exit)")
            }
        }
        XCTAssertEqual(outs.count, 2)
        XCTAssertEqual(outs.first?.0, 0x10)
        XCTAssertEqual(outs.first?.1, 0x42, "the guest computes 0x21 + 0x21")
        XCTAssertEqual(mmioWrites.count, 1)
        XCTAssertEqual(mmioWrites.first?.0, mmioAddress)
        XCTAssertEqual(mmioWrites.first?.1, 1)
        XCTAssertEqual(mmioWrites.first?.2, 0x99)
        XCTAssertEqual(mmioReads.count, 1)
        XCTAssertEqual(mmioReads.first?.0, mmioAddress + 4)
        XCTAssertEqual(outs.last?.0, 0x11)
        XCTAssertEqual(outs.last?.1, 0x5A, "the value the test answered reaches the guest")
    }

    func testRealModeGuest() throws {
        let kvm = try requireKVM()
        let vm = try kvm.createVM()
        let memory = try GuestMemory(layout: [(0, 0x10000)])
        try vm.setMemory(memory)
        let code: [UInt8] = [
            0xB0, 0x21,                    // mov al, 0x21
            0x04, 0x21,                    // add al, 0x21
            0xE6, 0x10,                    // out 0x10, al
            0xBB, 0x00, 0x20,              // mov bx, 0x2000
            0x8E, 0xDB,                    // mov ds, bx        ; ds base 0x20000: unmapped
            0xC6, 0x06, 0x00, 0x00, 0x99,  // mov byte [0], 0x99
            0xA0, 0x04, 0x00,              // mov al, [4]
            0xE6, 0x11,                    // out 0x11, al
            0xF4,                          // hlt
        ]
        try memory.write(at: 0x1000, bytes: code)
        let vcpu = try vm.createVCPU(id: 0)
        try startInRealMode(vcpu, at: 0x1000)
        try checkGuest(vcpu: vcpu, mmioAddress: 0x20000)
    }

    func testLongModeGuest() throws {
        let kvm = try requireKVM()
        let vm = try kvm.createVM()
        let memory = try GuestMemory(layout: [(0, 0x100000)])
        try vm.setMemory(memory)

        // Identity map of the first 2 MiB with one large page; RAM ends at 1 MiB, so
        // 0x180000 is mapped by the page tables but backed by no memory slot: MMIO.
        let pml4: UInt64 = 0x2000, pdpt: UInt64 = 0x3000, pd: UInt64 = 0x4000
        try memory.store(pdpt | 0x3, at: pml4)
        try memory.store(pd | 0x3, at: pdpt)
        try memory.store(UInt64(0x83), at: pd) // present, writable, 2 MiB page at 0
        // GDT: null, 64-bit code (0x08), data (0x10).
        try memory.store(UInt64(0), at: 0x500)
        try memory.store(UInt64(0x00AF_9A00_0000_FFFF), at: 0x508)
        try memory.store(UInt64(0x00CF_9200_0000_FFFF), at: 0x510)
        let code: [UInt8] = [
            0xB0, 0x21,                                           // mov al, 0x21
            0x04, 0x21,                                           // add al, 0x21
            0xE6, 0x10,                                           // out 0x10, al
            0xC6, 0x04, 0x25, 0x00, 0x00, 0x18, 0x00, 0x99,       // mov byte [0x180000], 0x99
            0x8A, 0x04, 0x25, 0x04, 0x00, 0x18, 0x00,             // mov al, [0x180004]
            0xE6, 0x11,                                           // out 0x11, al
            0xF4,                                                 // hlt
        ]
        try memory.write(at: 0x1000, bytes: code)

        let vcpu = try vm.createVCPU(id: 0)
        var s = try vcpu.getSpecialRegisters()
        var cs = kvm_segment()
        cs.base = 0; cs.limit = 0xFFFF_FFFF; cs.selector = 0x08
        cs.type = 11; cs.present = 1; cs.dpl = 0; cs.db = 0; cs.s = 1; cs.l = 1; cs.g = 1
        var ds = cs
        ds.selector = 0x10; ds.type = 3; ds.l = 0; ds.db = 1
        s.cs = cs; s.ds = ds; s.es = ds; s.fs = ds; s.gs = ds; s.ss = ds
        s.gdt.base = 0x500; s.gdt.limit = 23
        s.cr3 = pml4
        s.cr4 = 0x20                 // PAE
        s.cr0 = 0x8000_0001 | 0x10   // PG | PE | ET
        s.efer = 0x500               // LME | LMA
        try vcpu.setSpecialRegisters(s)
        var regs = kvm_regs()
        regs.rip = 0x1000
        regs.rflags = 2
        regs.rsp = 0x8000
        try vcpu.setRegisters(regs)
        try checkGuest(vcpu: vcpu, mmioAddress: 0x180000)
        XCTAssertEqual(try vcpu.translate(0x1000), 0x1000)
    }

    func testErrorNamesTheIoctl() throws {
        let kvm = try requireKVM()
        let vm = try kvm.createVM()
        XCTAssertThrowsError(try vm.createVCPU(id: 1 << 30)) { e in
            XCTAssertTrue("\(e)".hasPrefix("KVM_CREATE_VCPU"), "\(e)")
        }
    }
}
