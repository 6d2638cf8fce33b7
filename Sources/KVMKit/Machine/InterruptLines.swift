/// An interrupt line driven with KVM_IRQ_LINE on the in-kernel PIC/IOAPIC (legacy ISA
/// devices such as COM1, whose level follows the device's pending state).
public final class KVMIRQLine: InterruptLine, @unchecked Sendable {
    private let vm: VirtualMachine
    public let gsi: UInt32

    public init(vm: VirtualMachine, gsi: UInt32) {
        self.vm = vm
        self.gsi = gsi
    }

    public func setLevel(_ high: Bool) {
        // Fails only if the irqchip is gone, i.e. the VM is being torn down.
        try? vm.setIRQLine(gsi, high: high)
    }
}

/// An edge interrupt through an irqfd: one eventfd write, no ioctl, callable from any
/// thread (virtio devices on the event loop).
public final class IRQFDLine: InterruptLine, @unchecked Sendable {
    public let eventFD: EventFD
    public let gsi: UInt32

    public init(vm: VirtualMachine, gsi: UInt32) throws {
        eventFD = try EventFD()
        self.gsi = gsi
        try vm.registerIRQFD(eventFD: eventFD.fd, gsi: gsi)
    }

    public func setLevel(_ high: Bool) {
        if high { eventFD.signal() }
    }

    public func trigger() { eventFD.signal() }
}
