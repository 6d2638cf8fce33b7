import Foundation
import XCTest

/// Debian's stock cloud kernel under swiftvmm on real AMD-V KVM, in the nested test bed
/// (guests/nested). One L1 boot runs every scenario in turn (a harness script); each test
/// method then checks its own invocation's output. Issues 3 and 5's "must show" items.
final class NestedLinuxTests: XCTestCase {
    struct Invocation {
        var exitCode: Int32?
        /// Everything the invocation printed, the blocks of `$` and `@` lines included.
        var output = ""
        /// The invocation's own output: `output` without those blocks, so a line the guest
        /// was printing when such a block came is whole again.
        var ownOutput = ""
    }

    static var runError: String?
    static var invocations: [Int: Invocation] = [:]
    static var workDir = ""
    static var harnessSeconds = 0.0
    /// NESTED_SCENARIOS=7,8 runs only those scenarios (to work on one, or to break one on
    /// purpose and watch its test fail); the other tests skip, saying so. Refused under CI=true.
    static let selection: Set<Int>? = ProcessInfo.processInfo.environment["NESTED_SCENARIOS"]
        .map { Set($0.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }) }

    /// Scenario numbers, in script order.
    enum Scenario: Int {
        case hostCheck = 1, smp2, uniprocessor, elfVmlinux, serialMMIO, probe, disks, readOnly, hvc, durability, api,
             snapshot, restore, migration, clientBlocks
    }

    /// The script's scenarios, in order, each as its block of lines (from its "# N:" line).
    static func scenarios(dir: String) -> [(number: Int, text: String)] {
        var out: [(number: Int, text: String)] = []
        for line in script(dir: dir).split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# "), let colon = line.firstIndex(of: ":"), let n = Int(line[line.index(line.startIndex, offsetBy: 2)..<colon]) {
                out.append((n, ""))
            }
            if !out.isEmpty { out[out.count - 1].text += line + "\n" }
        }
        return out
    }

    /// Lines the sequence guests of scenarios 12–14 append to their disk and console.
    static let sequenceLength = 60

    /// Typed into the guest: mount the ext4 disk, then in the background append `seq-N.`
    /// to /mnt/seq and print it, every 0.5 s, N = 1…sequenceLength; unmount and power off.
    static let sequenceLoop = "mount /dev/vda /mnt && (i=0; while [ $i -lt \(sequenceLength) ]; do i=$((i+1)); echo seq-$i. >>/mnt/seq; echo seq-$i.; sleep 0.5; done; sync; umount /mnt && echo seq-\"done\"; poweroff -f) &"

    static func script(dir: String) -> String {
        let kernel = "guests/out/linux/vmlinuz", initrd = "guests/out/linux/initramfs.cpio.gz"
        let base = "run --kernel \(kernel) --initrd \(initrd) --memory 256"
        return """
        # 1: the host check on a real AMD-V host
        check
        # 2: --cpus 2, commands on stdin
        \(base) --cpus 2 --cmdline "console=ttyS0 quiet"
        ? SWIFTVMM-READY cpus=2
        < echo hello-"from-guest"; poweroff -f
        ? hello-from-guest
        # 3: --cpus 1
        \(base) --cpus 1 --cmdline "console=ttyS0 quiet"
        ? SWIFTVMM-READY cpus=1
        < echo hello-"from-guest"; poweroff -f
        ? hello-from-guest
        # 4: ELF vmlinux extracted from the same bzImage
        run --kernel guests/out/linux/vmlinux --initrd \(initrd) --memory 256 --cpus 1 --cmdline "console=ttyS0 quiet"
        ? SWIFTVMM-READY cpus=1
        < echo hello-"from-elf"; poweroff -f
        ? hello-from-elf
        # 5: the 16550 on MMIO, used by earlycon. `quiet` keeps the exit count (and the
        # test bed's breakdown rate) low; dmesg shows earlycon's own line.
        \(base) --serial-mmio 0xd1000000 --timings --cmdline "console=ttyS0 earlycon=uart8250,mmio,0xd1000000 quiet"
        ? SWIFTVMM-READY
        < dmesg | grep -m1 -e "earlycon: "; dmesg | grep -m1 -e "bootconsole .uart8250. enabled"; poweroff -f
        ? bootconsole [uart8250] enabled
        # 6: the probe kernel's self-tests, natively on hardware KVM
        run --kernel guests/out/probe.bzImage --memory 128 --disk \(dir)/probe.img,id=probe --rng --console hvc --cmdline "\(probeCommandLine("console=ttyS0 probe.run=all probe.blk_crc32=\(crc32Hex([UInt8](repeating: 0, count: 65536)))"))"
        # 7: an ext4 disk and a second disk with serials, and entropy
        \(base) --disk \(dir)/data.ext4,id=data-disk --disk \(dir)/second.img,id=second-disk --rng --cmdline "console=ttyS0 quiet"
        ? SWIFTVMM-READY
        < mount /dev/vda /mnt && dd if=/dev/urandom of=/mnt/big bs=1M count=64 2>/dev/null && sync && md5sum /mnt/big && umount /mnt && echo disk-"written"
        ? disk-written
        < echo serials: $(cat /sys/block/vda/serial) $(cat /sys/block/vdb/serial) end; cat /sys/class/misc/hw_random/rng_current; head -c 32 /dev/hwrng | od -An -tx1 | tr -d ' \\n'; echo; echo rng-"done"
        ? rng-done
        < poweroff -f
        # 8: the same image read-only
        \(base) --disk \(dir)/data.ext4,ro --cmdline "console=ttyS0 quiet"
        ? SWIFTVMM-READY
        < echo ro=$(cat /sys/block/vda/ro); mount -o ro /dev/vda /mnt && ls -l /mnt/big && md5sum /mnt/big; dd if=/dev/zero of=/dev/vda bs=4096 count=1 oflag=direct 2>&1 || echo raw-write-"refused"
        ? raw-write-refused
        < poweroff -f
        # 9: virtio-console as the console
        \(base) --console hvc --cmdline "console=hvc0 quiet"
        ? SWIFTVMM-READY
        < echo on-$(tty | sed s,/dev/,,)-"console"; poweroff -f
        ? on-hvc0-console
        # 10: durability: the guest writes and fsyncs, then swiftvmm is killed at once
        \(base) --disk \(dir)/durable.img --cmdline "console=ttyS0 quiet"
        ? SWIFTVMM-READY
        < head -c 4194304 /dev/urandom > /tmp/p && md5sum /tmp/p && dd if=/tmp/p of=/dev/vda bs=1M oflag=direct conv=fsync 2>/dev/null && echo marker-after-"fsync"
        ? marker-after-fsync
        ! KILL
        # 11: the stock kernel configured entirely through the control API (2 vCPUs, a
        # drive), paused and resumed while it counts, then Ctrl-Alt-Del (reboot=k: exit 0)
        --api-sock /run/vm.sock --id nested-api
        $ i=0; while [ ! -S /run/vm.sock ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done
        @ info --api-sock /run/vm.sock
        @ api --api-sock /run/vm.sock PUT /machine-config vcpu_count:=2 mem_size_mib:=256
        @ api --api-sock /run/vm.sock PUT /boot-source kernel_image_path=\(kernel) initrd_path=\(initrd) "boot_args=console=ttyS0 reboot=k panic=-1 quiet"
        @ api --api-sock /run/vm.sock PUT /drives/data drive_id=data path_on_host=\(dir)/api.img is_root_device:=false is_read_only:=false
        @ api --api-sock /run/vm.sock PUT /actions action_type=InstanceStart
        ? SWIFTVMM-READY cpus=2
        < echo serial-$(cat /sys/block/vda/serial)-end; i=0; while :; do i=$((i+1)); echo tick-$i; sleep 0.5; done &
        ? tick-3
        @ pause --api-sock /run/vm.sock
        @ info --api-sock /run/vm.sock
        ~ 3
        @ info --api-sock /run/vm.sock
        @ resume --api-sock /run/vm.sock
        ? tick-
        ? tick-
        @ stop --api-sock /run/vm.sock
        # 12: snapshot (issue 11): the guest appends sequence numbers to a file on its ext4
        # disk and to the console; `swiftvmm snapshot` pauses it and writes the state and
        # memory files (disks flushed first), then the VMM is killed. The clients of 12 and
        # 14 write to files, printed later: their output on the shared L1 console could
        # otherwise land inside a sequence line that is still being written.
        \(base) --disk \(dir)/seq.ext4 --api-sock /run/s.sock --cmdline "console=ttyS0 quiet"
        ? SWIFTVMM-READY
        < \(sequenceLoop)
        ? seq-10.
        $ swiftvmm snapshot --api-sock /run/s.sock /run/snap.state /run/snap.mem --leave-paused >/tmp/snapshot.out 2>&1; echo snapshot-exit=$?
        ! KILL
        # 13: restored by a new process from those files: the sequence goes on to its end,
        # the disk is unmounted, the guest powers off
        run --restore /run/snap.state,/run/snap.mem
        ? seq-done
        # 14: live migration between two swiftvmm processes in L1 while the guest appends:
        # the destination waits on a Unix socket, `swiftvmm migrate` moves the VM through
        # the source's API; the destination's console is printed once its guest is done
        \(base) --disk \(dir)/mig.ext4 --api-sock /run/m.sock --cmdline "console=ttyS0 quiet"
        ? SWIFTVMM-READY
        $ swiftvmm run --migrate-from unix:/run/mig.sock </dev/null >/tmp/destination.out 2>&1 & i=0; while [ ! -S /run/mig.sock ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
        < \(sequenceLoop)
        ? seq-10.
        $ swiftvmm migrate --api-sock /run/m.sock --to unix:/run/mig.sock >/tmp/migrate.out 2>&1; echo $? >/tmp/migrate.rc
        $ i=0; while ! grep -q 'seq-d[o]ne' /tmp/destination.out && [ $i -lt 2400 ]; do sleep 0.2; i=$((i+1)); done; sleep 2; echo migrate-exit=$(cat /tmp/migrate.rc); cat /tmp/migrate.out; echo DESTINATION-OUTPUT-BEGIN; cat /tmp/destination.out; echo; echo DESTINATION-OUTPUT-END
        # 15: the bed itself: the output of `@` clients and `$` commands comes as whole blocks
        # while the invocation is in the middle of its lines (`drip-` and the number are two writes)
        /bin/sh -c 'i=0; while [ $i -lt \(dripLength) ]; do i=$((i+1)); printf drip-; sleep 0.02; printf "%s\\n" $i; done'
        ? drip-5
        @ --version
        $ echo from-"l1"; echo second-line
        @ --version
        $ echo from-"l1"; echo second-line
        @ --version
        """
    }

    override class func setUp() {
        super.setUp()
        let root = repositoryRoot()
        for tool in ["/usr/bin/qemu-system-x86_64", "/sbin/mkfs.ext4", "/sbin/debugfs", "/sbin/e2fsck", "/usr/bin/flock"] where !FileManager.default.fileExists(atPath: tool) {
            runError = "\(tool) is missing (make test installs qemu-system-x86 and e2fsprogs)"
            return
        }
        do {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftvmm-nested-\(getpid())").path
            try? FileManager.default.removeItem(atPath: dir)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            workDir = dir
            // Images: an ext4 data disk, a small second disk, the probe's disk, the durability target.
            _ = FileManager.default.createFile(atPath: "\(dir)/data.ext4", contents: nil)
            truncate("\(dir)/data.ext4", 160 << 20)
            let mkfs = try runProcess(URL(fileURLWithPath: "/sbin/mkfs.ext4"), ["-q", "-F", "\(dir)/data.ext4"], timeout: 60)
            guard mkfs.status == 0 else { runError = "mkfs.ext4 failed: \(mkfs.stderr)"; return }
            for name in ["seq.ext4", "mig.ext4"] {
                _ = FileManager.default.createFile(atPath: "\(dir)/\(name)", contents: nil)
                truncate("\(dir)/\(name)", 32 << 20)
                let r = try runProcess(URL(fileURLWithPath: "/sbin/mkfs.ext4"), ["-q", "-F", "\(dir)/\(name)"], timeout: 60)
                guard r.status == 0 else { runError = "mkfs.ext4 failed: \(r.stderr)"; return }
            }
            for (name, size) in [("second.img", 1 << 20), ("probe.img", 1 << 20), ("durable.img", 8 << 20), ("api.img", 1 << 20)] {
                _ = FileManager.default.createFile(atPath: "\(dir)/\(name)", contents: Data(count: size))
            }
            var env = ProcessInfo.processInfo.environment
            // A talkative L2 boot took 2.5 min at load average 28 on this 2-core machine.
            env["NESTED_EXPECT_TIMEOUT"] = env["NESTED_EXPECT_TIMEOUT"] ?? "600"
            // One run, no retry: a scenario that misses its text or triple-faults fails its
            // test. The bed's default configuration (one L1 vCPU) is the one
            // guests/nested/reliability measured best (guests/nested/README.md, "Reliability").
            // The lock keeps other nested runs on this machine from competing for the CPU.
            if selection != nil && ProcessInfo.processInfo.environment["CI"] == "true" {
                runError = "NESTED_SCENARIOS is set under CI=true: every scenario must run"
                return
            }
            let chosen = scenarios(dir: dir).filter { selection?.contains($0.number) ?? true }
            let scriptPath = "\(dir)/scenarios.script"
            try chosen.map(\.text).joined().write(toFile: scriptPath, atomically: true, encoding: .utf8)
            let start = Date()
            let r = try runProcess(URL(fileURLWithPath: "/usr/bin/flock"),
                                   ["/tmp/swiftvmm-nested.lock", root.appendingPathComponent("guests/nested/run").path,
                                    "--timeout", "2400", "--script", scriptPath],
                                   timeout: 2700, environment: env, currentDirectory: root)
            harnessSeconds = Date().timeIntervalSince(start)
            let byPosition = parse(r.stdout)
            for (position, scenario) in chosen.enumerated() { invocations[scenario.number] = byPosition[position + 1] }
            print("nested test bed: \(invocations.count) scenarios in \(String(format: "%.1f", harnessSeconds)) s, harness exit \(r.status)")
            if r.status == 124 || r.status == 125 || !r.stdout.contains("NESTED-DONE") {
                runError = "the nested test bed failed (harness exit \(r.status)); stderr:\n\(r.stderr.suffix(3000))\nconsole tail:\n\(r.stdout.suffix(6000))"
            }
        } catch {
            runError = "\(error)"
        }
    }

    /// Lines scenario 15's invocation prints.
    static let dripLength = 150

    /// A `$` command's or an `@` client's output as the harness writes it, in one block
    /// (guests/nested/README.md): a line break, `NESTED-KIND-OUTPUT n`, the output, a line
    /// break, `NESTED-KIND-EXIT n status`, a line break — each `\r\n` on the console, `\n`
    /// once `parse` has split the lines. Groups: 1 the kind, 3 the output, 4 the status.
    static let outputBlock = try! NSRegularExpression(
        pattern: #"\r*\nNESTED-(HOST|CLIENT)-OUTPUT ([0-9]+)\r*\n(.*?)\r*\nNESTED-\1-EXIT \2 ([0-9]+)\r*\n"#,
        options: [.dotMatchesLineSeparators])

    /// The blocks in `text`, in order: their kind (`HOST` or `CLIENT`), output and status.
    static func outputBlocks(_ text: String) -> [(kind: String, output: String, status: Int32)] {
        let ns = text as NSString
        return outputBlock.matches(in: text, range: NSRange(location: 0, length: ns.length)).map {
            (ns.substring(with: $0.range(at: 1)), ns.substring(with: $0.range(at: 3)), Int32(ns.substring(with: $0.range(at: 4)))!)
        }
    }

    /// Split the harness output at NESTED-BEGIN n / NESTED-EXIT n code markers; each
    /// invocation's own output is the same split of the output without `$` and `@` blocks.
    static func parse(_ out: String) -> [Int: Invocation] {
        var invocations = split(out)
        let withoutBlocks = outputBlock.stringByReplacingMatches(in: out, range: NSRange(location: 0, length: (out as NSString).length), withTemplate: "")
        for (n, own) in split(withoutBlocks) { invocations[n, default: Invocation()].ownOutput = own.output }
        return invocations
    }

    private static func split(_ out: String) -> [Int: Invocation] {
        var invocations: [Int: Invocation] = [:]
        var current: Int?
        for raw in out.split(omittingEmptySubsequences: false, whereSeparator: { $0.isNewline }) {
            let line = String(raw)
            if line.hasPrefix("NESTED-BEGIN "), let n = Int(line.dropFirst(13).trimmingCharacters(in: .whitespaces)) {
                current = n
                invocations[n] = Invocation()
            } else if line.hasPrefix("NESTED-EXIT ") {
                let parts = line.split(separator: " ")
                if parts.count >= 3, let n = Int(parts[1]), let code = Int32(parts[2]) { invocations[n, default: Invocation()].exitCode = code }
                current = nil
            } else if let n = current {
                invocations[n]?.output += line + "\n"
            }
        }
        return invocations
    }

    func invocation(_ s: Scenario, file: StaticString = #filePath, line: UInt = #line) throws -> Invocation {
        if let e = Self.runError {
            if e.contains("is missing") && ProcessInfo.processInfo.environment["CI"] != "true" {
                print("SKIPPED (\(e))")
                throw XCTSkip(e)
            }
            XCTFail(e, file: file, line: line)
            throw XCTSkip("nested test bed failed")
        }
        if let chosen = Self.selection, !chosen.contains(s.rawValue) {
            print("SKIPPED (scenario \(s.rawValue) not in NESTED_SCENARIOS)")
            throw XCTSkip("scenario \(s.rawValue) not in NESTED_SCENARIOS")
        }
        guard let inv = Self.invocations[s.rawValue] else {
            XCTFail("scenario \(s) did not run", file: file, line: line)
            throw XCTSkip("no output")
        }
        XCTAssertFalse(inv.output.contains("NESTED-EXPECT-FAILED"), "an expected text never came: \(inv.output)", file: file, line: line)
        XCTAssertFalse(inv.output.contains("NESTED-HOST-TIMEOUT"), "an L1 command never finished: \(inv.output)", file: file, line: line)
        return inv
    }

    func lines(_ inv: Invocation) -> [String] {
        lines(inv.output)
    }

    func lines(_ text: String) -> [String] {
        text.split(whereSeparator: { $0.isNewline }).map { $0.trimmingCharacters(in: .whitespaces) }
    }

    /// What md5sum printed for `path`: a whole line "<32 hex digits>  <path>". The guest
    /// shell's echo of the typed command line is never such a line.
    func md5(of path: String, in inv: Invocation) -> String? {
        lines(inv).first { $0.count == 34 + path.utf8.count && $0.hasSuffix("  " + path) && $0.prefix(32).allSatisfy(\.isHexDigit) }
            .map { String($0.prefix(32)) }
    }

    func testCheckOnAnAMDVHost() throws {
        let inv = try invocation(.hostCheck)
        XCTAssertEqual(inv.exitCode, 0, inv.output)
        XCTAssertTrue(inv.output.contains("OK   cpu: svm (AMD-V)"), inv.output)
        XCTAssertTrue(inv.output.contains("OK   backend: kvm_amd"), inv.output)
        XCTAssertFalse(inv.output.contains("WARN guests:"), "no PVM warning on hardware KVM")
        XCTAssertTrue(inv.output.contains("KVM acceleration can be used"), inv.output)
    }

    func testStockKernelWithTwoCPUs() throws {
        let inv = try invocation(.smp2)
        XCTAssertEqual(inv.exitCode, 0, inv.output)
        XCTAssertTrue(lines(inv).contains { $0.hasPrefix("SWIFTVMM-READY cpus=2 ") }, inv.output)
        XCTAssertTrue(lines(inv).contains("hello-from-guest"), inv.output)
    }

    func testStockKernelWithOneCPU() throws {
        let inv = try invocation(.uniprocessor)
        XCTAssertEqual(inv.exitCode, 0, inv.output)
        XCTAssertTrue(lines(inv).contains { $0.hasPrefix("SWIFTVMM-READY cpus=1 ") }, inv.output)
        XCTAssertTrue(lines(inv).contains("hello-from-guest"), inv.output)
    }

    func testELFVmlinux() throws {
        let inv = try invocation(.elfVmlinux)
        XCTAssertEqual(inv.exitCode, 0, inv.output)
        XCTAssertTrue(lines(inv).contains { $0.hasPrefix("SWIFTVMM-READY cpus=1 ") }, inv.output)
        XCTAssertTrue(lines(inv).contains("hello-from-elf"), inv.output)
    }

    func testEarlyconOnTheMMIOSerialPort() throws {
        let inv = try invocation(.serialMMIO)
        XCTAssertEqual(inv.exitCode, 0, inv.output)
        XCTAssertTrue(inv.output.contains("earlycon: uart8250 at MMIO 0x00000000d1000000"), inv.output)
        XCTAssertTrue(inv.output.contains("printk: bootconsole [uart8250] enabled"), inv.output)
        // The boot console printed through the MMIO UART (bytes counted per device).
        let counted = inv.output.range(of: #"MMIO 16550 transmitted (\d+) bytes"#, options: .regularExpression).map { String(inv.output[$0]) } ?? ""
        let bytes = Int(counted.split(separator: " ").dropFirst(3).first ?? "") ?? 0
        XCTAssertGreaterThan(bytes, 0, "earlycon output went through the MMIO 16550: \(counted)")
    }

    func testProbeSelfTestsOnHardwareKVM() throws {
        let inv = try invocation(.probe)
        XCTAssertEqual(inv.exitCode, 0, inv.output)
        for t in ["serial", "e820", "mmio", "virtio", "blk", "rng", "console"] {
            XCTAssertTrue(lines(inv).contains("PROBE PASS \(t)"), "\(t): \(inv.output)")
        }
        XCTAssertTrue(inv.output.contains("fail=0"), inv.output)
    }

    func testExt4DiskWrite64MiBSameMD5OnHost() throws {
        let inv = try invocation(.disks)
        XCTAssertEqual(inv.exitCode, 0, inv.output)
        guard let guestMD5 = md5(of: "/mnt/big", in: inv) else { return XCTFail("no md5sum line: \(inv.output)") }
        let dump = "\(Self.workDir)/big.out"
        let r = try runProcess(URL(fileURLWithPath: "/sbin/debugfs"), ["-R", "dump /big \(dump)", "\(Self.workDir)/data.ext4"], timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr)
        let hostMD5 = try runProcess(URL(fileURLWithPath: "/usr/bin/md5sum"), [dump]).stdout.prefix(32)
        XCTAssertEqual(String(hostMD5), guestMD5, "the 64 MiB file written in the guest is in the host image")
        let size = (try FileManager.default.attributesOfItem(atPath: dump)[.size] as? Int) ?? 0
        XCTAssertEqual(size, 64 << 20)
    }

    func testTwoDisksWithSerialsAndHWRNG() throws {
        let inv = try invocation(.disks)
        XCTAssertTrue(lines(inv).contains("serials: data-disk second-disk end"), inv.output)
        XCTAssertTrue(lines(inv).contains { $0.hasPrefix("virtio_rng") }, "hw_random uses virtio: \(inv.output)")
        let hex = lines(inv).first { $0.count == 64 && $0.allSatisfy(\.isHexDigit) }
        XCTAssertNotNil(hex, "32 bytes from /dev/hwrng: \(inv.output)")
        XCTAssertNotEqual(hex, String(repeating: "0", count: 64))
    }

    func testReadOnlyDisk() throws {
        let inv = try invocation(.readOnly)
        XCTAssertEqual(inv.exitCode, 0, inv.output)
        XCTAssertTrue(lines(inv).contains("ro=1"), "the guest sees a read-only disk: \(inv.output)")
        // The read-only mount shows the file scenario 7 wrote: its size, and the same md5.
        XCTAssertTrue(lines(inv).contains { $0.hasPrefix("-") && $0.hasSuffix(" /mnt/big") && $0.contains(" 67108864 ") },
                      "ls -l lists the 64 MiB file: \(inv.output)")
        let written = md5(of: "/mnt/big", in: try invocation(.disks))
        XCTAssertNotNil(written, "scenario 7 printed the md5 of /mnt/big")
        XCTAssertEqual(md5(of: "/mnt/big", in: inv), written, "the read-only disk holds the file scenario 7 wrote: \(inv.output)")
        XCTAssertTrue(lines(inv).contains("raw-write-refused"), "a write fails inside the guest: \(inv.output)")
    }

    /// The bed's `@` clients and `$` commands: each one's output arrives as a whole block
    /// even while the invocation is in the middle of a line, and without the blocks the
    /// invocation's lines are whole (scenario 11's tick count relies on both).
    func testClientAndHostOutputComeAsWholeBlocks() throws {
        let inv = try invocation(.clientBlocks)
        XCTAssertEqual(inv.exitCode, 0, inv.output)
        let blocks = Self.outputBlocks(inv.output)
        XCTAssertEqual(blocks.map(\.kind), ["CLIENT", "HOST", "CLIENT", "HOST", "CLIENT"], inv.output)
        for b in blocks {
            XCTAssertEqual(b.status, 0)
            let output = lines(b.output)
            if b.kind == "HOST" {
                XCTAssertEqual(output, ["from-l1", "second-line"], "the command's output, nothing else")
            } else {
                XCTAssertTrue(output.count == 1 && output[0].hasPrefix("swiftvmm "), "one version line, nothing else: \(output)")
            }
        }
        let drips = lines(inv.ownOutput).filter { $0.hasPrefix("drip-") }
        XCTAssertEqual(drips, (1...Self.dripLength).map { "drip-\($0)" }, "the invocation's lines are whole without the blocks:\n\(inv.output)")
        // A block that came between two lines would prove nothing: at least one came inside
        // one (the invocation spends nearly all its time between `drip-` and the number).
        let split = lines(inv.output).contains { $0 == "drip-" }
        XCTAssertTrue(split, "no client block came inside a line:\n\(inv.output)")
    }

    func testVirtioConsoleAsHVC0() throws {
        let inv = try invocation(.hvc)
        XCTAssertEqual(inv.exitCode, 0, inv.output)
        XCTAssertTrue(inv.output.contains("SWIFTVMM-READY"), inv.output)
        XCTAssertTrue(lines(inv).contains("on-hvc0-console"), inv.output)
    }

    func testDurabilityAfterSIGKILL() throws {
        let inv = try invocation(.durability)
        XCTAssertTrue(lines(inv).contains("marker-after-fsync"), inv.output)
        XCTAssertNotEqual(inv.exitCode, 0, "swiftvmm was killed")
        guard let guestMD5 = md5(of: "/tmp/p", in: inv) else { return XCTFail("no md5: \(inv.output)") }
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(Self.workDir)/durable.img")).prefix(4 << 20)
        let file = "\(Self.workDir)/durable.head"
        try data.write(to: URL(fileURLWithPath: file))
        let hostMD5 = try runProcess(URL(fileURLWithPath: "/usr/bin/md5sum"), [file]).stdout.prefix(32)
        XCTAssertEqual(String(hostMD5), guestMD5, "fsynced data survives SIGKILL of the VMM")
    }

    /// Issue 9: Debian's kernel configured only through the API (machine-config with 2
    /// vCPUs, boot-source, a drive), started, paused for 3 s while it counts (no tick in
    /// between), resumed (the count goes on, no gap), then SendCtrlAltDel: Linux reboots,
    /// reboot=k resets the machine, swiftvmm exits 0.
    func testConfiguredThroughTheAPIPausedResumedAndCtrlAltDel() throws {
        let inv = try invocation(.api)
        XCTAssertEqual(inv.exitCode, 0, inv.output)
        let out = lines(inv)
        // The guest's own lines, without the clients' output (which may come inside one).
        let guest = lines(inv.ownOutput)
        let clients = Self.outputBlocks(inv.output).filter { $0.kind == "CLIENT" }
        XCTAssertEqual(clients.count, 10, inv.output)
        XCTAssertTrue(clients.allSatisfy { $0.status == 0 }, "an API call failed:\n\(inv.output)")
        XCTAssertTrue(guest.contains { $0.hasPrefix("SWIFTVMM-READY cpus=2 ") }, inv.output)
        XCTAssertTrue(guest.contains("serial-data-end"), "the drive's serial is its drive_id:\n\(inv.output)")
        let paused = out.indices.filter { out[$0] == "\"state\": \"Paused\"," }
        XCTAssertEqual(paused.count, 2, "two state reports while paused:\n\(inv.output)")
        /// The number of a `tick-N` the guest printed (a line may start with the shell's
        /// prompt; the echoed command line has `tick-$i`, no digits).
        func tick(_ l: String) -> Int? {
            guard let r = l.range(of: #"tick-[0-9]+$"#, options: .regularExpression) else { return nil }
            return Int(l[r].dropFirst(5))
        }
        if paused.count == 2 {
            XCTAssertTrue(out[paused[0]..<paused[1]].allSatisfy { tick($0) == nil }, "the guest ran while paused:\n\(inv.output)")
        }
        let ticks = guest.compactMap(tick)
        XCTAssertGreaterThan(ticks.count, 4, inv.output)
        XCTAssertEqual(ticks, Array(1...max(1, ticks.count)), "the count has a gap or a repeat:\n\(inv.output)")
        XCTAssertTrue(inv.ownOutput.contains("reboot: Restarting system"), "Ctrl-Alt-Del reached Linux:\n\(inv.output)")
        XCTAssertTrue(inv.ownOutput.contains("swiftvmm: guest reset"), inv.output)
    }

    /// The numbers of the complete `seq-N.` lines in `text`, in order (a line may start
    /// with the guest shell's prompt; the echoed command has `seq-$i.`, no digits).
    func sequence(_ text: String) -> [Int] {
        text.split(whereSeparator: { $0.isNewline }).compactMap { l in
            guard let r = l.range(of: #"seq-[0-9]+\.\s*$"#, options: .regularExpression) else { return nil }
            return Int(l[r].dropFirst(4).prefix { $0.isNumber })
        }
    }

    /// The console's sequence across a hand-over (snapshot → restore, source →
    /// destination): 1…sequenceLength, each once, in order. The VM stops at an arbitrary
    /// instruction, so the one line being printed then may be split between the two
    /// processes: that number is excused only when `before` ends with a proper prefix of it.
    func assertSequenceAcrossHandOver(before: String, after: String, file: StaticString = #filePath, line: UInt = #line) {
        let a = sequence(before), b = sequence(after)
        XCTAssertFalse(a.isEmpty, "no sequence before the hand-over:\n\(before)", file: file, line: line)
        XCTAssertFalse(b.isEmpty, "no sequence after the hand-over:\n\(after)", file: file, line: line)
        guard let last = a.last, let first = b.first else { return }
        var expected = Array(1...Self.sequenceLength)
        if first == last + 2 {
            let fragment = before.split(whereSeparator: { $0.isNewline }).last { $0.contains("seq-") }
                .map { l in String(l[l.range(of: "seq-", options: .backwards)!.lowerBound...]).trimmingCharacters(in: .whitespaces) } ?? ""
            let whole = "seq-\(last + 1)."
            XCTAssertTrue(whole.hasPrefix(fragment) && fragment != whole,
                          "seq-\(last + 1) is missing on the console and not split at the hand-over (\"\(fragment)\")", file: file, line: line)
            expected.removeAll { $0 == last + 1 }
        }
        XCTAssertEqual(a + b, expected, "the console's sequence has a gap or a repeat", file: file, line: line)
    }

    /// The disk's record: /seq on the ext4 image holds seq-1. … seq-N. once each, and
    /// `e2fsck -n -f` finds the file system clean.
    func assertDiskSequence(_ image: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let dump = "\(image).seq"
        let r = try runProcess(URL(fileURLWithPath: "/sbin/debugfs"), ["-R", "dump /seq \(dump)", image], timeout: 60)
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        let text = (try? String(contentsOfFile: dump, encoding: .utf8)) ?? ""
        XCTAssertEqual(text, (1...Self.sequenceLength).map { "seq-\($0).\n" }.joined(), "the file on the disk", file: file, line: line)
        let fsck = try runProcess(URL(fileURLWithPath: "/sbin/e2fsck"), ["-n", "-f", image], timeout: 60)
        XCTAssertEqual(fsck.status, 0, "e2fsck -n -f \(image): \(fsck.stdout)\(fsck.stderr)", file: file, line: line)
    }

    /// Issue 11: snapshot of a running stock-kernel guest, the VMM killed, restored by a
    /// new process: the sequence on the console and on the disk has no gap and no repeat.
    func testSnapshotKillRestoreKeepsTheSequence() throws {
        let snap = try invocation(.snapshot), restored = try invocation(.restore)
        XCTAssertTrue(lines(snap).contains("snapshot-exit=0"), "swiftvmm snapshot failed:\n\(snap.output)")
        XCTAssertNotEqual(snap.exitCode, 0, "the snapshotted VMM was killed")
        XCTAssertEqual(restored.exitCode, 0, restored.output)
        XCTAssertTrue(lines(restored).contains { $0.hasSuffix("seq-done") }, restored.output)
        assertSequenceAcrossHandOver(before: snap.output, after: restored.output)
        try assertDiskSequence("\(Self.workDir)/seq.ext4")
    }

    /// Issue 11: live migration between two swiftvmm processes in L1 through the source's
    /// API while the guest appends: the source exits 0 after the hand-over, the sequence
    /// goes on in the destination without gap or repeat, the disk checks clean.
    func testLiveMigrationKeepsTheSequence() throws {
        let inv = try invocation(.migration)
        XCTAssertEqual(inv.exitCode, 0, "the source exits 0 after the hand-over:\n\(inv.output)")
        XCTAssertTrue(inv.output.contains("migrated to unix:/run/mig.sock"), inv.output)
        XCTAssertTrue(lines(inv).contains("migrate-exit=0"), "swiftvmm migrate failed:\n\(inv.output)")
        guard let begin = inv.output.range(of: "DESTINATION-OUTPUT-BEGIN"),
              let end = inv.output.range(of: "DESTINATION-OUTPUT-END", range: begin.upperBound..<inv.output.endIndex) else {
            return XCTFail("no destination output:\n\(inv.output)")
        }
        let destination = String(inv.output[begin.upperBound..<end.lowerBound])
        XCTAssertTrue(destination.contains("seq-done"), destination)
        assertSequenceAcrossHandOver(before: String(inv.output[..<begin.lowerBound]), after: destination)
        try assertDiskSequence("\(Self.workDir)/mig.ext4")
        if let report = lines(inv).first(where: { $0.contains("\"downtime_ms\"") }) { print("nested migration: \(report)") }
    }
}
