import Foundation
import XCTest

/// --serial socket:PATH with swiftvmm attach: detach, re-attach, replay, type, answer.
final class AttachTests: XCTestCase {
    func testDetachReattachReplayAndType() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        let socket = FileManager.default.temporaryDirectory.appendingPathComponent("swiftvmm-\(getpid())-\(UUID().uuidString.prefix(6)).sock").path
        let vm = Process()
        vm.executableURL = swiftvmmExecutable()
        vm.arguments = ["run", "--kernel", kernel, "--memory", "64", "--serial", "socket:\(socket)"]
        vm.standardInput = FileHandle.nullDevice
        let vmErr = Pipe()
        vm.standardError = vmErr
        try vm.run()
        defer { if vm.isRunning { kill(vm.processIdentifier, SIGKILL) } }
        let deadline = Date().addingTimeInterval(20)
        while !FileManager.default.fileExists(atPath: socket) && Date() < deadline { usleep(20_000) }
        usleep(300_000)  // let the probe reach its prompt; output is kept for replay either way

        // First client: sees the banner (replayed), types a command, detaches.
        let pty1 = try PseudoTerminal()
        let a1 = try startOnTerminal(pty1, ["attach", socket])
        pty1.waitFor("probe> ")
        XCTAssertTrue(pty1.output.contains("swiftvmm probe "), "replay holds the boot output")
        // A second client meanwhile is refused.
        let busy = try runProcess(swiftvmmExecutable(), ["attach", socket], stdin: Data(), timeout: 10)
        XCTAssertEqual(busy.status, 1)
        XCTAssertTrue((busy.stdout + busy.stderr).contains("busy"), busy.stdout + busy.stderr)

        pty1.send("echo first-session\r")
        pty1.waitFor("\nfirst-session")
        pty1.sendBytes([0x01, UInt8(ascii: "d")])
        XCTAssertTrue(waitForExit(a1))
        XCTAssertEqual(a1.terminationStatus, 0)
        XCTAssertTrue(vm.isRunning, "the VM keeps running after a detach")

        // Second client: the replay shows the first session's command; a new one answers.
        let pty2 = try PseudoTerminal()
        let a2 = try startOnTerminal(pty2, ["attach", socket])
        pty2.waitFor("first-session")
        let mark = pty2.count
        pty2.send("echo second-session\r")
        pty2.waitFor("\nsecond-session", after: mark)
        pty2.send("poweroff\r")
        XCTAssertTrue(waitForExit(vm))
        XCTAssertEqual(vm.terminationStatus, 0)
        XCTAssertTrue(waitForExit(a2))
        XCTAssertEqual(a2.terminationStatus, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: socket), "the socket is removed on exit")
    }
}
