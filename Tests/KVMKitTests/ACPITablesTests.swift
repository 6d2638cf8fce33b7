import XCTest
@testable import KVMKit

final class ACPITablesTests: XCTestCase {
    let sdtNames = ["XSDT", "FADT", "MADT", "DSDT"]

    func testEveryTableChecksumsToZeroAndHeaderLengthsMatch() throws {
        for cpus in [1, 2, 8, 254] {
            let image = try FirmwareImage(layout: sampleLayout(cpus: cpus))
            let rsdp = try image.blob("RSDP").bytes
            XCTAssertEqual(rsdp.count, 36)
            XCTAssertEqual(byteSum(rsdp[0..<20]), 0, "RSDP checksum")
            XCTAssertEqual(byteSum(rsdp), 0, "RSDP extended checksum")
            XCTAssertEqual(ascii(rsdp, 0, 8), "RSD PTR ")
            XCTAssertEqual(rsdp[15], 2, "RSDP revision")
            XCTAssertEqual(le32(rsdp, 20), 36)
            for name in sdtNames {
                let t = try image.blob(name).bytes
                XCTAssertEqual(byteSum(t), 0, "\(name) checksum, \(cpus) cpus")
                XCTAssertEqual(Int(le32(t, 4)), t.count, "\(name) length")
                XCTAssertEqual(ascii(t, 10, 6), "SWFTVM")
            }
            let mpf = try image.blob("MP floating pointer").bytes
            XCTAssertEqual(byteSum(mpf), 0)
            XCTAssertEqual(byteSum(try image.blob("MP configuration table").bytes), 0)
        }
    }

    func testPointersChainFromRSDPToEveryTable() throws {
        let image = try FirmwareImage(layout: sampleLayout(cpus: 2))
        XCTAssertEqual(image.rsdpAddress, 0xE_0000)
        let rsdp = try image.blob("RSDP")
        XCTAssertEqual(rsdp.guestAddress, 0xE_0000)
        XCTAssertEqual(le32(rsdp.bytes, 16), 0, "no RSDT")
        let xsdt = try XCTUnwrap(image.blob(at: le64(rsdp.bytes, 24)))
        XCTAssertEqual(xsdt.name, "XSDT")
        XCTAssertEqual(xsdt.bytes.count, 36 + 16)
        let pointed = (0..<2).map { image.blob(at: le64(xsdt.bytes, 36 + 8 * $0))?.name }
        XCTAssertEqual(pointed, ["FADT", "MADT"])
        let fadt = try image.blob("FADT")
        XCTAssertEqual(ascii(fadt.bytes, 0, 4), "FACP")
        XCTAssertEqual(image.blob(at: le64(fadt.bytes, 140))?.name, "DSDT", "X_DSDT")
        XCTAssertEqual(le32(fadt.bytes, 40), 0, "32-bit DSDT unused")
        XCTAssertEqual(ascii(try image.blob("MADT").bytes, 0, 4), "APIC")
    }

    func testTablesStayInTheirAreasWithoutOverlapping() throws {
        for cpus in [1, 8, 40, 41, 254] {
            let image = try FirmwareImage(layout: sampleLayout(cpus: cpus))
            let sorted = image.blobs.sorted { $0.guestAddress < $1.guestAddress }
            for (a, b) in zip(sorted, sorted.dropFirst()) {
                XCTAssertLessThanOrEqual(a.end, b.guestAddress, "\(a.name) overlaps \(b.name)")
            }
            for b in image.blobs {
                XCTAssertEqual(b.guestAddress % 16, 0, "\(b.name) alignment")
                let inACPI = b.guestAddress >= 0xE_0000 && b.end <= 0x10_0000
                let inMP = b.guestAddress >= 0x9_FC00 && b.end <= 0xA_0000
                XCTAssertTrue(inACPI || inMP, "\(b.name) at \(b.guestAddress)")
            }
            XCTAssertEqual(image.reservedRanges, [GuestRange(start: 0x9_FC00, size: 0x400)])
        }
    }

    func testFADTIsHardwareReducedWithSleepAndResetRegisters() throws {
        let f = try FirmwareImage(layout: sampleLayout(cpus: 1)).blob("FADT").bytes
        XCTAssertEqual(f.count, 276)
        XCTAssertEqual(f[8], 6, "major revision")
        XCTAssertEqual(f[131], 3, "minor revision")
        let flags = le32(f, 112)
        XCTAssertNotEqual(flags & 1 << 20, 0, "HW_REDUCED_ACPI")
        XCTAssertNotEqual(flags & 1 << 10, 0, "RESET_REG_SUP")
        XCTAssertEqual(le16(f, 46), 0, "no SCI")
        // Boot architecture: legacy devices and no VGA; 8042 and no-CMOS clear.
        XCTAssertEqual(le16(f, 109), 0b101)
        // GAS: space 1 (I/O), 8 bits, offset 0, byte access, address.
        XCTAssertEqual(Array(f[116..<128]), [1, 8, 0, 1, 0x64, 0, 0, 0, 0, 0, 0, 0], "RESET_REG")
        XCTAssertEqual(f[128], 0xFE, "RESET_VALUE")
        XCTAssertEqual(Array(f[244..<256]), [1, 8, 0, 1, 0x00, 0x06, 0, 0, 0, 0, 0, 0], "SLEEP_CONTROL_REG")
        XCTAssertEqual(Array(f[256..<268]), [1, 8, 0, 1, 0x01, 0x06, 0, 0, 0, 0, 0, 0], "SLEEP_STATUS_REG")
        XCTAssertEqual(ascii(f, 268, 8), "SWIFTVMM", "hypervisor vendor")
        XCTAssertTrue(f[148..<244].allSatisfy { $0 == 0 }, "no fixed-hardware register blocks")
    }

    func testMADTHasOneEnabledLocalAPICPerCPUAndTheIOAPIC() throws {
        for cpus in [1, 2, 8] {
            let m = try FirmwareImage(layout: sampleLayout(cpus: cpus)).blob("MADT").bytes
            XCTAssertEqual(le32(m, 36), 0xFEE0_0000)
            XCTAssertEqual(le32(m, 40), 1, "PCAT_COMPAT")
            var lapicIDs: [UInt8] = [], ioapics: [(id: UInt8, address: UInt32, base: UInt32)] = []
            var overrides: [(UInt8, UInt32)] = [], nmis: [(UInt8, UInt8)] = []
            var o = 44
            while o < m.count {
                let type = m[o], len = Int(m[o + 1])
                XCTAssertGreaterThan(len, 0)
                switch type {
                case 0:
                    XCTAssertEqual(len, 8)
                    XCTAssertEqual(m[o + 2], m[o + 3], "UID = APIC id")
                    XCTAssertEqual(le32(m, o + 4), 1, "enabled")
                    lapicIDs.append(m[o + 3])
                case 1: ioapics.append((m[o + 2], le32(m, o + 4), le32(m, o + 8)))
                case 2: overrides.append((m[o + 3], le32(m, o + 4)))
                case 4: nmis.append((m[o + 2], m[o + 5]))
                default: XCTFail("unexpected MADT entry type \(type)")
                }
                o += len
            }
            XCTAssertEqual(o, m.count)
            XCTAssertEqual(lapicIDs, (0..<cpus).map { UInt8($0) })
            XCTAssertEqual(ioapics.count, 1)
            XCTAssertEqual(ioapics.first?.id, UInt8(cpus))
            XCTAssertEqual(ioapics.first?.address, 0xFEC0_0000)
            XCTAssertEqual(ioapics.first?.base, 0)
            XCTAssertEqual(overrides.map { $0.0 }, [0])
            XCTAssertEqual(overrides.map { $0.1 }, [2])
            XCTAssertEqual(nmis.map { $0.0 }, [0xFF])
            XCTAssertEqual(nmis.map { $0.1 }, [1])
        }
    }

    func testDSDTDeclaresTheDevicesAndS5() throws {
        let d = try FirmwareImage(layout: sampleLayout(cpus: 1)).blob("DSDT").bytes
        func contains(_ needle: [UInt8]) -> Bool {
            d.indices.contains { i in i + needle.count <= d.count && Array(d[i..<i + needle.count]) == needle }
        }
        XCTAssertTrue(contains([0x0C, 0x41, 0xD0, 0x05, 0x01]), "EisaId PNP0501")
        XCTAssertTrue(contains([0x0D] + Array("LNRO0005".utf8) + [0]))
        for (i, gsi) in [5, 6, 7].enumerated() {
            XCTAssertTrue(contains([0x86, 0x09, 0x00, 0x01] + littleEndianBytes(UInt32(0xD000_0000 + i * 0x1000)) + [0, 0x10, 0, 0]))
            XCTAssertTrue(contains([0x89, 0x06, 0x00, 0x03, 0x01, UInt8(gsi), 0, 0, 0]))
        }
        XCTAssertTrue(contains(Array("VR00".utf8)) && contains(Array("VR02".utf8)))
        XCTAssertTrue(contains([0x08, 0x5C] + Array("_S5_".utf8) + [0x12, 0x07, 0x04, 0x0A, 0x05]))
        XCTAssertTrue(contains([0x0C, 0x41, 0xD0, 0x0B, 0x00]), "EisaId PNP0B00")
        let noRTC = try DSDT.table(FirmwareLayout(cpuCount: 1, cmosRTC: false))
        XCTAssertFalse(noRTC.indices.contains { Array(noRTC[$0...].prefix(4)) == [0x41, 0xD0, 0x0B, 0x00] }, "no RTC when not asked")
        // Without optional devices only COM1, the RTC and \_S5_ remain.
        let bare = try DSDT.table(FirmwareLayout(cpuCount: 1))
        XCTAssertLessThan(bare.count, d.count)
    }

    /// What Linux does on `poweroff`, replayed against the sleep register device at the
    /// ports the FADT names, with the SLP_TYP the DSDT's \_S5_ gives: it must power off.
    func testLinuxPoweroffSequenceReachesTheSleepDevice() throws {
        let image = try FirmwareImage(layout: sampleLayout(cpus: 1))
        let fadt = try image.blob("FADT").bytes
        let control = UInt16(le64(fadt, 248)), status = UInt16(le64(fadt, 260))
        // docs/machine.md: sleep control at port 0x600, sleep status at 0x601.
        XCTAssertEqual(control, 0x600)
        XCTAssertEqual(status, 0x601)
        XCTAssertEqual(ACPISleepRegisters.controlPort, 0x600, "the device sits where the FADT points")
        let dsdt = try image.blob("DSDT").bytes
        let s5 = try XCTUnwrap((0..<dsdt.count - 11).first { Array(dsdt[$0..<$0 + 4]) == Array("_S5_".utf8) })
        XCTAssertEqual(Array(dsdt[s5 + 4..<s5 + 8]), [0x12, 0x07, 0x04, 0x0A], "Package (4) { BytePrefix …")
        let slpTyp = dsdt[s5 + 8]

        var poweredOff = 0
        let device = ACPISleepRegisters { poweredOff += 1 }
        let base: UInt16 = 0x600
        // acpi_hw_extended_sleep: clear WAK_STS, then SLP_TYP << 2 | SLP_EN, byte writes.
        device.write(offset: status - base, size: 1, value: 0x80)
        XCTAssertEqual(poweredOff, 0)
        let value = UInt32(slpTyp) << 2 & 0x1C | 0x20
        XCTAssertEqual(value, 0x34, "the byte the VMM sees at port 0x600")
        device.write(offset: control - base, size: 1, value: value)
        XCTAssertEqual(poweredOff, 1)
    }

    func testInvalidLayoutsAreRejectedWithTypedErrors() {
        func error(_ l: FirmwareLayout) -> FirmwareError? {
            do { _ = try FirmwareImage(layout: l); return nil } catch { return error as? FirmwareError }
        }
        XCTAssertEqual(error(FirmwareLayout(cpuCount: 0)), .invalidCPUCount(0))
        XCTAssertEqual(error(FirmwareLayout(cpuCount: 255)), .invalidCPUCount(255))
        XCTAssertEqual(error(FirmwareLayout(cpuCount: 1, virtioMMIO: [.init(base: 0xFFFF_F000, size: 0x2000, gsi: 5)])),
                       .windowNotBelow4GiB(device: "virtio-mmio device 0", base: 0xFFFF_F000, size: 0x2000))
        XCTAssertEqual(error(FirmwareLayout(cpuCount: 1, virtioMMIO: [.init(base: UInt64.max, size: 2, gsi: 5)])),
                       .windowNotBelow4GiB(device: "virtio-mmio device 0", base: UInt64.max, size: 2))
        XCTAssertEqual(error(FirmwareLayout(cpuCount: 1, serialMMIO: .init(base: 0xD100_0000, size: 0, gsi: nil))),
                       .windowNotBelow4GiB(device: "MMIO serial port", base: 0xD100_0000, size: 0))
        XCTAssertEqual(error(FirmwareLayout(cpuCount: 1, virtioMMIO: [.init(base: 0xD000_0000, size: 0x1000, gsi: 24)])),
                       .invalidGSI(device: "virtio-mmio device 0", gsi: 24))
        XCTAssertEqual(FirmwareError.invalidGSI(device: "virtio-mmio device 0", gsi: 24).description,
                       "firmware tables: virtio-mmio device 0 GSI 24 is above the IOAPIC's last pin 23")
    }

    func testWriteCopiesEveryBlobAndFailsNamingTheTableWhenMemoryIsMissing() throws {
        let image = try FirmwareImage(layout: sampleLayout(cpus: 2))
        let size = 0x10_0000
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        let memory = GuestMemory(borrowing: [MemoryRegion(guestAddress: 0, size: UInt64(size), host: buffer)])
        try image.write(to: memory)
        for b in image.blobs {
            XCTAssertEqual(try memory.readBytes(at: b.guestAddress, count: b.bytes.count), b.bytes, b.name)
        }
        // Only the first 640 KiB: the MP table fits, the ACPI tables do not.
        let low = GuestMemory(borrowing: [MemoryRegion(guestAddress: 0, size: 0xA_0000, host: buffer)])
        XCTAssertThrowsError(try image.write(to: low)) { e in
            guard case .notInGuestMemory(let table, let address, _, _)? = e as? FirmwareError else {
                return XCTFail("\(e)")
            }
            XCTAssertEqual(table, "RSDP")
            XCTAssertEqual(address, 0xE_0000)
            XCTAssertTrue("\(e)".contains("RSDP"))
        }
    }
}
