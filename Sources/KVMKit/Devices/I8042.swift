/// A minimal i8042 keyboard controller with an idle AT keyboard behind it: enough for a
/// guest to find a sane controller, to reset the machine the PC way (`reboot=k`: command
/// 0xFE to port 0x64), and to receive Ctrl-Alt-Del (`pressCtrlAltDel`, the API's
/// `SendCtrlAltDel`), which Linux answers with a reboot.
///
/// Attach at base 0x60 covering 0x60–0x64: offset 0 is the data port, offset 4 the
/// status (read) / command (write) port. Keyboard bytes raise IRQ 1 (one edge per byte
/// waiting, while the command byte enables it); there is no mouse and no IRQ 12.
/// A reset (command 0xFE — any pulse command 0xF0–0xFF with bit 0 clear — or writing the
/// output port with bit 0 = 0) calls the injected handler, outside the lock.
public final class I8042: PortIODevice, @unchecked Sendable {
    /// Port offsets from base 0x60.
    enum Port {
        /// Data port (0x60).
        static let data: UInt16 = 0
        /// Status (read) and command (write) port (0x64).
        static let statusCommand: UInt16 = 4
    }

    /// Status register bits.
    enum Status {
        /// Output buffer full: a byte waits at the data port.
        static let outputFull: UInt8 = 0x01
        /// Input buffer full: the controller is busy (never set here).
        static let inputFull: UInt8 = 0x02
        /// System flag: self-test passed (mirrors command byte bit 2).
        static let systemFlag: UInt8 = 0x04
        /// The last write went to the command port, not the data port.
        static let lastWriteWasCommand: UInt8 = 0x08
        /// Keyboard not inhibited (keylock off).
        static let keyboardUnlocked: UInt8 = 0x10
        /// The byte in the output buffer comes from the auxiliary (mouse) port.
        static let auxOutputFull: UInt8 = 0x20
    }

    /// Controller commands (written to 0x64).
    enum Command {
        /// Read the command byte into the output buffer.
        static let readCommandByte: UInt8 = 0x20
        /// The next data byte is the new command byte.
        static let writeCommandByte: UInt8 = 0x60
        /// Disable the auxiliary port.
        static let disableAux: UInt8 = 0xA7
        /// Enable the auxiliary port.
        static let enableAux: UInt8 = 0xA8
        /// Test the auxiliary port: 0x00 = no error.
        static let testAux: UInt8 = 0xA9
        /// Controller self-test: 0x55 = passed.
        static let selfTest: UInt8 = 0xAA
        /// Test the keyboard port: 0x00 = no error.
        static let testKeyboard: UInt8 = 0xAB
        /// Disable the keyboard port.
        static let disableKeyboard: UInt8 = 0xAD
        /// Enable the keyboard port.
        static let enableKeyboard: UInt8 = 0xAE
        /// Read the input port.
        static let readInputPort: UInt8 = 0xC0
        /// Read the output port.
        static let readOutputPort: UInt8 = 0xD0
        /// The next data byte is written to the output port (bit 0 = 0 resets the CPU).
        static let writeOutputPort: UInt8 = 0xD1
        /// The next data byte appears in the output buffer as if from the keyboard.
        static let writeKeyboardOutput: UInt8 = 0xD2
        /// The next data byte appears in the output buffer as if from the mouse.
        static let writeAuxOutput: UInt8 = 0xD3
        /// The next data byte is sent to the mouse (absent: no answer).
        static let writeToAux: UInt8 = 0xD4
        /// 0xF0–0xFF pulse the output-port lines whose bit is 0 in the low nibble.
        static let pulseOutputLinesBase: UInt8 = 0xF0
        /// Pulse output line 0 (CPU reset): what Linux's `reboot=k` writes.
        static let pulseReset: UInt8 = 0xFE
    }

    /// Command byte bits.
    enum CommandByte {
        /// Keyboard interrupt enable (stored; no IRQ 1 is generated).
        static let keyboardInterrupt: UInt8 = 0x01
        /// System flag.
        static let systemFlag: UInt8 = 0x04
        /// Keyboard port disabled.
        static let keyboardDisabled: UInt8 = 0x10
        /// Auxiliary port disabled.
        static let auxDisabled: UInt8 = 0x20
        /// Translate scan codes to set 1.
        static let translate: UInt8 = 0x40
        /// After power-on: keyboard interrupt, system flag, translation.
        static let resetValue: UInt8 = keyboardInterrupt | systemFlag | translate
    }

    /// Output port bits.
    enum OutputPort {
        /// 0 holds the CPU in reset.
        static let systemResetInactive: UInt8 = 0x01
        /// A20 gate enabled.
        static let a20Gate: UInt8 = 0x02
    }

    /// Keyboard replies to data-port bytes sent to the (absent) keyboard.
    enum KeyboardReply {
        /// Acknowledge.
        static let ack: UInt8 = 0xFA
        /// Basic assurance test passed (after a reset command).
        static let selfTestPassed: UInt8 = 0xAA
        /// Reply to the echo command.
        static let echo: UInt8 = 0xEE
        /// Identify: an MF2 keyboard (0xAB 0x83).
        static let identity: [UInt8] = [0xAB, 0x83]
    }

    /// Keyboard commands (data-port bytes) that take a parameter byte.
    enum KeyboardCommand {
        static let setLEDs: UInt8 = 0xED
        static let echo: UInt8 = 0xEE
        static let scanCodeSet: UInt8 = 0xF0
        static let identify: UInt8 = 0xF2
        static let setTypematic: UInt8 = 0xF3
        static let reset: UInt8 = 0xFF
        static let withParameter: Set<UInt8> = [setLEDs, scanCodeSet, setTypematic]
    }

    /// Make codes of Ctrl, Alt and Delete in scan code set 1 (what the guest reads when the
    /// controller translates) and set 2 (untranslated).
    static let ctrlAltDelSet1: [UInt8] = [0x1D, 0x38, 0xE0, 0x53]
    static let ctrlAltDelSet2: [UInt8] = [0x14, 0x11, 0xE0, 0x71]

    /// Replies queued beyond this are dropped (a guest can only poll them one by one).
    static let outputQueueLimit = 16

    /// Commands whose parameter byte is the next data-port write.
    private enum PendingWrite: UInt8 {
        case none = 0
        case commandByte = 0x60
        case outputPort = 0xD1
        case keyboardOutput = 0xD2
        case auxOutput = 0xD3
        case toAux = 0xD4
    }

    /// The controller's state as a value, for snapshots and tests.
    public struct State: Equatable, Sendable {
        /// Command byte (controller configuration).
        public var commandByte: UInt8
        /// Output port (bit 0: reset inactive, bit 1: A20).
        public var outputPort: UInt8
        /// Bytes waiting at the data port, oldest first.
        public var outputBytes: [UInt8]
        /// For each waiting byte, whether it came from the auxiliary port.
        public var outputFromAux: [Bool]
        /// What the data port reads when nothing is waiting.
        public var lastData: UInt8
        /// Whether the last write went to the command port.
        public var lastWriteWasCommand: Bool
        /// The command (0x60, 0xD1–0xD4) waiting for its data byte, or 0.
        public var pendingCommand: UInt8
    }

    /// Why a state could not be restored.
    public enum StateError: Error, Equatable, CustomStringConvertible {
        case invalidPendingCommand(UInt8)
        case invalidOutputQueue(bytes: Int, flags: Int)

        public var description: String {
            switch self {
            case let .invalidPendingCommand(command):
                return "i8042 state: 0x\(String(command, radix: 16)) takes no data byte"
            case let .invalidOutputQueue(bytes, flags):
                return "i8042 state: \(bytes) queued bytes with \(flags) source flags "
                    + "(at most \(I8042.outputQueueLimit), one flag each)"
            }
        }
    }

    private let lock = Lock()
    private let resetHandler: () -> Void
    private let interrupt: InterruptLine?
    /// The keyboard command (0xED, 0xF0, 0xF3) waiting for its parameter, or nil.
    private var keyboardPending: UInt8?
    private var commandByte = CommandByte.resetValue
    private var outputPort = OutputPort.systemResetInactive | OutputPort.a20Gate
    private var outputQueue: [(byte: UInt8, fromAux: Bool)] = []
    private var lastData: UInt8 = 0
    private var lastWriteWasCommand = false
    private var pending = PendingWrite.none

    /// `onReset` runs on the vCPU thread that asked for the reset, without the lock held;
    /// it should make the VMM stop the machine ("guest reset") and return.
    /// `interrupt` is IRQ 1 (nil: a polled controller, as in unit tests).
    public init(interrupt: InterruptLine? = nil, onReset: @escaping () -> Void) {
        self.interrupt = interrupt
        resetHandler = onReset
    }

    /// Put Ctrl, Alt and Delete key presses in the output buffer, as a keyboard would send
    /// them, and interrupt the guest. False if the keyboard is disabled or the buffer has
    /// no room for the whole sequence (nothing is queued then).
    public func pressCtrlAltDel() -> Bool {
        lock.withLock {
            let codes = commandByte & CommandByte.translate != 0 ? I8042.ctrlAltDelSet1 : I8042.ctrlAltDelSet2
            guard commandByte & CommandByte.keyboardDisabled == 0,
                  outputQueue.count + codes.count <= I8042.outputQueueLimit else { return false }
            for c in codes { queue(c) }
            return true
        }
    }

    public func captureState() -> State {
        lock.withLock {
            State(commandByte: commandByte, outputPort: outputPort,
                  outputBytes: outputQueue.map(\.byte), outputFromAux: outputQueue.map(\.fromAux),
                  lastData: lastData, lastWriteWasCommand: lastWriteWasCommand,
                  pendingCommand: pending.rawValue)
        }
    }

    public func restoreState(_ state: State) throws {
        guard let pendingWrite = PendingWrite(rawValue: state.pendingCommand) else {
            throw StateError.invalidPendingCommand(state.pendingCommand)
        }
        guard state.outputBytes.count == state.outputFromAux.count,
              state.outputBytes.count <= I8042.outputQueueLimit else {
            throw StateError.invalidOutputQueue(bytes: state.outputBytes.count, flags: state.outputFromAux.count)
        }
        lock.withLock {
            commandByte = state.commandByte
            outputPort = state.outputPort
            outputQueue = zip(state.outputBytes, state.outputFromAux).map { ($0, $1) }
            lastData = state.lastData
            lastWriteWasCommand = state.lastWriteWasCommand
            pending = pendingWrite
        }
    }

    public func read(offset: UInt16, size: Int) -> UInt32 {
        lock.withLock {
            switch offset {
            case Port.data:
                if !outputQueue.isEmpty {
                    lastData = outputQueue.removeFirst().byte
                    if let next = outputQueue.first, !next.fromAux { raiseKeyboardInterruptLocked() }
                }
                return UInt32(lastData)
            case Port.statusCommand:
                return UInt32(statusLocked)
            default:
                return 0xFF
            }
        }
    }

    public func write(offset: UInt16, size: Int, value: UInt32) {
        let byte = UInt8(truncatingIfNeeded: value)
        let reset: Bool = lock.withLock {
            switch offset {
            case Port.data:
                lastWriteWasCommand = false
                return writeDataLocked(byte)
            case Port.statusCommand:
                lastWriteWasCommand = true
                return commandLocked(byte)
            default:
                return false
            }
        }
        if reset { resetHandler() }
    }

    private var statusLocked: UInt8 {
        var status = Status.keyboardUnlocked
        if commandByte & CommandByte.systemFlag != 0 { status |= Status.systemFlag }
        if lastWriteWasCommand { status |= Status.lastWriteWasCommand }
        if let head = outputQueue.first {
            status |= Status.outputFull
            if head.fromAux { status |= Status.auxOutputFull }
        }
        return status
    }

    /// Returns whether the command resets the machine.
    private func commandLocked(_ command: UInt8) -> Bool {
        pending = .none
        switch command {
        case Command.readCommandByte: queue(commandByte)
        case Command.writeCommandByte: pending = .commandByte
        case Command.disableAux: commandByte |= CommandByte.auxDisabled
        case Command.enableAux: commandByte &= ~CommandByte.auxDisabled
        case Command.testAux, Command.testKeyboard: queue(0x00)
        case Command.selfTest: queue(0x55)
        case Command.disableKeyboard: commandByte |= CommandByte.keyboardDisabled
        case Command.enableKeyboard: commandByte &= ~CommandByte.keyboardDisabled
        case Command.readInputPort: queue(0x80)  // keyboard not inhibited
        case Command.readOutputPort: queue(outputPort)
        case Command.writeOutputPort: pending = .outputPort
        case Command.writeKeyboardOutput: pending = .keyboardOutput
        case Command.writeAuxOutput: pending = .auxOutput
        case Command.writeToAux: pending = .toAux
        case Command.pulseOutputLinesBase...0xFF:
            return command & OutputPort.systemResetInactive == 0
        default:
            break  // anything else is acknowledged by doing nothing
        }
        return false
    }

    /// Returns whether the byte resets the machine.
    private func writeDataLocked(_ byte: UInt8) -> Bool {
        let target = pending
        pending = .none
        switch target {
        case .commandByte:
            commandByte = byte
        case .outputPort:
            outputPort = byte
            return byte & OutputPort.systemResetInactive == 0
        case .keyboardOutput:
            queue(byte)
        case .auxOutput:
            queue(byte, fromAux: true)
        case .toAux:
            break  // no mouse
        case .none:
            keyboardByteLocked(byte)
        }
        return false
    }

    /// A byte for the keyboard: answered as a present, idle MF2 keyboard would.
    private func keyboardByteLocked(_ byte: UInt8) {
        if let command = keyboardPending {
            keyboardPending = nil
            queue(KeyboardReply.ack)
            // "Get scan code set" (parameter 0) reports set 2.
            if command == KeyboardCommand.scanCodeSet && byte == 0 { queue(0x02) }
            return
        }
        switch byte {
        case KeyboardCommand.echo: queue(KeyboardReply.echo)
        case KeyboardCommand.identify: queue(KeyboardReply.ack); for b in KeyboardReply.identity { queue(b) }
        case KeyboardCommand.reset: queue(KeyboardReply.ack); queue(KeyboardReply.selfTestPassed)
        case _ where KeyboardCommand.withParameter.contains(byte):
            keyboardPending = byte
            queue(KeyboardReply.ack)
        default: queue(KeyboardReply.ack)
        }
    }

    private func queue(_ byte: UInt8, fromAux: Bool = false) {
        guard outputQueue.count < I8042.outputQueueLimit else { return }
        outputQueue.append((byte, fromAux))
        if !fromAux && outputQueue.count == 1 { raiseKeyboardInterruptLocked() }
    }

    /// One IRQ 1 edge for the byte now at the head of the output buffer.
    private func raiseKeyboardInterruptLocked() {
        guard commandByte & CommandByte.keyboardInterrupt != 0 else { return }
        interrupt?.trigger()
    }
}
