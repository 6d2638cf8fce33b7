import CKVM
import KVMKit
import XCTest

/// The device models on the real port bus under /dev/kvm: a real-mode guest programs the
/// UART, prints with `rep outsb`, waits for a host keystroke (which the UART holds back
/// until the guest raises RTS), echoes it and the CMOS year, and powers off through ACPI.
final class DevicesOnKVMTests: XCTestCase {
    func testRealModeGuestDrivesUARTCMOSAndPoweroff() throws {
        let kvm = try requireKVM()
        let vm = try kvm.createVM()
        let memory = try GuestMemory(layout: [(0, 0x10000)])
        try vm.setMemory(memory)

        let code: [UInt8] = [
            0xBA, 0xFB, 0x03, 0xB0, 0x80, 0xEE,  // LCR := DLAB
            0xBA, 0xF8, 0x03, 0xB0, 0x01, 0xEE,  // DLL := 1 (115200 baud)
            0xBA, 0xFB, 0x03, 0xB0, 0x03, 0xEE,  // LCR := 8N1
            0xBA, 0xFA, 0x03, 0xB0, 0xC7, 0xEE,  // FCR := enable, clear, trigger 14
            0xBA, 0xFC, 0x03, 0xB0, 0x0B, 0xEE,  // MCR := DTR | RTS | OUT2
            0xBE, 0x00, 0x11,                    // mov si, 0x1100
            0xB9, 0x03, 0x00,                    // mov cx, 3
            0xBA, 0xF8, 0x03,                    // mov dx, 0x3F8
            0xF3, 0x6E,                          // rep outsb        ; "OK\n"
            0xBA, 0xFD, 0x03,                    // mov dx, 0x3FD    ; LSR
            0xEC, 0xA8, 0x01, 0x74, 0xFB,        // poll: in al, dx; test al, 1; jz poll
            0xBA, 0xF8, 0x03, 0xEC, 0xEE,        // in al, dx; out dx, al   ; echo the keystroke
            0xB0, 0x09, 0xE6, 0x70,              // CMOS index := year
            0xE4, 0x71, 0xEE,                    // in al, 0x71; out dx, al
            0xBA, 0x00, 0x06, 0xB0, 0x34, 0xEE,  // SLP_TYP 5 | SLP_EN to 0x600
            0xF4,                                // hlt
        ]
        try memory.write(at: 0x1000, bytes: code)
        try memory.write(at: 0x1100, bytes: Array("OK\n".utf8))

        let output = BoundedOutputBuffer(capacity: 64) {}
        let irq = DeviceTestInterruptLine()
        let uart = Serial16550(interrupt: irq, output: output)  // RTS flow control
        var typed = Array("x".utf8)
        uart.setInputSpaceHandler { [unowned uart] in typed.removeFirst(uart.enqueueInput(typed)) }
        XCTAssertEqual(uart.enqueueInput(typed), 0, "held back until the guest raises RTS")

        var poweroffs = 0
        let bus = PortIOBus()
        try bus.attach(uart, base: 0x3F8, count: 8, name: "COM1")
        try bus.attach(CMOS(ramBelow4GiB: 0x10000, ramAbove4GiB: 0, clock: { 1_795_269_909 }),
                       base: 0x70, count: 2, name: "CMOS")
        try bus.attach(ACPISleepRegisters(onPoweroff: { poweroffs += 1 }), base: 0x600, count: 2, name: "ACPI sleep")

        let vcpu = try vm.createVCPU(id: 0)
        try startInRealMode(vcpu, at: 0x1000)

        var halted = false
        for _ in 0..<500 where !halted {
            switch try vcpu.run() {
            case .ioOut(let port, let size, let count, let data):
                bus.handleOut(port: port, size: size, count: count, data: data)
            case .ioIn(let port, let size, let count, let data):
                bus.handleIn(port: port, size: size, count: count, data: data)
            case .halt:
                halted = true
            case .interrupted:
                continue
            case let exit:
                XCTFail("unexpected exit \(exit)")
                return
            }
        }
        XCTAssertTrue(halted)
        XCTAssertEqual(output.readAll(), Array("OK\nx".utf8) + [0x26])
        XCTAssertEqual(poweroffs, 1)
        XCTAssertTrue(typed.isEmpty)
        XCTAssertEqual(bus.unhandled.readCount + bus.unhandled.writeCount, 0)
        XCTAssertEqual(uart.metrics.transmittedBytes, 5)
    }

    /// The same UART model in an MMIO window (1-byte registers), as `--serial-mmio` uses it.
    func testUARTInAnMMIOWindow() throws {
        let kvm = try requireKVM()
        let vm = try kvm.createVM()
        let memory = try GuestMemory(layout: [(0, 0x10000)])
        try vm.setMemory(memory)
        let code: [UInt8] = [
            0xBB, 0x00, 0x20, 0x8E, 0xDB,        // mov bx, 0x2000; mov ds, bx  ; ds base 0x20000
            0xC6, 0x06, 0x00, 0x00, 0x4D,        // mov byte [0], 'M'           ; THR
            0xA0, 0x05, 0x00,                    // mov al, [5]                 ; LSR
            0xA2, 0x07, 0x00,                    // mov [7], al                 ; SCR := LSR
            0xF4,                                // hlt
        ]
        try memory.write(at: 0x1000, bytes: code)
        let output = BoundedOutputBuffer(capacity: 64) {}
        let uart = Serial16550(interrupt: DeviceTestInterruptLine(), output: output)
        let bus = MMIOBus()
        try bus.attach(uart, base: 0x20000, size: 0x1000, name: "UART (MMIO)")
        let vcpu = try vm.createVCPU(id: 0)
        try startInRealMode(vcpu, at: 0x1000)
        var halted = false
        for _ in 0..<50 where !halted {
            switch try vcpu.run() {
            case .mmioWrite(let address, _, let data): bus.handleWrite(address: address, data: data)
            case .mmioRead(let address, _, let data): bus.handleRead(address: address, data: data)
            case .halt: halted = true
            case .interrupted: continue
            case let exit:
                XCTFail("unexpected exit \(exit)")
                return
            }
        }
        XCTAssertTrue(halted)
        XCTAssertEqual(output.readAll(), [0x4D])
        XCTAssertEqual(uart.captureState().scratch, 0x60, "LSR: THRE | TEMT")
    }
}
