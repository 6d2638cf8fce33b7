/// The hidden part of a segment register, as KVM's `struct kvm_segment` holds it.
public struct SegmentState: Equatable, Sendable {
    public var base: UInt64 = 0
    /// Byte-granular limit (0xFFFF_FFFF for a flat 4 GiB segment).
    public var limit: UInt32 = 0xFFFF_FFFF
    public var selector: UInt16 = 0
    /// Descriptor type nibble (0xB: code execute/read accessed, 0x3: data read/write
    /// accessed, 0xB with `system`: busy TSS).
    public var type: UInt8 = 0
    public var present = true
    public var dpl: UInt8 = 0
    /// D/B: 32-bit default operand size.
    public var defaultBig = false
    /// S clear: a system segment (TSS, LDT).
    public var system = false
    /// L: 64-bit code.
    public var long = false
    public var granularity = true
    public var available = false
    public var unusable = false

    public static let code64 = SegmentState(selector: BootGDT.code64Selector, type: 0xB, long: true)
    public static let code32 = SegmentState(selector: BootGDT.code32Selector, type: 0xB, defaultBig: true)
    public static let data = SegmentState(selector: BootGDT.dataSelector, type: 0x3, defaultBig: true)
    public static let tss = SegmentState(limit: 0x67, selector: BootGDT.tssSelector, type: 0xB,
                                         system: true, granularity: false)
    /// LDT not used: selector 0, marked unusable.
    public static let noLDT = SegmentState(limit: 0xFFFF, type: 0x2, present: false, system: true,
                                           granularity: false, unusable: true)
}

/// Register state of the boot vCPU at kernel entry, as pure values. The machine copies it
/// into kvm_sregs / kvm_regs (see EntryState+KVM.swift) on top of what KVM_GET_SREGS
/// returned (which keeps apic_base).
public struct EntryState: Equatable {
    public var cs: SegmentState
    public var ds: SegmentState
    public var es: SegmentState
    public var fs: SegmentState
    public var gs: SegmentState
    public var ss: SegmentState
    public var tr = SegmentState.tss
    public var ldt = SegmentState.noLDT
    public var gdtBase = BootGDT.address
    public var gdtLimit = BootGDT.limit
    public var idtBase = BootGDT.idtAddress
    public var idtLimit = BootGDT.idtLimit
    public var cr0: UInt64
    public var cr3: UInt64
    public var cr4: UInt64
    public var efer: UInt64
    public var rip: UInt64
    public var rsi: UInt64 = 0
    public var rbx: UInt64 = 0
    public var rsp: UInt64 = bootStackTop
    /// Bit 1 is always set; IF clear (interrupts off at entry, as both protocols require).
    public var rflags: UInt64 = 0x2

    public static let cr0PE: UInt64 = 1 << 0
    public static let cr0ET: UInt64 = 1 << 4
    public static let cr0PG: UInt64 = 1 << 31
    public static let cr4PAE: UInt64 = 1 << 5
    public static let eferLME: UInt64 = 1 << 8
    public static let eferLMA: UInt64 = 1 << 10
    /// A small stack in the free page between boot_params (0x7000) and the PML4 (0x9000).
    /// Neither protocol requires one; it keeps a stray push before the kernel sets its own
    /// stack inside RAM.
    public static let bootStackTop: UInt64 = 0x8FF0

    /// Linux 64-bit boot protocol: long mode, identity-paged (BootPageTables), CS 0x10,
    /// DS/ES/SS 0x18, RSI = boot_params. `entry` is startup_64 (bzImage: load + 0x200).
    public static func linux64(entry: UInt64, bootParams: UInt64 = LinuxLoader.bootParamsAddress) -> EntryState {
        EntryState(cs: .code64, ds: .data, es: .data, fs: .data, gs: .data, ss: .data,
                   cr0: cr0PE | cr0ET | cr0PG, cr3: BootPageTables.pml4, cr4: cr4PAE,
                   efer: eferLME | eferLMA, rip: entry, rsi: bootParams)
    }

    /// PVH entry: 32-bit protected mode, paging off, flat CS (0x08) and data (0x18),
    /// EBX = hvm_start_info.
    public static func pvh32(entry: UInt32, startInfo: UInt64 = PVHStartInfo.address) -> EntryState {
        EntryState(cs: .code32, ds: .data, es: .data, fs: .data, gs: .data, ss: .data,
                   cr0: cr0PE | cr0ET, cr3: 0, cr4: 0, efer: 0, rip: UInt64(entry), rbx: startInfo)
    }
}
