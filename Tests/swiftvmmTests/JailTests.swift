import Foundation
import Glibc
import XCTest

/// `swiftvmm jail` (Firecracker's jailer): root in CI. The jail's mechanics are shown
/// with busybox (static) as the exec file, the VMM itself with the static release build.
final class JailTests: XCTestCase {
    let uid = "4242", gid = "4243"

    func requireRoot() throws {
        if geteuid() == 0 { return }
        if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("CI=true but not root: the jailer needs root") }
        print("SKIPPED (jail tests need root)")
        throw XCTSkip("needs root")
    }

    func baseDirectory() throws -> String {
        let base = try temporaryFile("jails", bytes: [])
        try FileManager.default.removeItem(atPath: base)
        return base
    }

    /// The v2 (or v1 memory) cgroup directories a jail made, removed after a test.
    func removeCgroups(_ parent: String, _ id: String) {
        for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids"] {
            rmdir("\(root)/\(parent)/\(id)")
            rmdir("\(root)/\(parent)")
        }
    }

    func jail(_ args: [String], timeout: TimeInterval = 30) throws -> ProcessResult {
        try runProcess(swiftvmmExecutable(), ["jail"] + args, timeout: timeout)
    }

    func testBadIdsPathsAndValuesAreRefusedBeforeAnythingIsCreated() throws {
        try requireRoot()
        let base = try baseDirectory()
        let ok = ["--exec-file", "/bin/busybox", "--uid", uid, "--gid", gid, "--chroot-base-dir", base]
        let cases: [([String], String)] = [
            (["--id", "../escape"] + ok, "--id ../escape: use 1 to 64 letters, digits and hyphens"),
            (["--id", "a/b"] + ok, "--id a/b:"),
            (["--id", ""] + ok, "--id :"),
            (["--id", String(repeating: "x", count: 65)] + ok, "use 1 to 64"),
            (["--id", "vm1", "--exec-file", "/nonexistent/vmm", "--uid", uid, "--gid", gid, "--chroot-base-dir", base], "--exec-file /nonexistent/vmm: No such file or directory"),
            (["--id", "vm1", "--exec-file", swiftvmmExecutable().path, "--uid", uid, "--gid", gid, "--chroot-base-dir", base], "dynamically linked"),
            (["--id", "vm1", "--exec-file", "/etc", "--uid", uid, "--gid", gid, "--chroot-base-dir", base], "not a regular file"),
            (["--id", "vm1", "--exec-file", "/bin/busybox", "--uid", "nobody", "--gid", gid, "--chroot-base-dir", base], "--uid nobody: not a numeric user id"),
            (["--id", "vm1", "--exec-file", "/bin/busybox", "--uid", uid, "--gid=-1", "--chroot-base-dir", base], "--gid -1"),
            (["--id", "vm1"] + ok.dropLast(2) + ["--chroot-base-dir", "relative/dir"], "must be an absolute path"),
            (["--id", "vm1"] + ok.dropLast(2) + ["--chroot-base-dir", "/srv/../etc"], "without .."),
            (["--id", "vm1", "--cgroup-version", "3"] + ok, "--cgroup-version 3: use 1 or 2"),
            (["--id", "vm1", "--cgroup", "../../x=1"] + ok, "--cgroup ../../x=1:"),
            (["--id", "vm1", "--cgroup", "memory.max"] + ok, "--cgroup memory.max:"),
            (["--id", "vm1", "--parent-cgroup", "../up"] + ok, "--parent-cgroup ../up:"),
            (["--id", "vm1", "--resource-limit", "no-file=lots"] + ok, "--resource-limit no-file=lots:"),
            (["--id", "vm1", "--netns", "/nonexistent/ns"] + ok, "--netns /nonexistent/ns:"),
            (["--id", "vm1"] + ok + ["--", "sh", "-c", "true", "--kernel", "/nonexistent/k"], "/nonexistent/k: No such file or directory"),
        ]
        for (args, message) in cases {
            let r = try jail(args)
            XCTAssertEqual(r.status, 2, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.hasPrefix("swiftvmm: ") && r.stderr.contains(message), "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: base), "\(args) created \(base)")
        }
        // A second jail with the same id is refused.
        let first = try jail(["--id", "twice"] + ok + ["--", "true"])
        XCTAssertEqual(first.status, 0, first.stderr)
        let second = try jail(["--id", "twice"] + ok + ["--", "true"])
        XCTAssertEqual(second.status, 2)
        XCTAssertTrue(second.stderr.contains("exists: another jail with --id twice?"), second.stderr)
        removeCgroups("busybox", "twice")
    }

    /// Inside: its own root only (the exec file, /dev with kvm and tun owned by the user,
    /// /proc showing only the user's processes), no host /etc, the target uid/gid, its resource limits, its cgroup.
    func testJailedProcessSeesOnlyItsRootAsTheTargetUser() throws {
        try requireRoot()
        let base = try baseDirectory()
        defer { removeCgroups("busybox", "inside") }
        let script = """
            id; /busybox ls -n / /dev /dev/net; /busybox cat /etc/hostname || echo NO-ETC; \
            /busybox ls /old_root || echo NO-OLD-ROOT; ulimit -n; echo wrote > /busybox-copy || echo NO-WRITE
            """
        let r = try jail(["--id", "inside", "--exec-file", "/bin/busybox", "--uid", uid, "--gid", gid, "--chroot-base-dir", base,
                          "--resource-limit", "no-file=77", "--", "sh", "-c", script])
        XCTAssertEqual(r.status, 0, r.stderr)
        let out = r.stdout
        XCTAssertTrue(out.contains("uid=4242 gid=4243"), out)
        XCTAssertTrue(out.contains("NO-ETC"), "host /etc is not visible: \(out)")
        XCTAssertTrue(out.contains("NO-OLD-ROOT"), "the old root is detached: \(out)")
        XCTAssertTrue(out.contains("NO-WRITE"), "the root is not writable by the user: \(out)")
        XCTAssertTrue(out.contains("\n77\n"), "RLIMIT_NOFILE holds: \(out)")
        let rootEntries = out.components(separatedBy: "/:\n").last?.components(separatedBy: "\n\n").first ?? ""
        XCTAssertTrue(rootEntries.contains(" busybox") && rootEntries.contains(" dev") && rootEntries.contains(" proc"), out)
        XCTAssertEqual(rootEntries.split(separator: "\n").filter { !$0.hasPrefix("total") }.count, 3, "only busybox, dev, proc: \(rootEntries)")
        XCTAssertNotNil(out.range(of: #"crw------- +1 4242 +4243 +10, 232 .* kvm"#, options: .regularExpression), "/dev/kvm owned by the user: \(out)")
        XCTAssertNotNil(out.range(of: #"crw------- +1 4242 +4243 +10, 200 .* tun"#, options: .regularExpression), "/dev/net/tun owned by the user: \(out)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(base)/busybox/inside/root/busybox"))
    }

    /// PID 1 of a new PID namespace; the cgroup (v1 memory here, whatever the host mounts)
    /// holds the limit and the process.
    func testNewPIDNamespaceAndCgroup() throws {
        try requireRoot()
        let base = try baseDirectory()
        defer { removeCgroups("busybox", "cg") }
        let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
        let v1Memory = mounts.split(separator: "\n").contains { $0.contains(" cgroup ") && $0.contains("memory") }
        let cgroupArgs = v1Memory ? ["--cgroup-version", "1", "--cgroup", "memory.limit_in_bytes=268435456"]
                                  : ["--cgroup-version", "2", "--cgroup", "memory.max=268435456"]
        let p = Process()
        p.executableURL = swiftvmmExecutable()
        p.arguments = ["jail", "--id", "cg", "--exec-file", "/bin/busybox", "--uid", uid, "--gid", gid, "--chroot-base-dir", base,
                       "--new-pid-ns"] + cgroupArgs + ["--", "sh", "-c", "echo pid=$$; /busybox sleep 2"]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        // The pid file names the jailed process as the host sees it.
        let pidFile = "\(base)/busybox/cg/busybox.pid"
        let deadline = Date().addingTimeInterval(5)
        while !FileManager.default.fileExists(atPath: pidFile) && Date() < deadline { usleep(20_000) }
        usleep(300_000)
        let pid = Int((try? String(contentsOfFile: pidFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        XCTAssertGreaterThan(pid, 0)
        let cgroup = (try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)) ?? ""
        XCTAssertTrue(cgroup.contains("/busybox/cg"), cgroup)
        let limitFile = v1Memory ? "/sys/fs/cgroup/memory/busybox/cg/memory.limit_in_bytes" : "/sys/fs/cgroup/busybox/cg/memory.max"
        XCTAssertEqual((try? String(contentsOfFile: limitFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines), "268435456")
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        XCTAssertTrue(status.contains("Uid:\t4242\t4242\t4242\t4242"), status)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(text.contains("pid=1"), "PID 1 in its namespace: \(text)")
    }

    /// The static VMM (make build) boots the probe in the jail as the unprivileged user,
    /// the jail started through the `jailer` link `make build` puts next to it.
    func testJailedVMMBootsTheProbe() throws {
        try requireRoot()
        try requireKVMDevice()
        let vmm = repositoryRoot().appendingPathComponent(".build/release/swiftvmm").path
        guard FileManager.default.fileExists(atPath: vmm) else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("no static \(vmm): make test runs make build first") }
            throw XCTSkip("no \(vmm) (make build)")
        }
        let base = try baseDirectory()
        defer { removeCgroups("swiftvmm", "probe-vm") }
        let kernel = try temporaryFile("probe.bzImage", bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: try probeKernel()))))
        chmod(kernel, 0o644)
        let disk = try temporaryFile("disk.img", bytes: [UInt8](repeating: 0, count: 1 << 20))
        chown(disk, 4242, 4243)
        let jailer = repositoryRoot().appendingPathComponent(".build/release/jailer")
        XCTAssertEqual(try? FileManager.default.destinationOfSymbolicLink(atPath: jailer.path), "swiftvmm", "make build links jailer → swiftvmm")
        let r = try runProcess(jailer, ["--id", "probe-vm", "--exec-file", vmm, "--uid", uid, "--gid", gid, "--chroot-base-dir", base, "--",
                          "run", "--kernel", kernel, "--disk", disk, "--rng", "--memory", "64", "--cmdline",
                          "console=ttyS0 probe.run=serial,e820,mmio,virtio,blk,rng probe.blk_crc32=\(crc32Hex([UInt8](repeating: 0, count: 65536)))"],
                         timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertNotNil(r.stdout.range(of: #"PROBE DONE pass=\d+ fail=0"#, options: .regularExpression), r.stdout)
        XCTAssertTrue(r.stdout.contains("PROBE PASS blk"), r.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(base)/swiftvmm/probe-vm/root/swiftvmm"))
    }
}
