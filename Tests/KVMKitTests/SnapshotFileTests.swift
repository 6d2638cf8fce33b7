@testable import KVMKit
import XCTest

/// The state codec and file format: round trips, and refusal of every damaged file.
final class SnapshotFileTests: XCTestCase {
    func sample() -> SnapshotFile {
        var f = SnapshotFile(cpu: CPUFeatures(vendor: "GenuineIntel", words: [.init(name: "1.ecx", bits: 0x1234)]))
        var cmos = CMOS.State(bytes: (0..<128).map { UInt8($0) }, index: 5, nmiDisabled: true, clockOffset: -42)
        f.append("cmos", cmos)
        cmos.index = 9
        f.append("cmos2", cmos)
        return f
    }

    func testCRC32KnownVector() {
        XCTAssertEqual(CRC32.checksum(Array("123456789".utf8)), 0xCBF4_3926)
        XCTAssertEqual(CRC32.checksum([UInt8]()), 0)
    }

    func testRoundTrip() throws {
        let f = sample()
        let back = try SnapshotFile(decoding: f.encoded())
        XCTAssertEqual(back, f)
        XCTAssertEqual(try back.decode(CMOS.State.self, section: "cmos2").index, 9)
        XCTAssertThrowsError(try back.section("nope")) { XCTAssertEqual($0 as? SnapshotFileError, .missingSection("nope")) }
    }

    func testEveryTruncationIsRefused() {
        let bytes = sample().encoded()
        for n in 0..<bytes.count {
            XCTAssertThrowsError(try SnapshotFile(decoding: Array(bytes.prefix(n))), "prefix \(n)") { e in
                XCTAssertTrue(e is SnapshotFileError, "\(e)")
            }
        }
    }

    func testEveryBitFlipIsRefused() {
        let bytes = sample().encoded()
        for i in 0..<bytes.count {
            for bit in [0, 7] {
                var b = bytes
                b[i] ^= UInt8(1 << bit)
                XCTAssertThrowsError(try SnapshotFile(decoding: b), "byte \(i) bit \(bit)")
            }
        }
    }

    func testWrongVersionSaysSo() {
        var b = sample().encoded()
        b[8] = 9
        XCTAssertThrowsError(try SnapshotFile(decoding: b)) { e in
            XCTAssertEqual(e as? SnapshotFileError, .unsupportedVersion(found: 9, supported: SnapshotFile.formatVersion))
            XCTAssertEqual("\(e)", "state file format version 9 is not supported (this swiftvmm reads version 2)")
        }
    }

    func testForeignFileAndTrailingBytes() {
        XCTAssertThrowsError(try SnapshotFile(decoding: Array("ELF garbage that is long enough".utf8))) {
            XCTAssertEqual($0 as? SnapshotFileError, .notAStateFile)
        }
        XCTAssertThrowsError(try SnapshotFile(decoding: sample().encoded() + [0])) {
            guard case .trailingBytes = $0 as? SnapshotFileError else { return XCTFail("\($0)") }
        }
    }

    /// A checksum-valid file whose payload lies about a length must still be refused.
    func testValidChecksumOverLyingPayload() {
        var payload = StateWriter()
        payload.write(CPUFeatures(vendor: "X", words: []))
        payload.write(UInt32(1))  // one section …
        payload.write("cmos")
        payload.write(UInt64(1 << 40))  // … claiming a terabyte
        var header = StateWriter()
        header.write(SnapshotFile.formatVersion)
        header.write(UInt64(payload.bytes.count))
        header.write(CRC32.checksum(payload.bytes))
        let file = SnapshotFile.magic + header.bytes + payload.bytes
        XCTAssertThrowsError(try SnapshotFile(decoding: file)) {
            guard case .malformed(.truncated) = $0 as? SnapshotFileError else { return XCTFail("\($0)") }
        }
    }

    func testHostCompatibility() {
        let host = CPUFeatures(vendor: "AuthenticAMD", words: [.init(name: "7.ebx", bits: 0b1011)])
        XCTAssertNil(host.cannotRun(CPUFeatures(vendor: "AuthenticAMD", words: [.init(name: "7.ebx", bits: 0b0011)])))
        XCTAssertEqual(host.cannotRun(CPUFeatures(vendor: "AuthenticAMD", words: [.init(name: "7.ebx", bits: 0b0111)])),
                       "this host lacks CPUID 7.ebx feature bits 0x4 the state needs")
        XCTAssertEqual(host.cannotRun(CPUFeatures(vendor: "GenuineIntel", words: [])),
                       "state is from a GenuineIntel CPU, this host is AuthenticAMD")
    }

    func testFeaturesFromCPUIDIgnoreBitsSwiftvmmSets() {
        let vendor = CPUIDEntry(function: 0, eax: 0xD, ebx: 0x756E_6547, ecx: 0x6C65_746E, edx: 0x4965_6E69)
        let f = CPUFeatures(cpuid: [vendor, CPUIDEntry(function: 1, ecx: 0x8000_0001, edx: 0x1000_0002)])
        XCTAssertEqual(f.vendor, "GenuineIntel")
        XCTAssertEqual(f.words.first { $0.name == "1.ecx" }?.bits, 1)
        XCTAssertEqual(f.words.first { $0.name == "1.edx" }?.bits, 2)
    }
}
