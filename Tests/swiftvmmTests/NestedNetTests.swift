import Foundation
import XCTest

/// virtio-net and vsock with Linux's own drivers, in the nested test bed (guests/nested,
/// real AMD-V KVM in L1): L1 is the host side — a tap with an address, TCP and vsock
/// peers (guests/net/peer) — and L2 is the Debian guest. One L1 boot runs both
/// invocations; the test methods check their parts of the output.
final class NestedNetTests: XCTestCase {
    static var runError: String?
    static var output = ""
    static var harnessSeconds = 0.0

    static let peer = "guests/out/net/peer"
    static let mib64 = 64 << 20
    /// The rate-limited interface: 400 kB per 1000 ms, 6 MiB sent; the limiter is judged
    /// by the steady rate over the last 4 MiB (`PEER_MARK`: after the first 2 MiB), and the
    /// whole transfer must not beat the limit plus one bucket. The limit sits far below
    /// what the bed carries unlimited (L2 → L1 ran at 13–31 Mbit/s under load): at 2 MB/s a
    /// loaded run took 14.0 s instead of 7.4 s because the path itself was barely faster.
    /// Timing the whole transfer also measured TCP's slow start, which leaves the first
    /// bucket's refill unused (10.42 s for 9.51 s expected with a 400 kB bucket; 11.26 s
    /// for 10.41 s with 40 kB per 100 ms, where every gap longer than 100 ms loses tokens).
    static let limitBytesPerSecond = 400_000.0, limitBucket = 400_000.0, limitRefillMs = 1000
    static let limitedBytes = 6 << 20, limitMark = 2 << 20

    static func script() -> String {
        let run = "run --kernel guests/out/linux/vmlinuz --initrd guests/out/net/l2-initramfs.cpio.gz --memory 512 --cpus 2"
        let waitPeer = "while pidof peer >/dev/null; do sleep 0.2; done"
        return """
        # 1: eth0 on a tap, TCP both ways, vsock both ways, then the tap deleted
        \(run) --net tap=tap0,mac=52:54:00:00:00:02 --vsock cid=3,uds=/run/v.sock --cmdline "console=ttyS0 quiet"
        ? SWIFTVMM-READY
        $ ip addr add 10.0.2.1/24 dev tap0 && ip link set tap0 up && echo l1-"tap-up"
        ? l1-tap-up
        < ip addr add 10.0.2.2/24 dev eth0 && ip link set eth0 up && echo mac-$(cat /sys/class/net/eth0/address) && ping -c 3 -W 10 10.0.2.1 >/dev/null && echo ping-"ok"
        ? ping-ok
        $ \(peer) tcp-listen 5001 </dev/null >/tmp/from-l2 2>/tmp/peer-a.err & sleep 0.5
        < dd if=/dev/urandom of=/tmp/a bs=1M count=64 2>/dev/null; echo l2-md5-a $(md5sum </tmp/a); peer tcp-connect 10.0.2.1 5001 </tmp/a >/dev/null 2>&1; echo sent-"a"
        ? sent-a
        $ \(waitPeer); cat /tmp/peer-a.err; echo l1-md5-a $(md5sum </tmp/from-l2)
        ? l1-md5-a
        $ dd if=/dev/urandom of=/tmp/b bs=1M count=64 2>/dev/null; echo l1-md5-b $(md5sum </tmp/b)
        ? l1-md5-b
        < peer tcp-listen 5002 </dev/null >/tmp/from-l1 2>/tmp/peer-b.err & sleep 1; echo listening-"b"
        ? listening-b
        $ \(peer) tcp-connect 10.0.2.2 5002 </tmp/b >/dev/null 2>&1; echo l1-sent-"b"
        ? l1-sent-b
        < \(waitPeer); cat /tmp/peer-b.err; echo l2-md5-"b" $(md5sum </tmp/from-l1)
        ? l2-md5-b
        < while read m; do insmod $m; done </etc/net-modules.order; head -c 1048576 /dev/urandom >/tmp/v1; echo l2-md5-v1 $(md5sum </tmp/v1); peer vsock-listen 5000 </tmp/v1 >/tmp/vin 2>/dev/null & sleep 1; echo vsock-"listening"
        ? vsock-listening
        $ head -c 1048576 /dev/urandom >/tmp/h1; echo l1-md5-h1 $(md5sum </tmp/h1); \(peer) hybrid-connect /run/v.sock 5000 </tmp/h1 >/tmp/hout; echo l1-md5-hout $(md5sum </tmp/hout)
        ? l1-md5-hout
        < \(waitPeer); echo l2-md5-"vin" $(md5sum </tmp/vin)
        ? l2-md5-vin
        $ head -c 1048576 /dev/urandom >/tmp/h2; echo l1-md5-h2 $(md5sum </tmp/h2); \(peer) unix-listen /run/v.sock_6000 </tmp/h2 >/tmp/gout 2>/dev/null & sleep 0.5
        < head -c 1048576 /dev/urandom >/tmp/v2; echo l2-md5-v2 $(md5sum </tmp/v2); peer vsock-connect 2 6000 </tmp/v2 >/tmp/v2in 2>/dev/null; echo l2-md5-"v2in" $(md5sum </tmp/v2in)
        ? l2-md5-v2in
        $ \(waitPeer); echo l1-md5-gout $(md5sum </tmp/gout)
        ? l1-md5-gout
        $ ip link del tap0 && echo l1-tap-"deleted"
        ? the guest's link is down
        < sleep 1; echo carrier-$(cat /sys/class/net/eth0/carrier); echo still-"alive"
        ? still-alive
        < poweroff -f
        # 2: a rate-limited interface: L2 sends 6 MiB, L1's peer times the arrival
        \(run) --net tap=tap1,tx-bw=\(Int(limitBucket))/\(limitRefillMs) --cmdline "console=ttyS0 quiet"
        ? SWIFTVMM-READY
        $ ip addr add 10.0.3.1/24 dev tap1 && ip link set tap1 up && echo l1-"tap1-up"
        ? l1-tap1-up
        < ip addr add 10.0.3.2/24 dev eth0 && ip link set eth0 up && dd if=/dev/urandom of=/tmp/z bs=1M count=\(limitedBytes >> 20) 2>/dev/null && (sleep 3; peer tcp-connect 10.0.3.1 5003 </tmp/z >/dev/null 2>&1) & echo l2-"armed"
        ? l2-armed
        $ PEER_MARK=\(limitMark) \(peer) tcp-listen 5003 </dev/null 2>&1 >/dev/null | sed 's/^peer:/limited:/'
        ? limited: received
        < poweroff -f
        """
    }

    override class func setUp() {
        super.setUp()
        let root = repositoryRoot()
        if !FileManager.default.fileExists(atPath: "/usr/bin/qemu-system-x86_64") {
            runError = "/usr/bin/qemu-system-x86_64 is missing (make test installs qemu-system-x86)"
            return
        }
        do {
            let build = try runProcess(root.appendingPathComponent("guests/net/build"), [], timeout: 600, currentDirectory: root)
            guard build.status == 0 else { runError = "guests/net/build failed: \(build.stderr)"; return }
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftvmm-nested-net-\(getpid())").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let scriptPath = dir + "/net.script"
            try script().write(toFile: scriptPath, atomically: true, encoding: .utf8)
            var env = ProcessInfo.processInfo.environment
            env["NESTED_EXPECT_TIMEOUT"] = "400"
            let start = Date()
            // One nested run at a time on this machine (the brief's lock).
            let r = try runProcess(URL(fileURLWithPath: "/usr/bin/flock"),
                                   ["/tmp/swiftvmm-nested.lock", root.appendingPathComponent("guests/nested/run").path,
                                    "--timeout", "1800", "--l1-memory", "3072", "--script", scriptPath],
                                   timeout: 4000, environment: env, currentDirectory: root)
            harnessSeconds = Date().timeIntervalSince(start)
            output = r.stdout.replacingOccurrences(of: "\r", with: "")
            print("nested net test bed: \(String(format: "%.1f", harnessSeconds)) s, harness exit \(r.status)")
            if !output.contains("NESTED-DONE") { runError = "the test bed did not finish (exit \(r.status)): \(r.stderr.suffix(3000))\n\(output.suffix(6000))" }
        } catch {
            runError = "\(error)"
        }
    }

    func requireRun(file: StaticString = #filePath, line: UInt = #line) throws {
        guard let e = Self.runError else { return }
        if e.contains("is missing") && ProcessInfo.processInfo.environment["CI"] != "true" {
            print("SKIPPED (\(e))")
            throw XCTSkip(e)
        }
        XCTFail(e, file: file, line: line)
        throw XCTSkip("nested test bed failed")
    }

    /// The md5 sum printed after `key ` ("key <32 hex digits> -"). L1's output can share a
    /// line with L2's prompt, and L2 echoes the commands that print these keys, so the key
    /// may be anywhere on a line and counts only when a 32-digit hex word follows it.
    func value(_ key: String) -> String? {
        for line in Self.output.split(whereSeparator: { $0.isNewline }) {
            var rest = Substring(line)
            while let r = rest.range(of: key + " ") {
                let word = rest[r.upperBound...].prefix { !$0.isWhitespace }
                if word.count == 32, word.allSatisfy(\.isHexDigit) { return String(word) }
                rest = rest[r.upperBound...]
            }
        }
        return nil
    }

    func md5(_ key: String, file: StaticString = #filePath, line: UInt = #line) -> String? {
        let v = value(key)
        XCTAssertNotNil(v, "no \(key) line in the output", file: file, line: line)
        return v
    }

    func testGuestConfiguresEth0AndPingsL1() throws {
        try requireRun()
        XCTAssertTrue(Self.output.contains("mac-52:54:00:00:00:02"), "the configured MAC: \(Self.output.suffix(4000))")
        XCTAssertTrue(Self.output.contains("\nping-ok"), Self.output.suffix(4000).description)
    }

    func testTCP64MiBEachWayArrivesIntact() throws {
        try requireRun()
        let a = md5("l2-md5-a"), fromL2 = md5("l1-md5-a")
        XCTAssertNotNil(a)
        XCTAssertEqual(a, fromL2, "L2 -> L1: \(Self.output.suffix(4000))")
        let b = md5("l1-md5-b"), fromL1 = md5("l2-md5-b")
        XCTAssertNotNil(b)
        XCTAssertEqual(b, fromL1, "L1 -> L2")
        for line in Self.output.split(whereSeparator: { $0.isNewline }) where line.hasPrefix("peer: received \(Self.mib64) bytes") {
            print("nested TCP: \(line)")
        }
        XCTAssertEqual(Self.output.components(separatedBy: "peer: received \(Self.mib64) bytes").count - 1, 2, "both receivers got 64 MiB")
    }

    func testVsockBothWays() throws {
        try requireRun()
        // Host CONNECT -> guest listener on port 5000, both directions of the stream.
        XCTAssertNotNil(md5("l1-md5-h1"))
        XCTAssertEqual(md5("l1-md5-h1"), md5("l2-md5-vin"), "host -> guest bytes")
        XCTAssertEqual(md5("l2-md5-v1"), md5("l1-md5-hout"), "guest -> host bytes on the host-initiated stream")
        XCTAssertTrue(Self.output.contains("peer: OK "), "the OK <port> answer")
        // Guest connects to host port 6000 -> /run/v.sock_6000.
        XCTAssertNotNil(md5("l2-md5-v2"))
        XCTAssertEqual(md5("l2-md5-v2"), md5("l1-md5-gout"), "guest -> host bytes")
        XCTAssertEqual(md5("l1-md5-h2"), md5("l2-md5-v2in"), "host -> guest bytes on the guest-initiated stream")
    }

    func testTapDeletedWhileRunning() throws {
        try requireRun()
        XCTAssertTrue(Self.output.contains("net net0: tap tap0 is gone; the guest's link is down"), Self.output.suffix(3000).description)
        XCTAssertTrue(Self.output.contains("carrier-0"), "the guest sees the link down")
        XCTAssertTrue(Self.output.contains("\nstill-alive"))
        XCTAssertTrue(Self.output.contains("NESTED-EXIT 1 0"), "the VM ran on and powered off normally")
    }

    func testRateLimitedThroughputWithinTenPercent() throws {
        try requireRun()
        let lines = Self.output.split(whereSeparator: { $0.isNewline })
        // "limited: received N bytes in S s (M Mbit/s)" and "limited: after B bytes: M Mbit/s
        // over the remaining R bytes in S s", maybe after L2's prompt.
        func words(_ key: String) -> [Substring]? {
            guard let l = lines.first(where: { $0.contains(key) }), let r = l.range(of: key) else { return nil }
            return l[r.lowerBound...].split(separator: " ")
        }
        guard let total = words("limited: received"), total.count > 5, let steady = words("limited: after"), steady.count > 12 else {
            return XCTFail("no timing lines: \(Self.output.suffix(3000))")
        }
        let bytes = Double(total[2]) ?? 0, seconds = Double(total[5]) ?? 0
        let rest = Double(steady[9]) ?? 0, restSeconds = Double(steady[12]) ?? 0
        XCTAssertEqual(bytes, Double(Self.limitedBytes))
        XCTAssertGreaterThan(restSeconds, 0)
        // Frames carry ~0.2 % of headers on top of the payload (64 KiB GSO frames), and
        // the limiter counts them.
        let limit = Self.limitBytesPerSecond / 1.002
        let steadyRate = rest / max(restSeconds, 1e-9)
        print("nested rate limit: \(total.joined(separator: " ")); steady \(Int(steadyRate)) B/s over the last \(Int(rest)) bytes, limit \(Int(limit)) B/s")
        XCTAssertEqual(steadyRate, limit, accuracy: limit * 0.10, "the steady rate: \(steady.joined(separator: " "))")
        print("nested rate limit: whole transfer \(seconds) s")
        XCTAssertTrue(Self.output.contains("NESTED-EXIT 2 0"))
    }
}
