import Foundation
import XCTest

/// Live migration driven through the control API (Cloud Hypervisor's calls): what a failed
/// or refused request leaves behind, and a destination told to receive through its API.
/// The successful moves over a Unix socket and TCP are in LiveMigrationTests.
final class APIMigrationTests: XCTestCase {
    private func probeSource() throws -> ManagedVMProcess {
        let kernel = try probeKernel()
        let vm = try ManagedVMProcess { ["run", "--api-sock", $0, "--kernel", kernel, "--memory", "64", "--cmdline", "console=ttyS0 probe.count=0:10"] }
        try vm.waitForSocket()
        return vm
    }

    /// The source counts on; each count once, in order.
    private func assertCountsOn(_ vm: ManagedVMProcess, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let at = consoleCounts(vm.console).last ?? 0
        XCTAssertTrue(waitFor(20) { (consoleCounts(vm.console).last ?? 0) >= at + 3 }, "\(what): the guest stopped counting", file: file, line: line)
        let seen = consoleCounts(vm.console)
        XCTAssertEqual(seen, Array(1...(seen.last ?? 0)), what, file: file, line: line)
    }

    func testFailedAndRefusedMigrationsLeaveTheSourceRunning() throws {
        try requireKVMDevice()
        let src = try probeSource()
        assertCountsOn(src, "before")

        // The client: one line with the API's status and fault, exit 1.
        let nobody = src.directory + "/nobody.sock"
        let r = try runProcess(swiftvmmExecutable(), ["migrate", "--api-sock", src.socket, "--to", "unix:\(nobody)"], timeout: 60)
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("500") && r.stderr.contains("keeps running here") && r.stderr.contains(nobody), r.stderr)
        XCTAssertEqual(try src.json("GET", "/")["state"] as? String, "Running")
        assertCountsOn(src, "after a destination that is not there")

        let gone = src.directory + "/gone.sock"
        startVanishingDestination(gone)
        let cases: [(body: String, status: Int, mentions: String)] = [
            (#"{"destination_url": "tcp:127.0.0.1:1"}"#, 500, "connect"),
            (#"{"destination_url": "unix:\#(gone)"}"#, 500, "went away"),
            ("{}", 400, "destination_url: missing required field"),
            (#"{"destination_url": "http://10.0.0.2:4444"}"#, 400, "use unix:PATH"),
            (#"{"destination_url": "unix:/x", "speed": 9}"#, 400, "speed: unknown field"),
        ]
        for c in cases {
            let answer = try src.curl("PUT", "/vm.send-migration", c.body)
            XCTAssertEqual(answer.status, c.status, "\(c.body): \(answer.body)")
            let fault = faultMessage(answer.body)
            XCTAssertTrue(fault.contains(c.mentions) && !fault.contains("\n"), "\(c.body): \(fault)")
            XCTAssertEqual(try src.json("GET", "/")["state"] as? String, "Running", c.body)
            assertCountsOn(src, "after \(c.body)")
        }

        let receive = try src.curl("PUT", "/vm.receive-migration", #"{"receiver_url": "unix:\#(src.directory)/r.sock"}"#)
        XCTAssertEqual(receive.status, 400)
        XCTAssertEqual(faultMessage(receive.body), "cannot receive a migration into a VM that is running")

        XCTAssertEqual(try src.curl("PATCH", "/vm", #"{"state": "Paused"}"#).status, 204)
        let paused = try src.curl("PUT", "/vm.send-migration", #"{"destination_url": "unix:\#(nobody)"}"#)
        XCTAssertEqual(paused.status, 400)
        XCTAssertEqual(faultMessage(paused.body), "cannot migrate a VM that is paused")
        XCTAssertEqual(try src.curl("PATCH", "/vm", #"{"state": "Resumed"}"#).status, 204)
        assertCountsOn(src, "after the refusals")
        XCTAssertTrue(src.process.isRunning, src.stderr)
    }

    /// A VM never started is told PUT /vm.receive-migration and takes over the guest that
    /// `swiftvmm migrate` sends; the source exits 0.
    func testDestinationReceivesThroughItsAPI() throws {
        try requireKVMDevice()
        let dst = try ManagedVMProcess { ["--api-sock", $0] }
        try dst.waitForSocket()
        let notStarted = try dst.curl("PUT", "/vm.send-migration", #"{"destination_url": "unix:/x"}"#)
        XCTAssertEqual(notStarted.status, 400)
        XCTAssertEqual(faultMessage(notStarted.body), "cannot migrate a VM that is not started")
        XCTAssertEqual(try dst.curl("PUT", "/vm.receive-migration", #"{"receiver_url": "tcp:nohost"}"#).status, 400)
        XCTAssertEqual(try dst.json("GET", "/")["state"] as? String, "Not started")

        let src = try probeSource()
        XCTAssertTrue(waitFor(20) { (consoleCounts(src.console).last ?? 0) >= 5 }, src.console)
        let socket = dst.directory + "/m.sock"
        final class Answer: @unchecked Sendable { var value: (status: Int, body: String)?; var error: Error? }
        let answer = Answer()
        let received = DispatchSemaphore(value: 0)
        Thread {
            do { answer.value = try dst.curl("PUT", "/vm.receive-migration", #"{"receiver_url": "unix:\#(socket)"}"#, maxTime: 120) } catch {
                answer.error = error
            }
            received.signal()
        }.start()
        XCTAssertTrue(waitFor(20) { FileManager.default.fileExists(atPath: socket) }, dst.stderr)

        let r = try runProcess(swiftvmmExecutable(), ["migrate", "--api-sock", src.socket, "--to", "unix:\(socket)"], timeout: 120)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("\"downtime_ms\""), r.stdout)
        XCTAssertEqual(received.wait(timeout: .now() + 130), .success)
        XCTAssertNil(answer.error)
        XCTAssertEqual(answer.value?.status, 204, answer.value?.body ?? "")
        XCTAssertEqual(src.waitForExit(), 0, src.stderr)
        XCTAssertTrue(src.stderr.contains("swiftvmm: migrated to unix:\(socket)"), src.stderr)

        XCTAssertEqual(try dst.json("GET", "/")["state"] as? String, "Running")
        let handedOver = consoleCounts(src.console).last ?? 0
        XCTAssertTrue(waitFor(20) { (consoleCounts(src.console + dst.console).last ?? 0) >= handedOver + 5 }, dst.console + dst.stderr)
        let seen = consoleCounts(src.console + dst.console)
        XCTAssertEqual(seen, Array(1...(seen.last ?? 0)), "every count once, in order, across the hand-over")
    }
}
