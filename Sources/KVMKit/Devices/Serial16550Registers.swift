// Register offsets and bits of the 16550A UART, named as in the National Semiconductor
// PC16550D data sheet (and Linux's include/uapi/linux/serial_reg.h). Offsets are relative to
// the port base (0x3F8 for COM1) or to the MMIO window with a 1-byte register stride.

/// Register offsets. Offsets 0 and 1 are the divisor latch while LCR.DLAB is set.
enum UARTRegister {
    /// Read: receiver buffer (RBR). Write: transmitter holding register (THR).
    static let data: UInt8 = 0
    /// Interrupt enable register (IER).
    static let interruptEnable: UInt8 = 1
    /// Read: interrupt identification (IIR). Write: FIFO control (FCR).
    static let interruptIdentification: UInt8 = 2
    /// FIFO control register (FCR), write-only, shares offset 2 with IIR.
    static let fifoControl: UInt8 = 2
    /// Line control register (LCR).
    static let lineControl: UInt8 = 3
    /// Modem control register (MCR).
    static let modemControl: UInt8 = 4
    /// Line status register (LSR).
    static let lineStatus: UInt8 = 5
    /// Modem status register (MSR).
    static let modemStatus: UInt8 = 6
    /// Scratch register (SCR): 8 bits the guest may use freely.
    static let scratch: UInt8 = 7
    /// Divisor latch low byte (DLL), at offset 0 while LCR.DLAB = 1.
    static let divisorLow: UInt8 = 0
    /// Divisor latch high byte (DLM), at offset 1 while LCR.DLAB = 1.
    static let divisorHigh: UInt8 = 1
    /// Number of register offsets the UART decodes.
    static let count: UInt8 = 8
}

/// Interrupt enable register bits.
enum IER {
    /// ERBFI: interrupt when received data is available (or the FIFO timed out).
    static let receivedDataAvailable: UInt8 = 0x01
    /// ETBEI: interrupt when the transmitter holding register is empty.
    static let transmitterHoldingEmpty: UInt8 = 0x02
    /// ELSI: interrupt on a receiver line status error (overrun, parity, framing, break).
    static let receiverLineStatus: UInt8 = 0x04
    /// EDSSI: interrupt when a modem status delta bit is set.
    static let modemStatus: UInt8 = 0x08
    /// Bits a 16550A implements; the upper nibble reads as zero.
    static let writableMask: UInt8 = 0x0F
}

/// Interrupt identification register values (bits 0–3) and the FIFO flag bits.
enum IIR {
    /// Bit 0 set: no interrupt pending.
    static let noInterruptPending: UInt8 = 0x01
    /// Highest priority: overrun/parity/framing error or break; cleared by reading LSR.
    static let receiverLineStatus: UInt8 = 0x06
    /// Receive FIFO reached its trigger level (or, without FIFOs, a byte arrived).
    static let receivedDataAvailable: UInt8 = 0x04
    /// FIFO mode: data below the trigger level sits in the FIFO (character timeout).
    static let characterTimeout: UInt8 = 0x0C
    /// THR empty; cleared by reading IIR while this is the reported source or writing THR.
    static let transmitterHoldingEmpty: UInt8 = 0x02
    /// Lowest priority: a modem status delta bit is set; cleared by reading MSR.
    static let modemStatus: UInt8 = 0x00
    /// Bits 6–7, both set while FCR has the FIFOs enabled (how a driver tells a 16550A).
    static let fifosEnabled: UInt8 = 0xC0
    /// The interrupt identification field (bits 0–3).
    static let identificationMask: UInt8 = 0x0F
}

/// FIFO control register bits.
enum FCR {
    /// Enable the receive and transmit FIFOs; toggling it clears both.
    static let enableFIFOs: UInt8 = 0x01
    /// Clear the receive FIFO (self-clearing).
    static let clearReceiveFIFO: UInt8 = 0x02
    /// Clear the transmit FIFO (self-clearing).
    static let clearTransmitFIFO: UInt8 = 0x04
    /// DMA mode select; stored, no effect here.
    static let dmaMode: UInt8 = 0x08
    /// Receive trigger level field (bits 6–7): 1, 4, 8 or 14 bytes.
    static let triggerLevelMask: UInt8 = 0xC0
    /// Bits kept after a write (the clear bits self-clear).
    static let storedMask: UInt8 = 0xC9
}

/// Line control register bits.
enum LCR {
    /// Word length field (bits 0–1): 5 + value data bits.
    static let wordLengthMask: UInt8 = 0x03
    /// Two stop bits (1.5 with 5-bit words).
    static let twoStopBits: UInt8 = 0x04
    /// Parity enable.
    static let parityEnable: UInt8 = 0x08
    /// Even parity select.
    static let evenParity: UInt8 = 0x10
    /// Stick parity.
    static let stickParity: UInt8 = 0x20
    /// Set break: holds the line in the spacing state.
    static let setBreak: UInt8 = 0x40
    /// Divisor latch access bit (DLAB): offsets 0 and 1 address the divisor latch.
    static let divisorLatchAccess: UInt8 = 0x80
    /// Reset value: 8 data bits, no parity, one stop bit.
    static let resetValue: UInt8 = 0x03
}

/// Modem control register bits.
enum MCR {
    /// Data terminal ready; loops back to MSR.DSR.
    static let dataTerminalReady: UInt8 = 0x01
    /// Request to send; loops back to MSR.CTS. Also the host-input flow control line.
    static let requestToSend: UInt8 = 0x02
    /// Auxiliary output 1; loops back to MSR.RI.
    static let out1: UInt8 = 0x04
    /// Auxiliary output 2 (gates the IRQ on PC boards; not modelled); loops back to MSR.DCD.
    static let out2: UInt8 = 0x08
    /// Loopback: THR feeds the receiver, MCR outputs drive the MSR inputs.
    static let loopback: UInt8 = 0x10
    /// Bits a 16550A implements; the upper bits read as zero.
    static let writableMask: UInt8 = 0x1F
}

/// Line status register bits.
enum LSR {
    /// Data ready: at least one byte in RBR / the receive FIFO.
    static let dataReady: UInt8 = 0x01
    /// Overrun error: a byte arrived with no room for it; cleared by reading LSR.
    static let overrunError: UInt8 = 0x02
    /// Parity error (never produced: the host link is error-free).
    static let parityError: UInt8 = 0x04
    /// Framing error (never produced).
    static let framingError: UInt8 = 0x08
    /// Break interrupt (never produced).
    static let breakInterrupt: UInt8 = 0x10
    /// Transmitter holding register empty: the guest may write THR.
    static let transmitterHoldingEmpty: UInt8 = 0x20
    /// Transmitter empty: THR and the shift register are both idle.
    static let transmitterEmpty: UInt8 = 0x40
    /// FIFO mode: a parity/framing/break error is somewhere in the receive FIFO.
    static let receiveFIFOError: UInt8 = 0x80
    /// The error bits that raise a receiver line status interrupt and clear on read.
    static let errorBits: UInt8 = overrunError | parityError | framingError | breakInterrupt
}

/// Modem status register bits: four delta bits (cleared by reading MSR) and four lines.
enum MSR {
    /// Delta CTS: CTS changed since MSR was last read.
    static let deltaClearToSend: UInt8 = 0x01
    /// Delta DSR: DSR changed since MSR was last read.
    static let deltaDataSetReady: UInt8 = 0x02
    /// Trailing edge ring indicator: RI went from 1 to 0.
    static let trailingEdgeRingIndicator: UInt8 = 0x04
    /// Delta DCD: DCD changed since MSR was last read.
    static let deltaDataCarrierDetect: UInt8 = 0x08
    /// Clear to send (input).
    static let clearToSend: UInt8 = 0x10
    /// Data set ready (input).
    static let dataSetReady: UInt8 = 0x20
    /// Ring indicator (input).
    static let ringIndicator: UInt8 = 0x40
    /// Data carrier detect (input).
    static let dataCarrierDetect: UInt8 = 0x80
    /// All four delta bits.
    static let deltaBits: UInt8 = 0x0F
    /// Lines a connected host terminal presents: carrier, data set ready, clear to send.
    static let connectedLines: UInt8 = dataCarrierDetect | dataSetReady | clearToSend
}
