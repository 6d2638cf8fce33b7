// libFuzzer target: arbitrary register sequences on the 16550 UART through its port and
// MMIO views, any offset and access size, interleaved with host input and state
// capture/restore. Invariants: input never overruns the receive FIFO; restoring a
// captured state gives the same state back. Input: byte 0 picks flow control, then
// 4-byte operations (kind, offset, size, value).
// libfuzzer: -max_len=4096
import KVMKit

final class Line: InterruptLine {
    var level = false
    func setLevel(_ high: Bool) { level = high }
}

final class Sink: SerialOutput {
    var count = 0
    func write(_ byte: UInt8) { count &+= 1 }
}

let sizes = [1, 2, 4, 8, 0, 3]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 1 else { return 0 }
    let uart = Serial16550(interrupt: Line(), output: Sink(), inputFlowControl: data[0] & 1 == 0 ? .always : .requestToSend)
    var i = 1
    while i + 4 <= size {
        let (kind, offset, width, value) = (data[i], data[i + 1], sizes[Int(data[i + 2]) % sizes.count], data[i + 3])
        i += 4
        switch kind % 6 {
        case 0: _ = uart.read(offset: UInt16(offset & 7), size: 1)
        case 1: uart.write(offset: UInt16(offset & 7), size: 1, value: UInt32(value))
        case 2: _ = uart.read(offset: UInt64(offset), size: width)
        case 3: uart.write(offset: UInt16(offset), size: width, value: UInt32(value) * 0x0101_0101)
        case 4:
            let before = uart.inputSpace
            let taken = uart.enqueueInput(repeatElement(value, count: Int(offset)))
            if taken > before || taken < 0 { fatalError("took \(taken) bytes with room for \(before)") }
        default:
            let state = uart.captureState()
            do { try uart.restoreState(state) } catch { fatalError("own state refused: \(error)") }
            if uart.captureState() != state { fatalError("state changed by a restore") }
        }
        if uart.inputSpace < 0 || uart.inputSpace > Serial16550.receiveFIFOCapacity { fatalError("input space \(uart.inputSpace)") }
    }
    return 0
}
