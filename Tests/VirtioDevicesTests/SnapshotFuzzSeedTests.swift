import CKVM
import Foundation
@testable import KVMKit
import XCTest
@testable import VirtioDevices

/// The SnapshotFuzz seeds are well-formed states of today's format, so the fuzzer starts
/// from inputs that reach deep into each decoder (and the seeds fail here when the format
/// changes without them).
final class SnapshotFuzzSeedTests: XCTestCase {
    let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fuzz/seeds/SnapshotFuzz").path

    func seed(_ name: String) throws -> [UInt8] {
        guard let d = FileManager.default.contents(atPath: "\(dir)/\(name).bin") else {
            throw XCTSkip("seed \(name) missing")  // fails below through the count check
        }
        return Array(d)
    }

    func testSeedsDecode() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".bin") }
        XCTAssertEqual(names.count, 13)
        let file = try SnapshotFile(decoding: try seed("file"))
        XCTAssertEqual(file.sections.count, 10)
        for (i, s) in file.sections.enumerated() {
            let standalone = try seed(s.name)
            XCTAssertEqual(standalone.first, UInt8(i))
            XCTAssertEqual(Array(standalone.dropFirst()), s.bytes)
        }
        _ = try file.decode(VCPUState.self, section: "vcpu")
        _ = try file.decode(VirtualMachineState.self, section: "vm")
        _ = try file.decode(Serial16550.State.self, section: "serial")
        _ = try file.decode(CMOS.State.self, section: "cmos")
        _ = try file.decode(I8042.State.self, section: "i8042")
        _ = try file.decode(ACPISleepRegisters.State.self, section: "acpi")
        _ = try file.decode(VirtioTransportState.self, section: "transport-rng")
        _ = try file.decode(VirtioTransportState.self, section: "transport-console")
        _ = try file.decode(VirtioConsoleState.self, section: "console")
        _ = try file.decode(CPUFeatures.self, section: "cpu")
        // Device states with no section in the seed file: standalone, selectors 10 and 11.
        let net = try seed("net"), vsock = try seed("vsock")
        XCTAssertEqual(net.first, 10)
        XCTAssertEqual(try VirtioNetState(decoding: Array(net.dropFirst()), context: "seed").mtu, 1500)
        XCTAssertEqual(vsock.first, 11)
        XCTAssertEqual(try VirtioVsockState(decoding: Array(vsock.dropFirst()), context: "seed").guestCID, 3)
    }
}
