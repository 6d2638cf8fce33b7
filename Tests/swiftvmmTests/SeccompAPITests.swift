import Foundation
import KVMKit
import XCTest

/// API mode (Firecracker's command line) under the seccomp filters: the API thread is
/// filtered before its first request, every thread once InstanceStart built the VM, and a
/// call outside the `api` or `control` list ends the process with the line naming both.
final class SeccompAPITests: XCTestCase {
    /// `Seccomp:` of each of the process's own threads (KVM's helper threads are not ours), by name.
    func seccompModes(_ pid: Int32) -> [(thread: String, mode: String)] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.compactMap { tid in
            let comm = ((try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/comm", encoding: .utf8)) ?? "")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard comm.hasPrefix("swiftvmm") else { return nil }
            let status = (try? String(contentsOfFile: "/proc/\(pid)/task/\(tid)/status", encoding: .utf8)) ?? ""
            guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Seccomp:") }) else { return nil }
            return (comm, line.dropFirst("Seccomp:".count).trimmingCharacters(in: .whitespaces))
        }
    }

    func configureAndStart(_ vm: ManagedVMProcess, kernel: String) throws {
        XCTAssertEqual(try vm.curl("PUT", "/machine-config", #"{"vcpu_count": 2, "mem_size_mib": 64}"#).status, 204, vm.stderr)
        XCTAssertEqual(try vm.curl("PUT", "/boot-source", #"{"kernel_image_path": "\#(kernel)", "boot_args": "console=ttyS0 probe.count=0:1000"}"#).status, 204)
        XCTAssertEqual(try vm.curl("PUT", "/actions", #"{"action_type": "InstanceStart"}"#).status, 204, vm.stderr)
    }

    func testTheAPIThreadIsFilteredBeforeItsFirstRequestAndEveryThreadAfterInstanceStart() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        let vm = try ManagedVMProcess { ["--api-sock", $0] }
        // No request yet: only the socket file (it appears once the server listens).
        XCTAssertTrue(waitFor(20) { FileManager.default.fileExists(atPath: vm.socket) }, vm.stderr)
        XCTAssertTrue(waitFor(5) { seccompModes(vm.process.processIdentifier).contains { $0.thread == "swiftvmm-api" && $0.mode == "2" } },
                      "API thread filtered before the first request: \(seccompModes(vm.process.processIdentifier))")
        XCTAssertEqual(seccompModes(vm.process.processIdentifier).first { $0.thread == "swiftvmm" }?.mode, "0",
                       "the main thread builds the VM unfiltered")
        try configureAndStart(vm, kernel: kernel)
        XCTAssertTrue(waitFor(20) { consoleCounts(vm.console).count >= 2 }, vm.console + vm.stderr)
        let modes = seccompModes(vm.process.processIdentifier)
        XCTAssertEqual(modes.count, 5, "main, API, event loop, 2 vCPUs: \(modes)")
        XCTAssertEqual(Set(modes.map(\.mode)), ["2"], "Seccomp: 2 on every thread: \(modes)")
        // Post-boot requests run on the filtered main thread.
        XCTAssertEqual(try vm.curl("PATCH", "/vm", #"{"state": "Paused"}"#).status, 204, vm.stderr)
        let dir = vm.directory
        XCTAssertEqual(try vm.curl("PUT", "/snapshot/create", #"{"snapshot_path": "\#(dir)/s", "mem_file_path": "\#(dir)/m"}"#).status, 204, vm.stderr)
        XCTAssertEqual(try vm.curl("PATCH", "/vm", #"{"state": "Resumed"}"#).status, 204, vm.stderr)
        XCTAssertEqual(try vm.curl("PUT", "/actions", #"{"action_type": "SendCtrlAltDel"}"#).status, 204, vm.stderr)
        XCTAssertEqual(vm.waitForExit(), 0, vm.stderr)
        XCTAssertFalse(vm.stderr.contains("seccomp"), vm.stderr)
    }

    func testNoSeccompLeavesEveryThreadUnfiltered() throws {
        try requireKVMDevice()
        let vm = try ManagedVMProcess { ["--api-sock", $0, "--no-seccomp"] }
        try vm.waitForSocket()
        try configureAndStart(vm, kernel: try probeKernel())
        XCTAssertTrue(waitFor(20) { consoleCounts(vm.console).count >= 2 }, vm.console + vm.stderr)
        let modes = seccompModes(vm.process.processIdentifier)
        XCTAssertEqual(modes.count, 5, "\(modes)")
        XCTAssertEqual(Set(modes.map(\.mode)), ["0"], "\(modes)")
    }

    /// Without accept4 in its list, the API thread ends the process at its first client.
    func testAPIThreadWithoutAccept4EndsAtItsFirstClient() throws {
        try requireKVMDevice()
        let filters = try seccompFilterFile(dropping: "accept4", from: .api)
        let vm = try ManagedVMProcess { ["--api-sock", $0, "--seccomp-filter", filters] }
        XCTAssertTrue(waitFor(20) { FileManager.default.fileExists(atPath: vm.socket) }, vm.stderr)
        _ = try? vm.curl("GET", "/")
        XCTAssertEqual(vm.waitForExit(), Seccomp.forbiddenCallExitStatus, vm.stderr)
        XCTAssertTrue(vm.stderr.contains("swiftvmm: seccomp: api thread made a forbidden system call: accept4 (288)\n"), vm.stderr)
    }

    /// Without openat in the `control` list, the first post-boot request that opens a file
    /// (a snapshot) ends the process: the main thread runs under it once the VM runs.
    func testControlThreadWithoutOpenatEndsAtASnapshot() throws {
        try requireKVMDevice()
        let filters = try seccompFilterFile(dropping: "openat", from: .control)
        let vm = try ManagedVMProcess { ["--api-sock", $0, "--seccomp-filter", filters] }
        try vm.waitForSocket()
        try configureAndStart(vm, kernel: try probeKernel())
        XCTAssertEqual(try vm.curl("PATCH", "/vm", #"{"state": "Paused"}"#).status, 204, vm.stderr)
        _ = try? vm.curl("PUT", "/snapshot/create", #"{"snapshot_path": "\#(vm.directory)/s", "mem_file_path": "\#(vm.directory)/m"}"#)
        XCTAssertEqual(vm.waitForExit(), Seccomp.forbiddenCallExitStatus, vm.stderr)
        XCTAssertTrue(vm.stderr.contains("swiftvmm: seccomp: control thread made a forbidden system call: openat (257)\n"), vm.stderr)
    }

    /// PUT /snapshot/load builds the VM on the main thread before its filter; the loaded VM
    /// then runs with every thread filtered, and a paused one takes post-boot requests.
    func testSnapshotLoadUnderTheFilters() throws {
        try requireKVMDevice()
        let a = try ManagedVMProcess { ["--api-sock", $0] }
        try a.waitForSocket()
        try configureAndStart(a, kernel: try probeKernel())
        XCTAssertTrue(waitFor(20) { consoleCounts(a.console).count >= 2 }, a.console + a.stderr)
        XCTAssertEqual(try a.curl("PATCH", "/vm", #"{"state": "Paused"}"#).status, 204, a.stderr)
        let state = a.directory + "/vm.state", mem = a.directory + "/vm.mem"
        XCTAssertEqual(try a.curl("PUT", "/snapshot/create", #"{"snapshot_path": "\#(state)", "mem_file_path": "\#(mem)"}"#).status, 204, a.stderr)

        let b = try ManagedVMProcess { ["--api-sock", $0] }
        try b.waitForSocket()
        let load = #"{"snapshot_path": "\#(state)", "mem_backend": {"backend_type": "File", "backend_path": "\#(mem)"}, "resume_vm": false}"#
        XCTAssertEqual(try b.curl("PUT", "/snapshot/load", load).status, 204, b.stderr)
        XCTAssertEqual(try b.json("GET", "/")["state"] as? String, "Paused")
        let modes = seccompModes(b.process.processIdentifier)
        XCTAssertEqual(modes.count, 5, "\(modes)")
        XCTAssertEqual(Set(modes.map(\.mode)), ["2"], "\(modes)")
        XCTAssertEqual(try b.curl("PATCH", "/vm", #"{"state": "Resumed"}"#).status, 204, b.stderr)
        let at = consoleCounts(b.console).count
        XCTAssertTrue(waitFor(20) { consoleCounts(b.console).count >= at + 2 }, "the loaded guest runs on: " + b.console + b.stderr)
        XCTAssertFalse(b.stderr.contains("seccomp"), b.stderr)
    }

    /// Firecracker's command line takes `--seccomp-filter` as `run` does: a bad file is bad input.
    func testFirecrackerCommandLineChecksItsFilterOptions() throws {
        let junk = try temporaryFile("junk.bpf", bytes: Array("not bpf".utf8))
        let socket = "/tmp/swiftvmm-never-\(getpid()).sock"
        for (args, message) in [(["--seccomp-filter", junk], "\(junk): not a seccomp filter file: ends inside the entry count"),
                                (["--no-seccomp", "--seccomp-filter", junk], "--no-seccomp and --seccomp-filter exclude each other")] {
            let r = try runProcess(swiftvmmExecutable(), ["--api-sock", socket] + args, timeout: 30)
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertTrue(r.stderr.hasPrefix("swiftvmm: \(message)"), r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: socket), "nothing started")
        }
    }

    /// Options that act on a VM the command line builds are refused in API mode (they
    /// were ignored before), with what to use instead.
    func testCommandLineSnapshotAndMigrationOptionsAreRefusedInAPIMode() throws {
        for (option, value) in [("--restore", "a,b"), ("--migrate-from", "unix:/tmp/x"),
                                ("--snapshot-on-signal", "a,b"), ("--migrate-on-signal", "unix:/tmp/x")] {
            let r = try runProcess(swiftvmmExecutable(), ["run", "--api-sock", "/tmp/swiftvmm-never-\(getpid()).sock", option, value], timeout: 30)
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertTrue(r.stderr.hasPrefix("swiftvmm: \(option) cannot be combined with --api-sock"), r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        }
    }
}
