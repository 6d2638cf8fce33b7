import Foundation
@testable import KVMKit
import TestSupport
import XCTest
@testable import VirtioDevices

/// The probe kernel's virtio self-tests (its own polled virtio driver) against these
/// devices on /dev/kvm, wired exactly as a VM wires them: virtio-mmio windows, irqfd,
/// ioeventfd on QueueNotify and an event-loop thread.
final class VirtioProbeOnKVMTests: XCTestCase {
    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xffff_ffff
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xedb8_8320 : crc >> 1 }
        }
        return ~crc
    }

    /// /dev/kvm and the probe kernel, or a visible skip (a failure under CI=true).
    func requireKVMAndProbe() throws -> (KVM, String) {
        let kvm: KVM
        do { kvm = try KVM() } catch { throw missingPrerequisite("/dev/kvm is not usable: \(error)") }
        let probe = Self.root.appendingPathComponent("guests/out/probe.bzImage").path
        guard FileManager.default.fileExists(atPath: probe) else {
            throw missingPrerequisite("no guests/out/probe.bzImage (make -C guests probe; make test does)")
        }
        return (kvm, probe)
    }

    func testProbeBlkRngConsoleSelfTests() throws {
        let (kvm, probe) = try requireKVMAndProbe()

        let image = makeImage(size: 256 * 1024)
        defer { unlink(image) }
        let before = try XCTUnwrap(FileManager.default.contents(atPath: image))
        let crc = String(Self.crc32(Array(before.prefix(64 * 1024))), radix: 16)

        let machine = try Machine(configuration: MachineConfiguration(
            kernelPath: probe, commandLine: "console=ttyS0 probe.run=virtio,blk,rng,console probe.blk_crc32=\(crc)",
            memoryMiB: 64), kvm: kvm)
        let loop = try EventLoop()
        let block = try VirtioBlock(options: DiskOptions(path: image, id: "probe-disk"))
        let blockTransport = try VirtioMachineAttachment.attach(block, name: "virtio-blk", to: machine, loop: loop)
        let rng = VirtioRng()
        try VirtioMachineAttachment.attach(rng, name: "virtio-rng", to: machine, loop: loop)
        let console = try VirtioConsole()
        try VirtioMachineAttachment.attach(console, name: "virtio-console", to: machine, loop: loop)
        XCTAssertEqual(machine.virtioWindows.map(\.base), [0xD000_0000, 0xD000_1000, 0xD000_2000])
        XCTAssertEqual(machine.virtioWindows.map(\.gsi), [5, 6, 7])

        try machine.boot(extraCommandLine: machine.virtioCommandLine)
        try loop.start()
        try machine.start()
        let watchdog = DispatchWorkItem { machine.requestStop(.hostRequest("test timeout")) }
        DispatchQueue.global().asyncAfter(deadline: .now() + 120, execute: watchdog)
        let reason = machine.wait()
        watchdog.cancel()
        machine.shutdown()
        loop.stop()
        loop.join()

        let out = String(decoding: machine.serialOutput.readAll(), as: UTF8.self)
        print(out)
        print("stop: \(reason); blk \(block.metrics); transport \(blockTransport.metrics); rng \(rng.bytesProvided) bytes")
        XCTAssertEqual(reason, .reset, "the probe powers off through the i8042 reset once its tests ran")
        for test in ["virtio", "blk", "rng", "console"] {
            XCTAssertTrue(out.contains("PROBE PASS \(test)"), "probe test \(test) did not pass")
        }
        XCTAssertTrue(out.contains("PROBE DONE pass=4 fail=0"))
        XCTAssertEqual(blockTransport.metrics.needsReset, 0)
        XCTAssertGreaterThan(blockTransport.metrics.notifications, 0)
        XCTAssertEqual(blockTransport.metrics.mmioNotifies, 0)  // all through KVM_IOEVENTFD
        XCTAssertFalse(console.output.readAll().isEmpty)
        XCTAssertEqual(FileManager.default.contents(atPath: image), before)  // the probe restores what it wrote
    }

    /// Sequential virtio-blk throughput with the probe's `bench blk` (no per-byte work in the
    /// guest; up to 4 requests of up to 1 MiB in flight): 8 MiB each way in make test (the
    /// bytes must all arrive), SWIFTVMM_BENCH_BLK=MIB for a real measurement.
    func testBenchBlockThroughput() throws {
        let mib = ProcessInfo.processInfo.environment["SWIFTVMM_BENCH_BLK"].flatMap { Int($0) } ?? 8
        let (kvm, probe) = try requireKVMAndProbe()
        let image = makeImage(size: 0)
        XCTAssertEqual(truncate(image, 64 << 20), 0)  // sparse: 64 MiB of zeros without writing them
        defer { unlink(image) }
        for op in ["read", "write"] {
            let machine = try Machine(configuration: MachineConfiguration(
                kernelPath: probe, commandLine: "console=ttyS0 probe.bench=blk:\(op):\(mib)", memoryMiB: 64), kvm: kvm)
            let loop = try EventLoop()
            let block = try VirtioBlock(options: DiskOptions(path: image))
            try VirtioMachineAttachment.attach(block, name: "virtio-blk", to: machine, loop: loop)
            try machine.boot(extraCommandLine: machine.virtioCommandLine)
            try loop.start()
            try machine.start()
            // Timestamp START and DONE as the lines arrive.
            var text = "", start: Date?, done: Date?
            let deadline = Date().addingTimeInterval(300)
            while done == nil && Date() < deadline {
                text += String(decoding: machine.serialOutput.readAll(), as: UTF8.self)
                if start == nil, text.contains("BENCH BLK START") { start = Date() }
                if text.contains("BENCH BLK DONE") { done = Date() }
                usleep(200)
            }
            let reason = machine.wait()
            machine.shutdown(); loop.stop(); loop.join()
            text += String(decoding: machine.serialOutput.readAll(), as: UTF8.self)
            XCTAssertEqual(reason, .reset, text)
            XCTAssertTrue(text.contains("BENCH BLK DONE op=\(op) bytes=\(mib << 20)"), text)
            XCTAssertEqual(op == "read" ? block.metrics.bytesRead : block.metrics.bytesWritten, UInt64(mib << 20))
            let s = try XCTUnwrap(start, text), d = try XCTUnwrap(done, text)
            let seconds = d.timeIntervalSince(s)
            print(String(format: "virtio-blk sequential %@: %d MiB in %.3f s = %.1f MiB/s (%llu requests)",
                         op, mib, seconds, Double(mib) / seconds, op == "read" ? block.metrics.reads : block.metrics.writes))
        }
    }
}
