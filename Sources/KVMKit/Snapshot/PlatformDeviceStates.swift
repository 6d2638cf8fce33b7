/// The legacy platform devices as `Snapshottable`: how each state value is encoded, and
/// the initialisers that build a device from a saved state.

extension Serial16550: Snapshottable {
    /// A UART already in `state`, wired to its host side.
    public convenience init(state: State, interrupt: InterruptLine, output: SerialOutput,
                            inputFlowControl: InputFlowControl = .requestToSend, onInputSpace: (() -> Void)? = nil) throws {
        self.init(interrupt: interrupt, output: output, inputFlowControl: inputFlowControl, onInputSpace: onInputSpace)
        try restoreState(state)
    }
}

extension Serial16550.State: StateCodable {
    public func encode(to w: inout StateWriter) {
        for b in [divisorLow, divisorHigh, interruptEnable, fifoControl, lineControl, modemControl,
                  lineStatusErrors, modemStatusDeltas, scratch] { w.write(b) }
        w.write(transmitterInterruptPending)
        w.write(bytes: receiveFIFO)
    }

    public init(from r: inout StateReader) throws {
        self.init()
        divisorLow = try r.read(UInt8.self, "16550 DLL")
        divisorHigh = try r.read(UInt8.self, "16550 DLM")
        interruptEnable = try r.read(UInt8.self, "16550 IER")
        fifoControl = try r.read(UInt8.self, "16550 FCR")
        lineControl = try r.read(UInt8.self, "16550 LCR")
        modemControl = try r.read(UInt8.self, "16550 MCR")
        lineStatusErrors = try r.read(UInt8.self, "16550 LSR errors")
        modemStatusDeltas = try r.read(UInt8.self, "16550 MSR deltas")
        scratch = try r.read(UInt8.self, "16550 SCR")
        transmitterInterruptPending = try r.readBool("16550 THRE pending")
        receiveFIFO = try r.readBytes("16550 receive FIFO", limit: Serial16550.receiveFIFOCapacity)
    }
}

extension CMOS: Snapshottable {
    /// A CMOS already in `state` (the memory size bytes come from the state).
    public convenience init(state: State, clock: @escaping Clock = CMOS.hostClock) throws {
        self.init(ramBelow4GiB: 0, ramAbove4GiB: 0, clock: clock)
        try restoreState(state)
    }
}

extension CMOS.State: StateCodable {
    public func encode(to w: inout StateWriter) {
        w.write(bytes: bytes)
        w.write(index)
        w.write(nmiDisabled)
        w.write(clockOffset)
    }

    public init(from r: inout StateReader) throws {
        self.init(bytes: try r.readBytes("CMOS bytes", limit: 128), index: try r.read(UInt8.self, "CMOS index"),
                  nmiDisabled: try r.readBool("CMOS NMI flag"), clockOffset: try r.read(Int64.self, "CMOS clock offset"))
    }
}

extension I8042: Snapshottable {
    /// A controller already in `state`.
    public convenience init(state: State, interrupt: InterruptLine? = nil, onReset: @escaping () -> Void) throws {
        self.init(interrupt: interrupt, onReset: onReset)
        try restoreState(state)
    }
}

extension I8042.State: StateCodable {
    public func encode(to w: inout StateWriter) {
        w.write(commandByte)
        w.write(outputPort)
        w.write(bytes: outputBytes)
        w.write(bytes: outputFromAux.map { $0 ? 1 : 0 })
        w.write(lastData)
        w.write(lastWriteWasCommand)
        w.write(pendingCommand)
    }

    public init(from r: inout StateReader) throws {
        let command = try r.read(UInt8.self, "i8042 command byte")
        let port = try r.read(UInt8.self, "i8042 output port")
        let bytes = try r.readBytes("i8042 output queue", limit: I8042.outputQueueLimit)
        let aux = try r.readBytes("i8042 output sources", limit: I8042.outputQueueLimit)
        guard aux.allSatisfy({ $0 <= 1 }) else {
            throw StateDecodingError.invalid(context: "\(r.context) i8042 output sources", detail: "not a flag")
        }
        self.init(commandByte: command, outputPort: port, outputBytes: bytes, outputFromAux: aux.map { $0 == 1 },
                  lastData: try r.read(UInt8.self, "i8042 last data"),
                  lastWriteWasCommand: try r.readBool("i8042 last write"),
                  pendingCommand: try r.read(UInt8.self, "i8042 pending command"))
    }
}

extension ACPISleepRegisters: Snapshottable {
    /// The sleep status register (WAK_STS) is all the state there is.
    public struct State: Equatable, Sendable, StateCodable {
        public var sleepStatus: UInt8

        public init(sleepStatus: UInt8) { self.sleepStatus = sleepStatus }
        public func encode(to w: inout StateWriter) { w.write(sleepStatus) }
        public init(from r: inout StateReader) throws { sleepStatus = try r.read(UInt8.self, "ACPI sleep status") }
    }

    public func captureState() -> State { State(sleepStatus: sleepStatus) }

    /// Registers already in `state`.
    public convenience init(state: State, onPoweroff: @escaping () -> Void) {
        self.init(onPoweroff: onPoweroff)
        sleepStatus = state.sleepStatus
    }
}
