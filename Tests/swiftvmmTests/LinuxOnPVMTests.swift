import Foundation
import TestSupport
import XCTest

/// Debian's stock kernel on this host's KVM. On PVM it crawls in the emulator, but its
/// first decompressor message proves boot_params, the command line and COM1 are right.
final class LinuxOnPVMTests: XCTestCase {
    func debianKernel() throws -> String {
        let path = repositoryRoot().appendingPathComponent("guests/out/linux/vmlinuz").path
        if !FileManager.default.fileExists(atPath: path) {
            throw missingPrerequisite("guests/out/linux/vmlinuz is missing (make test runs guests/linux/build)")
        }
        return path
    }

    func testDebianKernelPrintsKASLRDisabledWithin20Seconds() throws {
        try requireKVMDevice()
        let kernel = try debianKernel()
        let p = Process()
        p.executableURL = swiftvmmExecutable()
        p.arguments = ["run", "--kernel", kernel, "--memory", "256", "--cmdline", "earlyprintk=ttyS0 console=ttyS0 nokaslr"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        let start = Date()
        try p.run()
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() } }
        let fd = out.fileHandleForReading.fileDescriptor
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        // Wait for the whole line: the emulated guest prints it a byte at a time, and a
        // read that stopped at "KASLR disabled" once saw only "…: 'nokaslr' on c".
        let expected = "KASLR disabled: 'nokaslr' on cmdline."
        var text = ""
        var buf = [UInt8](repeating: 0, count: 4096)
        while Date().timeIntervalSince(start) < 20 && !text.contains(expected) {
            let n = read(fd, &buf, buf.count)
            if n > 0 { text += String(decoding: buf[0..<n], as: UTF8.self) } else { usleep(50_000) }
        }
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertTrue(text.contains(expected), "after \(elapsed) s: \(text)")
        print("Debian kernel printed 'KASLR disabled' after \(String(format: "%.2f", elapsed)) s")
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
    }
}
