/// ACPI resource descriptors for a `_CRS` ResourceTemplate (ACPI 6.5 §6.4).
public enum ResourceDescriptor: Equatable {
    /// `IO (Decode16, min, max, alignment, length)`: small item 0x47, 16-bit decode.
    case io(minimum: UInt16, maximum: UInt16, alignment: UInt8, length: UInt8)
    /// `IRQNoFlags () {irq}`: small item 0x22; edge, active high, exclusive. ISA IRQ 0-15.
    case irqNoFlags(UInt8)
    /// `Memory32Fixed (ReadWrite|ReadOnly, base, length)`: large item 0x86.
    case memory32Fixed(readWrite: Bool, base: UInt32, length: UInt32)
    /// `Interrupt (ResourceConsumer, Edge|Level, ActiveHigh|ActiveLow, Exclusive|Shared) {gsi}`:
    /// the extended interrupt descriptor, large item 0x89, one interrupt, no resource source.
    case interrupt(edge: Bool, activeLow: Bool, shared: Bool, gsi: UInt32)

    func encode() throws -> [UInt8] {
        switch self {
        case .io(let min, let max, let align, let len):
            // Information byte bit 0: the device decodes 16 address bits.
            return [0x47, 0x01] + littleEndianBytes(min) + littleEndianBytes(max) + [align, len]
        case .irqNoFlags(let irq):
            guard irq < 16 else { throw AMLError.invalidISAIRQ(irq) }
            let mask: UInt16 = 1 << UInt16(irq)
            return [0x22] + littleEndianBytes(mask)
        case .memory32Fixed(let rw, let base, let length):
            return [0x86] + littleEndianBytes(UInt16(9)) + [rw ? 1 : 0]
                + littleEndianBytes(base) + littleEndianBytes(length)
        case .interrupt(let edge, let activeLow, let shared, let gsi):
            // Flags: bit 0 consumer, bit 1 edge, bit 2 active low, bit 3 shared.
            let flags: UInt8 = 0x01 | (edge ? 0x02 : 0) | (activeLow ? 0x04 : 0) | (shared ? 0x08 : 0)
            return [0x89] + littleEndianBytes(UInt16(6)) + [flags, 1] + littleEndianBytes(gsi)
        }
    }

    /// The descriptors followed by an End Tag (0x79) whose checksum byte is 0, which
    /// means "treat as checksummed" — what iasl itself emits.
    static func template(_ descriptors: [ResourceDescriptor]) throws -> [UInt8] {
        try descriptors.flatMap { try $0.encode() } + [0x79, 0x00]
    }
}
