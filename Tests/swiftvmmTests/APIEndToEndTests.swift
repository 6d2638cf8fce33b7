import Foundation
import VMMCore
import XCTest

/// The control API over a real Unix socket, with curl, the way Firecracker's users drive it.
final class APIEndToEndTests: XCTestCase {
    private func probeBody(_ cmdline: String) throws -> String {
        #"{"kernel_image_path": "\#(try probeKernel())", "boot_args": "\#(cmdline)"}"#
    }

    /// Firecracker's command line and its usual call sequence: machine-config,
    /// boot-source, drives, InstanceStart; then pause (console silent, no CPU), resume
    /// (the count goes on) and Ctrl-Alt-Del (the probe powers off: exit 0).
    func testFirecrackerCallSequencePauseResumeAndCtrlAltDel() throws {
        try requireKVMDevice()
        let disk = try temporaryFile("rootfs.img", bytes: [UInt8](repeating: 0, count: 1 << 20))
        let vm = try ManagedVMProcess { ["--api-sock", $0, "--id", "api-test-1"] }
        try vm.waitForSocket()
        XCTAssertEqual(try vm.json("GET", "/")["state"] as? String, "Not started")
        XCTAssertEqual(try vm.json("GET", "/")["id"] as? String, "api-test-1")
        XCTAssertEqual(try vm.curl("PUT", "/machine-config", #"{"vcpu_count": 1, "mem_size_mib": 64}"#).status, 204)
        XCTAssertEqual(try vm.curl("PUT", "/boot-source", try probeBody("console=ttyS0 probe.count=0:10")).status, 204)
        XCTAssertEqual(try vm.curl("PUT", "/drives/rootfs", #"{"drive_id": "rootfs", "path_on_host": "\#(disk)", "is_root_device": true, "is_read_only": false}"#).status, 204)
        XCTAssertEqual(try vm.curl("PUT", "/entropy", "{}").status, 204)
        XCTAssertEqual(try vm.curl("PUT", "/actions", #"{"action_type": "InstanceStart"}"#).status, 204)
        XCTAssertTrue(waitFor(20) { vm.console.contains("swiftvmm probe ") }, "no probe banner:\n\(vm.console)\n\(vm.stderr)")
        XCTAssertTrue(waitFor(20) { vm.console.contains("root=/dev/vda rw") }, "is_root_device adds root= to the command line:\n\(vm.console)")
        XCTAssertEqual(try vm.json("GET", "/")["state"] as? String, "Running")
        XCTAssertTrue(waitFor(20) { (consoleCounts(vm.console).last ?? 0) >= 3 }, vm.console)

        XCTAssertEqual(try vm.curl("PATCH", "/vm", #"{"state": "Paused"}"#).status, 204)
        XCTAssertEqual(try vm.json("GET", "/")["state"] as? String, "Paused")
        usleep(200_000)
        let atPause = vm.console, cpuAtPause = vm.cpuSeconds
        sleep(1)
        XCTAssertEqual(vm.console, atPause, "console output while paused")
        let cpu = vm.cpuSeconds - cpuAtPause
        XCTAssertLessThan(cpu, 0.1, "the paused VMM used \(cpu) CPU-seconds in one second")

        XCTAssertEqual(try vm.curl("PATCH", "/vm", #"{"state": "Resumed"}"#).status, 204)
        let last = consoleCounts(atPause).last ?? 0
        XCTAssertTrue(waitFor(20) { (consoleCounts(vm.console).last ?? 0) >= last + 3 }, "the guest did not go on:\n\(vm.console)")

        XCTAssertEqual(try vm.curl("PUT", "/actions", #"{"action_type": "SendCtrlAltDel"}"#).status, 204)
        XCTAssertEqual(vm.waitForExit(), 0, vm.stderr)
        XCTAssertTrue(vm.console.contains("probe: ctrl-alt-del"), vm.console)
        let numbers = consoleCounts(vm.console)
        XCTAssertEqual(numbers, Array(1...max(1, numbers.count)), "the count has a gap or a repeat")
        XCTAssertFalse(FileManager.default.fileExists(atPath: vm.socket), "the socket is removed at exit")
    }

    /// 200 pause/resume pairs while the guest counts: the count is whole, the guest goes on,
    /// the VMM ends normally and has no more fds or threads than before.
    func testTwoHundredPauseResumeCycles() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        let vm = try ManagedVMProcess {
            ["run", "--api-sock", $0, "--kernel", kernel, "--memory", "64", "--cmdline", "console=ttyS0 probe.count=0:5"]
        }
        try vm.waitForSocket()
        XCTAssertTrue(waitFor(20) { (consoleCounts(vm.console).last ?? 0) >= 2 }, vm.console)
        let fds = vm.openFileDescriptors, threads = vm.threads
        for i in 0..<200 {
            let p = try APIClient.send(socketPath: vm.socket, method: "PATCH", path: "/vm", body: #"{"state": "Paused"}"#)
            let r = try APIClient.send(socketPath: vm.socket, method: "PATCH", path: "/vm", body: #"{"state": "Resumed"}"#)
            guard p.status == 204, r.status == 204 else { return XCTFail("cycle \(i): \(p.status) \(p.text) / \(r.status) \(r.text)") }
        }
        // The last client's connection closes on the server's side a moment after its answer.
        XCTAssertTrue(waitFor(5) { vm.openFileDescriptors == fds }, "fds leaked: \(vm.openFileDescriptors) vs \(fds)")
        XCTAssertEqual(vm.threads, threads, "threads leaked")
        let after = consoleCounts(vm.console).last ?? 0
        XCTAssertTrue(waitFor(20) { (consoleCounts(vm.console).last ?? 0) >= after + 3 }, "the guest stopped counting")
        XCTAssertEqual(try vm.curl("PUT", "/actions", #"{"action_type": "SendCtrlAltDel"}"#).status, 204)
        XCTAssertEqual(vm.waitForExit(), 0, vm.stderr)
        let numbers = consoleCounts(vm.console)
        XCTAssertEqual(numbers, Array(1...max(1, numbers.count)), "the count has a gap or a repeat")
    }

    /// Malformed, unknown, mistyped, out-of-range and wrong-state requests: 400 with a
    /// one-line fault message naming the problem, and the VM exactly as before.
    func testBadRequestsChangeNothing() throws {
        try requireKVMDevice()
        let vm = try ManagedVMProcess { ["--api-sock", $0] }
        try vm.waitForSocket()
        XCTAssertEqual(try vm.curl("PUT", "/machine-config", #"{"vcpu_count": 2, "mem_size_mib": 64}"#).status, 204)
        let before = try vm.curl("GET", "/vm/config").body
        let cases: [(String, String, String, String)] = [
            ("PUT", "/machine-config", #"{"vcpu_count": 2, "mem_size_mib": 64"#, "JSON"),
            ("PUT", "/machine-config", #"{"vcpu_count": 2, "mem_size_mib": 64, "colour": "red"}"#, "colour"),
            ("PUT", "/machine-config", #"{"vcpu_count": "two", "mem_size_mib": 64}"#, "vcpu_count"),
            ("PUT", "/machine-config", #"{"vcpu_count": 0, "mem_size_mib": 64}"#, "vcpu_count"),
            ("PUT", "/machine-config", #"{"vcpu_count": 33, "mem_size_mib": 64}"#, "vcpu_count"),
            ("PATCH", "/machine-config", #"{"mem_size_mib": -1}"#, "mem_size_mib"),
            ("PUT", "/boot-source", #"{"kernel_image_path": "/nonexistent/vmlinux"}"#, "/nonexistent/vmlinux"),
            ("PUT", "/drives/a", #"{"drive_id": "b", "path_on_host": "/etc/hostname", "is_root_device": false, "is_read_only": true}"#, "id from the path"),
            ("PUT", "/drives/a", #"{"drive_id": "a", "path_on_host": "/nonexistent.img", "is_root_device": false, "is_read_only": true}"#, "/nonexistent.img"),
            ("PATCH", "/vm", #"{"state": "Paused"}"#, "not started"),
            ("PATCH", "/vm", #"{"state": "Sleeping"}"#, "state"),
            ("PUT", "/actions", #"{"action_type": "Reboot"}"#, "action_type"),
            ("PUT", "/actions", #"{"action_type": "InstanceStart"}"#, "kernel"),
            ("PUT", "/network-interfaces/eth0", #"{"iface_id": "eth0", "host_dev_name": "tap/0"}"#, "tap/0"),
            ("PUT", "/network-interfaces/eth0", #"{"iface_id": "eth0", "host_dev_name": "tap0", "guest_mac": "zz:00:00:00:00:01"}"#, "guest_mac"),
            ("PUT", "/vsock", #"{"guest_cid": 2, "uds_path": "/tmp/v.sock"}"#, "guest_cid"),
            ("PUT", "/snapshot/create", #"{"snapshot_path": "/tmp/s", "mem_file_path": "/tmp/m"}"#, "snapshot"),
            ("GET", "/no/such/path", "", "path"),
        ]
        for (method, path, body, mentions) in cases {
            let r = try vm.curl(method, path, body.isEmpty ? nil : body)
            XCTAssertEqual(r.status, 400, "\(method) \(path) \(body): \(r.body)")
            let fault = faultMessage(r.body)
            XCTAssertFalse(fault.isEmpty, "\(method) \(path): no fault_message in \(r.body)")
            XCTAssertFalse(fault.contains("\n"), "one line: \(fault)")
            XCTAssertTrue(fault.lowercased().contains(mentions.lowercased()), "\(method) \(path) \(body): \(fault)")
            XCTAssertEqual(try vm.curl("GET", "/vm/config").body, before, "\(method) \(path) changed the configuration")
            XCTAssertEqual(try vm.json("GET", "/")["state"] as? String, "Not started")
        }
        // After start: configuration is refused, the running VM is unaffected.
        XCTAssertEqual(try vm.curl("PUT", "/boot-source", try probeBody("console=ttyS0 probe.count=0:10")).status, 204)
        XCTAssertEqual(try vm.curl("PUT", "/actions", #"{"action_type": "InstanceStart"}"#).status, 204)
        let started = try vm.curl("GET", "/vm/config").body
        for (method, path, body) in [("PUT", "/machine-config", #"{"vcpu_count": 1, "mem_size_mib": 64}"#),
                                     ("PUT", "/actions", #"{"action_type": "InstanceStart"}"#),
                                     ("PATCH", "/vm", #"{"state": "Resumed"}"#)] {
            let r = try vm.curl(method, path, body)
            XCTAssertEqual(r.status, 400, "\(method) \(path) after start: \(r.body)")
            XCTAssertEqual(try vm.json("GET", "/")["state"] as? String, "Running")
        }
        XCTAssertEqual(try vm.curl("GET", "/vm/config").body, started)
        XCTAssertTrue(waitFor(20) { (consoleCounts(vm.console).last ?? 0) >= 2 }, "the VM runs on:\n\(vm.console)")
        XCTAssertEqual(try vm.curl("PUT", "/actions", #"{"action_type": "SendCtrlAltDel"}"#).status, 204)
        XCTAssertEqual(vm.waitForExit(), 0, vm.stderr)
    }

    /// `--config-file` in Firecracker's format boots the probe with a disk and entropy.
    func testConfigFileBootsTheProbeWithDiskAndEntropy() throws {
        try requireKVMDevice()
        var rng = SystemRandomNumberGenerator()
        let image = (0..<65536).map { _ in UInt8.random(in: 0...255, using: &rng) } + [UInt8](repeating: 0, count: 1 << 20)
        let disk = try temporaryFile("data.img", bytes: image)
        let crc = String(crc32(Array(image.prefix(65536))), radix: 16)
        let config = """
            {
              "boot-source": {"kernel_image_path": "\(try probeKernel())",
                              "boot_args": "console=ttyS0 probe.run=blk,rng probe.blk_crc32=\(crc)"},
              "drives": [{"drive_id": "data", "path_on_host": "\(disk)", "is_root_device": false, "is_read_only": false,
                          "cache_type": "Writeback"}],
              "machine-config": {"vcpu_count": 1, "mem_size_mib": 64},
              "entropy": {}
            }
            """
        let file = try temporaryFile("vm.json", bytes: Array(config.utf8))
        let r = try runProcess(swiftvmmExecutable(), ["--no-api", "--config-file", file], timeout: 60)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        XCTAssertTrue(r.stdout.contains("PROBE PASS blk"), r.stdout)
        XCTAssertTrue(r.stdout.contains("PROBE PASS rng"), r.stdout)
        XCTAssertTrue(r.stdout.contains("blk_crc32=\(crc)"), r.stdout)

        let bad = try temporaryFile("bad.json", bytes: Array(#"{"machine-config": {"vcpu_count": 1, "mem_size_mib": 64, "cpus": 2}}"#.utf8))
        let b = try runProcess(swiftvmmExecutable(), ["--no-api", "--config-file", bad], timeout: 30)
        XCTAssertEqual(b.status, 2, b.stderr)
        XCTAssertTrue(b.stderr.contains("cpus"), b.stderr)
        XCTAssertEqual(b.stderr.split(separator: "\n").count, 1, b.stderr)
        XCTAssertEqual(b.stdout, "")
    }

    /// A tool that runs `firecracker --api-sock …` can run swiftvmm through a link of that name.
    func testFirecrackerLinkName() throws {
        try requireKVMDevice()
        let dir = NSTemporaryDirectory() + "fc-link-\(getpid())"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let link = dir + "/firecracker"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: swiftvmmExecutable().path)
        let version = try runProcess(URL(fileURLWithPath: link), ["--version"])
        XCTAssertEqual(version.status, 0)
        XCTAssertTrue(version.stdout.contains("swiftvmm"), version.stdout)
        let vm = try ManagedVMProcess(arguments: { ["--api-sock", $0] }, executable: URL(fileURLWithPath: link))
        try vm.waitForSocket()
        XCTAssertEqual(try vm.json("GET", "/")["app_name"] as? String, "swiftvmm")
        kill(vm.process.processIdentifier, SIGTERM)
        XCTAssertEqual(vm.waitForExit(), SIGTERM)
        XCTAssertEqual(vm.process.terminationReason, .uncaughtSignal, "killed by SIGTERM, after cleaning up")
        XCTAssertFalse(FileManager.default.fileExists(atPath: vm.socket), "SIGTERM removes the socket")

        // --boot-timer is accepted for Firecracker's tools, and says that it does nothing.
        let timer = try runProcess(URL(fileURLWithPath: link), ["--boot-timer", "--version"])
        XCTAssertEqual(timer.status, 0, timer.stderr)
        XCTAssertTrue(timer.stderr.contains("--boot-timer: this build has no boot-timer device"), timer.stderr)

        let unknown = try runProcess(URL(fileURLWithPath: link), ["--api-sock", dir + "/x.sock", "--bogus"])
        XCTAssertEqual(unknown.status, 2)
        XCTAssertTrue(unknown.stderr.contains("--bogus"), unknown.stderr)
    }

    /// `PATCH /drives/{id}` with `rate_limiter` on a running VM (Firecracker's call): a
    /// guest counting with a disk read and write per count is held to 2 requests a second
    /// (its disk's `rate_limited` counter grows, the count slows to about 1 a second), then
    /// set free again (`{}`: no buckets) and counts on at full speed.
    func testRateLimitOfARunningDrive() throws {
        try requireKVMDevice()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftvmm-patchlimit-\(getpid())-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let disk = dir.appendingPathComponent("d.img").path, sock = dir.appendingPathComponent("api.sock").path
        XCTAssertTrue(FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20)))
        let vm = try RunningVMM(["run", "--api-sock", sock, "--kernel", try probeKernel(), "--memory", "64", "--disk", "\(disk),id=data"],
                                stdin: "count 0 20 disk\n")
        defer { vm.signal(SIGKILL); _ = vm.wait() }
        try vm.waitFor("3 counts") { (consoleCounts($0).last ?? 0) >= 3 }
        let exe = swiftvmmExecutable()
        func limited() throws -> Int {
            let r = try runProcess(exe, ["metrics", "--api-sock", sock], timeout: 10)
            guard let key = r.stdout.range(of: "\"rate_limited\":") else { XCTFail(r.stdout + r.stderr); return -1 }
            return Int(r.stdout[key.upperBound...].drop { $0 == " " }.prefix { $0.isNumber }) ?? -1
        }
        XCTAssertEqual(try limited(), 0)
        var r = try runProcess(exe, ["api", "--api-sock", sock, "PATCH", "/drives/data", "drive_id=data",
                                     #"rate_limiter:={"ops": {"size": 2, "refill_time": 1000}}"#], timeout: 10)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let deadline = Date().addingTimeInterval(30)
        while try limited() == 0 && Date() < deadline { usleep(100_000) }
        XCTAssertGreaterThan(try limited(), 0, "the live disk waits for its new limit")
        let slowFrom = consoleCounts(vm.stdout).last ?? 0
        sleep(3)
        let slow = (consoleCounts(vm.stdout).last ?? 0) - slowFrom
        XCTAssertLessThanOrEqual(slow, 6, "about one count (two requests) a second while limited")
        r = try runProcess(exe, ["api", "--api-sock", sock, "PATCH", "/drives/data", "drive_id=data", "rate_limiter:={}"], timeout: 10)
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        let from = consoleCounts(vm.stdout).last ?? 0
        try vm.waitFor("50 more counts, unlimited", timeout: 20) { (consoleCounts($0).last ?? 0) >= from + 50 }
        XCTAssertFalse(vm.stdout.contains("disk error"), vm.stdout)
    }

    /// The person's client: info, pause, resume, metrics, and a refused request.
    func testClientSubcommands() throws {
        try requireKVMDevice()
        let kernel = try probeKernel()
        let vm = try ManagedVMProcess {
            ["run", "--api-sock", $0, "--kernel", kernel, "--memory", "64", "--rng", "--cmdline", "console=ttyS0 probe.count=0:10"]
        }
        try vm.waitForSocket()
        let exe = swiftvmmExecutable()
        var r = try runProcess(exe, ["info", "--api-sock", vm.socket])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("\"state\": \"Running\""), r.stdout)
        r = try runProcess(exe, ["pause", "--api-sock", vm.socket])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try runProcess(exe, ["pause", "--api-sock", vm.socket])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("cannot pause a VM that is paused"), r.stderr)
        r = try runProcess(exe, ["resume", "--api-sock", vm.socket])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = try runProcess(exe, ["metrics", "--api-sock", vm.socket])
        XCTAssertEqual(r.status, 0, r.stderr)
        for key in ["\"com1\"", "\"entropy\"", "\"vcpu\"", "\"transmitted_bytes\"", "\"exits_io\""] {
            XCTAssertTrue(r.stdout.contains(key), "\(key) in \(r.stdout)")
        }
        r = try runProcess(exe, ["stop", "--api-sock", vm.socket])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(vm.waitForExit(), 0, vm.stderr)
        r = try runProcess(exe, ["info", "--api-sock", vm.socket])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("cannot connect"), r.stderr)
    }
}
