import KVMKit
import Synchronization

/// The transport's interrupt: InterruptStatus bits plus the line (an irqfd in a VM).
/// The bits are set before the line fires, so the driver's ISR read sees them. Atomic,
/// so a vCPU reading or acknowledging InterruptStatus never waits on device I/O.
public final class VirtioInterrupt {
    private let line: InterruptLine
    private let bits = Atomic<UInt32>(0)
    /// Interrupts raised (both kinds), for metrics.
    private let raised = Atomic<UInt64>(0)

    public init(line: InterruptLine) { self.line = line }

    public var status: UInt32 { bits.load(ordering: .acquiring) }
    public var count: UInt64 { raised.load(ordering: .relaxed) }

    public func signalUsedBuffer() { signal(VirtioInterruptBit.usedBuffer) }
    public func signalConfigChange() { signal(VirtioInterruptBit.configChange) }

    private func signal(_ bit: UInt32) {
        bits.bitwiseOr(bit, ordering: .sequentiallyConsistent)
        raised.wrappingAdd(1, ordering: .relaxed)
        line.trigger()
    }

    /// InterruptACK: clear the acknowledged bits.
    public func acknowledge(_ mask: UInt32) {
        bits.bitwiseAnd(~mask, ordering: .sequentiallyConsistent)
    }

    /// Put back InterruptStatus from a snapshot, without firing the line: the pending
    /// interrupt itself is in the restored irqchip state.
    func restoreStatus(_ status: UInt32) { bits.store(status, ordering: .sequentiallyConsistent) }

    func clear() { bits.store(0, ordering: .sequentiallyConsistent) }
}
