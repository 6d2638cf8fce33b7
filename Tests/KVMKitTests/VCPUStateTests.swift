import CKVM
@testable import KVMKit
import XCTest

/// vCPU and VM state on the real /dev/kvm: a counting guest is captured mid-run, rebuilt
/// in a second VM, and carries on exactly where it was.
final class VCPUStateTests: XCTestCase {
    /// Real mode at 0x1000: forever { word [0x500] += 1; bx += 2; out 0x10, al; out 0x11, bl }.
    static let counter: [UInt8] = [
        0xA1, 0x00, 0x05,  // mov ax, [0x500]
        0x40,              // inc ax
        0xA3, 0x00, 0x05,  // mov [0x500], ax
        0x43, 0x43,        // inc bx; inc bx
        0xE6, 0x10,        // out 0x10, al
        0x88, 0xD8,        // mov al, bl
        0xE6, 0x11,        // out 0x11, al
        0xEB, 0xED,        // jmp 0x1000
    ]

    struct Guest {
        let vm: VirtualMachine
        let memory: GuestMemory
        let vcpu: VCPU
    }

    func makeGuest(_ kvm: KVM) throws -> Guest {
        let vm = try kvm.createVM()
        let memory = try GuestMemory(layout: [(0, 0x10000)])
        try vm.setMemory(memory)
        try vm.createIRQChip()
        try vm.createPIT2()
        return Guest(vm: vm, memory: memory, vcpu: try vm.createVCPU(id: 0))
    }

    /// The next `n` (port, value) OUTs.
    func outs(_ vcpu: VCPU, _ n: Int) throws -> [UInt64] {
        var values: [UInt64] = []
        var exits = 0
        while values.count < n {
            exits += 1
            if exits > n * 4 { XCTFail("guest stopped producing output"); break }
            let exit = try vcpu.run()
            guard case .ioOut(let port, _, _, _) = exit else { continue }
            values.append(UInt64(port) << 8 | exit.writtenValue)
        }
        return values
    }

    func testCountingGuestContinuesInAFreshVM() throws {
        let kvm = try requireKVM()
        let a = try makeGuest(kvm)
        try a.memory.write(at: 0x1000, bytes: Self.counter)
        let cpuid = GuestCPUID.entries(from: try kvm.supportedCPUID().map(CPUIDEntry.init), vcpu: 0, cpuCount: 1, tscKHz: nil)
        try a.vcpu.setCPUID(cpuid.map(\.kvm))
        try startInRealMode(a.vcpu, at: 0x1000)
        try a.vcpu.setMSRs([(0xC000_0102, 0x1234_5678)])  // kernel GS base: a marker
        _ = try outs(a.vcpu, 9)  // stop between the two OUTs of an iteration

        let saved = try VCPUState(decoding: a.vcpu.captureState(msrIndices: kvm.msrIndexList()).encodedBytes, context: "test")
        let vmSaved = try VirtualMachineState(decoding: a.vm.captureState().encodedBytes, context: "test")
        let ram = try a.memory.readBytes(at: 0, count: 0x10000)
        XCTAssertEqual(saved.cpuid.count, cpuid.count)
        XCTAssertTrue(saved.msrs.contains(MSREntry(index: 0xC000_0102, value: 0x1234_5678)))
        XCTAssertTrue(saved.msrs.contains { $0.index == BootMSRs.tsc }, "the TSC is among the saved MSRs")

        let b = try makeGuest(kvm)
        try b.memory.write(at: 0, bytes: ram)
        try b.vm.restoreState(vmSaved)
        try b.vcpu.restoreState(saved)
        let expected = try outs(a.vcpu, 12)
        let got = try outs(b.vcpu, 12)
        XCTAssertEqual(got, expected, "the copy produces exactly what the original does next")
        XCTAssertEqual(got.first, 0x11 << 8 | 10, "the interrupted iteration finishes first: bl = 2 * 5")
        XCTAssertEqual(try b.vcpu.getMSRs([0xC000_0102]), [0x1234_5678])
        XCTAssertEqual(try a.memory.load(UInt16.self, at: 0x500), try b.memory.load(UInt16.self, at: 0x500))
    }

    func testInKernelDeviceStateRoundTrips() throws {
        let kvm = try requireKVM()
        let a = try makeGuest(kvm)
        var s = try a.vm.captureState()
        // A programmed IOAPIC pin (redirection entry 3: vector 0x33, masked off).
        withUnsafeMutableBytes(of: &s.irqchips[2].chip) { raw in
            let entryOffset = 24 + 3 * 8  // ioapic: base_address u64, ioregsel u32, id u32, irr u32, pad u32, redirtbl[]
            raw.storeBytes(of: UInt64(0x33), toByteOffset: entryOffset, as: UInt64.self)
        }
        try a.vm.restoreState(s)
        let b = try makeGuest(kvm)
        try b.vm.restoreState(try VirtualMachineState(decoding: a.vm.captureState().encodedBytes, context: "test"))
        let again = try b.vm.captureState()
        XCTAssertEqual(withUnsafeBytes(of: again.irqchips[2].chip) { Array($0) },
                       withUnsafeBytes(of: s.irqchips[2].chip) { Array($0) })
        XCTAssertEqual(withUnsafeBytes(of: again.irqchips[0].chip) { Array($0) },
                       withUnsafeBytes(of: s.irqchips[0].chip) { Array($0) })
    }

    func testDirtyPagesCoverVCPUAndDeviceWrites() throws {
        let kvm = try requireKVM()
        let g = try makeGuest(kvm)
        try g.memory.write(at: 0x1000, bytes: Self.counter)
        try startInRealMode(g.vcpu, at: 0x1000)
        let tracker = DirtyPageTracker(vm: g.vm, memory: g.memory)
        try tracker.start()
        _ = try outs(g.vcpu, 4)               // the guest writes page 0 (word 0x500)
        try g.memory.write(at: 0x7010, bytes: [1, 2])  // a device writes page 7
        var pages: [UInt64] = []
        try tracker.harvest().forEachPage { _, p in pages.append(p) }
        XCTAssertEqual(pages, [0, 7])
        XCTAssertEqual(try tracker.harvest().count, 0, "a harvest clears both logs")
        try tracker.stop()
    }
}
