/// The ports the FADT promises and the VMM implements (docs/machine.md, "Port I/O").
///
/// Power-off: on a hardware-reduced machine Linux (`acpi_hw_extended_sleep`) first writes
/// WAK_STS (0x80) to the sleep status register, then `SLP_TYP << 2 | SLP_EN` to the sleep
/// control register, SLP_TYP being the first element of the DSDT's `\_S5_` package. With
/// SLP_TYP 5 that is **0x34 written as one byte to port 0x600** — what
/// `ACPISleepRegisters` (Devices/) turns into "guest poweroff". Both sides take the ports
/// and the sleep type from that device's constants.
///
/// Reset: RESET_REG is the i8042 command port and RESET_VALUE its pulse-reset command, so
/// `reboot` (ACPI reset, Linux's first choice) and `reboot=k` end up at the same `I8042`.
public enum FirmwarePorts {
    /// ACPI SLEEP_CONTROL_REG (8-bit, system I/O).
    public static let sleepControl: UInt16 = ACPISleepRegisters.controlPort
    /// ACPI SLEEP_STATUS_REG (8-bit, system I/O).
    public static let sleepStatus: UInt16 = ACPISleepRegisters.statusPort
    /// FADT RESET_REG: the i8042 command port.
    public static let resetRegister: UInt16 = 0x64
    /// FADT RESET_VALUE: the i8042 "pulse reset line" command.
    public static let resetValue: UInt8 = 0xFE
}
