/// One table, ready to copy into guest memory.
public struct FirmwareBlob: Equatable {
    /// What it is, for error messages: "RSDP", "DSDT", "MP configuration table" …
    public let name: String
    public let guestAddress: UInt64
    public let bytes: [UInt8]

    public var end: UInt64 { guestAddress + UInt64(bytes.count) }
}

/// A guest-physical range [start, start+size).
public struct GuestRange: Equatable {
    public let start: UInt64
    public let size: UInt64
    public var end: UInt64 { start + size }
}

/// Where firmware tables go (docs/machine.md).
public enum FirmwareAreas {
    /// ACPI: RSDP at the start, the other tables after it. Inside the legacy BIOS hole,
    /// which the e820 map already reserves.
    public static let acpi = GuestRange(start: 0xE_0000, size: 0x2_0000)
    /// The MP floating pointer (and the configuration table, when it fits): the last KiB
    /// of base memory, one of the places Linux scans. Usable RAM in e820 unless reserved.
    public static let mp = GuestRange(start: 0x9_FC00, size: 0x400)
}

/// The MP table and ACPI tables for a `FirmwareLayout`, placed at their guest addresses.
public struct FirmwareImage {
    /// Every table with its guest address, in address order within each area.
    public let blobs: [FirmwareBlob]
    /// The RSDP's address, for `boot_params.acpi_rsdp_addr` (Linux also finds it by scanning).
    public let rsdpAddress: UInt64
    public let mpFloatingPointerAddress: UInt64
    /// Ranges the tables occupy outside the 0xA0000–0xFFFFF hole: the e820 builder must
    /// mark these reserved (today 0x9FC00–0x9FFFF, so usable low RAM ends at 0x9FC00).
    public let reservedRanges: [GuestRange]

    public init(layout: FirmwareLayout) throws {
        try layout.validate()
        let ioapicID = UInt8(layout.cpuCount)  // after the CPUs' APIC ids 0…n-1

        // Tables whose bytes do not depend on where anything is placed.
        let dsdt = try DSDT.table(layout)
        let madt = MADT.table(cpuCount: layout.cpuCount, ioapicID: ioapicID)
        let mpConfig = MPTable.configurationTable(cpuCount: layout.cpuCount, ioapicID: ioapicID)

        // Lay out the ACPI area: RSDP, XSDT, FADT, MADT, DSDT, each 16-byte aligned.
        var cursor = FirmwareAreas.acpi.start
        func place(_ length: Int) -> UInt64 {
            let at = alignUp(cursor, 16)
            cursor = at + UInt64(length)
            return at
        }
        let rsdpAt = place(36)
        let xsdtAt = place(36 + 8 * 2)
        let fadtAt = place(FADT.length)
        let madtAt = place(madt.count)
        let dsdtAt = place(dsdt.count)

        // The configuration table follows the floating pointer if it fits in that KiB
        // (up to 40 vCPUs); otherwise it goes to the ACPI area, which the pointer allows.
        let mpAt = FirmwareAreas.mp.start
        let mpConfigAt: UInt64
        if MPTable.floatingPointerLength + mpConfig.count <= Int(FirmwareAreas.mp.size) {
            mpConfigAt = mpAt + UInt64(MPTable.floatingPointerLength)
        } else {
            mpConfigAt = place(mpConfig.count)
        }
        guard cursor <= FirmwareAreas.acpi.end else {
            throw FirmwareError.areaFull(area: "ACPI area \(hex(FirmwareAreas.acpi.start))–\(hex(FirmwareAreas.acpi.end - 1))",
                                         needed: cursor - FirmwareAreas.acpi.start, available: FirmwareAreas.acpi.size)
        }

        var acpi = [
            FirmwareBlob(name: "RSDP", guestAddress: rsdpAt, bytes: rootSystemDescriptionPointer(xsdtAddress: xsdtAt)),
            FirmwareBlob(name: "XSDT", guestAddress: xsdtAt, bytes: extendedSystemDescriptionTable(entries: [fadtAt, madtAt])),
            FirmwareBlob(name: "FADT", guestAddress: fadtAt, bytes: FADT.table(dsdtAddress: dsdtAt)),
            FirmwareBlob(name: "MADT", guestAddress: madtAt, bytes: madt),
            FirmwareBlob(name: "DSDT", guestAddress: dsdtAt, bytes: dsdt),
        ]
        let mpConfigBlob = FirmwareBlob(name: "MP configuration table", guestAddress: mpConfigAt, bytes: mpConfig)
        var mp = [FirmwareBlob(name: "MP floating pointer", guestAddress: mpAt,
                               bytes: MPTable.floatingPointer(configAddress: UInt32(truncatingIfNeeded: mpConfigAt)))]
        if FirmwareAreas.mp.contains(mpConfigAt) { mp.append(mpConfigBlob) } else { acpi.append(mpConfigBlob) }

        blobs = mp + acpi
        rsdpAddress = rsdpAt
        mpFloatingPointerAddress = mpAt
        reservedRanges = [FirmwareAreas.mp]
    }

    /// Copy every table into guest memory. Fails, naming the table and address, if guest
    /// memory does not back a table's whole range.
    public func write(to memory: GuestMemory) throws {
        for b in blobs {
            do {
                try memory.write(at: b.guestAddress, bytes: b.bytes)
            } catch let e as GuestMemoryError {
                throw FirmwareError.notInGuestMemory(table: b.name, address: b.guestAddress, length: b.bytes.count, reason: e)
            }
        }
    }
}

extension GuestRange {
    func contains(_ address: UInt64) -> Bool { address >= start && address < end }
}
