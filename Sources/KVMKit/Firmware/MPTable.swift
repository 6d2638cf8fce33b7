/// The Intel MultiProcessor Specification 1.4 tables, for kernels built with
/// `X86_MPPARSE` that boot without ACPI: a 16-byte floating pointer structure and a
/// configuration table describing the same machine as the MADT.
enum MPTable {
    static let floatingPointerLength = 16
    static let headerLength = 44
    static let specRevision: UInt8 = 4  // 1.4

    // Entry types, in the order the specification requires them.
    static let processorEntry: UInt8 = 0, busEntry: UInt8 = 1, ioapicEntry: UInt8 = 2
    static let ioInterruptEntry: UInt8 = 3, localInterruptEntry: UInt8 = 4
    // Interrupt types.
    static let intINT: UInt8 = 0, intNMI: UInt8 = 1, intExtINT: UInt8 = 3

    /// ISA IRQs routed to IOAPIC pins: IRQ0 (the PIT) goes to pin 2, like the MADT's
    /// override; IRQ2 is the 8259 cascade and has no entry of its own.
    static let isaRouting: [(irq: UInt8, pin: UInt8)] =
        [(0, 2), (1, 1)] + (3...15).map { (UInt8($0), UInt8($0)) }

    /// The floating pointer structure pointing at a configuration table at `configAddress`.
    static func floatingPointer(configAddress: UInt32) -> [UInt8] {
        var t = TableBytes()
        t.ascii("_MP_", length: 4)
        t.u32(configAddress)
        t.u8(1)  // Length in 16-byte paragraphs
        t.u8(specRevision)
        t.u8(0)  // Checksum
        t.u8(0)  // Feature byte 1: 0 = a configuration table is present
        t.u8(0)  // Feature byte 2: IMCRP clear = virtual wire mode, no IMCR
        t.zeros(3)
        t.fixChecksum(at: 10, over: 0..<16)
        return t.bytes
    }

    static func configurationTableLength(cpuCount: Int) -> Int {
        headerLength + 20 * cpuCount + 8 + 8 + 8 * isaRouting.count + 8 * 2
    }

    /// The configuration table: header, then entries sorted by type.
    static func configurationTable(cpuCount: Int, ioapicID: UInt8) -> [UInt8] {
        var t = TableBytes()
        t.ascii("PCMP", length: 4)
        t.u16(0)  // Base table length, fixed below
        t.u8(specRevision)
        t.u8(0)  // Checksum
        t.ascii("SWIFTVMM", length: 8)  // OEM id
        t.ascii("SWIFTVMM", length: 12)  // Product id
        t.u32(0)  // OEM table pointer
        t.u16(0)  // OEM table size
        t.u16(0)  // Entry count, fixed below
        t.u32(UInt32(truncatingIfNeeded: InterruptControllers.localAPICAddress))
        t.u16(0)  // Extended table length
        t.u8(0)  // Extended table checksum
        t.u8(0)
        var entries: UInt16 = 0

        for cpu in 0..<cpuCount {
            t.u8(processorEntry)
            t.u8(UInt8(truncatingIfNeeded: cpu))  // Local APIC id
            t.u8(InterruptControllers.localAPICVersion)
            t.u8(cpu == 0 ? 0x03 : 0x01)  // CPU flags: EN, and BP on the bootstrap processor
            t.u32(0x600)  // CPU signature: family 6
            t.u32(0x201)  // Feature flags: FPU, APIC
            t.zeros(8)
            entries += 1
        }
        t.u8(busEntry)
        t.u8(0)  // Bus id 0
        t.ascii("ISA", length: 6)
        entries += 1
        t.u8(ioapicEntry)
        t.u8(ioapicID)
        t.u8(InterruptControllers.ioapicVersion)
        t.u8(0x01)  // Flags: EN
        t.u32(UInt32(truncatingIfNeeded: InterruptControllers.ioapicAddress))
        entries += 1
        for (irq, pin) in isaRouting {
            t.u8(ioInterruptEntry)
            t.u8(intINT)
            t.u16(0)  // Flags: conforms to the bus (ISA: edge, active high)
            t.u8(0)  // Source bus id: ISA
            t.u8(irq)
            t.u8(ioapicID)
            t.u8(pin)
            entries += 1
        }
        for (type, lint) in [(intExtINT, UInt8(0)), (intNMI, UInt8(1))] {
            t.u8(localInterruptEntry)
            t.u8(type)
            t.u16(0)
            t.u8(0)  // Source bus id
            t.u8(0)  // Source bus IRQ
            t.u8(0xFF)  // Destination: all local APICs
            t.u8(lint)
            entries += 1
        }
        t.set16(UInt16(t.count), at: 4)
        t.set16(entries, at: 34)
        t.fixChecksum(at: 7, over: 0..<t.count)
        return t.bytes
    }
}
