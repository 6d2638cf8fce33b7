import Foundation
import XCTest
@testable import VirtioDevices

/// Live migration's disk hand-over (`BlockBackend.handOver`/`takeBack`) for raw and qcow2:
/// the destination can open the image read-write, the source then writes nothing, and a
/// source that takes the image back holds its lock again.
final class DiskHandOverTests: XCTestCase {
    func assertInUse(_ path: String, line: UInt = #line) {
        XCTAssertThrowsError(try DiskImage.open(path: path, readOnly: false), line: line) {
            XCTAssertEqual($0 as? BlockBackendError, .inUse(path: path), line: line)
        }
    }

    func testRawImageIsHandedOverAndTakenBack() throws {
        let dir = ScratchDirectory()
        let path = dir.file("disk.raw")
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(count: 1 << 20)))
        let source = try DiskImage.open(path: path, readOnly: false)
        XCTAssertEqual(source.format, .raw)
        assertInUse(path)
        try source.handOver()
        try withExtendedLifetime(try DiskImage.open(path: path, readOnly: false)) {
            XCTAssertThrowsError(try source.takeBack(), "the destination holds it")
        }
        try source.takeBack()
        assertInUse(path)
    }

    /// Lazy refcounts: the source's dirty bit is cleared at hand-over (a dirty image would
    /// be refused by the destination), the destination sets its own, and the source's
    /// close afterwards must not clear it.
    func testQcow2ImageIsLeftCleanAndUntouchedAfterHandOver() throws {
        try QemuImg.require()
        let dir = ScratchDirectory()
        let path = dir.file("disk.qcow2")
        try QemuImg.ok("qemu-img", ["create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on,cluster_size=4096", path, "4M"])
        let source = try DiskImage.open(path: path, readOnly: false)
        XCTAssertEqual(source.format, .qcow2)
        let data = [UInt8](repeating: 0xa5, count: 8192)
        try data.withUnsafeBytes { try source.write(from: $0, at: 12288) }  // allocates: metadata cached
        try source.flush()
        assertInUse(path)
        XCTAssertEqual(try dirtyBit(path), 1)

        try source.handOver()
        XCTAssertEqual(try dirtyBit(path), 0)
        XCTAssertEqual(try QemuImg.check(path).status, 0)
        let destination = try DiskImage.open(path: path, readOnly: false)
        XCTAssertEqual(try dirtyBit(path), 1, "the destination's own dirty bit")
        try source.close()
        XCTAssertEqual(try dirtyBit(path), 1, "the source wrote nothing after the hand-over")
        var back = [UInt8](repeating: 0, count: 8192)
        try back.withUnsafeMutableBytes { try destination.read(into: $0, at: 12288) }
        XCTAssertEqual(back, data)
        try destination.close()
    }

    func testQcow2TakeBackRelocksAndMarksDirtyAgain() throws {
        try QemuImg.require()
        let dir = ScratchDirectory()
        let path = dir.file("disk.qcow2")
        try QemuImg.ok("qemu-img", ["create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on", path, "4M"])
        let source = try DiskImage.open(path: path, readOnly: false)
        try source.handOver()
        try source.takeBack()
        assertInUse(path)
        XCTAssertEqual(try dirtyBit(path), 1)
        let data = [UInt8](repeating: 0x3c, count: 4096)
        try data.withUnsafeBytes { try source.write(from: $0, at: 0) }
        try source.close()
        XCTAssertEqual(try dirtyBit(path), 0)
        XCTAssertEqual(try QemuImg.check(path).status, 0)
        XCTAssertEqual(Array(try QemuImg.contents(path).prefix(4096)), data)
    }

    /// Bit 0 of the incompatible features (header byte 79).
    func dirtyBit(_ path: String) throws -> UInt8 {
        let h = try XCTUnwrap(FileHandle(forReadingAtPath: path))
        defer { try? h.close() }
        try h.seek(toOffset: 79)
        return try XCTUnwrap(h.readData(ofLength: 1).first) & 1
    }
}
