import Foundation
import KVMKit
import XCTest

/// `swiftvmm run` under its seccomp filters: on by default for every thread, a call
/// outside a thread's list ends the run with the line naming thread and call.
final class SeccompRunTests: XCTestCase {
    /// Start a probe VM that waits at its shell (stdin kept open) and return the
    /// `Seccomp:` value of each of its threads once all three (main, loop, vCPU) exist.
    func seccompModesOfRunningVM(_ extra: [String]) throws -> [String] {
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
            if modes.count >= 4 && Set(modes) == [extra.isEmpty ? "2" : "0"] { break }
            usleep(20_000)
        }
        return modes
    }

    func testEveryThreadRunsFilteredByDefault() throws {
        let modes = try seccompModesOfRunningVM([])
        XCTAssertEqual(modes.count, 4, "main, event loop, 2 vCPUs: \(modes)")
        XCTAssertEqual(Set(modes), ["2"], "Seccomp: 2 (filter) on every thread: \(modes)")
    }

    func testNoSeccompRunsUnfiltered() throws {
        let modes = try seccompModesOfRunningVM(["--no-seccomp"])
        XCTAssertEqual(modes.count, 4, "\(modes)")
        XCTAssertEqual(Set(modes), ["0"], "\(modes)")
    }

    /// The built-in programs with one call dropped from one kind's list.
    func filterFile(dropping name: String, from kind: ThreadKind) throws -> String {
        var programs: [ThreadKind: [BPFInstruction]] = [:]
        for k in ThreadKind.allCases {
            let rules = SeccompAllowLists.rules(for: k).filter { k != kind || $0.name != name }
            XCTAssertEqual(rules.count, SeccompAllowLists.rules(for: k).count - (k == kind ? 1 : 0), "\(k) lists \(name)")
            programs[k] = try SeccompProgram.compile(rules)
        }
        return try temporaryFile("filters.bpf", bytes: SeccompFilterFile.serialize(programs))
    }

    func assertForbiddenCallEndsTheRun(kind: ThreadKind, call: String, number: Int, file: StaticString = #filePath, line: UInt = #line) throws {
        try requireKVMDevice()
        let filters = try filterFile(dropping: call, from: kind)
        let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", try probeKernel(), "--memory", "64",
                                                      "--cmdline", "console=ttyS0 probe.run=all", "--seccomp-filter", filters], timeout: 30)
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

    func testMainThreadWithoutReadEndsWhileWaiting() throws {
        try assertForbiddenCallEndsTheRun(kind: .main, call: "read", number: 0)
    }

    func testTheBuiltInListsLoadedFromAFileRunTheProbe() throws {
        try requireKVMDevice()
        guard case .filters(let programs) = try SeccompPolicy.builtIn() else { return XCTFail("no filters") }
        let filters = try temporaryFile("builtin.bpf", bytes: SeccompFilterFile.serialize(programs))
        let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", try probeKernel(), "--memory", "64",
                                                      "--cmdline", "console=ttyS0 probe.run=all", "--seccomp-filter", filters], timeout: 30)
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
