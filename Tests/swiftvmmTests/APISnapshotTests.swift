import Foundation
import XCTest

/// Firecracker's snapshot calls over the control API: PUT /snapshot/create on a paused VM,
/// then PUT /snapshot/load (File backend, resume_vm) in a fresh process.
final class APISnapshotTests: XCTestCase {
    func testCreateThenLoadInAFreshProcess() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftvmm-apisnap-\(getpid())-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let state = dir.appendingPathComponent("vm.state").path, mem = dir.appendingPathComponent("vm.mem").path

        let a = try ManagedVMProcess { ["run", "--api-sock", $0, "--kernel", kernel, "--memory", "64", "--cmdline", "console=ttyS0 probe.count=0:10"] }
        try a.waitForSocket()
        XCTAssertTrue(waitFor(20) { (consoleCounts(a.console).last ?? 0) >= 5 }, a.console)
        let create = #"{"snapshot_type": "Full", "snapshot_path": "\#(state)", "mem_file_path": "\#(mem)"}"#
        XCTAssertEqual(try a.curl("PUT", "/snapshot/create", create).status, 400, "a running VM is not snapshotted")
        XCTAssertEqual(try a.curl("PATCH", "/vm", #"{"state": "Paused"}"#).status, 204)
        XCTAssertEqual(try a.curl("PUT", "/snapshot/create", create).status, 204)
        let diff = try a.curl("PUT", "/snapshot/create", #"{"snapshot_type": "Diff", "snapshot_path": "\#(state).d", "mem_file_path": "\#(mem).d"}"#)
        XCTAssertEqual(diff.status, 400, "Diff needs track_dirty_pages")
        XCTAssertTrue(diff.body.contains("track_dirty_pages"), diff.body)
        usleep(300_000)  // the console drains what the guest printed before the pause
        let before = a.console
        kill(a.process.processIdentifier, SIGKILL)
        a.process.waitUntilExit()

        let b = try ManagedVMProcess { ["--api-sock", $0] }
        try b.waitForSocket()
        let load = #"{"snapshot_path": "\#(state)", "mem_backend": {"backend_type": "File", "backend_path": "\#(mem)"}, "resume_vm": true}"#
        XCTAssertEqual(try b.curl("PUT", "/snapshot/load", load).status, 204, b.stderr)
        XCTAssertEqual(try b.json("GET", "/")["state"] as? String, "Running")
        let at = consoleCounts(before).last ?? 0
        XCTAssertTrue(waitFor(20) { (consoleCounts(before + b.console).last ?? 0) >= at + 5 }, b.console + b.stderr)
        let seen = consoleCounts(before + b.console)
        XCTAssertEqual(seen, Array(1...(seen.last ?? 0)), "the restored guest goes on from the snapshot: no gap, no repeat")
        XCTAssertEqual(try b.curl("PUT", "/snapshot/load", load).status, 400, "a second load into a running VM is refused")
    }

    /// `swiftvmm snapshot --api-sock` (pause, create, resume), then `run --restore`.
    func testSnapshotCommandAndRestoreFromTheCommandLine() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftvmm-apisnap-\(getpid())-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let state = dir.appendingPathComponent("vm.state").path, mem = dir.appendingPathComponent("vm.mem").path
        let a = try ManagedVMProcess { ["run", "--api-sock", $0, "--kernel", kernel, "--memory", "64", "--cmdline", "console=ttyS0 probe.count=0:10"] }
        try a.waitForSocket()
        XCTAssertTrue(waitFor(20) { (consoleCounts(a.console).last ?? 0) >= 3 }, a.console)
        let r = try runProcess(swiftvmmExecutable(), ["snapshot", "--api-sock", a.socket, state, mem], timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try a.json("GET", "/")["state"] as? String, "Running", "resumed after the snapshot")
        let atSnapshot = consoleCounts(a.console).last ?? 0
        XCTAssertTrue(waitFor(20) { (consoleCounts(a.console).last ?? 0) >= atSnapshot + 2 }, "the source goes on")
        kill(a.process.processIdentifier, SIGKILL)
        a.process.waitUntilExit()
        let b = try RunningVMM(["run", "--restore", "\(state),\(mem)"])
        try b.waitFor("counts after the restore") { consoleCounts($0).count >= 3 }
        b.signal(SIGKILL)
        _ = b.wait()
        let resumed = consoleCounts(b.stdout)
        XCTAssertGreaterThanOrEqual(resumed.first ?? 0, 3, "restored at the snapshot, not from boot")
        XCTAssertLessThanOrEqual(resumed.first ?? .max, atSnapshot + 2)
        XCTAssertEqual(resumed, Array((resumed.first ?? 0)...(resumed.last ?? 0)))
    }
}
