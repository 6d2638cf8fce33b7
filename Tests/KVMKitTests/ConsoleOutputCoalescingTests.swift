import Foundation
@testable import KVMKit
import XCTest

/// Guest output that arrives a byte at a time (a UART on a vCPU thread) reaches stdout
/// complete and in order, with far fewer loop wake-ups than bytes, and a lone byte after
/// a quiet spell still goes out at once.
final class ConsoleOutputCoalescingTests: XCTestCase {
    /// A UART's output path without the UART: the buffer signals `notify` on empty → non-empty.
    final class BufferPort: ConsoleGuestPort {
        let notify: EventFD
        let buffer: BoundedOutputBuffer
        init() throws {
            notify = try EventFD()
            buffer = BoundedOutputBuffer(wakeupFileDescriptor: notify.fd)
        }
        var notifyFD: Int32 { notify.fd }
        func enqueueInput(_ bytes: UnsafeRawBufferPointer) -> Int { bytes.count }
        func drainOutput(into buffer: UnsafeMutableRawBufferPointer) -> Int { self.buffer.read(into: buffer) }
    }

    func testByteAtATimeBurstIsCompleteWithFewWakeups() throws {
        var input: [Int32] = [0, 0], output: [Int32] = [0, 0]
        XCTAssertEqual(pipe(&input), 0)
        XCTAssertEqual(pipe(&output), 0)
        defer { close(input[0]); close(input[1]); close(output[0]); close(output[1]) }
        let loop = try EventLoop()
        let port = try BufferPort()
        let console = ConsoleBackend(mode: .stdio, port: port, loop: loop, stdio: (input[0], output[1])) {}
        try console.start()
        try loop.start()

        // A lone byte after a quiet spell is written without waiting for a timer tick.
        port.buffer.write(UInt8(ascii: ">"))
        XCTAssertTrue(waitUntil(1) { console.outputBytes == 1 }, "the first byte goes out at once")

        // A byte every ~20 µs for 0.2 s, far faster than the 2 ms drain period: each byte
        // used to cost one wake-up of the loop thread.
        var sent: [UInt8] = []
        let start = DispatchTime.now().uptimeNanoseconds
        var next = start
        while DispatchTime.now().uptimeNanoseconds - start < 200_000_000 {
            if DispatchTime.now().uptimeNanoseconds < next { continue }
            next &+= 20_000
            let b = UInt8(ascii: "a") + UInt8(sent.count % 26)
            port.buffer.write(b)
            sent.append(b)
        }
        let elapsedMs = (DispatchTime.now().uptimeNanoseconds - start) / 1_000_000
        XCTAssertTrue(waitUntil(5) { console.outputBytes == UInt64(sent.count + 1) }, "\(console.outputBytes) of \(sent.count + 1)")
        loop.stop()
        loop.join()
        let wakeups = console.metrics.outputWakeups
        console.shutdown()

        var got = [UInt8](repeating: 0, count: sent.count + 16)
        let n = got.withUnsafeMutableBytes { read(output[0], $0.baseAddress, $0.count) }
        XCTAssertEqual(Array(got.prefix(max(0, n))), [UInt8(ascii: ">")] + sent, "every byte, in order")
        XCTAssertGreaterThan(sent.count, 1000)
        // At most one drain per 2 ms tick (plus the first byte's and the last tick's).
        XCTAssertLessThanOrEqual(wakeups, elapsedMs / 2 + 5, "\(wakeups) wake-ups for \(sent.count) bytes in \(elapsedMs) ms")
    }
}
