import CKVM
import Foundation
@testable import KVMKit
import XCTest

/// A guest console device for tests: output the test pushes, input with a settable
/// amount of room (to exercise backpressure). Thread-safe.
final class FakeConsolePort: ConsoleGuestPort {
    private let lock = NSLock()
    private var output: [UInt8] = []
    private var inputRoom: Int
    private var receivedBytes: [UInt8] = []
    let notify: EventFD

    var received: [UInt8] {
        lock.lock(); defer { lock.unlock() }
        return receivedBytes
    }

    var pendingOutput: Int {
        lock.lock(); defer { lock.unlock() }
        return output.count
    }

    init(inputRoom: Int = Int.max) throws {
        self.inputRoom = inputRoom
        notify = try EventFD()
    }

    var notifyFD: Int32 { notify.fd }

    func enqueueInput(_ bytes: UnsafeRawBufferPointer) -> Int {
        lock.lock(); defer { lock.unlock() }
        let n = min(bytes.count, inputRoom)
        receivedBytes.append(contentsOf: bytes.prefix(n))
        inputRoom -= n
        return n
    }

    func drainOutput(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        lock.lock(); defer { lock.unlock() }
        let n = min(buffer.count, output.count)
        for i in 0..<n { buffer[i] = output[i] }
        output.removeFirst(n)
        return n
    }

    /// The guest printed something.
    func guestWrites(_ text: String) {
        lock.lock()
        output.append(contentsOf: Array(text.utf8))
        lock.unlock()
        notify.signal()
    }

    /// The guest read some input: room for `n` more bytes.
    func makeRoom(_ n: Int) {
        lock.lock()
        inputRoom += n
        lock.unlock()
        notify.signal()
    }

    var receivedText: String {
        String(decoding: received, as: UTF8.self)
    }
}

/// Poll `condition` for up to `seconds`.
func waitUntil(_ seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        usleep(2000)
    }
    return condition()
}

func temporarySocketPath(_ name: String) -> String {
    "/tmp/swiftvmm-test-\(getpid())-\(name).sock"
}

/// A connected client socket (blocking) with helpers for reading with a timeout.
final class TestClient {
    let fd: Int32
    init(path: String) throws {
        let c = try UnixSocketAddress.connect(path)
        guard c.fd >= 0 else { throw ConsoleError.systemCall("connect", errno: c.errno, context: path) }
        fd = c.fd
    }
    deinit { close(fd) }

    func send(_ text: String) {
        _ = Array(text.utf8).withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }
    func send(bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }

    /// Read until `expected` appears in the accumulated bytes, EOF, or timeout.
    private(set) var received: [UInt8] = []
    private(set) var sawEOF = false
    @discardableResult
    func read(until expected: String? = nil, timeout: Double = 5) -> String {
        let end = Date().addingTimeInterval(timeout)
        var buf = [UInt8](repeating: 0, count: 65536)
        while Date() < end, !sawEOF {
            if let expected, String(decoding: received, as: UTF8.self).contains(expected) { break }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 20) <= 0 { continue }
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { sawEOF = true; break }
            received.append(contentsOf: buf[0..<n])
        }
        return String(decoding: received, as: UTF8.self)
    }
}

/// A pseudo-terminal pair: `terminal` plays the user's tty, `controller` the emulator.
final class PtyPair {
    let controller: Int32
    let terminal: Int32
    init() throws {
        var c: Int32 = -1, t: Int32 = -1
        let r = ckvm_open_pty_pair(&c, &t)
        guard r == 0 else { throw ConsoleError.systemCall("openpty", errno: -r, context: "test") }
        controller = c
        terminal = t
    }
    deinit {
        close(controller)
        close(terminal)
    }

    func attributes() -> termios {
        var t = termios()
        tcgetattr(terminal, &t)
        return t
    }

    func type(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.write(controller, $0.baseAddress, $0.count) }
    }

    /// What the terminal displayed (read from the controller side) within `timeout`.
    func readScreen(until expected: String, timeout: Double = 5) -> String {
        var got: [UInt8] = []
        let end = Date().addingTimeInterval(timeout)
        var buf = [UInt8](repeating: 0, count: 4096)
        while Date() < end {
            if String(decoding: got, as: UTF8.self).contains(expected) { break }
            var p = pollfd(fd: controller, events: Int16(POLLIN), revents: 0)
            if poll(&p, 1, 20) <= 0 { continue }
            let n = buf.withUnsafeMutableBytes { Glibc.read(controller, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            got.append(contentsOf: buf[0..<n])
        }
        return String(decoding: got, as: UTF8.self)
    }
}

func sameTerminalSettings(_ a: termios, _ b: termios) -> Bool {
    var a = a, b = b
    return a.c_iflag == b.c_iflag && a.c_oflag == b.c_oflag && a.c_cflag == b.c_cflag && a.c_lflag == b.c_lflag
        && withUnsafeBytes(of: &a.c_cc) { x in withUnsafeBytes(of: &b.c_cc) { y in x.elementsEqual(y) } }
}
