/// The Differentiated System Description Table: AML declaring the devices a guest cannot
/// discover on its own, and the `\_S5_` soft-off sleep type. Debian's cloud kernel finds
/// virtio-mmio devices only here (`_HID` "LNRO0005", drivers/virtio/virtio_mmio.c).
enum DSDT {
    /// Revision 2: 64-bit AML integers.
    static let revision: UInt8 = 2

    static func table(_ layout: FirmwareLayout) throws -> [UInt8] {
        do {
            return systemDescriptionTable(signature: "DSDT", revision: revision, body: try AML.encode(terms(layout)))
        } catch let e as AMLError {
            throw FirmwareError.aml(e)
        }
    }

    static func terms(_ layout: FirmwareLayout) -> [AMLTerm] {
        var devices: [AMLTerm] = []
        if layout.com1 {
            devices.append(.device("COM1", [
                .name("_HID", .eisaID("PNP0501")),
                .name("_UID", .integer(1)),
                .name("_CRS", .resourceTemplate([
                    .io(minimum: 0x3F8, maximum: 0x3F8, alignment: 0, length: 8),
                    .irqNoFlags(4),
                ])),
            ]))
        }
        if layout.cmosRTC {
            // Without this, Linux registers its legacy rtc_cmos platform device with IRQ 8,
            // which a hardware-reduced machine (no legacy PIC) cannot map: the probe fails
            // with -EINVAL and there is no /dev/rtc0. Declared with no IRQ, rtc-cmos binds
            // without alarms — the CMOS model raises no interrupts anyway.
            devices.append(.device("RTC0", [
                .name("_HID", .eisaID("PNP0B00")),
                .name("_CRS", .resourceTemplate([.io(minimum: 0x70, maximum: 0x70, alignment: 1, length: 2)])),
            ]))
        }
        if layout.keyboard {
            // Linux's i8042 driver finds the controller through PNP only (the FADT of a
            // hardware-reduced machine does not promise one): without this there is no
            // keyboard, and Ctrl-Alt-Del from the API would go nowhere.
            devices.append(.device("KBD0", [
                .name("_HID", .eisaID("PNP0303")),
                .name("_CRS", .resourceTemplate([
                    .io(minimum: 0x60, maximum: 0x60, alignment: 1, length: 1),
                    .io(minimum: 0x64, maximum: 0x64, alignment: 1, length: 1),
                    .irqNoFlags(1),
                ])),
            ]))
        }
        if let uart = layout.serialMMIO {
            devices.append(.device("COM2", [
                .name("_HID", .eisaID("PNP0501")),
                .name("_UID", .integer(2)),
                .name("_CRS", .resourceTemplate([memory(uart)] + interrupt(uart))),
            ]))
        }
        for (i, dev) in layout.virtioMMIO.enumerated() {
            devices.append(.device(virtioDeviceName(i), [
                .name("_HID", .string("LNRO0005")),
                .name("_UID", .integer(UInt64(i))),
                .name("_CRS", .resourceTemplate([memory(dev)] + interrupt(dev))),
            ]))
        }
        return [
            .scope("\\_SB", devices),
            // Soft-off: SLP_TYPa = 5 (what the VMM recognises), SLP_TYPb unused, 2 reserved.
            .name("\\_S5", .package([.integer(UInt64(ACPISleepRegisters.poweroffSleepType)), .integer(0), .integer(0), .integer(0)])),
        ]
    }

    /// "VR00" … "VRFF".
    static func virtioDeviceName(_ index: Int) -> String {
        let digits = Array("0123456789ABCDEF")
        return "VR" + String(digits[(index >> 4) & 0xF]) + String(digits[index & 0xF])
    }

    private static func memory(_ w: FirmwareLayout.MMIOWindow) -> ResourceDescriptor {
        // Validated below 4 GiB by FirmwareLayout.validate().
        .memory32Fixed(readWrite: true, base: UInt32(truncatingIfNeeded: w.base), length: UInt32(truncatingIfNeeded: w.size))
    }

    private static func interrupt(_ w: FirmwareLayout.MMIOWindow) -> [ResourceDescriptor] {
        guard let gsi = w.gsi else { return [] }
        return [.interrupt(edge: true, activeLow: false, shared: false, gsi: gsi)]
    }
}
