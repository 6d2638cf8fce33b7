/// A device on the port-I/O bus. `offset` is relative to the base port the device was
/// attached at, so one model can sit at any address. Accesses are 1, 2 or 4 bytes.
/// Calls may come from several vCPU threads: a device serialises its own state.
public protocol PortIODevice: AnyObject {
    func read(offset: UInt16, size: Int) -> UInt32
    func write(offset: UInt16, size: Int, value: UInt32)
}

/// A device on the MMIO bus; `offset` is relative to the window base. Accesses are
/// 1, 2, 4 or 8 bytes.
public protocol MMIODevice: AnyObject {
    func read(offset: UInt64, size: Int) -> UInt64
    func write(offset: UInt64, size: Int, value: UInt64)
}

/// An interrupt request line as a device model sees it. The machine decides whether it
/// ends in `KVM_IRQ_LINE`, an irqfd or a test recorder.
public protocol InterruptLine: AnyObject {
    /// Drive the line to `high` (level semantics; an edge-triggered pin fires on 0→1).
    func setLevel(_ high: Bool)
    /// Signal one edge-triggered interrupt.
    func trigger()
}

extension InterruptLine {
    public func trigger() {
        setLevel(true)
        setLevel(false)
    }
}
