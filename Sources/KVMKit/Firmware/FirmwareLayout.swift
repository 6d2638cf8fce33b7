/// What the firmware tables describe: the vCPUs and the devices the guest should find
/// through ACPI (and the MP table). Addresses and GSIs follow docs/machine.md; the
/// machine set-up code fills this in from the same allocation it wires the devices with.
public struct FirmwareLayout: Equatable, Sendable {
    /// An MMIO window with an interrupt, as the DSDT declares it.
    public struct MMIOWindow: Equatable, Sendable {
        public var base: UInt64
        public var size: UInt64
        /// The GSI (IOAPIC pin); `nil` only for a polled device.
        public var gsi: UInt32?

        public init(base: UInt64, size: UInt64, gsi: UInt32?) {
            self.base = base
            self.size = size
            self.gsi = gsi
        }
    }

    /// Number of vCPUs, 1…254: APIC ids are 0…n-1 and the IOAPIC takes id n.
    public var cpuCount: Int
    /// virtio-mmio devices in command-line order; each becomes an `LNRO0005` device.
    public var virtioMMIO: [MMIOWindow]
    /// The MMIO 16550 (`--serial-mmio`), declared as a second PNP0501; `nil` if absent.
    public var serialMMIO: MMIOWindow?
    /// Declare COM1 (port 0x3F8, IRQ 4).
    public var com1: Bool
    /// Declare the CMOS RTC (ports 0x70-0x71, no interrupt).
    public var cmosRTC: Bool
    /// The i8042 with its AT keyboard at ports 0x60/0x64, IRQ 1 (Ctrl-Alt-Del from the API).
    public var keyboard: Bool

    public init(cpuCount: Int, virtioMMIO: [MMIOWindow] = [], serialMMIO: MMIOWindow? = nil,
                com1: Bool = true, cmosRTC: Bool = true, keyboard: Bool = true) {
        self.cpuCount = cpuCount
        self.virtioMMIO = virtioMMIO
        self.serialMMIO = serialMMIO
        self.com1 = com1
        self.cmosRTC = cmosRTC
        self.keyboard = keyboard
    }

    public static let maxCPUCount = 254
    /// IOAPIC pins 0…23 (KVM's in-kernel IOAPIC).
    public static let maxGSI: UInt32 = 23

    /// Check everything the tables will encode, before encoding any of it.
    func validate() throws {
        guard (1...Self.maxCPUCount).contains(cpuCount) else { throw FirmwareError.invalidCPUCount(cpuCount) }
        for (i, w) in virtioMMIO.enumerated() { try w.validate(device: "virtio-mmio device \(i)") }
        try serialMMIO?.validate(device: "MMIO serial port")
        if virtioMMIO.count > 256 { throw FirmwareError.tooManyDevices(virtioMMIO.count) }
    }
}

extension FirmwareLayout.MMIOWindow {
    /// Memory32Fixed needs the whole window below 4 GiB; the IOAPIC has 24 pins.
    func validate(device: String) throws {
        let (end, overflow) = base.addingReportingOverflow(size)
        guard size > 0, !overflow, end <= 1 << 32 else {
            throw FirmwareError.windowNotBelow4GiB(device: device, base: base, size: size)
        }
        if let gsi, gsi > FirmwareLayout.maxGSI { throw FirmwareError.invalidGSI(device: device, gsi: gsi) }
    }
}
