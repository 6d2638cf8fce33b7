import Foundation
import TestSupport
import XCTest

/// The host side of the probe's vsock test (probe.vsock_connect=5000,
/// probe.vsock_listen=6000), once: answer the guest's connection to PATH_5000, then
/// CONNECT to the guest's port 6000 and check the echo.
final class VsockHostRound: @unchecked Sendable {
    private(set) var fromGuest = ""
    private(set) var okLine = ""
    private(set) var echoed = false
    private var done = false

    init(path: String, listener: Int32) {
        Thread { [self] in
            serve(path: path, listener: listener)
            done = true
        }.start()
    }

    private func serve(path: String, listener: Int32) {
        let payload = (0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 1) }
        let c = accept(listener, nil, nil)
        guard c >= 0 else { return }
        fromGuest = String(decoding: UnixTestSocket.read(c, count: 15), as: UTF8.self)
        UnixTestSocket.write(c, Array("pong from host".utf8))
        _ = UnixTestSocket.read(c, count: 1)
        close(c)
        guard let s = UnixTestSocket.connect(path, within: 30) else { return }
        UnixTestSocket.write(s, Array("CONNECT 6000\n".utf8))
        okLine = String(decoding: UnixTestSocket.readLine(s), as: UTF8.self)
        UnixTestSocket.write(s, payload)
        echoed = UnixTestSocket.read(s, count: payload.count) == payload
        shutdown(s, Int32(SHUT_WR))
        close(s)
    }

    func wait(timeout: TimeInterval = 60) {
        let deadline = Date().addingTimeInterval(timeout)
        while !done && Date() < deadline { usleep(20_000) }
    }
}

/// Snapshot, restore and live migration of a probe VM with virtio-net (on a tap in a
/// network namespace) and virtio-vsock: the devices are saved with the VM and rebuilt in
/// the new process, where the probe's own net and vsock tests pass again on them.
final class SnapshotNetVsockTests: XCTestCase {
    var dir: URL!
    let netArgs = "probe.ip=10.77.0.2/24 probe.peer=10.77.0.1"
    let vsockArgs = "probe.vsock_connect=5000 probe.vsock_listen=6000"

    override func setUpWithError() throws {
        try requireKVMDevice()
        dir = URL(fileURLWithPath: "/tmp/svmm-nvs-\(getpid())-\(UUID().uuidString.prefix(6))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { if let dir { try? FileManager.default.removeItem(at: dir) } }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func testVsockVMSnapshottedAndRestoredRunsTheVsockTestAgain() throws {
        let kernel = try probeKernel()
        let sock = path("v.sock")
        let listener = try UnixTestSocket.listen(sock + "_5000")
        defer { close(listener) }
        let snap = "\(path("s.state")),\(path("s.mem"))"

        let first = VsockHostRound(path: sock, listener: listener)
        let a = try RunningVMM(["run", "--kernel", kernel, "--memory", "64", "--vsock", "cid=3,uds=\(sock)",
                                "--cmdline", "console=ttyS0 \(vsockArgs)", "--snapshot-on-signal", "\(snap),exit"],
                               stdin: "test vsock\n")
        try a.waitFor("vsock test before the snapshot") { probeDoneLineComplete($0) }
        XCTAssertTrue(a.stdout.contains("PROBE PASS vsock"), a.stdout)
        first.wait()
        XCTAssertTrue(first.echoed)
        a.signal(SIGUSR1)
        XCTAssertEqual(a.wait(), 0, a.stderr)
        XCTAssertTrue(a.stderr.contains("snapshot (Full) written"), a.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: sock), "the old process released its socket")

        let second = VsockHostRound(path: sock, listener: listener)
        let b = try RunningVMM(["run", "--restore", snap], stdin: "test vsock\npoweroff\n")
        XCTAssertEqual(b.wait(timeout: 90), 0, b.stderr)
        second.wait()
        XCTAssertTrue(b.stdout.contains("PROBE PASS vsock"), b.stdout + b.stderr)
        XCTAssertEqual(second.fromGuest, "ping from guest")
        XCTAssertTrue(second.okLine.hasPrefix("OK "), second.okLine)
        XCTAssertTrue(second.echoed, "a new host CONNECT reaches the guest on the restored device")
    }

    /// A probe VM on tap0 in a new namespace that writes a snapshot to `snap` and exits on SIGUSR1.
    private func startSnapshottingNetVM(snap: String, cmdline: String, stdin: String = "") throws -> (NetNamespace, RunningVMM) {
        let kernel = try probeKernel()
        let ns = try NetNamespace()
        try ns.addTap("tap0", address: "10.77.0.1/24")
        let vm = try RunningVMM(ns.swiftvmm(["run", "--kernel", kernel, "--memory", "64", "--net", "tap=tap0",
                                             "--cmdline", cmdline, "--snapshot-on-signal", "\(snap),exit"]),
                                stdin: stdin, executable: NetNamespace.ip)
        return (ns, vm)
    }

    func testNetVMSnapshottedAndRestoredPingsAgainThroughTheReopenedTap() throws {
        let snap = "\(path("n.state")),\(path("n.mem"))"
        let (ns, a) = try startSnapshottingNetVM(snap: snap, cmdline: "console=ttyS0 \(netArgs)", stdin: "test net\n")
        try a.waitFor("net test before the snapshot") { probeDoneLineComplete($0) }
        XCTAssertTrue(a.stdout.contains("PROBE PASS net"), a.stdout)
        let mac = a.stdout.range(of: "net: mac ").map { "net: mac " + a.stdout[$0.upperBound...].prefix(17) } ?? "none"
        a.signal(SIGUSR1)
        XCTAssertEqual(a.wait(), 0, a.stderr)
        let before = try ns.statistic("tap0", "rx_packets")

        let b = try RunningVMM(ns.swiftvmm(["run", "--restore", snap]), stdin: "test net\npoweroff\n", executable: NetNamespace.ip)
        XCTAssertEqual(b.wait(timeout: 90), 0, b.stderr)
        XCTAssertTrue(b.stdout.contains("PROBE PASS net"), b.stdout + b.stderr)
        XCTAssertTrue(b.stdout.contains("net: ICMP echo reply from 10.77.0.1"), b.stdout)
        XCTAssertTrue(b.stdout.contains(mac), "the restored device keeps the MAC (\(mac)): \(b.stdout)")
        XCTAssertGreaterThan(try ns.statistic("tap0", "rx_packets"), before, "frames reached the re-opened tap")
    }

    func testRestoreWithoutTheTapIsOneClearLine() throws {
        let snap = "\(path("t.state")),\(path("t.mem"))"
        let (ns, a) = try startSnapshottingNetVM(snap: snap, cmdline: "console=ttyS0")
        let kernel = try probeKernel()
        try a.waitFor("shell") { $0.contains("probe> ") }
        a.signal(SIGUSR1)
        XCTAssertEqual(a.wait(), 0, a.stderr)
        // The tap is held by another process: the restore refuses before building anything.
        let holder = try RunningVMM(ns.swiftvmm(["run", "--kernel", kernel, "--memory", "64", "--net", "tap=tap0"]),
                                    executable: NetNamespace.ip)
        try holder.waitFor("the holder's guest running (its tap attached before)") { $0.contains("probe> ") }
        let r = try runProcess(NetNamespace.ip, ns.swiftvmm(["run", "--restore", snap]), timeout: 30)
        holder.signal(SIGKILL)
        _ = holder.wait()
        XCTAssertEqual(r.status, 2, r.stderr)
        XCTAssertEqual(r.stderr, "swiftvmm: tap tap0 is in use by another process\n")
    }

    /// Both processes in one namespace on one host: the source hands the tap and the
    /// vsock socket path over at the end of the copy, the destination attaches them.
    func testLiveMigrationWithNetAndVsockOverAUnixSocket() throws { try migrateWithNetAndVsock(viaAPI: false) }

    /// The same through the control API, whose thread runs under its seccomp list.
    func testLiveMigrationWithNetAndVsockThroughTheAPI() throws { try migrateWithNetAndVsock(viaAPI: true) }

    /// A destination waiting on a Unix socket and a source with net (tap0) and vsock whose
    /// probe passed its tests once, both in one network namespace; the caller closes
    /// `listener` (the host side of the guest's vsock connections).
    private struct MigrationPair {
        let ns: NetNamespace
        let listener: Int32
        let vsock: String
        let migration: String
        let src: RunningVMM
        let dst: RunningVMM
    }

    private func startMigrationPair(viaAPI: Bool, extraSourceArguments: [String] = [], destinationInput: String = "") throws -> MigrationPair {
        let kernel = try probeKernel()
        let ns = try NetNamespace()
        try ns.addTap("tap0", address: "10.77.0.1/24")
        let sock = path("v.sock"), migration = path("m.sock")
        let listener = try UnixTestSocket.listen(sock + "_5000")
        do {
            let dst = try RunningVMM(ns.swiftvmm(["run", "--migrate-from", "unix:\(migration)"]), stdin: destinationInput,
                                     executable: NetNamespace.ip)
            let deadline = Date().addingTimeInterval(30)
            while !FileManager.default.fileExists(atPath: migration) && Date() < deadline { usleep(20_000) }
            let first = VsockHostRound(path: sock, listener: listener)
            let src = try RunningVMM(ns.swiftvmm(["run", "--kernel", kernel, "--memory", "64", "--net", "tap=tap0",
                                                  "--vsock", "cid=3,uds=\(sock)", "--cmdline", "console=ttyS0 \(netArgs) \(vsockArgs)",
                                                  ] + extraSourceArguments
                                                  + (viaAPI ? ["--api-sock", path("api.sock")] : ["--migrate-on-signal", "unix:\(migration)"])),
                                     stdin: "test net,vsock\n", executable: NetNamespace.ip)
            try src.waitFor("tests on the source") { probeDoneLineComplete($0) }
            XCTAssertTrue(src.stdout.contains("PROBE DONE pass=2 fail=0"), src.stdout)
            first.wait()
            XCTAssertTrue(first.echoed, "a host CONNECT reached the guest on the source")
            return MigrationPair(ns: ns, listener: listener, vsock: sock, migration: migration, src: src, dst: dst)
        } catch {
            close(listener)
            throw error
        }
    }

    /// Start the migration: `swiftvmm migrate` through the API (its result), or SIGUSR1.
    private func migrate(_ pair: MigrationPair, viaAPI: Bool) throws -> (status: Int32, stdout: String, stderr: String)? {
        guard viaAPI else {
            pair.src.signal(SIGUSR1)
            return nil
        }
        let r = try runProcess(swiftvmmExecutable(), ["migrate", "--api-sock", path("api.sock"), "--to", "unix:\(pair.migration)"], timeout: 120)
        return (r.status, r.stdout, r.stderr)
    }

    func migrateWithNetAndVsock(viaAPI: Bool) throws {
        let pair = try startMigrationPair(viaAPI: viaAPI, destinationInput: "test net,vsock\npoweroff\n")
        defer { close(pair.listener) }
        let second = VsockHostRound(path: pair.vsock, listener: pair.listener)
        if let r = try migrate(pair, viaAPI: viaAPI) { XCTAssertEqual(r.status, 0, r.stdout + r.stderr) }
        let (src, dst) = (pair.src, pair.dst)
        XCTAssertEqual(src.wait(), 0, src.stderr)
        XCTAssertTrue(src.stderr.contains("migrated to"), src.stderr)
        XCTAssertEqual(dst.wait(timeout: 90), 0, dst.stderr)
        second.wait()
        XCTAssertTrue(dst.stdout.contains("PROBE PASS net"), dst.stdout + dst.stderr)
        XCTAssertTrue(dst.stdout.contains("PROBE PASS vsock"), dst.stdout)
        XCTAssertTrue(dst.stdout.contains("PROBE DONE pass=2 fail=0"), dst.stdout)
        XCTAssertTrue(second.echoed, "a host CONNECT reached the guest on the destination")
    }

    /// The destination fails after the hand-over (it cannot open the disk): the source
    /// takes its tap and vsock socket back and both work there again.
    func testFailedMigrationGivesTheTapAndVsockBackToTheSource() throws { try failMigration(viaAPI: false) }

    /// The same through the control API: taking back runs under the control thread's list.
    func testFailedMigrationThroughTheAPIGivesTheTapAndVsockBack() throws { try failMigration(viaAPI: true) }

    func failMigration(viaAPI: Bool) throws {
        let disk = path("disk.img")
        XCTAssertTrue(FileManager.default.createFile(atPath: disk, contents: Data(count: 1 << 20)))
        let pair = try startMigrationPair(viaAPI: viaAPI, extraSourceArguments: ["--disk", disk])
        defer { close(pair.listener) }
        let (src, dst) = (pair.src, pair.dst)
        XCTAssertEqual(rename(disk, disk + ".moved"), 0)
        if let r = try migrate(pair, viaAPI: viaAPI) {
            XCTAssertNotEqual(r.status, 0, r.stdout)
            XCTAssertTrue(r.stderr.contains("migration refused by the destination"), r.stderr + src.stderr)
        }
        XCTAssertNotEqual(dst.wait(), 0, "the destination fails")
        XCTAssertTrue(dst.stderr.contains("cannot open disk image"), dst.stderr)
        if !viaAPI {
            let until = Date().addingTimeInterval(30)
            while !src.stderr.contains("failed") && Date() < until { usleep(20_000) }
            XCTAssertTrue(src.stderr.contains("the VM keeps running here"), src.stderr)
        }

        let second = VsockHostRound(path: pair.vsock, listener: pair.listener)
        src.send("test net,vsock\n")
        try src.waitFor("tests on the source again") { $0.components(separatedBy: "PROBE DONE pass=2 fail=0").count == 3 }
        second.wait()
        XCTAssertTrue(second.echoed, "the source listens on its vsock socket again")
        src.send("poweroff\n")
        XCTAssertEqual(src.wait(), 0, src.stderr)
    }
}

/// The probe's "PROBE DONE pass=N fail=M" line has arrived whole (its newline too), so
/// assertions on it do not race the rest of the line.
func probeDoneLineComplete(_ out: String) -> Bool {
    guard let r = out.range(of: "PROBE DONE") else { return false }
    return out[r.upperBound...].contains("\n")
}
