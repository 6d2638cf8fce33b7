import Foundation
import KVMKit
import VirtioDevices
import XCTest

/// One process creating and destroying VMs through the library, as a long-lived VMM
/// service would: 1,000 probe boots with a virtio device and an event loop, and no growth
/// in file descriptors, threads or resident memory.
final class MachineCycleTests: XCTestCase {
    func openFDs() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1 }
    func threads() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task").count) ?? -1 }
    func residentKiB() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
    }

    func bootOnce(_ kvm: KVM, probe: String) throws {
        let machine = try Machine(configuration: MachineConfiguration(
            kernelPath: probe, commandLine: "console=ttyS0 probe.run=none", memoryMiB: 16), kvm: kvm)
        let loop = try EventLoop()
        try VirtioMachineAttachment.attach(VirtioRng(), name: "virtio-rng", to: machine, loop: loop)
        try machine.boot(extraCommandLine: machine.virtioCommandLine)
        try loop.start()
        try machine.start()
        let reason = machine.wait()
        machine.shutdown()
        loop.stop()
        loop.join()
        guard case .reset = reason else {
            XCTFail("the probe powers off with an i8042 reset; stopped with \(reason)")
            return
        }
        let out = String(decoding: machine.serialOutput.readAll(), as: UTF8.self)
        XCTAssertTrue(out.contains("PROBE DONE pass=0 fail=0"), out)
    }

    func testThousandCreateDestroyCyclesLeakNothing() throws {
        let kvm: KVM
        do { kvm = try KVM() } catch {
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail("CI=true but no /dev/kvm: \(error)") }
            throw XCTSkip("no usable /dev/kvm: \(error)")
        }
        let probe = VirtioProbeOnKVMTests.root.appendingPathComponent("guests/out/probe.bzImage").path
        guard FileManager.default.fileExists(atPath: probe) else {
            XCTFail("no guests/out/probe.bzImage (make -C guests probe)")
            return
        }
        // Warm up: first-use allocations (runtime metadata, malloc arenas) are not leaks.
        for _ in 0..<50 { try bootOnce(kvm, probe: probe) }
        let (fds, tasks, rss) = (openFDs(), threads(), residentKiB())
        for _ in 0..<1000 { try bootOnce(kvm, probe: probe) }
        let (fdsAfter, tasksAfter, rssAfter) = (openFDs(), threads(), residentKiB())
        print("1000 cycles: fds \(fds) -> \(fdsAfter), threads \(tasks) -> \(tasksAfter), VmRSS \(rss) -> \(rssAfter) KiB")
        XCTAssertEqual(fdsAfter, fds, "file descriptors")
        XCTAssertLessThanOrEqual(tasksAfter, tasks, "threads")
        // A leak of even one guest page per cycle would show as 4 MB.
        XCTAssertLessThan(rssAfter - rss, 2048, "resident memory grew by \(rssAfter - rss) KiB")
    }
}
