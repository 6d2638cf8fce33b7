import Foundation
import XCTest

/// A running swiftvmm whose output the test reads while it runs.
final class RunningVMM {
    let process = Process()
    private let out = Pipe(), err = Pipe(), input = Pipe()
    private let lock = NSLock()
    private var outData = Data(), errData = Data()

    init(_ arguments: [String], stdin: String = "", executable: URL = swiftvmmExecutable()) throws {
        process.executableURL = executable
        process.arguments = arguments
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        out.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            self?.lock.lock(); self?.outData.append(d); self?.lock.unlock()
        }
        err.fileHandleForReading.readabilityHandler = { [weak self] h in
            let d = h.availableData
            self?.lock.lock(); self?.errData.append(d); self?.lock.unlock()
        }
        try process.run()
        input.fileHandleForWriting.write(Data(stdin.utf8))
    }

    var stdout: String { lock.lock(); defer { lock.unlock() }; return String(decoding: outData, as: UTF8.self) }
    var stderr: String { lock.lock(); defer { lock.unlock() }; return String(decoding: errData, as: UTF8.self) }

    /// Wait until stdout satisfies `condition` (or the process ends, or the time is up).
    func waitFor(_ what: String, timeout: TimeInterval = 60, _ condition: (String) -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition(stdout) { return }
            if !process.isRunning { break }
            usleep(20_000)
        }
        if condition(stdout) { return }
        throw NSError(domain: "swiftvmm-tests", code: 1, userInfo: [NSLocalizedDescriptionKey:
            "waiting for \(what): stdout tail \(stdout.suffix(300)) stderr \(stderr)"])
    }

    /// Wait for the exit; kill after `timeout`. Returns the status.
    func wait(timeout: TimeInterval = 60) -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        usleep(100_000)  // let the readability handlers take the last bytes
        // Then drop them, so no dispatch source outlives the test (thread-count checks).
        out.fileHandleForReading.readabilityHandler = nil
        err.fileHandleForReading.readabilityHandler = nil
        return process.terminationStatus
    }

    func signal(_ s: Int32) { kill(process.processIdentifier, s) }

    /// More console input, after what `stdin` gave at the start.
    /// Nothing once the process is gone (a write to its closed pipe would end the tests).
    func send(_ text: String) {
        guard process.isRunning else { return }
        input.fileHandleForWriting.write(Data(text.utf8))
    }

    /// A test that failed half-way leaves no VM behind.
    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
}

/// Snapshot and restore on /dev/kvm with the probe kernel: a guest counting on its console
/// and writing a sector per count to its virtio disk is suspended (Full), restored in a new
/// process, suspended again (Diff), restored again: no count is lost or repeated, and the
/// disk holds what the last counts wrote.
final class SnapshotRestoreTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        try requireKVMDevice()
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftvmm-snap-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { if let dir { try? FileManager.default.removeItem(at: dir) } }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// `--disk …,iops=` survives a snapshot: a guest counting with a disk read and write
    /// per count (far more than the 5 requests a second the disk allows) is snapshotted,
    /// loaded through the API in a fresh process, and goes on waiting for the limiter
    /// there — the restored disk's `rate_limited` counter grows.
    func testARestoredDiskIsStillRateLimited() throws {
        let kernel = try probeKernel()
        let disk = path("limited.img")
        XCTAssertTrue(FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20)))
        let state = path("l.state"), mem = path("l.mem")
        let a = try RunningVMM(["run", "--kernel", kernel, "--memory", "64", "--disk", "\(disk),iops=5/1000",
                                "--snapshot-on-signal", "\(state),\(mem),exit"], stdin: "count 0 20 disk\n")
        try a.waitFor("3 counts") { (consoleCounts($0).last ?? 0) >= 3 }
        a.signal(SIGUSR1)
        XCTAssertEqual(a.wait(), 0, a.stderr)

        let b = try ManagedVMProcess { ["--api-sock", $0] }
        try b.waitForSocket()
        let load = #"{"snapshot_path": "\#(state)", "mem_backend": {"backend_type": "File", "backend_path": "\#(mem)"}, "resume_vm": true}"#
        XCTAssertEqual(try b.curl("PUT", "/snapshot/load", load).status, 204, b.stderr)
        var limited = 0, last = ""
        let deadline = Date().addingTimeInterval(30)
        while limited == 0 && Date() < deadline {
            last = try b.curl("GET", "/metrics").body
            if let key = last.range(of: "\"rate_limited\":") {
                limited = Int(last[key.upperBound...].drop { $0 == " " }.prefix { $0.isNumber }) ?? 0
            }
            if limited == 0 { usleep(100_000) }
        }
        XCTAssertGreaterThan(limited, 0, "the restored disk's requests waited for its limiter: \(last)\n\(b.console)\n\(b.stderr)")
        XCTAssertFalse(b.console.contains("disk error"), b.console)
    }

    func testCountContinuesAcrossFullAndDiffSnapshots() throws {
        let kernel = try probeKernel()
        let disk = path("disk.img")
        XCTAssertTrue(FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20)))

        let a = try RunningVMM(["run", "--kernel", kernel, "--memory", "64", "--disk", disk, "--track-dirty-pages",
                                "--snapshot-on-signal", "\(path("full.state")),\(path("full.mem")),exit"], stdin: "count 0 20 disk\n")
        try a.waitFor("20 counts") { (consoleCounts($0).last ?? 0) >= 20 }
        a.signal(SIGUSR1)
        XCTAssertEqual(a.wait(), 0, a.stderr)
        XCTAssertTrue(a.stderr.contains("snapshot (Full) written"), a.stderr)

        let b = try RunningVMM(["run", "--restore", "\(path("full.state")),\(path("full.mem"))",
                                "--snapshot-on-signal", "\(path("diff.state")),\(path("diff.mem")),diff,exit"])
        let before = consoleCounts(a.stdout).last ?? 0
        try b.waitFor("20 more counts") { (consoleCounts(a.stdout + $0).last ?? 0) >= before + 20 }
        b.signal(SIGUSR1)
        XCTAssertEqual(b.wait(), 0, b.stderr)
        XCTAssertTrue(b.stderr.contains("snapshot (Diff) written"), b.stderr)
        XCTAssertTrue(b.stderr.contains("dirty pages"), b.stderr)

        let c = try RunningVMM(["run", "--restore", "\(path("diff.state")),\(path("diff.mem"))",
                                "--snapshot-on-signal", "\(path("last.state")),\(path("last.mem")),exit"])
        let middle = consoleCounts(a.stdout + b.stdout).last ?? 0
        try c.waitFor("20 more counts after the diff") { (consoleCounts(a.stdout + b.stdout + $0).last ?? 0) >= middle + 20 }
        c.signal(SIGUSR1)
        XCTAssertEqual(c.wait(), 0, c.stderr)

        let all = a.stdout + b.stdout + c.stdout
        let seen = consoleCounts(all)
        XCTAssertEqual(seen, Array(1...(seen.last ?? 0)), "every count once, in order, across three processes")
        XCTAssertFalse(all.contains("disk error"), String(all.suffix(500)))

        // The disk (flushed at each snapshot): the last 63 counts printed, each in its
        // sector; the next one's sector holds it too if the suspend came between the
        // guest's disk write and its printk, else the count from 64 before.
        let image = [UInt8](try Data(contentsOf: URL(fileURLWithPath: disk)))
        func sector(_ n: Int) -> UInt64 {
            image[(n % 64) * 512..<(n % 64) * 512 + 8].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        }
        let last = seen.last ?? 0
        for n in max(1, last - 62)...last { XCTAssertEqual(sector(n), UInt64(n), "sector \(n % 64)") }
        XCTAssertTrue([UInt64(last + 1), UInt64(max(0, last - 63))].contains(sector(last + 1)), "sector \((last + 1) % 64)")
    }

    func testKilledAfterSnapshotRestoresFromTheSnapshot() throws {
        let kernel = try probeKernel()
        let a = try RunningVMM(["run", "--kernel", kernel, "--memory", "64",
                                "--snapshot-on-signal", "\(path("s.state")),\(path("s.mem"))"], stdin: "count 0\n")
        try a.waitFor("10 counts") { (consoleCounts($0).last ?? 0) >= 10 }
        a.signal(SIGUSR1)
        let deadline = Date().addingTimeInterval(30)
        while !a.stderr.contains("snapshot (Full) written") && Date() < deadline { usleep(20_000) }
        a.signal(SIGKILL)
        _ = a.wait()
        let killedAt = consoleCounts(a.stdout).last ?? 0
        let b = try RunningVMM(["run", "--restore", "\(path("s.state")),\(path("s.mem"))"])
        try b.waitFor("counts after restore") { consoleCounts($0).count >= 5 }
        b.signal(SIGKILL)
        _ = b.wait()
        let resumed = consoleCounts(b.stdout)
        XCTAssertGreaterThan(resumed.first ?? 0, 10, "the snapshot was taken after count 10")
        XCTAssertLessThanOrEqual(resumed.first ?? .max, killedAt + 1, "the restored guest starts at the snapshot, not later")
        XCTAssertEqual(resumed, Array((resumed.first ?? 0)...(resumed.last ?? 0)))
    }
}
