import Foundation
import XCTest

/// Every bad input: exit 2, one line on stderr that names the file or option and the
/// problem, nothing started.
final class BadInputTests: XCTestCase {
    func expectBadInput(_ args: [String], contains fragments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try runProcess(swiftvmmExecutable(), ["run"] + args, timeout: 30)
        XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.stdout, "", "nothing may run: \(r.stdout)", file: file, line: line)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "one line: \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.hasPrefix("swiftvmm: "), r.stderr, file: file, line: line)
        for f in fragments { XCTAssertTrue(r.stderr.contains(f), "expected \(f) in: \(r.stderr)", file: file, line: line) }
    }

    func probeBytes() throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: try probeKernel()))) }

    func testMissingKernel() throws {
        try expectBadInput(["--kernel", "/nonexistent/vmlinuz"], contains: ["/nonexistent/vmlinuz", "No such file"])
    }

    func testNotAKernel() throws {
        let p = try temporaryFile("notes.txt", bytes: Array("hello, this is not a kernel\n".utf8) + Array(repeating: 0x20, count: 4096))
        try expectBadInput(["--kernel", p], contains: [p, "not a Linux kernel"])
    }

    func testTruncatedBzImage() throws {
        let p = try temporaryFile("short.bzImage", bytes: Array(try probeBytes().prefix(3000)))
        try expectBadInput(["--kernel", p], contains: [p, "truncated bzImage"])
    }

    func testOldBootProtocol() throws {
        var b = try probeBytes()
        b[0x206] = 0x04; b[0x207] = 0x02  // version 2.04
        let p = try temporaryFile("old.bzImage", bytes: b)
        try expectBadInput(["--kernel", p], contains: [p, "boot protocol 2.04 is older than 2.06"])
    }

    func testInitrdDoesNotFit() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        let p = try temporaryFile("big.initrd", bytes: [])
        XCTAssertEqual(truncate(p, 40 << 20), 0)  // sparse 40 MiB
        try expectBadInput(["--kernel", kernel, "--memory", "32", "--initrd", p], contains: [p, "initrd"])
    }

    func testMissingInitrd() throws {
        try requireKVMDevice()
        try expectBadInput(["--kernel", try probeKernel(), "--initrd", "/nonexistent/initrd"], contains: ["/nonexistent/initrd"])
    }

    func testCommandLineTooLong() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        try expectBadInput(["--kernel", kernel, "--cmdline", String(repeating: "a", count: 5000)],
                           contains: [kernel, "command line is 5000 bytes, kernel allows"])
    }

    func testMemoryTooSmallForKernel() throws {
        try requireKVMDevice()
        try expectBadInput(["--kernel", try probeKernel(), "--memory", "1"], contains: ["--memory 1 MiB"])
    }

    func testMemoryLargerThanHost() throws {
        try requireKVMDevice()
        try expectBadInput(["--kernel", try probeKernel(), "--memory", "100000000"], contains: ["--memory 100000000 MiB", "larger than this host"])
    }

    func testZeroCPUs() throws {
        try requireKVMDevice()
        try expectBadInput(["--kernel", try probeKernel(), "--cpus", "0"], contains: ["--cpus 0"])
    }

    func testTooManyCPUs() throws {
        try requireKVMDevice()
        try expectBadInput(["--kernel", try probeKernel(), "--cpus", "100000"], contains: ["--cpus 100000", "KVM maximum"])
    }

    func testBadSerialMode() throws {
        try expectBadInput(["--serial", "carrier-pigeon"], contains: ["carrier-pigeon"])
    }

    func testUnknownOption() throws {
        try expectBadInput(["--frobnicate"], contains: ["--frobnicate"])
    }
}
