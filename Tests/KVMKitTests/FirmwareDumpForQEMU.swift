import Foundation
import XCTest
@testable import KVMKit

/// Writes the ACPI area as one file so a stock kernel can be booted on our tables in QEMU
/// (into FW_DUMP_DIR, or a temporary directory in a normal run), and checks the file holds
/// every table at its guest address. QEMU's microvm machine with
/// `acpi=off` builds no tables of its own and keeps 0xE0000–0xEFFFF as plain RAM, and its
/// one virtio device lands on transport 7 (0xFEB00E00, IRQ 12), which the default layout
/// here declares:
///
///     FW_DUMP_DIR=/tmp/fw swift test --filter FirmwareDumpForQEMU
///     qemu-system-x86_64 -M microvm,acpi=off,x-option-roms=off,pit=on,pic=on,rtc=on,\
///       isa-serial=on,auto-kernel-cmdline=off -smp 2 -m 256 -nographic -no-reboot \
///       -kernel vmlinuz -initrd initrd.cpio.gz -append console=ttyS0 \
///       -device loader,file=/tmp/fw/acpi.bin,addr=0xe0000,force-raw=on \
///       -device virtio-rng-device -trace memory_region_ops_write,file=trace.log
///
/// Debian's 6.1 cloud kernel then reports 2 CPUs (4 with -smp 4 and FW_CPUS=4),
/// `LNRO0005:00`, `PNP0501:00` and `PNP0B00:00` in /sys/bus/acpi/devices, virtio0 on
/// "IO-APIC 12-edge", ttyS0 on "IO-APIC 4-edge", "rtc_cmos 00:01: registered as rtc0",
/// and `poweroff -f` writes 0x80 to port 0x601, then 0x34 to port 0x600 (grep the trace;
/// QEMU ignores the write, so the guest then hangs). On a loaded host TCG may fail TSC
/// calibration (no PM timer or HPET on a hardware-reduced machine): add
/// `tsc_early_khz=<host MHz × 1000>` to the command line.
/// FW_CPUS sets the vCPU count; FW_VIRTIO="base:size:gsi,…" (hex base/size) the devices.
final class FirmwareDumpForQEMU: XCTestCase {
    func testWriteACPIAreaForQEMU() throws {
        let env = ProcessInfo.processInfo.environment
        let dir = env["FW_DUMP_DIR"] ?? FileManager.default.temporaryDirectory.appendingPathComponent("swiftvmm-fw-\(getpid())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let cpus = Int(env["FW_CPUS"] ?? "2") ?? 2
        let virtio = try (env["FW_VIRTIO"] ?? "FEB00E00:200:12").split(separator: ",").map { spec in
            let f = spec.split(separator: ":")
            guard f.count == 3, let base = UInt64(f[0], radix: 16), let size = UInt64(f[1], radix: 16), let gsi = UInt32(f[2])
            else { throw TestSetupError(message: "FW_VIRTIO entry \(spec) is not base:size:gsi") }
            return FirmwareLayout.MMIOWindow(base: base, size: size, gsi: gsi)
        }
        let image = try FirmwareImage(layout: FirmwareLayout(cpuCount: cpus, virtioMMIO: virtio))
        let area = FirmwareAreas.acpi
        let acpi = image.blobs.filter { area.contains($0.guestAddress) }
        var bytes = [UInt8](repeating: 0, count: Int((acpi.map(\.end).max() ?? area.start) - area.start))
        for b in acpi {
            bytes.replaceSubrange(Int(b.guestAddress - area.start)..<Int(b.end - area.start), with: b.bytes)
        }
        let file = URL(fileURLWithPath: dir).appendingPathComponent("acpi.bin")
        try Data(bytes).write(to: file)
        if env["FW_DUMP_DIR"] == nil { addTeardownBlock { try? FileManager.default.removeItem(atPath: dir) } }

        // The file as QEMU's loader device will place it at 0xE0000.
        let written = [UInt8](try Data(contentsOf: file))
        XCTAssertEqual(Array(written.prefix(8)), Array("RSD PTR ".utf8), "the RSDP opens the area")
        XCTAssertEqual(Set(acpi.map(\.name)), ["RSDP", "XSDT", "FADT", "MADT", "DSDT"])
        for b in acpi {
            let at = Int(b.guestAddress - area.start)
            XCTAssertEqual(Array(written[at..<at + b.bytes.count]), b.bytes, "\(b.name) at \(hex(b.guestAddress))")
        }
    }
}
