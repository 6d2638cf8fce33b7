/// The GDT (at 0x500) and empty IDT the boot vCPU starts with. Linux's boot protocols
/// require __BOOT_CS = 0x10 and __BOOT_DS = 0x18; 0x08 is a flat 32-bit code segment for
/// the PVH entry, 0x20 a TSS (16 bytes in long mode) so TR holds a valid selector.
public enum BootGDT {
    public static let address: UInt64 = 0x500
    public static let code32Selector: UInt16 = 0x08
    public static let code64Selector: UInt16 = 0x10
    public static let dataSelector: UInt16 = 0x18
    public static let tssSelector: UInt16 = 0x20
    /// A null IDT: interrupts are off at entry and the kernel loads its own.
    public static let idtAddress: UInt64 = 0x530
    public static let idtLimit: UInt16 = 7

    /// Descriptors indexed by selector / 8.
    public static let descriptors: [UInt64] = [
        0,
        descriptor(SegmentState.code32),
        descriptor(SegmentState.code64),
        descriptor(SegmentState.data),
        descriptor(SegmentState.tss),
        0,  // upper half of the 16-byte long-mode TSS descriptor (base bits 63..32 = 0)
    ]
    public static var limit: UInt16 { UInt16(descriptors.count * 8 - 1) }

    /// Encode the hidden part of a segment register as an 8-byte descriptor.
    public static func descriptor(_ s: SegmentState) -> UInt64 {
        // Limit is stored in 4 KiB units when G is set.
        let raw = s.granularity ? UInt64(s.limit >> 12) : UInt64(s.limit & 0xFFFFF)
        var d = raw & 0xFFFF
        d |= (s.base & 0xFF_FFFF) << 16
        d |= UInt64(s.type & 0xF) << 40
        d |= (s.system ? 0 : 1) << 44
        d |= UInt64(s.dpl & 3) << 45
        d |= (s.present ? 1 : 0) << 47
        d |= ((raw >> 16) & 0xF) << 48
        d |= (s.available ? 1 : 0) << 52
        d |= (s.long ? 1 : 0) << 53
        d |= (s.defaultBig ? 1 : 0) << 54
        d |= (s.granularity ? 1 : 0) << 55
        d |= ((s.base >> 24) & 0xFF) << 56
        return d
    }

    public static func write(into memory: GuestMemory) throws {
        for (i, d) in descriptors.enumerated() { try memory.store(d, at: address + UInt64(i * 8)) }
        try memory.zero(at: idtAddress, length: UInt64(idtLimit) + 1)
    }
}
