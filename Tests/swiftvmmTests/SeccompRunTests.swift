import Foundation
import KVMKit
import XCTest

/// `swiftvmm run` under its seccomp filters: on by default for every thread, a call
/// outside a thread's list ends the run with the line naming thread and call.
final class SeccompRunTests: XCTestCase {
    /// Start a probe VM that waits at its shell (stdin kept open) and return the
    /// `Seccomp:` value of each of its threads once `threads` of them show the expected
    /// mode (2 filtered, 0 with --no-seccomp).
    func seccompModesOfRunningVM(_ extra: [String], threads: Int = 4) throws -> [String] {
        try requireKVMDevice()
        let p = Process()
        p.executableURL = swiftvmmExecutable()
        p.arguments = ["run", "--kernel", try probeKernel(), "--memory", "64", "--cpus", "2", "--serial", "none"] + extra
        let keepOpen = Pipe()
        p.standardInput = keepOpen
        try p.run()
        defer { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        let deadline = Date().addingTimeInterval(10)
        var modes: [String] = []
        while Date() < deadline {
            let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(p.processIdentifier)/task")) ?? []
            modes = tasks.compactMap { tid -> String? in
                // Kernel helper threads that KVM attaches to the process (kvm-nx-lpage-recovery) are not ours.
                let comm = (try? String(contentsOfFile: "/proc/\(p.processIdentifier)/task/\(tid)/comm", encoding: .utf8)) ?? ""
                guard comm.hasPrefix("swiftvmm") else { return nil }
                let status = (try? String(contentsOfFile: "/proc/\(p.processIdentifier)/task/\(tid)/status", encoding: .utf8)) ?? ""
                return status.split(separator: "\n").first { $0.hasPrefix("Seccomp:") }
                    .map { $0.dropFirst("Seccomp:".count).trimmingCharacters(in: .whitespaces) }
            }
            if modes.count >= threads && Set(modes) == [extra.contains("--no-seccomp") ? "0" : "2"] { break }
            usleep(20_000)
        }
        return modes
    }

    func testEveryThreadRunsFilteredByDefault() throws {
        let modes = try seccompModesOfRunningVM([])
        XCTAssertEqual(modes.count, 4, "main, event loop, 2 vCPUs: \(modes)")
        XCTAssertEqual(Set(modes), ["2"], "Seccomp: 2 (filter) on every thread: \(modes)")
    }

    /// A disk adds its four I/O threads (`block` kind), filtered like the rest.
    func testDiskIOThreadsRunFiltered() throws {
        let disk = try temporaryFile("disk.raw", bytes: [UInt8](repeating: 0, count: 1 << 20))
        let modes = try seccompModesOfRunningVM(["--disk", disk], threads: 8)
        XCTAssertEqual(modes.count, 8, "main, event loop, 2 vCPUs, 4 disk I/O threads: \(modes)")
        XCTAssertEqual(Set(modes), ["2"], "Seccomp: 2 (filter) on every thread: \(modes)")
    }

    func testNoSeccompRunsUnfiltered() throws {
        let modes = try seccompModesOfRunningVM(["--no-seccomp"])
        XCTAssertEqual(modes.count, 4, "\(modes)")
        XCTAssertEqual(Set(modes), ["0"], "\(modes)")
    }

    func assertForbiddenCallEndsTheRun(kind: ThreadKind, call: String, number: Int, extra: [String] = [],
                                       tests: String = "serial,e820,mmio,virtio", file: StaticString = #filePath, line: UInt = #line) throws {
        try requireKVMDevice()
        let filters = try seccompFilterFile(dropping: call, from: kind)
        let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", try probeKernel(), "--memory", "64",
                                                      "--cmdline", "console=ttyS0 probe.run=\(tests)", "--seccomp-filter", filters] + extra, timeout: 30)
        XCTAssertEqual(r.status, Seccomp.forbiddenCallExitStatus, r.stderr, file: file, line: line)
        XCTAssertTrue(r.stderr.contains("swiftvmm: seccomp: \(kind.rawValue) thread made a forbidden system call: \(call) (\(number))\n"),
                      r.stderr, file: file, line: line)
    }

    func testVCPUThreadWithoutIoctlEndsAtItsFirstKVMRun() throws {
        try assertForbiddenCallEndsTheRun(kind: .vcpu, call: "ioctl", number: 16)
    }

    func testEventLoopWithoutEpollWaitEndsAtItsFirstWait() throws {
        try assertForbiddenCallEndsTheRun(kind: .vmm, call: "epoll_wait", number: 232)
    }

    /// The disk's first read runs on an I/O thread, under the block list.
    func testDiskIOThreadWithoutPreadEndsAtTheFirstRead() throws {
        let disk = try temporaryFile("disk.raw", bytes: [UInt8](repeating: 0, count: 1 << 20))
        try assertForbiddenCallEndsTheRun(kind: .block, call: "pread64", number: 17, extra: ["--disk", disk], tests: "blk")
    }

    func testMainThreadWithoutReadEndsWhileWaiting() throws {
        try assertForbiddenCallEndsTheRun(kind: .main, call: "read", number: 0)
    }

    func testTheBuiltInListsLoadedFromAFileRunTheProbe() throws {
        try requireKVMDevice()
        guard case .filters(let programs) = try SeccompPolicy.builtIn() else { return XCTFail("no filters") }
        let filters = try temporaryFile("builtin.bpf", bytes: SeccompFilterFile.serialize(programs))
        let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", try probeKernel(), "--memory", "64",
                                                      "--cmdline", "console=ttyS0 probe.run=serial,e820,mmio,virtio", "--seccomp-filter", filters], timeout: 30)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertNotNil(r.stdout.range(of: #"PROBE DONE pass=\d+ fail=0"#, options: .regularExpression), r.stdout)
    }

    func testBadFilterFilesAreBadInput() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        let junk = try temporaryFile("junk.bpf", bytes: Array("not bpf".utf8))
        for (args, message) in [(["--seccomp-filter", junk], "\(junk): not a seccomp filter file: ends inside the entry count"),
                                (["--seccomp-filter", "/nonexistent/f.bpf"], "/nonexistent/f.bpf: not a seccomp filter file: cannot open: "),
                                (["--no-seccomp", "--seccomp-filter", junk], "--no-seccomp and --seccomp-filter exclude each other")] {
            let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel] + args, timeout: 30)
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertTrue(r.stderr.hasPrefix("swiftvmm: \(message)"), r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertEqual(r.stdout, "")
        }
    }
}

/// A vCPU reading the CMOS clock under the vCPU filter (found in the nested bed: glibc's
/// first gmtime_r opened /etc/localtime on the vCPU thread, and the filter ended the VM).
final class SeccompRTCTests: XCTestCase {
    /// A minimal ELF64 kernel: read RTC seconds (index 0 through ports 0x70/0x71), then
    /// reset through the i8042 (0xFE to port 0x64).
    func rtcReadingKernel() -> [UInt8] {
        let code: [UInt8] = [0xB0, 0x00, 0xE6, 0x70, 0xE4, 0x71, 0xB0, 0xFE, 0xE6, 0x64, 0xF4, 0xEB, 0xFD]
        let load: UInt64 = 0x100_0000, codeOffset: UInt64 = 0x1000
        var f = [UInt8](repeating: 0, count: Int(codeOffset) + code.count)
        func put<T: FixedWidthInteger>(_ v: T, _ at: Int) { for i in 0..<MemoryLayout<T>.size { f[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) } }
        f.replaceSubrange(0..<4, with: [0x7f, 0x45, 0x4c, 0x46]); f[4] = 2; f[5] = 1; f[6] = 1
        put(UInt16(2), 16); put(UInt16(62), 18); put(UInt32(1), 20)
        put(load, 24); put(UInt64(64), 32); put(UInt16(64), 52); put(UInt16(56), 54); put(UInt16(1), 56)
        put(UInt32(1), 64); put(UInt32(5), 68); put(codeOffset, 72); put(load, 80); put(load, 88)
        put(UInt64(code.count), 96); put(UInt64(code.count), 104); put(UInt64(0x1000), 112)
        f.replaceSubrange(Int(codeOffset)..<f.count, with: code)
        return f
    }

    func testVCPUReadsTheRTCUnderItsFilter() throws {
        try requireKVMDevice()
        let kernel = try temporaryFile("rtc.elf", bytes: rtcReadingKernel())
        let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", kernel, "--memory", "32", "--serial", "none"], timeout: 30)
        XCTAssertFalse(r.stderr.contains("seccomp"), r.stderr)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("guest reset"), r.stderr)
    }
}

/// The built-in programs with one call dropped from one kind's list, as a `--seccomp-filter` file.
func seccompFilterFile(dropping name: String, from kind: ThreadKind, file: StaticString = #filePath, line: UInt = #line) throws -> String {
    var programs: [ThreadKind: [BPFInstruction]] = [:]
    for k in ThreadKind.allCases {
        let rules = SeccompAllowLists.rules(for: k).filter { k != kind || $0.name != name }
        XCTAssertEqual(rules.count, SeccompAllowLists.rules(for: k).count - (k == kind ? 1 : 0), "\(k) lists \(name)", file: file, line: line)
        programs[k] = try SeccompProgram.compile(rules)
    }
    return try temporaryFile("filters.bpf", bytes: SeccompFilterFile.serialize(programs))
}
