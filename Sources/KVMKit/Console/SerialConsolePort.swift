/// COM1 as a console: host input into the UART's RX FIFO, guest output out of the bounded
/// buffer every UART of the machine writes into.
public final class SerialConsolePort: ConsoleGuestPort {
    let uart: Serial16550
    let output: BoundedOutputBuffer
    public let notifyFD: Int32

    public init(uart: Serial16550, output: BoundedOutputBuffer, notifyFD: Int32) {
        self.uart = uart
        self.output = output
        self.notifyFD = notifyFD
    }

    public convenience init(machine: Machine) {
        self.init(uart: machine.serial, output: machine.serialOutput, notifyFD: machine.serialNotify.fd)
    }

    public func enqueueInput(_ bytes: UnsafeRawBufferPointer) -> Int { uart.enqueueInput(bytes) }

    public func drainOutput(into buffer: UnsafeMutableRawBufferPointer) -> Int { output.read(into: buffer) }
}
