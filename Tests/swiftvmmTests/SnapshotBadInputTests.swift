import Foundation
import XCTest

/// Damaged and mismatched snapshot files: each is one line on stderr and exit 2, and
/// nothing is started.
final class SnapshotBadInputTests: XCTestCase {
    static var made: (state: [UInt8], mem: String, dir: URL)?

    override class func tearDown() {
        if let d = made?.dir { try? FileManager.default.removeItem(at: d) }
        made = nil
    }

    /// One real snapshot of the probe (at its shell prompt), made once for the class.
    func snapshot() throws -> (state: [UInt8], mem: String, dir: URL) {
        if let m = Self.made { return m }
        try requireKVMDevice()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftvmm-badsnap-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let state = dir.appendingPathComponent("s.state").path, mem = dir.appendingPathComponent("s.mem").path
        let vmm = try RunningVMM(["run", "--kernel", try probeKernel(), "--memory", "32",
                                  "--snapshot-on-signal", "\(state),\(mem),exit"], stdin: "echo ready\n")
        try vmm.waitFor("the prompt") { $0.contains("ready") }
        vmm.signal(SIGUSR1)
        XCTAssertEqual(vmm.wait(), 0, vmm.stderr)
        let m = ([UInt8](try Data(contentsOf: URL(fileURLWithPath: state))), mem, dir)
        Self.made = m
        return m
    }

    func restore(state bytes: [UInt8], mem: String) throws -> ProcessResult {
        let s = try snapshot()
        let path = s.dir.appendingPathComponent("bad-\(UUID().uuidString.prefix(6)).state").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return try runProcess(swiftvmmExecutable(), ["run", "--restore", "\(path),\(mem)"], timeout: 30)
    }

    func assertRefused(_ r: ProcessResult, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(r.status, 2, r.stderr, file: file, line: line)
        let lines = r.stderr.split(separator: "\n").filter { !$0.contains("PVM host") }
        XCTAssertEqual(lines.count, 1, r.stderr, file: file, line: line)
        XCTAssertTrue(r.stderr.contains(expected), "\(r.stderr) lacks \(expected)", file: file, line: line)
    }

    func testTruncatedStateFile() throws {
        let s = try snapshot()
        assertRefused(try restore(state: Array(s.state.prefix(s.state.count / 2)), mem: s.mem), "state file is truncated")
        assertRefused(try restore(state: Array(s.state.prefix(5)), mem: s.mem), "not a swiftvmm state file")
    }

    func testBitFlippedStateFile() throws {
        let s = try snapshot()
        var b = s.state
        b[b.count - 100] ^= 0x10
        assertRefused(try restore(state: b, mem: s.mem), "state file is corrupted")
    }

    func testWrongVersionStateFile() throws {
        let s = try snapshot()
        var b = s.state
        b[8] = 3
        assertRefused(try restore(state: b, mem: s.mem), "state file format version 3 is not supported")
    }

    func testMemoryFileOfTheWrongSize() throws {
        let s = try snapshot()
        let short = s.dir.appendingPathComponent("short.mem").path
        try Data(count: 4096).write(to: URL(fileURLWithPath: short))
        assertRefused(try restore(state: s.state, mem: short), "memory file \(short) is 4096 bytes")
    }

    func testMemoryFileOfAnotherSnapshot() throws {
        let s = try snapshot()
        var mem = [UInt8](try Data(contentsOf: URL(fileURLWithPath: s.mem)))
        mem[mem.count - 4096 + 8] ^= 1  // another token
        let other = s.dir.appendingPathComponent("other.mem").path
        try Data(mem).write(to: URL(fileURLWithPath: other))
        assertRefused(try restore(state: s.state, mem: other), "does not belong to state file")
    }

    func testMissingFilesAndBadOption() throws {
        let s = try snapshot()
        let r = try runProcess(swiftvmmExecutable(), ["run", "--restore", "/nonexistent.state,\(s.mem)"], timeout: 30)
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertTrue(r.stderr.contains("cannot open the state file /nonexistent.state"), r.stderr)
        let o = try runProcess(swiftvmmExecutable(), ["run", "--restore", "only-one-path"], timeout: 30)
        XCTAssertEqual(o.status, 2, o.stderr)
        XCTAssertTrue(o.stderr.contains("use STATE,MEM"), o.stderr)
    }
}

extension SnapshotBadInputTests {
    /// A crash between the memory file's rename and the state file's: the old state file
    /// and MEM.prev still restore.
    func testInterruptedSnapshotLeavesThePreviousOneRestorable() throws {
        let s = try snapshot()
        let dir = s.dir.appendingPathComponent("crash-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let state = dir.appendingPathComponent("s.state").path, mem = dir.appendingPathComponent("s.mem").path
        try Data(s.state).write(to: URL(fileURLWithPath: state))
        XCTAssertEqual(link(s.mem, mem + ".prev"), 0)
        var newer = [UInt8](try Data(contentsOf: URL(fileURLWithPath: s.mem)))
        newer[newer.count - 4096 + 8] ^= 0xFF  // the half-finished snapshot's token
        try Data(newer).write(to: URL(fileURLWithPath: mem))
        let r = try runProcess(swiftvmmExecutable(), ["run", "--restore", "\(state),\(mem)"], stdin: Data("echo alive\npoweroff\n".utf8),
                               timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("alive"), r.stdout)
        unlink(mem + ".prev")
        let refused = try runProcess(swiftvmmExecutable(), ["run", "--restore", "\(state),\(mem)"], timeout: 30)
        XCTAssertEqual(refused.status, 2, refused.stderr)
        XCTAssertTrue(refused.stderr.contains("does not belong to state file"), refused.stderr)
    }
}
