/// The Fixed ACPI Description Table, revision 6.3 (ACPI 6.5 §5.2.9), for a
/// hardware-reduced machine: no PM1/GPE blocks, no SCI, no FACS. Power-off goes through
/// the sleep control register instead (see `SleepRegisters`).
enum FADT {
    static let length = 276
    static let revision: UInt8 = 6
    static let minorRevision: UInt8 = 3

    // Flags (offset 112).
    static let flagWBINVD: UInt32 = 1 << 0  // WBINVD works (mandatory for ACPI 1.0+ OSes)
    static let flagResetRegSupported: UInt32 = 1 << 10  // RESET_REG/RESET_VALUE are valid
    static let flagHardwareReduced: UInt32 = 1 << 20  // HW_REDUCED_ACPI

    // IA-PC boot architecture flags (offset 109).
    static let bootLegacyDevices: UInt16 = 1 << 0  // user-visible ISA/LPC devices (COM1, CMOS)
    static let boot8042: UInt16 = 1 << 1  // a full PS/2 keyboard controller
    static let bootNoVGA: UInt16 = 1 << 2
    static let bootNoMSI: UInt16 = 1 << 3
    static let bootNoASPM: UInt16 = 1 << 4
    static let bootNoCMOSRTC: UInt16 = 1 << 5

    /// COM1 and the CMOS RTC are real, so LEGACY_DEVICES is set and NO_CMOS_RTC clear.
    /// The i8042 at 0x60/0x64 is only a reset latch with no keyboard or mouse behind it:
    /// leaving 8042 clear makes Linux mark it firmware-absent and skip a slow, pointless
    /// PS/2 probe; resets still reach port 0x64 through RESET_REG (and `reboot=k` writes
    /// the port directly, ignoring this flag). There is no VGA. MSI and ASPM are left
    /// clear: there is no PCI today, and those bits would outlive it.
    static let bootArchitectureFlags: UInt16 = bootLegacyDevices | bootNoVGA

    /// "SWIFTVMM" as the Hypervisor Vendor Identity (offset 268).
    static let hypervisorVendor: UInt64 = Array("SWIFTVMM".utf8).enumerated()
        .reduce(0) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }

    static func table(dsdtAddress: UInt64) -> [UInt8] {
        var t = TableBytes([UInt8](repeating: 0, count: length))
        // 36 FIRMWARE_CTRL, 40 DSDT: 0 — no FACS on hardware-reduced; X_DSDT is used.
        // 45 Preferred_PM_Profile 0 (unspecified); 46 SCI_INT 0: no SCI on HW-reduced.
        // 48-108: SMI_CMD, PM1/PM2/PM timer/GPE blocks: all 0 (absent).
        t.set16(bootArchitectureFlags, at: 109)
        t.set32(flagWBINVD | flagResetRegSupported | flagHardwareReduced, at: 112)
        put(GenericAddress.ioPort8(FirmwarePorts.resetRegister), at: 116, in: &t)  // RESET_REG
        t.bytes[128] = FirmwarePorts.resetValue  // RESET_VALUE
        // 129 ARM_BOOT_ARCH 0.
        t.bytes[131] = minorRevision  // FADT Minor Version
        // 132 X_FIRMWARE_CTRL 0.
        put64(dsdtAddress, at: 140, in: &t)  // X_DSDT
        // 148-243: X_PM1a_EVT … X_GPE1 blocks: all-zero GAS (absent).
        put(GenericAddress.ioPort8(FirmwarePorts.sleepControl), at: 244, in: &t)  // SLEEP_CONTROL_REG
        put(GenericAddress.ioPort8(FirmwarePorts.sleepStatus), at: 256, in: &t)  // SLEEP_STATUS_REG
        put64(hypervisorVendor, at: 268, in: &t)
        return systemDescriptionTable(signature: "FACP", revision: revision, body: Array(t.bytes[36...]))
    }

    private static func put(_ gas: GenericAddress, at offset: Int, in t: inout TableBytes) {
        var g = TableBytes()
        gas.append(to: &g)
        t.bytes.replaceSubrange(offset..<offset + 12, with: g.bytes)
    }

    private static func put64(_ v: UInt64, at offset: Int, in t: inout TableBytes) {
        t.bytes.replaceSubrange(offset..<offset + 8, with: littleEndianBytes(v))
    }
}
