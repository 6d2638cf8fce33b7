import Foundation
import XCTest
@testable import KVMKit

final class Serial16550Tests: XCTestCase {
    private var irq: DeviceTestInterruptLine!
    private var out: DeviceTestOutput!
    private var uart: Serial16550!

    override func setUp() {
        irq = DeviceTestInterruptLine()
        out = DeviceTestOutput()
        uart = Serial16550(interrupt: irq, output: out, inputFlowControl: .always)
    }

    private func rd(_ offset: UInt8) -> UInt8 { UInt8(uart.read(offset: UInt16(offset), size: 1)) }
    private func wr(_ offset: UInt8, _ value: UInt8) { uart.write(offset: UInt16(offset), size: 1, value: UInt32(value)) }
    private var iirIdentification: UInt8 { rd(UARTRegister.interruptIdentification) & IIR.identificationMask }

    // MARK: Registers

    func testResetValues() {
        XCTAssertEqual(rd(UARTRegister.interruptEnable), 0)
        XCTAssertEqual(rd(UARTRegister.interruptIdentification), IIR.noInterruptPending)
        XCTAssertEqual(rd(UARTRegister.lineControl), 0x03)
        XCTAssertEqual(rd(UARTRegister.modemControl), 0)
        XCTAssertEqual(rd(UARTRegister.lineStatus), LSR.transmitterHoldingEmpty | LSR.transmitterEmpty)
        XCTAssertEqual(rd(UARTRegister.modemStatus), MSR.connectedLines)
        XCTAssertEqual(rd(UARTRegister.scratch), 0)
        XCTAssertTrue(irq.levels.isEmpty)
    }

    func testScratchLineControlAndMasks() {
        wr(UARTRegister.scratch, 0xA5)
        XCTAssertEqual(rd(UARTRegister.scratch), 0xA5)
        wr(UARTRegister.lineControl, 0x1B)
        XCTAssertEqual(rd(UARTRegister.lineControl), 0x1B)
        wr(UARTRegister.interruptEnable, 0xF0)  // upper nibble not implemented on a 16550A
        XCTAssertEqual(rd(UARTRegister.interruptEnable), 0)
        wr(UARTRegister.modemControl, 0xEB)  // bits 5–7 not implemented
        XCTAssertEqual(rd(UARTRegister.modemControl), 0x0B)
        wr(UARTRegister.lineStatus, 0x00)  // read-only
        XCTAssertEqual(rd(UARTRegister.lineStatus), 0x60)
    }

    func testDivisorLatchRoundTrip() {
        wr(UARTRegister.interruptEnable, 0x05)
        wr(UARTRegister.lineControl, LCR.divisorLatchAccess | 0x03)
        XCTAssertEqual(rd(UARTRegister.divisorLow), 0x0C)  // 9600 baud after reset
        XCTAssertEqual(rd(UARTRegister.divisorHigh), 0x00)
        wr(UARTRegister.divisorLow, 0x01)  // 115200 baud
        wr(UARTRegister.divisorHigh, 0x02)
        XCTAssertEqual(rd(UARTRegister.divisorLow), 0x01)
        XCTAssertEqual(rd(UARTRegister.divisorHigh), 0x02)
        wr(UARTRegister.lineControl, 0x03)
        XCTAssertEqual(rd(UARTRegister.interruptEnable), 0x05, "IER untouched by DLM writes")
        XCTAssertTrue(out.bytes.isEmpty, "DLL writes are not transmitted")
        wr(UARTRegister.lineControl, LCR.divisorLatchAccess)
        XCTAssertEqual(rd(UARTRegister.divisorLow), 0x01)
        XCTAssertEqual(rd(UARTRegister.divisorHigh), 0x02)
    }

    func testTransmitGoesToOutputAndTransmitterStaysEmpty() {
        for byte in Array("hi\n".utf8) { wr(UARTRegister.data, byte) }
        XCTAssertEqual(out.bytes, Array("hi\n".utf8))
        XCTAssertEqual(rd(UARTRegister.lineStatus) & 0x60, 0x60)
        XCTAssertTrue(irq.levels.isEmpty, "no interrupt without IER")
    }

    func testModemStatusOutsideLoopback() {
        wr(UARTRegister.modemControl, MCR.dataTerminalReady | MCR.requestToSend | MCR.out2)
        XCTAssertEqual(rd(UARTRegister.modemStatus), 0xB0, "DCD, DSR, CTS asserted, no deltas")
    }

    // MARK: THRE interrupt

    func testTransmitterEmptyInterruptRaisedOnEnableAndClearedByReadingIIR() {
        wr(UARTRegister.interruptEnable, IER.transmitterHoldingEmpty)
        XCTAssertEqual(irq.levels, [true])
        XCTAssertEqual(rd(UARTRegister.interruptIdentification), IIR.transmitterHoldingEmpty)
        XCTAssertEqual(irq.levels, [true, false], "reading IIR acknowledged THRE")
        XCTAssertEqual(rd(UARTRegister.interruptIdentification), IIR.noInterruptPending)
        // Re-enabling re-samples THRE (Linux's UART_BUG_THRE probe).
        wr(UARTRegister.interruptEnable, 0)
        wr(UARTRegister.interruptEnable, IER.transmitterHoldingEmpty)
        XCTAssertEqual(irq.levels, [true, false, true])
        wr(UARTRegister.interruptEnable, 0)
        XCTAssertEqual(irq.levels, [true, false, true, false])
    }

    func testWritingTHRClearsThenReraisesTransmitterEmpty() {
        wr(UARTRegister.interruptEnable, IER.transmitterHoldingEmpty)
        irq.reset()
        wr(UARTRegister.data, 0x41)
        XCTAssertEqual(irq.levels, [false, true], "an edge per transmitted byte")
        XCTAssertEqual(out.bytes, [0x41])
        _ = rd(UARTRegister.interruptIdentification)
        irq.reset()
        wr(UARTRegister.data, 0x42)
        XCTAssertEqual(irq.levels, [true], "line was low: the byte's completion raises it")
    }

    // MARK: IIR priorities

    func testInterruptPriorities() {
        wr(UARTRegister.fifoControl, FCR.enableFIFOs)
        wr(UARTRegister.modemControl, MCR.loopback)
        _ = rd(UARTRegister.modemStatus)  // entering loopback dropped DCD/DSR/CTS: clear deltas
        // Overrun the FIFO through loopback, then toggle RTS for a modem status delta.
        for i in 0..<(Serial16550.receiveFIFOCapacity + 1) { wr(UARTRegister.data, UInt8(i)) }
        wr(UARTRegister.modemControl, MCR.loopback | MCR.requestToSend)
        wr(UARTRegister.interruptEnable, 0x0F)
        XCTAssertTrue(irq.isHigh)

        XCTAssertEqual(rd(UARTRegister.interruptIdentification), IIR.fifosEnabled | IIR.receiverLineStatus)
        let status = rd(UARTRegister.lineStatus)
        XCTAssertEqual(status & (LSR.overrunError | LSR.dataReady), LSR.overrunError | LSR.dataReady)
        XCTAssertEqual(iirIdentification, IIR.receivedDataAvailable, "64 bytes ≥ trigger level 1")
        for _ in 0..<Serial16550.receiveFIFOCapacity { _ = rd(UARTRegister.data) }
        XCTAssertEqual(iirIdentification, IIR.transmitterHoldingEmpty)
        XCTAssertEqual(iirIdentification, IIR.modemStatus, "previous IIR read acknowledged THRE")
        XCTAssertEqual(rd(UARTRegister.modemStatus) & MSR.deltaBits, MSR.deltaClearToSend)
        XCTAssertEqual(iirIdentification, IIR.noInterruptPending)
        XCTAssertFalse(irq.isHigh)
    }

    func testLineStatusOutranksDataEvenWhenDataArrivesLater() {
        wr(UARTRegister.modemControl, MCR.loopback)
        wr(UARTRegister.data, 1)  // non-FIFO: RBR holds one byte
        wr(UARTRegister.data, 2)  // overrun, overwrites RBR
        wr(UARTRegister.interruptEnable, IER.receivedDataAvailable | IER.receiverLineStatus)
        XCTAssertEqual(rd(UARTRegister.interruptIdentification), IIR.receiverLineStatus)
        _ = rd(UARTRegister.lineStatus)
        XCTAssertEqual(rd(UARTRegister.interruptIdentification), IIR.receivedDataAvailable)
        XCTAssertEqual(rd(UARTRegister.data), 2)
        XCTAssertEqual(rd(UARTRegister.interruptIdentification), IIR.noInterruptPending)
    }

    // MARK: Loopback

    func testLoopbackEchoesAndMirrorsModemLines() {
        wr(UARTRegister.fifoControl, FCR.enableFIFOs)
        wr(UARTRegister.modemControl, MCR.loopback | MCR.requestToSend | MCR.out2)
        // Linux's autoconfig check: CTS and DCD follow RTS and OUT2.
        XCTAssertEqual(rd(UARTRegister.modemStatus) & 0xF0, 0x90)
        for byte in Array("echo".utf8) { wr(UARTRegister.data, byte) }
        XCTAssertTrue(out.bytes.isEmpty, "loopback keeps TX off the line")
        var echoed: [UInt8] = []
        while rd(UARTRegister.lineStatus) & LSR.dataReady != 0 { echoed.append(rd(UARTRegister.data)) }
        XCTAssertEqual(echoed, Array("echo".utf8))
        XCTAssertEqual(uart.enqueueInput([1, 2, 3]), 0, "receiver disconnected from the host in loopback")
    }

    func testModemDeltaBitsInLoopback() {
        wr(UARTRegister.modemControl, MCR.loopback | MCR.out1 | MCR.dataTerminalReady)
        // Entering loopback: CTS and DCD dropped (deltas), DSR stayed, RI rose (no TERI).
        XCTAssertEqual(rd(UARTRegister.modemStatus),
                       MSR.dataSetReady | MSR.ringIndicator | MSR.deltaClearToSend | MSR.deltaDataCarrierDetect)
        wr(UARTRegister.modemControl, MCR.loopback)
        XCTAssertEqual(rd(UARTRegister.modemStatus), MSR.deltaDataSetReady | MSR.trailingEdgeRingIndicator)
        XCTAssertEqual(rd(UARTRegister.modemStatus), 0, "deltas cleared by the read")
        wr(UARTRegister.interruptEnable, IER.modemStatus)
        wr(UARTRegister.modemControl, 0)
        XCTAssertEqual(iirIdentification, IIR.modemStatus)
        XCTAssertEqual(rd(UARTRegister.modemStatus), MSR.connectedLines | 0x0B)
        XCTAssertFalse(irq.isHigh)
    }

    // MARK: FIFO

    func testFIFOEnabledBitsInIIR() {
        XCTAssertEqual(rd(UARTRegister.interruptIdentification) & IIR.fifosEnabled, 0)
        wr(UARTRegister.fifoControl, FCR.enableFIFOs | 0xC0)
        XCTAssertEqual(rd(UARTRegister.interruptIdentification), IIR.fifosEnabled | IIR.noInterruptPending)
        wr(UARTRegister.fifoControl, 0)
        XCTAssertEqual(rd(UARTRegister.interruptIdentification) & IIR.fifosEnabled, 0)
    }

    func testTriggerLevels() {
        for (bits, level) in [(UInt8(0x00), 1), (0x40, 4), (0x80, 8), (0xC0, 14)] {
            setUp()
            wr(UARTRegister.fifoControl, FCR.enableFIFOs | bits)
            wr(UARTRegister.interruptEnable, IER.receivedDataAvailable)
            XCTAssertFalse(irq.isHigh)
            if level > 1 {
                XCTAssertEqual(uart.enqueueInput([UInt8](repeating: 0x61, count: level - 1)), level - 1)
                XCTAssertEqual(iirIdentification, IIR.characterTimeout, "below level \(level): timeout")
                XCTAssertTrue(irq.isHigh)
            }
            XCTAssertEqual(uart.enqueueInput([0x62]), 1)
            XCTAssertEqual(iirIdentification, IIR.receivedDataAvailable, "at level \(level)")
            XCTAssertEqual(rd(UARTRegister.data), 0x61 + (level == 1 ? 1 : 0))
            for _ in 0..<(level - 1) { _ = rd(UARTRegister.data) }
            XCTAssertEqual(iirIdentification, IIR.noInterruptPending)
            XCTAssertFalse(irq.isHigh)
        }
    }

    func testFIFOControlClearsReceiver() {
        wr(UARTRegister.fifoControl, FCR.enableFIFOs)
        XCTAssertEqual(uart.enqueueInput(Array("abc".utf8)), 3)
        wr(UARTRegister.fifoControl, FCR.enableFIFOs | FCR.clearReceiveFIFO)
        XCTAssertEqual(rd(UARTRegister.lineStatus) & LSR.dataReady, 0)
        XCTAssertEqual(uart.enqueueInput(Array("de".utf8)), 2)
        wr(UARTRegister.fifoControl, 0)  // disabling FIFOs clears them too
        XCTAssertEqual(rd(UARTRegister.lineStatus) & LSR.dataReady, 0)
    }

    func testReceiveOverflowSetsOverrunAndKeepsFIFO() {
        wr(UARTRegister.fifoControl, FCR.enableFIFOs)
        wr(UARTRegister.modemControl, MCR.loopback)
        for i in 0..<200 { wr(UARTRegister.data, UInt8(i)) }
        let status = rd(UARTRegister.lineStatus)
        XCTAssertEqual(status & LSR.overrunError, LSR.overrunError)
        XCTAssertEqual(rd(UARTRegister.lineStatus) & LSR.overrunError, 0, "OE clears on read")
        var received: [UInt8] = []
        while rd(UARTRegister.lineStatus) & LSR.dataReady != 0 { received.append(rd(UARTRegister.data)) }
        XCTAssertEqual(received, (0..<64).map { UInt8($0) }, "the first 64 bytes survive")
        XCTAssertEqual(uart.metrics.overrunBytes, 200 - 64)
        XCTAssertEqual(uart.metrics.transmittedBytes, 0, "loopback bytes never reach the sink")
        XCTAssertEqual(rd(UARTRegister.data), 0, "reading an empty receiver is harmless")
    }

    // MARK: Host input

    func testEnqueueInputBackpressureAndSpaceHandler() {
        var wakeups = 0
        uart.setInputSpaceHandler { wakeups += 1 }
        wr(UARTRegister.fifoControl, FCR.enableFIFOs)
        let typed = (0..<100).map { UInt8($0) }
        XCTAssertEqual(uart.enqueueInput(typed), 64)
        XCTAssertEqual(uart.inputSpace, 0)
        XCTAssertFalse(uart.canAcceptInput)
        XCTAssertEqual(uart.enqueueInput(typed[64...]), 0)
        for _ in 0..<31 { _ = rd(UARTRegister.data) }
        XCTAssertEqual(wakeups, 0, "no wake-up per byte")
        _ = rd(UARTRegister.data)
        XCTAssertEqual(wakeups, 1, "half the FIFO free")
        for _ in 0..<10 { _ = rd(UARTRegister.data) }
        XCTAssertEqual(wakeups, 1, "one wake-up per refusal")
        XCTAssertEqual(uart.inputSpace, 42)
        XCTAssertEqual(uart.enqueueInput(typed[64...]), 36)
        var received: [UInt8] = []
        while rd(UARTRegister.lineStatus) & LSR.dataReady != 0 { received.append(rd(UARTRegister.data)) }
        XCTAssertEqual(received, Array(typed[42...]), "nothing lost, nothing reordered")
        XCTAssertEqual(wakeups, 1)
    }

    func testWithoutFIFOsTheReceiverTakesOneByte() {
        var wakeups = 0
        uart.setInputSpaceHandler { wakeups += 1 }
        XCTAssertEqual(uart.enqueueInput([1, 2]), 1)
        XCTAssertEqual(rd(UARTRegister.data), 1)
        XCTAssertEqual(wakeups, 1)
        XCTAssertEqual(uart.enqueueInput([2]), 1)
    }

    func testRequestToSendFlowControl() {
        var wakeups = 0
        uart = Serial16550(interrupt: irq, output: out, inputFlowControl: .requestToSend,
                           onInputSpace: { wakeups += 1 })
        wr(UARTRegister.fifoControl, FCR.enableFIFOs)
        XCTAssertEqual(uart.enqueueInput([0x61]), 0, "guest has not raised RTS")
        wr(UARTRegister.modemControl, MCR.dataTerminalReady)
        XCTAssertEqual(wakeups, 0)
        wr(UARTRegister.modemControl, MCR.dataTerminalReady | MCR.requestToSend | MCR.out2)
        XCTAssertEqual(wakeups, 1, "raising RTS wakes the host")
        XCTAssertEqual(uart.enqueueInput([0x61]), 1)
        wr(UARTRegister.modemControl, MCR.out2)
        XCTAssertEqual(uart.inputSpace, 0)
        XCTAssertEqual(rd(UARTRegister.data), 0x61, "bytes already taken stay readable")
    }

    func testSpaceHandlerMayEnqueueFromInsideTheCallback() {
        var pending = Array("0123456789".utf8)
        uart.setInputSpaceHandler { [unowned self] in
            let n = self.uart.enqueueInput(pending)
            pending.removeFirst(n)
        }
        pending.removeFirst(uart.enqueueInput(pending))
        var received: [UInt8] = []
        while rd(UARTRegister.lineStatus) & LSR.dataReady != 0 { received.append(rd(UARTRegister.data)) }
        XCTAssertEqual(received, Array("0123456789".utf8), "no deadlock, no loss")
    }

    // MARK: What Linux's 8250 driver checks

    /// The register dance of Linux 6.1's autoconfig() and serial8250_do_startup(), reduced
    /// to the reads whose answers decide whether the port works and as what.
    func testLinux8250ProbeFindsA16550AWithoutTHREBug() {
        // Existence test: IER must hold 0 and 0x0F.
        wr(UARTRegister.interruptEnable, 0)
        XCTAssertEqual(rd(UARTRegister.interruptEnable) & 0x0F, 0)
        wr(UARTRegister.interruptEnable, 0x0F)
        XCTAssertEqual(rd(UARTRegister.interruptEnable) & 0x0F, 0x0F)
        wr(UARTRegister.interruptEnable, 0)
        // Loopback test: MCR = LOOP | 0x0A must show DCD | CTS.
        wr(UARTRegister.modemControl, MCR.loopback | 0x0A)
        XCTAssertEqual(rd(UARTRegister.modemStatus) & 0xF0, 0x90)
        wr(UARTRegister.modemControl, 0)
        // FIFO probe: IIR bits 6–7 = 3 means 16550A.
        wr(UARTRegister.fifoControl, FCR.enableFIFOs)
        XCTAssertEqual(rd(UARTRegister.interruptIdentification) >> 6, 3)
        // EFR probe (LCR = 0xBF, offset 2 must not read 0: no 16650).
        wr(UARTRegister.lineControl, 0xBF)
        XCTAssertNotEqual(rd(2), 0)
        // 16750 probe: the 64-byte bit (IIR bit 5) never answers.
        wr(UARTRegister.lineControl, 0)
        wr(UARTRegister.fifoControl, FCR.enableFIFOs | 0x20)
        XCTAssertEqual(rd(UARTRegister.interruptIdentification) & 0xE0, 0xC0)
        // XScale probe: IER bit 6 does not stick.
        wr(UARTRegister.interruptEnable, 0x40)
        XCTAssertEqual(rd(UARTRegister.interruptEnable) & 0x40, 0)
        wr(UARTRegister.interruptEnable, 0)
        // Startup's THRE test: THRE must be re-asserted when ETBEI is re-enabled.
        wr(UARTRegister.interruptEnable, IER.transmitterHoldingEmpty)
        let iir1 = rd(UARTRegister.interruptIdentification)
        wr(UARTRegister.interruptEnable, 0)
        wr(UARTRegister.interruptEnable, IER.transmitterHoldingEmpty)
        let iir2 = rd(UARTRegister.interruptIdentification)
        wr(UARTRegister.interruptEnable, 0)
        XCTAssertEqual(iir1 & IIR.noInterruptPending, 0)
        XCTAssertEqual(iir2 & IIR.noInterruptPending, 0, "no UART_BUG_THRE")
        XCTAssertNotEqual(rd(UARTRegister.lineStatus), 0xFF, "LSR safety check")
    }

    // MARK: State

    func testStateCaptureRestoreRoundTrip() throws {
        wr(UARTRegister.lineControl, LCR.divisorLatchAccess)
        wr(UARTRegister.divisorLow, 0x01)
        wr(UARTRegister.lineControl, 0x1B)
        wr(UARTRegister.fifoControl, FCR.enableFIFOs | 0x80)
        wr(UARTRegister.modemControl, MCR.dataTerminalReady | MCR.requestToSend | MCR.out2)
        wr(UARTRegister.scratch, 0x5A)
        wr(UARTRegister.interruptEnable, IER.receivedDataAvailable | IER.transmitterHoldingEmpty)
        XCTAssertEqual(uart.enqueueInput(Array("snapshot".utf8)), 8)
        let state = uart.captureState()
        XCTAssertEqual(state.receiveFIFO, Array("snapshot".utf8))
        XCTAssertTrue(state.transmitterInterruptPending)

        let irq2 = DeviceTestInterruptLine()
        let copy = Serial16550(interrupt: irq2, output: DeviceTestOutput(), inputFlowControl: .always)
        try copy.restoreState(state)
        XCTAssertEqual(copy.captureState(), state)
        XCTAssertEqual(irq2.levels, [true], "the restored pending interrupt drives the line")
        XCTAssertEqual(UInt8(copy.read(offset: UInt16(2), size: 1)), IIR.fifosEnabled | IIR.receivedDataAvailable)
        XCTAssertEqual(UInt8(copy.read(offset: UInt16(0), size: 1)), UInt8(ascii: "s"))
        XCTAssertEqual(UInt8(copy.read(offset: UInt16(7), size: 1)), 0x5A)
    }

    func testRestoreRejectsOversizedFIFO() {
        var state = Serial16550.State()
        state.receiveFIFO = [1, 2]  // FIFOs disabled: RBR holds one byte
        XCTAssertThrowsError(try uart.restoreState(state)) { error in
            XCTAssertEqual(error as? Serial16550.StateError, .receiveFIFOTooLong(count: 2, limit: 1))
            XCTAssertTrue("\(error)".contains("receive FIFO"))
        }
        state.fifoControl = FCR.enableFIFOs
        state.receiveFIFO = [UInt8](repeating: 0, count: 65)
        XCTAssertThrowsError(try uart.restoreState(state))
    }

    // MARK: Buses

    func testMMIOAccessUsesTheSameRegisters() {
        let mmio: MMIODevice = uart
        mmio.write(offset: 7, size: 1, value: 0x33)
        XCTAssertEqual(rd(UARTRegister.scratch), 0x33)
        mmio.write(offset: 0, size: 1, value: 0x7A)
        XCTAssertEqual(out.bytes, [0x7A])
        XCTAssertEqual(mmio.read(offset: 5, size: 1), 0x60)
        XCTAssertEqual(mmio.read(offset: 8, size: 1), 0xFF, "outside the 8 registers")
        XCTAssertEqual(mmio.read(offset: 0x100, size: 4), 0xFFFF_FFFF)
        mmio.write(offset: 9, size: 1, value: 0)
        XCTAssertEqual(uart.read(offset: UInt16(9), size: 1), 0xFF)
    }

    func testConcurrentGuestAndHostDoNotLoseInput() {
        let total = 5_000
        let input = (0..<total).map { UInt8(truncatingIfNeeded: $0) }
        wr(UARTRegister.fifoControl, FCR.enableFIFOs)
        let space = DispatchSemaphore(value: 0)
        uart.setInputSpaceHandler { space.signal() }
        let host = Thread { [uart] in
            var offset = 0
            while offset < total {
                let n = uart!.enqueueInput(input[offset...])
                offset += n
                if n == 0 { _ = space.wait(timeout: .now() + 0.01) }
            }
        }
        host.start()
        var received: [UInt8] = []
        let deadline = Date().addingTimeInterval(20)
        while received.count < total && Date() < deadline {
            if rd(UARTRegister.lineStatus) & LSR.dataReady != 0 {
                received.append(rd(UARTRegister.data))
                wr(UARTRegister.data, 0x2E)  // output from the guest meanwhile
            }
        }
        XCTAssertEqual(received, input)
        XCTAssertEqual(out.bytes.count, total)
        XCTAssertEqual(uart.metrics.receivedBytes, UInt64(total))
        XCTAssertEqual(uart.metrics.transmittedBytes, UInt64(total))
    }
}
