/// Identity page tables for the 64-bit entry: PML4 at 0x9000, one PDPT at 0xA000 and
/// four page directories at 0xB000–0xEFFF mapping the first 4 GiB with 2 MiB pages, so
/// the kernel, boot_params, the command line and the LAPIC/IOAPIC are all reachable.
public enum BootPageTables {
    public static let pml4: UInt64 = 0x9000
    public static let pdpt: UInt64 = 0xA000
    public static let firstPD: UInt64 = 0xB000
    public static let pageDirectories = 4
    /// First byte after the tables (0xF000).
    public static let end: UInt64 = firstPD + UInt64(pageDirectories) * 0x1000
    public static let identityMappedBytes: UInt64 = UInt64(pageDirectories) << 30

    static let present: UInt64 = 1 << 0
    static let writable: UInt64 = 1 << 1
    static let pageSize: UInt64 = 1 << 7  // PS: a 2 MiB page in a PD entry

    /// The 8-byte entries, as (guest address, value), zero entries omitted. Pure.
    public static func entries() -> [(address: UInt64, value: UInt64)] {
        var out: [(address: UInt64, value: UInt64)] = [(pml4, pdpt | present | writable)]
        for d in 0..<UInt64(pageDirectories) {
            let pd = firstPD + d * 0x1000
            out.append((pdpt + d * 8, pd | present | writable))
            for i in 0..<UInt64(512) {
                let physical = (d << 30) | (i << 21)
                out.append((pd + i * 8, physical | present | writable | pageSize))
            }
        }
        return out
    }

    /// Zero the table pages and write the entries. CR3 = `pml4`.
    public static func write(into memory: GuestMemory) throws {
        try memory.zero(at: pml4, length: end - pml4)
        for e in entries() { try memory.store(e.value, at: e.address) }
    }

    /// Walk the tables in `memory` as the CPU would (tests, diagnostics): the physical
    /// address `virtual` maps to, or nil when unmapped.
    public static func translate(_ virtual: UInt64, in memory: GuestMemory, cr3: UInt64 = pml4) throws -> UInt64? {
        let frame: UInt64 = 0x000F_FFFF_FFFF_F000
        let l4 = try memory.load(UInt64.self, at: (cr3 & frame) + ((virtual >> 39) & 0x1ff) * 8)
        guard l4 & present != 0 else { return nil }
        let l3 = try memory.load(UInt64.self, at: (l4 & frame) + ((virtual >> 30) & 0x1ff) * 8)
        guard l3 & present != 0 else { return nil }
        if l3 & pageSize != 0 { return (l3 & 0x000F_FFFF_C000_0000) | (virtual & 0x3FFF_FFFF) }
        let l2 = try memory.load(UInt64.self, at: (l3 & frame) + ((virtual >> 21) & 0x1ff) * 8)
        guard l2 & present != 0 else { return nil }
        if l2 & pageSize != 0 { return (l2 & 0x000F_FFFF_FFE0_0000) | (virtual & 0x1F_FFFF) }
        let l1 = try memory.load(UInt64.self, at: (l2 & frame) + ((virtual >> 12) & 0x1ff) * 8)
        guard l1 & present != 0 else { return nil }
        return (l1 & frame) | (virtual & 0xFFF)
    }
}
