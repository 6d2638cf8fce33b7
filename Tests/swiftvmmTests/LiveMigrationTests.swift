import Foundation
import TestSupport
import XCTest

/// Live migration between two swiftvmm processes on this host, with the probe kernel
/// counting on its console and writing a sector per count to its virtio disk.
final class LiveMigrationTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        try requireKVMDevice()
        dir = URL(fileURLWithPath: "/tmp/svmm-mig-\(getpid())-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { if let dir { try? FileManager.default.removeItem(at: dir) } }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func makeDisk() -> String {
        let disk = path("disk.img")
        XCTAssertTrue(FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20)))
        return disk
    }

    func waitForFile(_ p: String) {
        let deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: p) && Date() < deadline { usleep(20_000) }
    }

    /// Source counts, migrates (on SIGUSR1, or `viaAPI` when `swiftvmm migrate` asks its
    /// API socket), exits 0; the destination carries on the count.
    func migrate(prefix: [String] = [], destinationPrefix: [String] = [], address: String, listening: () -> Void,
                 executable: String? = nil, disk: String? = nil, viaAPI: Bool = false) throws {
        let disk = disk ?? makeDisk()
        let exe = executable.map { URL(fileURLWithPath: $0) } ?? swiftvmmExecutable()
        let dst = try RunningVMM(destinationPrefix + ["run", "--migrate-from", address], executable: exe)
        listening()
        let api = path("api.sock")
        let control = viaAPI ? ["--api-sock", api] : ["--migrate-on-signal", address]
        let src = try RunningVMM(prefix + ["run", "--kernel", try probeKernel(), "--memory", "128", "--disk", disk] + control,
                                 stdin: "count 0 20 disk\n", executable: exe)
        try src.waitFor("20 counts") { (consoleCounts($0).last ?? 0) >= 20 }
        if viaAPI {
            let r = try runProcess(swiftvmmExecutable(), ["migrate", "--api-sock", api, "--to", address], timeout: 120)
            XCTAssertEqual(r.status, 0, r.stderr)
            let report = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] ?? [:]
            XCTAssertGreaterThanOrEqual(report["rounds"] as? Int ?? 0, 2, r.stdout)
            XCTAssertGreaterThan(report["bytes_sent"] as? Int ?? 0, 0, r.stdout)
            let downtime = report["downtime_ms"] as? Double ?? -1, total = report["total_ms"] as? Double ?? -1
            XCTAssertTrue(downtime > 0 && downtime <= total, r.stdout)
            print("migration through the API: downtime \(downtime) ms, total \(total) ms")
        } else {
            src.signal(SIGUSR1)
        }
        XCTAssertEqual(src.wait(), 0, src.stderr)
        XCTAssertTrue(src.stderr.contains("migrated to"), src.stderr)
        if let line = src.stderr.split(separator: "\n").first(where: { $0.contains("downtime") }) { print("migration: \(line)") }
        let handedOver = consoleCounts(src.stdout).last ?? 0
        try dst.waitFor("20 counts on the destination") { (consoleCounts(src.stdout + $0).last ?? 0) >= handedOver + 20 }
        dst.signal(SIGKILL)
        _ = dst.wait()
        let all = src.stdout + dst.stdout
        let seen = consoleCounts(all)
        XCTAssertEqual(seen, Array(1...(seen.last ?? 0)), "every count once, in order, across the hand-over")
        XCTAssertFalse(all.contains("disk error"), String(all.suffix(400)))
    }

    func testOverUnixSocket() throws {
        let socket = path("m.sock")
        try migrate(address: "unix:\(socket)") { waitForFile(socket) }
    }

    /// A qcow2 disk is handed over too: metadata written back, lock released, and the
    /// destination (its own writes on it) leaves an image qemu-img finds consistent.
    func testQcow2DiskOverUnixSocket() throws {
        try requireQemuImg()
        let disk = path("disk.qcow2")
        XCTAssertEqual(try qemuImg(["create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", disk, "1M"]).status, 0)
        let socket = path("q.sock")
        try migrate(address: "unix:\(socket)", listening: { waitForFile(socket) }, disk: disk)
        let check = try qemuImg(["check", disk])  // the destination was killed: leaks allowed
        XCTAssertTrue(check.status == 0 || check.status == 3, check.stdout + check.stderr)
    }

    func testThroughTheAPIOverUnixSocket() throws {
        let socket = path("m.sock")
        try migrate(address: "unix:\(socket)", listening: { waitForFile(socket) }, viaAPI: true)
    }

    func testOverTCPBetweenNetworkNamespaces() throws {
        try migrateBetweenNetworkNamespaces(viaAPI: false)
    }

    func testThroughTheAPIOverTCPBetweenNetworkNamespaces() throws {
        try migrateBetweenNetworkNamespaces(viaAPI: true)
    }

    /// Source and destination each in a network namespace of their own, joined by a veth
    /// pair; the API socket is a path, so the client reaches it from here.
    func migrateBetweenNetworkNamespaces(viaAPI: Bool) throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") || FileManager.default.isExecutableFile(atPath: "/sbin/ip") else {
            throw missingPrerequisite("root and iproute2 (network namespaces for the TCP migration test)")
        }
        let ip = FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") ? "/usr/sbin/ip" : "/sbin/ip"
        let tag = "\(getpid() % 100000)"
        let a = "svmm-src-\(tag)", b = "svmm-dst-\(tag)"
        func sh(_ args: [String]) throws {
            let r = try runProcess(URL(fileURLWithPath: ip), args, timeout: 20)
            if r.status != 0 { throw NSError(domain: "ip", code: Int(r.status), userInfo: [NSLocalizedDescriptionKey: "ip \(args): \(r.stderr)"]) }
        }
        try sh(["netns", "add", a])
        defer { _ = try? runProcess(URL(fileURLWithPath: ip), ["netns", "del", a], timeout: 20) }
        try sh(["netns", "add", b])
        defer { _ = try? runProcess(URL(fileURLWithPath: ip), ["netns", "del", b], timeout: 20) }
        try sh(["link", "add", "va\(tag)", "netns", a, "type", "veth", "peer", "name", "vb\(tag)", "netns", b])
        try sh(["-n", a, "addr", "add", "10.231.0.1/24", "dev", "va\(tag)"])
        try sh(["-n", b, "addr", "add", "10.231.0.2/24", "dev", "vb\(tag)"])
        for (ns, dev) in [(a, "va\(tag)"), (b, "vb\(tag)")] {
            try sh(["-n", ns, "link", "set", dev, "up"])
            try sh(["-n", ns, "link", "set", "lo", "up"])
        }
        let exe = swiftvmmExecutable().path
        let port = 20000 + Int(getpid() % 20000)
        try migrate(prefix: ["netns", "exec", a, exe], destinationPrefix: ["netns", "exec", b, exe],
                    address: "tcp:10.231.0.2:\(port)", listening: { usleep(500_000) }, executable: ip, viaAPI: viaAPI)
    }

    func testDestinationThatGoesAwayLeavesTheSourceRunning() throws {
        let socket = path("gone.sock")
        startVanishingDestination(socket)
        let src = try RunningVMM(["run", "--kernel", try probeKernel(), "--memory", "64", "--disk", makeDisk(),
                                  "--migrate-on-signal", "unix:\(socket)"], stdin: "count 0 20 disk\n")
        try src.waitFor("10 counts") { (consoleCounts($0).last ?? 0) >= 10 }
        src.signal(SIGUSR1)
        let deadline = Date().addingTimeInterval(30)
        while !src.stderr.contains("failed") && Date() < deadline { usleep(20_000) }
        XCTAssertTrue(src.stderr.contains("failed, the VM keeps running here"), src.stderr)
        let at = consoleCounts(src.stdout).last ?? 0
        try src.waitFor("counting on after the failure") { (consoleCounts($0).last ?? 0) >= at + 10 }
        XCTAssertTrue(src.process.isRunning)
        src.signal(SIGKILL)
        _ = src.wait()
        let seen = consoleCounts(src.stdout)
        XCTAssertEqual(seen, Array(1...(seen.last ?? 0)))
        XCTAssertFalse(src.stdout.contains("disk error"))
    }

    func testDestinationThatCannotOpenTheDiskLeavesTheSourceRunning() throws {
        let socket = path("nodisk.sock")
        let disk = makeDisk()
        let dst = try RunningVMM(["run", "--migrate-from", "unix:\(socket)"])
        waitForFile(socket)
        let src = try RunningVMM(["run", "--kernel", try probeKernel(), "--memory", "64", "--disk", disk,
                                  "--migrate-on-signal", "unix:\(socket)"], stdin: "count 0 20 disk\n")
        try src.waitFor("10 counts") { (consoleCounts($0).last ?? 0) >= 10 }
        // The source keeps its open file; the destination finds no disk at that path.
        XCTAssertEqual(rename(disk, disk + ".moved"), 0)
        src.signal(SIGUSR1)
        XCTAssertNotEqual(dst.wait(), 0, "the destination fails")
        XCTAssertTrue(dst.stderr.contains("cannot open disk image"), dst.stderr)
        let deadline = Date().addingTimeInterval(30)
        while !src.stderr.contains("failed") && Date() < deadline { usleep(20_000) }
        XCTAssertTrue(src.stderr.contains("migration refused by the destination"), src.stderr)
        let at = consoleCounts(src.stdout).last ?? 0
        try src.waitFor("counting on") { (consoleCounts($0).last ?? 0) >= at + 10 }
        src.signal(SIGKILL)
        _ = src.wait()
        let seen = consoleCounts(src.stdout)
        XCTAssertEqual(seen, Array(1...(seen.last ?? 0)))
        XCTAssertFalse(src.stdout.contains("disk error"), "the source's disk (and its lock) came back")
    }
}

/// A "destination" on the Unix socket `path` that takes the connection and the first
/// message, then goes away; returns once it listens.
func startVanishingDestination(_ path: String) {
    let listening = DispatchSemaphore(value: 0)
    Thread {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var sun = sockaddr_un()
        sun.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &sun.sun_path) { raw in for (i, b) in path.utf8.enumerated() { raw[i] = b } }
        _ = withUnsafePointer(to: &sun) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        listen(fd, 1)
        listening.signal()
        let c = accept(fd, nil, nil)
        var buf = [UInt8](repeating: 0, count: 64)
        _ = recv(c, &buf, 64, 0)
        close(c); close(fd)
    }.start()
    listening.wait()
}
