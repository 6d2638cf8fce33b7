extension Serial16550 {
    /// Everything the guest can observe, as a value: capture it with `captureState()` and
    /// put it back with `restoreState(_:)` (snapshots, tests).
    public struct State: Equatable, Sendable {
        /// Divisor latch low byte (DLL).
        public var divisorLow: UInt8 = Serial16550.resetDivisor.low
        /// Divisor latch high byte (DLM).
        public var divisorHigh: UInt8 = Serial16550.resetDivisor.high
        /// Interrupt enable register (low nibble).
        public var interruptEnable: UInt8 = 0
        /// Last FIFO control value written (enable, DMA mode, trigger level).
        public var fifoControl: UInt8 = 0
        /// Line control register.
        public var lineControl: UInt8 = LCR.resetValue
        /// Modem control register (low five bits).
        public var modemControl: UInt8 = 0
        /// Sticky LSR error bits (overrun …) not yet cleared by an LSR read.
        public var lineStatusErrors: UInt8 = 0
        /// MSR delta bits not yet cleared by an MSR read.
        public var modemStatusDeltas: UInt8 = 0
        /// Scratch register.
        public var scratch: UInt8 = 0
        /// A THR-empty interrupt is pending (raised, not yet acknowledged).
        public var transmitterInterruptPending: Bool = false
        /// Received bytes not yet read by the guest, oldest first.
        public var receiveFIFO: [UInt8] = []

        public init() {}
    }

    /// Why a state could not be restored.
    public enum StateError: Error, Equatable, CustomStringConvertible {
        /// More received bytes than the receiver can hold in the captured FIFO mode.
        case receiveFIFOTooLong(count: Int, limit: Int)

        public var description: String {
            switch self {
            case let .receiveFIFOTooLong(count, limit):
                return "16550 state: receive FIFO holds \(count) bytes, more than the \(limit) "
                    + "the receiver holds in this FIFO mode"
            }
        }
    }
}
