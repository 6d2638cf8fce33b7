/// MSR values for every vCPU at start (as Firecracker and QEMU set them): syscall MSRs
/// cleared, TSC 0, fast strings on, MTRRs enabled with write-back default so the guest
/// does not run uncached. The machine should check KVM_SET_MSRS' count: an MSR KVM
/// refuses (PVM hosts differ) is worth a warning, not a failed boot.
public enum BootMSRs {
    public static let sysenterCS: UInt32 = 0x174
    public static let sysenterESP: UInt32 = 0x175
    public static let sysenterEIP: UInt32 = 0x176
    public static let star: UInt32 = 0xC000_0081
    public static let lstar: UInt32 = 0xC000_0082
    public static let cstar: UInt32 = 0xC000_0083
    public static let syscallMask: UInt32 = 0xC000_0084
    public static let kernelGSBase: UInt32 = 0xC000_0102
    public static let tsc: UInt32 = 0x10
    public static let miscEnable: UInt32 = 0x1A0
    public static let mtrrDefType: UInt32 = 0x2FF

    public static let miscEnableFastStrings: UInt64 = 1 << 0
    public static let mtrrEnable: UInt64 = 1 << 11
    public static let mtrrTypeWriteBack: UInt64 = 6

    public static let entries: [(index: UInt32, value: UInt64)] = [
        (sysenterCS, 0), (sysenterESP, 0), (sysenterEIP, 0),
        (star, 0), (lstar, 0), (cstar, 0), (syscallMask, 0), (kernelGSBase, 0),
        (tsc, 0),
        (miscEnable, miscEnableFastStrings),
        (mtrrDefType, mtrrEnable | mtrrTypeWriteBack),
    ]
}

/// x87/SSE control state at start: FCW 0x37F (all exceptions masked, 64-bit precision)
/// and MXCSR 0x1F80 (all SIMD exceptions masked), the power-on values Linux expects.
public struct FPUState: Equatable {
    public var fcw: UInt16 = 0x37F
    public var mxcsr: UInt32 = 0x1F80
    public init() {}
}
