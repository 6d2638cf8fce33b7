/// A 16550A UART: every register of the PC16550D (RBR/THR, IER, IIR/FCR, LCR, MCR, LSR,
/// MSR, SCR, divisor latch), a receive FIFO and interrupt-driven operation. The same model
/// sits on the port bus (COM1 at 0x3F8) or in an MMIO window with 1-byte registers.
///
/// Transmission is instantaneous: a byte written to THR goes to the `SerialOutput` at once
/// (or, in loopback, to the receiver), so THRE and TEMT always read 1 and a THR-empty
/// interrupt is re-raised right after each write, as QEMU does.
///
/// Receive side: the FIFO holds `receiveFIFOCapacity` (64) bytes — a 16750's depth,
/// though the UART identifies as a 16550A (16-byte trigger levels 1/4/8/14, no 64-byte
/// mode bit). With FIFOs disabled it holds 1 byte, as RBR does. The host offers bytes with
/// `enqueueInput(_:)`, which takes only what fits, so nothing is lost: the host keeps the
/// rest and retries when the input-space handler fires. There is no baud-rate clock, so
/// the character timeout is immediate: data below the trigger level is reported at once
/// as a timeout interrupt (IIR 0x0C), data at or above it as IIR 0x04.
///
/// Interrupts: the model computes whether an enabled source is pending and drives the
/// `InterruptLine` level on every change (MCR.OUT2 does not gate it, as in QEMU).
///
/// Threads: vCPU threads call `read`/`write`, a console thread calls `enqueueInput`; a
/// lock serialises them. The output sink and the interrupt line are called with the lock
/// held (that keeps bytes and edges in order) and must not block or re-enter the UART;
/// the input-space handler is called after the lock is released and may call
/// `enqueueInput`.
public final class Serial16550: PortIODevice, MMIODevice, @unchecked Sendable {
    /// Receive FIFO depth in bytes with FIFOs enabled.
    public static let receiveFIFOCapacity = 64
    /// Divisor after reset: 12, i.e. 9600 baud from the 1.8432 MHz clock.
    static let resetDivisor: (low: UInt8, high: UInt8) = (0x0C, 0x00)

    /// When the host may put bytes in the receive FIFO.
    public enum InputFlowControl: Sendable {
        /// Whenever there is room (and the UART is not in loopback).
        case always
        /// Only while the guest asserts MCR.RTS, as a terminal honouring RTS/CTS would.
        /// Linux raises RTS when a process opens the port and its 8250 driver clears the
        /// FIFO while probing and starting up, so bytes offered before then would be
        /// thrown away by the guest; with this setting they wait on the host side.
        case requestToSend
    }

    private let lock = Lock()
    private let interrupt: InterruptLine
    private let output: SerialOutput
    private let flowControl: InputFlowControl
    private var inputSpaceHandler: (() -> Void)?

    // Registers (see `State` for what each holds).
    private var divisorLow = Serial16550.resetDivisor.low
    private var divisorHigh = Serial16550.resetDivisor.high
    private var interruptEnable: UInt8 = 0
    private var fifoControl: UInt8 = 0
    private var lineControl: UInt8 = LCR.resetValue
    private var modemControl: UInt8 = 0
    private var lineStatusErrors: UInt8 = 0
    private var modemStatusDeltas: UInt8 = 0
    private var scratch: UInt8 = 0
    private var transmitterInterruptPending = false

    // Receive FIFO as a ring.
    private var receiveRing = [UInt8](repeating: 0, count: Serial16550.receiveFIFOCapacity)
    private var receiveHead = 0
    private var receiveCount = 0

    // Host-side bookkeeping, not guest state.
    private var interruptLevel = false
    private var hostIsWaitingForSpace = false
    /// The VM is paused: host input waits on the host side (no FIFO or interrupt change).
    private var paused = false
    private var counters = Metrics()

    /// Counters for diagnostics (not part of `State`).
    public struct Metrics: Equatable, Sendable {
        /// Bytes the guest wrote to THR outside loopback (handed to the output sink).
        public var transmittedBytes: UInt64 = 0
        /// Bytes the host put in the receive FIFO.
        public var receivedBytes: UInt64 = 0
        /// Bytes lost to receiver overruns (only loopback can overrun).
        public var overrunBytes: UInt64 = 0
        /// Interrupt line level changes driven.
        public var interruptLevelChanges: UInt64 = 0
    }

    /// A snapshot of the counters.
    public var metrics: Metrics { lock.withLock { counters } }

    /// - Parameters:
    ///   - interrupt: the UART's IRQ line (GSI 4 for COM1).
    ///   - output: where transmitted bytes go; must never block.
    ///   - inputFlowControl: when host input is accepted; see `InputFlowControl`.
    ///   - onInputSpace: called (without the lock) when room appears after
    ///     `enqueueInput` had to refuse bytes; typically signals the console's eventfd.
    public init(interrupt: InterruptLine, output: SerialOutput,
                inputFlowControl: InputFlowControl = .requestToSend,
                onInputSpace: (() -> Void)? = nil) {
        self.interrupt = interrupt
        self.output = output
        self.flowControl = inputFlowControl
        self.inputSpaceHandler = onInputSpace
    }

    /// Replaces the input-space handler.
    public func setInputSpaceHandler(_ handler: (() -> Void)?) {
        lock.withLock { inputSpaceHandler = handler }
    }

    // MARK: Host side

    /// Offers bytes typed on the host to the guest. Returns how many were taken, from the
    /// front of `bytes`; keep the rest and offer them again after the input-space handler
    /// fires. Never overruns the FIFO.
    @discardableResult
    public func enqueueInput<Bytes: Collection>(_ bytes: Bytes) -> Int where Bytes.Element == UInt8 {
        lock.withLock {
            let space = inputSpaceLocked
            var accepted = 0
            for byte in bytes {
                if accepted == space { break }
                pushReceived(byte)
                accepted += 1
            }
            counters.receivedBytes &+= UInt64(accepted)
            hostIsWaitingForSpace = accepted < bytes.count
            updateInterruptLocked()
            return accepted
        }
    }

    /// Bytes `enqueueInput` would take right now.
    public var inputSpace: Int { lock.withLock { inputSpaceLocked } }

    /// Whether `enqueueInput` would take at least one byte right now.
    public var canAcceptInput: Bool { inputSpace > 0 }

    // MARK: Bus access

    public func read(offset: UInt16, size: Int) -> UInt32 {
        guard offset < UInt16(UARTRegister.count) else { return allOnes(size) }
        return UInt32(readRegister(UInt8(offset)))
    }

    public func write(offset: UInt16, size: Int, value: UInt32) {
        guard offset < UInt16(UARTRegister.count) else { return }
        writeRegister(UInt8(offset), UInt8(truncatingIfNeeded: value))
    }

    public func read(offset: UInt64, size: Int) -> UInt64 {
        guard offset < UInt64(UARTRegister.count) else { return size >= 8 ? .max : UInt64(allOnes(size)) }
        return UInt64(readRegister(UInt8(offset)))
    }

    public func write(offset: UInt64, size: Int, value: UInt64) {
        guard offset < UInt64(UARTRegister.count) else { return }
        writeRegister(UInt8(offset), UInt8(truncatingIfNeeded: value))
    }

    /// Reads one register. A wider access reads the register at `offset` into the low
    /// byte (upper bytes zero): the UART has 8-bit registers only.
    func readRegister(_ offset: UInt8) -> UInt8 {
        var notify: (() -> Void)?
        let value: UInt8 = lock.withLock {
            let value = readLocked(offset)
            notify = takeInputSpaceNotificationLocked()
            return value
        }
        notify?()
        return value
    }

    /// Writes one register (the low byte of a wider access).
    func writeRegister(_ offset: UInt8, _ value: UInt8) {
        var notify: (() -> Void)?
        lock.withLock {
            writeLocked(offset, value)
            notify = takeInputSpaceNotificationLocked()
        }
        notify?()
    }

    // MARK: State

    /// The guest-visible state as a value.
    public func captureState() -> State {
        lock.withLock {
            var state = State()
            state.divisorLow = divisorLow
            state.divisorHigh = divisorHigh
            state.interruptEnable = interruptEnable
            state.fifoControl = fifoControl
            state.lineControl = lineControl
            state.modemControl = modemControl
            state.lineStatusErrors = lineStatusErrors
            state.modemStatusDeltas = modemStatusDeltas
            state.scratch = scratch
            state.transmitterInterruptPending = transmitterInterruptPending
            state.receiveFIFO = (0..<receiveCount).map {
                receiveRing[(receiveHead + $0) % Serial16550.receiveFIFOCapacity]
            }
            return state
        }
    }

    /// Puts a captured state back and drives the interrupt line to match it. Register
    /// values are masked to the bits a 16550A implements.
    public func restoreState(_ state: State) throws {
        let limit = (state.fifoControl & FCR.enableFIFOs) != 0 ? Serial16550.receiveFIFOCapacity : 1
        guard state.receiveFIFO.count <= limit else {
            throw StateError.receiveFIFOTooLong(count: state.receiveFIFO.count, limit: limit)
        }
        var notify: (() -> Void)?
        lock.withLock {
            divisorLow = state.divisorLow
            divisorHigh = state.divisorHigh
            interruptEnable = state.interruptEnable & IER.writableMask
            fifoControl = state.fifoControl & FCR.storedMask
            lineControl = state.lineControl
            modemControl = state.modemControl & MCR.writableMask
            lineStatusErrors = state.lineStatusErrors & LSR.errorBits
            modemStatusDeltas = state.modemStatusDeltas & MSR.deltaBits
            scratch = state.scratch
            transmitterInterruptPending = state.transmitterInterruptPending
            receiveHead = 0
            receiveCount = 0
            for byte in state.receiveFIFO { pushReceived(byte) }
            interruptLevel = !interruptPendingLocked  // force the line to be driven
            updateInterruptLocked()
            hostIsWaitingForSpace = true  // let a waiting host re-check
            notify = takeInputSpaceNotificationLocked()
        }
        notify?()
    }

    // MARK: Register semantics (lock held)

    private var divisorLatchSelected: Bool { (lineControl & LCR.divisorLatchAccess) != 0 }
    private var fifosEnabled: Bool { (fifoControl & FCR.enableFIFOs) != 0 }
    private var loopbackEnabled: Bool { (modemControl & MCR.loopback) != 0 }
    private var receiveLimit: Int { fifosEnabled ? Serial16550.receiveFIFOCapacity : 1 }

    private var receiveTriggerLevel: Int {
        switch fifoControl & FCR.triggerLevelMask {
        case 0x00: return 1
        case 0x40: return 4
        case 0x80: return 8
        default: return 14
        }
    }

    private var inputSpaceLocked: Int {
        // In loopback the receiver is disconnected from the line (PC16550D §8.6.4).
        if loopbackEnabled || paused { return 0 }
        if flowControl == .requestToSend && (modemControl & MCR.requestToSend) == 0 { return 0 }
        return max(0, receiveLimit - receiveCount)
    }

    /// MSR input lines: those of a connected terminal, or the MCR outputs in loopback.
    private var modemLines: UInt8 {
        guard loopbackEnabled else { return MSR.connectedLines }
        var lines: UInt8 = 0
        if modemControl & MCR.requestToSend != 0 { lines |= MSR.clearToSend }
        if modemControl & MCR.dataTerminalReady != 0 { lines |= MSR.dataSetReady }
        if modemControl & MCR.out1 != 0 { lines |= MSR.ringIndicator }
        if modemControl & MCR.out2 != 0 { lines |= MSR.dataCarrierDetect }
        return lines
    }

    private func readLocked(_ offset: UInt8) -> UInt8 {
        switch offset {
        case UARTRegister.data:
            if divisorLatchSelected { return divisorLow }
            let byte = popReceived()
            updateInterruptLocked()
            return byte
        case UARTRegister.interruptEnable:
            return divisorLatchSelected ? divisorHigh : interruptEnable
        case UARTRegister.interruptIdentification:
            let identification = pendingInterruptLocked
            if identification == IIR.transmitterHoldingEmpty {
                // Reading IIR acknowledges THRE when it is the source reported.
                transmitterInterruptPending = false
                updateInterruptLocked()
            }
            return identification | (fifosEnabled ? IIR.fifosEnabled : 0)
        case UARTRegister.lineControl:
            return lineControl
        case UARTRegister.modemControl:
            return modemControl
        case UARTRegister.lineStatus:
            var status = lineStatusErrors | LSR.transmitterHoldingEmpty | LSR.transmitterEmpty
            if receiveCount > 0 { status |= LSR.dataReady }
            if fifosEnabled && (lineStatusErrors & (LSR.errorBits & ~LSR.overrunError)) != 0 {
                status |= LSR.receiveFIFOError
            }
            lineStatusErrors = 0
            updateInterruptLocked()
            return status
        case UARTRegister.modemStatus:
            let status = modemLines | modemStatusDeltas
            modemStatusDeltas = 0
            updateInterruptLocked()
            return status
        default:  // UARTRegister.scratch
            return scratch
        }
    }

    private func writeLocked(_ offset: UInt8, _ value: UInt8) {
        switch offset {
        case UARTRegister.data:
            if divisorLatchSelected { divisorLow = value; return }
            transmit(value)
        case UARTRegister.interruptEnable:
            if divisorLatchSelected { divisorHigh = value; return }
            let enabled = value & IER.writableMask
            let changed = enabled ^ interruptEnable
            interruptEnable = enabled
            if changed & IER.transmitterHoldingEmpty != 0 {
                // Enabling ETBEI while THR is empty (always, here) raises THRE at once,
                // as on real 16550s and QEMU; Linux's UART_BUG_THRE probe relies on it.
                transmitterInterruptPending = (enabled & IER.transmitterHoldingEmpty) != 0
            }
            updateInterruptLocked()
        case UARTRegister.fifoControl:
            writeFIFOControl(value)
        case UARTRegister.lineControl:
            lineControl = value
        case UARTRegister.modemControl:
            let linesBefore = modemLines
            modemControl = value & MCR.writableMask
            noteModemLineChange(from: linesBefore, to: modemLines)
            updateInterruptLocked()
        case UARTRegister.lineStatus, UARTRegister.modemStatus:
            break  // read-only here (writes are a factory-test feature)
        default:  // UARTRegister.scratch
            scratch = value
        }
    }

    private func transmit(_ byte: UInt8) {
        // Writing THR acknowledges a pending THRE interrupt …
        transmitterInterruptPending = false
        updateInterruptLocked()
        if loopbackEnabled {
            receiveFromLine(byte)
        } else {
            counters.transmittedBytes &+= 1
            output.write(byte)
        }
        // … and the byte leaves at once, so THR is empty again: a new THRE interrupt.
        transmitterInterruptPending = (interruptEnable & IER.transmitterHoldingEmpty) != 0
        updateInterruptLocked()
    }

    private func writeFIFOControl(_ written: UInt8) {
        var value = written
        // Changing the FIFO enable bit clears both FIFOs.
        if (value ^ fifoControl) & FCR.enableFIFOs != 0 {
            value |= FCR.clearReceiveFIFO | FCR.clearTransmitFIFO
        }
        if value & FCR.clearReceiveFIFO != 0 {
            receiveHead = 0
            receiveCount = 0
        }
        if value & FCR.clearTransmitFIFO != 0 {
            transmitterInterruptPending = (interruptEnable & IER.transmitterHoldingEmpty) != 0
        }
        fifoControl = value & FCR.storedMask
        updateInterruptLocked()
    }

    private func noteModemLineChange(from before: UInt8, to after: UInt8) {
        let changed = before ^ after
        if changed & MSR.clearToSend != 0 { modemStatusDeltas |= MSR.deltaClearToSend }
        if changed & MSR.dataSetReady != 0 { modemStatusDeltas |= MSR.deltaDataSetReady }
        if changed & MSR.dataCarrierDetect != 0 { modemStatusDeltas |= MSR.deltaDataCarrierDetect }
        if before & MSR.ringIndicator != 0 && after & MSR.ringIndicator == 0 {
            modemStatusDeltas |= MSR.trailingEdgeRingIndicator
        }
    }

    // MARK: Receive FIFO (lock held)

    /// A byte from the line (loopback): it may overrun, as on hardware.
    private func receiveFromLine(_ byte: UInt8) {
        if receiveCount < receiveLimit {
            pushReceived(byte)
            return
        }
        lineStatusErrors |= LSR.overrunError
        counters.overrunBytes &+= 1
        if !fifosEnabled {
            // Without FIFOs the new byte overwrites RBR; with them it is lost in the
            // shift register and the FIFO is untouched.
            receiveRing[receiveHead] = byte
        }
    }

    private func pushReceived(_ byte: UInt8) {
        let capacity = Serial16550.receiveFIFOCapacity
        guard receiveCount < capacity else { return }
        receiveRing[(receiveHead + receiveCount) % capacity] = byte
        receiveCount += 1
    }

    private func popReceived() -> UInt8 {
        guard receiveCount > 0 else { return 0 }
        let byte = receiveRing[receiveHead]
        receiveHead = (receiveHead + 1) % Serial16550.receiveFIFOCapacity
        receiveCount -= 1
        return byte
    }

    // MARK: Interrupts (lock held)

    /// The IIR identification of the highest-priority enabled pending source.
    private var pendingInterruptLocked: UInt8 {
        if interruptEnable & IER.receiverLineStatus != 0 && lineStatusErrors & LSR.errorBits != 0 {
            return IIR.receiverLineStatus
        }
        if interruptEnable & IER.receivedDataAvailable != 0 && receiveCount > 0 {
            if fifosEnabled && receiveCount < receiveTriggerLevel { return IIR.characterTimeout }
            return IIR.receivedDataAvailable
        }
        if interruptEnable & IER.transmitterHoldingEmpty != 0 && transmitterInterruptPending {
            return IIR.transmitterHoldingEmpty
        }
        if interruptEnable & IER.modemStatus != 0 && modemStatusDeltas != 0 {
            return IIR.modemStatus
        }
        return IIR.noInterruptPending
    }

    private var interruptPendingLocked: Bool { pendingInterruptLocked != IIR.noInterruptPending }

    private func updateInterruptLocked() {
        let level = interruptPendingLocked
        if level != interruptLevel {
            interruptLevel = level
            counters.interruptLevelChanges &+= 1
            interrupt.setLevel(level)
        }
    }

    /// The handler to call once the lock is released, if a host that was refused bytes
    /// can now make progress: when half the receiver is free (or all of a 1-byte RBR),
    /// so a guest draining the FIFO costs one wake-up, not one per byte.
    private func takeInputSpaceNotificationLocked() -> (() -> Void)? {
        guard hostIsWaitingForSpace, let handler = inputSpaceHandler else { return nil }
        let space = inputSpaceLocked
        guard space > 0, space >= (receiveLimit + 1) / 2 else { return nil }
        hostIsWaitingForSpace = false
        return handler
    }

    private func allOnes(_ size: Int) -> UInt32 {
        switch size {
        case 1: return 0xFF
        case 2: return 0xFFFF
        default: return 0xFFFF_FFFF
        }
    }
}

extension Serial16550: Pausable {
    public func pause() { lock.withLock { paused = true } }

    public func resume() {
        let notify = lock.withLock { () -> (() -> Void)? in
            paused = false
            return takeInputSpaceNotificationLocked()
        }
        notify?()
    }
}
