import CKVM

/// What the VM's in-kernel devices hold: the PIC pair and IOAPIC (KVM_GET_IRQCHIP), the
/// PIT (KVM_GET_PIT2) and kvm-clock (KVM_GET_CLOCK).
public struct VirtualMachineState: Sendable, StateCodable {
    /// Master PIC, slave PIC, IOAPIC (chip ids 0, 1, 2).
    public var irqchips: [kvm_irqchip]
    public var pit: kvm_pit_state2
    public var clock: kvm_clock_data

    public init(irqchips: [kvm_irqchip], pit: kvm_pit_state2, clock: kvm_clock_data) {
        self.irqchips = irqchips
        self.pit = pit
        self.clock = clock
    }

    public func encode(to w: inout StateWriter) {
        w.write(UInt32(irqchips.count))
        for c in irqchips { w.writePOD(c) }
        w.writePOD(pit)
        w.writePOD(clock)
    }

    public init(from r: inout StateReader) throws {
        let n = try r.read(UInt32.self, "irqchip count")
        guard n == 3 else { throw StateDecodingError.invalid(context: "\(r.context) irqchips", detail: "\(n) chips, expected 3") }
        irqchips = try (0..<3).map { i in
            let c = try r.readPOD(kvm_irqchip.self, "irqchip \(i)")
            guard c.chip_id == UInt32(i) else {
                throw StateDecodingError.invalid(context: "\(r.context) irqchip \(i)", detail: "chip id \(c.chip_id)")
            }
            return c
        }
        pit = try r.readPOD(kvm_pit_state2.self, "PIT")
        clock = try r.readPOD(kvm_clock_data.self, "kvm-clock")
    }
}

extension VirtualMachine {
    /// Capture the in-kernel irqchip, PIT and clock; vCPUs must be out of KVM_RUN.
    public func captureState() throws -> VirtualMachineState {
        let chips = try [KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE, KVM_IRQCHIP_IOAPIC].map { id -> kvm_irqchip in
            var c = kvm_irqchip()
            c.chip_id = UInt32(id)
            _ = try check("KVM_GET_IRQCHIP \(id)", ckvm_get_irqchip(fd, &c))
            return c
        }
        var pit = kvm_pit_state2()
        _ = try check("KVM_GET_PIT2", ckvm_get_pit2(fd, &pit))
        var clock = kvm_clock_data()
        _ = try check("KVM_GET_CLOCK", ckvm_get_clock(fd, &clock))
        return VirtualMachineState(irqchips: chips, pit: pit, clock: clock)
    }

    /// Put captured state on a VM whose irqchip and PIT exist, before any vCPU runs.
    public func restoreState(_ s: VirtualMachineState) throws {
        for var c in s.irqchips { _ = try check("KVM_SET_IRQCHIP \(c.chip_id)", ckvm_set_irqchip(fd, &c)) }
        var pit = s.pit
        _ = try check("KVM_SET_PIT2", ckvm_set_pit2(fd, &pit))
        // Only the clock value: the flags KVM_GET_CLOCK reports (TSC_STABLE …) are not
        // inputs, and KVM_CLOCK_REALTIME would move the clock by the time spent saved.
        var clock = kvm_clock_data()
        clock.clock = s.clock.clock
        _ = try check("KVM_SET_CLOCK", ckvm_set_clock(fd, &clock))
    }
}
