/// The hardware-reduced ACPI sleep control and status registers (ACPI 6.x §4.8.3.7) the
/// FADT points at: control at port 0x600, status at 0x601, 8 bits each. Writing SLP_EN
/// with SLP_TYP 5 — the `_S5_` value the DSDT declares — is a guest `poweroff`.
///
/// Other sleep types (S1–S4) are not modelled: the write "wakes" at once by setting
/// WAK_STS, which is what a guest polls for after entering a sleep state, so it simply
/// carries on. The poweroff handler runs on the vCPU thread, without the lock.
public final class ACPISleepRegisters: PortIODevice, @unchecked Sendable {
    /// Port of the sleep control register (the status register follows it).
    public static let controlPort: UInt16 = 0x600
    /// Port of the sleep status register.
    public static let statusPort: UInt16 = 0x601
    /// SLP_TYP of `_S5_` (soft off); the DSDT's `_S5_` package must carry this value.
    public static let poweroffSleepType: UInt8 = 5

    /// Register offsets from `controlPort`.
    enum Offset {
        /// Sleep control register.
        static let control: UInt16 = 0
        /// Sleep status register.
        static let status: UInt16 = 1
    }

    /// Sleep control register: SLP_TYPx field (bits 2–4).
    static let sleepTypeMask: UInt8 = 0x1C
    /// Sleep control register: position of SLP_TYPx.
    static let sleepTypeShift: UInt8 = 2
    /// Sleep control register: SLP_EN, enter the sleep state in SLP_TYPx (write-only).
    static let sleepEnable: UInt8 = 0x20
    /// Sleep status register: WAK_STS, set on wake; write 1 to clear.
    static let wakeStatus: UInt8 = 0x80

    private let lock = Lock()
    private let poweroffHandler: () -> Void
    private var status: UInt8 = 0

    /// `onPoweroff` should make the VMM stop the machine and exit 0, then return.
    public init(onPoweroff: @escaping () -> Void) {
        poweroffHandler = onPoweroff
    }

    /// The sleep status register (WAK_STS), the only state there is.
    public var sleepStatus: UInt8 {
        get { lock.withLock { status } }
        set { lock.withLock { status = newValue & ACPISleepRegisters.wakeStatus } }
    }

    public func read(offset: UInt16, size: Int) -> UInt32 {
        var value: UInt32 = 0
        for i in 0..<max(1, min(size, 4)) {
            value |= UInt32(readByte(offset &+ UInt16(i))) << (8 * UInt32(i))
        }
        return value
    }

    public func write(offset: UInt16, size: Int, value: UInt32) {
        var poweroff = false
        for i in 0..<max(1, min(size, 4)) {
            let byte = UInt8(truncatingIfNeeded: value >> (8 * UInt32(i)))
            poweroff = writeByte(offset &+ UInt16(i), byte) || poweroff
        }
        if poweroff { poweroffHandler() }
    }

    private func readByte(_ offset: UInt16) -> UInt8 {
        switch offset {
        case Offset.control: return 0  // SLP_EN reads as 0; SLP_TYP is not latched
        case Offset.status: return lock.withLock { status }
        default: return 0xFF
        }
    }

    /// Returns whether the write powers the machine off.
    private func writeByte(_ offset: UInt16, _ byte: UInt8) -> Bool {
        switch offset {
        case Offset.control:
            guard byte & ACPISleepRegisters.sleepEnable != 0 else { return false }
            let type = (byte & ACPISleepRegisters.sleepTypeMask) >> ACPISleepRegisters.sleepTypeShift
            if type == ACPISleepRegisters.poweroffSleepType { return true }
            lock.withLock { status |= ACPISleepRegisters.wakeStatus }  // slept and woke at once
            return false
        case Offset.status:
            lock.withLock { status &= ~(byte & ACPISleepRegisters.wakeStatus) }
            return false
        default:
            return false
        }
    }
}
