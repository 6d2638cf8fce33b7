/// Local APIC set-up every vCPU needs before it runs (as Firecracker and kvmtool do): LINT0
/// delivers ExtINT (the legacy PIC's output reaches the BSP in virtual-wire mode) and LINT1
/// delivers NMI. Pure: a transform of the 1 KiB register page KVM_GET_LAPIC returns.
public enum BootLAPIC {
    public static let lvtLINT0 = 0x350
    public static let lvtLINT1 = 0x360
    public static let deliveryModeMask: UInt32 = 0x700
    public static let deliveryModeExtINT: UInt32 = 0x700
    public static let deliveryModeNMI: UInt32 = 0x400

    /// `registers` is the 1024-byte kvm_lapic_state.regs; shorter input is left alone.
    public static func configureLINT(_ registers: inout [UInt8]) {
        guard registers.count >= lvtLINT1 + 4 else { return }
        for (offset, mode) in [(lvtLINT0, deliveryModeExtINT), (lvtLINT1, deliveryModeNMI)] {
            let old = ByteReader(bytes: registers).u32(offset) ?? 0
            registers.put((old & ~deliveryModeMask) | mode, at: offset)
        }
    }
}
