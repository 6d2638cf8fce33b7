@testable import swiftvmm
import XCTest

/// The start-up parser must read `run`'s options exactly as swift-argument-parser does,
/// and hand everything else to it.
final class FastRunParserTests: XCTestCase {
    func viaArgumentParser(_ args: [String]) throws -> PlainRunOptions {
        let parsed = try SwiftVMM.parseAsRoot(args)
        let c = try XCTUnwrap(parsed as? RunCommand)
        return PlainRunOptions(kernel: c.kernel, initrd: c.initrd, cmdline: c.cmdline, memory: c.memory, cpus: c.cpus,
                               serial: c.serial, serialMMIO: c.serialMMIO, elfEntry: c.elfEntry, disks: c.disks, rng: c.rng,
                               console: c.console, noVirtioCommandLine: c.noVirtioCommandLine, timings: c.timings,
                               noSeccomp: c.noSeccomp, seccompFilter: c.seccompFilter)
    }

    func assertSame(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let fast = try XCTUnwrap(FastRunParser.parse(args), "fast path refused \(args)", file: file, line: line)
        let slow = try viaArgumentParser(args)
        XCTAssertEqual(String(describing: fast), String(describing: slow), "\(args)", file: file, line: line)
    }

    func testPlainOptionListsParseTheSame() throws {
        try assertSame(["run"])
        try assertSame(["run", "--kernel", "k", "--initrd", "i", "--cmdline", "console=ttyS0 quiet", "--memory", "256", "--cpus", "2"])
        try assertSame(["run", "--kernel=k", "--memory=64", "--serial", "socket:/tmp/x", "--serial-mmio", "0xd1000000"])
        try assertSame(["run", "--disk", "a.img,ro", "--disk=b.img,id=beta", "--rng", "--console", "hvc", "--no-virtio-cmdline", "--timings"])
        try assertSame(["run", "--elf-entry", "pvh", "--kernel", "vmlinux"])
        try assertSame(["run", "--no-seccomp"])
        try assertSame(["run", "--seccomp-filter", "filters.bpf"])
    }

    func testAnythingElseFallsBackToArgumentParser() {
        for args in [["check"], ["run", "--help"], ["run", "-h"], ["run", "--frobnicate", "x"], ["run", "--memory", "lots"],
                     ["run", "--memory", "1", "--memory", "2"], ["run", "--kernel"], ["run", "--rng=yes"], ["run", "positional"],
                     ["run", "--cpus", "-1"], ["attach", "/tmp/s"]] {
            XCTAssertNil(FastRunParser.parse(args), "\(args) must go to ArgumentParser")
        }
    }
}
