/// The ports the firmware tables promise and the VMM must implement
/// (docs/machine.md, "Port I/O").
public enum FirmwarePorts {
    /// ACPI SLEEP_CONTROL_REG (8-bit, system I/O).
    public static let sleepControl: UInt16 = 0x600
    /// ACPI SLEEP_STATUS_REG (8-bit, system I/O).
    public static let sleepStatus: UInt16 = 0x601
    /// FADT RESET_REG: the i8042 command port.
    public static let resetRegister: UInt16 = 0x64
    /// FADT RESET_VALUE: the i8042 "pulse reset line" command.
    public static let resetValue: UInt8 = 0xFE
}

/// What a guest means by a byte written to the sleep control register
/// (ACPI 6.5 §4.8.3.7). On a hardware-reduced machine Linux powers off
/// (`acpi_hw_extended_sleep`) by first writing WAK_STS (0x80) to the sleep *status*
/// register, then `SLP_TYP << 2 | SLP_EN` to the control register, where SLP_TYP is the
/// first element of `\_S5_` — 5 here. So the VMM must treat **0x34 written to port
/// 0x600** (any value with SLP_EN set and SLP_TYP 5) as power-off.
public enum SleepControl {
    /// SLP_EN, bit 5: enter the sleep state in SLP_TYP.
    public static let sleepEnable: UInt8 = 1 << 5
    /// SLP_TYP, bits 4:2.
    public static let sleepTypeShift: UInt8 = 2
    public static let sleepTypeMask: UInt8 = 0x1C
    /// The SLP_TYP value the DSDT's `\_S5_` package gives for soft-off.
    public static let softOffType: UInt8 = 5
    /// WAK_STS, bit 7 of the status register.
    public static let wakeStatus: UInt8 = 1 << 7

    /// The byte Linux writes to power off: 0x34.
    public static let powerOffValue: UInt8 = softOffType << sleepTypeShift | sleepEnable

    /// Whether `value` written to the sleep control register asks for soft-off (S5).
    public static func isPowerOff(_ value: UInt8) -> Bool {
        value & sleepEnable != 0 && (value & sleepTypeMask) >> sleepTypeShift == softOffType
    }
}
