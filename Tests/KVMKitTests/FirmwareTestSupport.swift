import XCTest
@testable import KVMKit

/// A machine like the ones the VMM builds: COM1, an MMIO UART, three virtio-mmio devices
/// at 0xD000_0000 + n × 0x1000 on GSIs 5, 6, 7 (docs/machine.md).
func sampleLayout(cpus: Int) -> FirmwareLayout {
    FirmwareLayout(
        cpuCount: cpus,
        virtioMMIO: (0..<3).map { .init(base: 0xD000_0000 + UInt64($0) * 0x1000, size: 0x1000, gsi: UInt32(5 + $0)) },
        serialMMIO: .init(base: 0xD100_0000, size: 0x1000, gsi: 12))
}

extension FirmwareImage {
    func blob(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> FirmwareBlob {
        try XCTUnwrap(blobs.first { $0.name == name }, "no \(name) blob", file: file, line: line)
    }

    /// The blob that starts exactly at `address`.
    func blob(at address: UInt64) -> FirmwareBlob? { blobs.first { $0.guestAddress == address } }
}

func byteSum<C: Collection>(_ bytes: C) -> UInt8 where C.Element == UInt8 { bytes.reduce(0) { $0 &+ $1 } }

func le16(_ b: [UInt8], _ o: Int) -> UInt16 { UInt16(b[o]) | UInt16(b[o + 1]) << 8 }
func le32(_ b: [UInt8], _ o: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(b[o + $1]) << (8 * $1) } }
func le64(_ b: [UInt8], _ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(b[o + $1]) << (8 * $1) } }
func ascii(_ b: [UInt8], _ o: Int, _ n: Int) -> String { String(decoding: b[o..<o + n], as: UTF8.self) }

/// A test that cannot run as configured (a missing tool under CI, a bad environment value).
struct TestSetupError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}
