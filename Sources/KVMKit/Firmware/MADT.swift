/// The Multiple APIC Description Table (ACPI 6.5 §5.2.12), revision 5: one enabled
/// Processor Local APIC per vCPU (APIC ids 0…n-1, matching the CPUID APIC ids the VMM
/// sets), the IOAPIC, ISA IRQ0 → GSI 2 (the PIT is wired to IOAPIC pin 2), and LINT1 as
/// NMI on every processor.
enum MADT {
    static let revision: UInt8 = 5
    static let flagPCATCompat: UInt32 = 1 << 0  // dual 8259s present (KVM's in-kernel PIC)

    static func table(cpuCount: Int, ioapicID: UInt8) -> [UInt8] {
        var t = TableBytes()
        t.u32(UInt32(truncatingIfNeeded: InterruptControllers.localAPICAddress))
        t.u32(flagPCATCompat)
        for cpu in 0..<cpuCount {
            t.u8(0); t.u8(8)  // Processor Local APIC
            t.u8(UInt8(truncatingIfNeeded: cpu))  // ACPI Processor UID
            t.u8(UInt8(truncatingIfNeeded: cpu))  // APIC ID
            t.u32(1)  // Flags: Enabled
        }
        t.u8(1); t.u8(12)  // I/O APIC
        t.u8(ioapicID)
        t.u8(0)
        t.u32(UInt32(truncatingIfNeeded: InterruptControllers.ioapicAddress))
        t.u32(0)  // Global System Interrupt Base
        t.u8(2); t.u8(10)  // Interrupt Source Override
        t.u8(0)  // Bus: ISA
        t.u8(0)  // Source: IRQ0
        t.u32(2)  // GSI 2
        t.u16(0)  // Flags: conforms to the bus (edge, active high)
        t.u8(4); t.u8(6)  // Local APIC NMI
        t.u8(0xFF)  // ACPI Processor UID: all processors
        t.u16(0)  // Flags: conforms to the bus
        t.u8(1)  // LINT1
        return systemDescriptionTable(signature: "APIC", revision: revision, body: t.bytes)
    }
}

/// Where the interrupt controllers live (docs/machine.md).
public enum InterruptControllers {
    public static let localAPICAddress: UInt64 = 0xFEE0_0000
    public static let ioapicAddress: UInt64 = 0xFEC0_0000
    /// Version registers of KVM's in-kernel LAPIC and IOAPIC, repeated in the MP table.
    static let localAPICVersion: UInt8 = 0x14
    static let ioapicVersion: UInt8 = 0x11
}
