import XCTest
@testable import KVMKit

final class AMLTests: XCTestCase {
    func testPackageLengthBoundaries() throws {
        XCTAssertEqual(try AML.pkgLength(forBody: 0), [0x01])
        XCTAssertEqual(try AML.pkgLength(forBody: 62), [0x3F])
        // 63 body bytes + 2 length bytes = 65 = 0x41: lead 0x41 (1 follow byte, low nibble 1), then 0x04.
        XCTAssertEqual(try AML.pkgLength(forBody: 63), [0x41, 0x04])
        XCTAssertEqual(try AML.pkgLength(forBody: 4093), [0x4F, 0xFF])  // 4095
        XCTAssertEqual(try AML.pkgLength(forBody: 4094), [0x81, 0x00, 0x01])  // 4097
        XCTAssertEqual(try AML.pkgLength(forBody: (1 << 20) - 4), [0x80 | 0x0F, 0xFF, 0xFF])  // 2^20-1
        XCTAssertEqual(try AML.pkgLength(forBody: (1 << 20) - 3).count, 4)
        XCTAssertThrowsError(try AML.pkgLength(forBody: 1 << 28))
        for n in [0, 1, 62, 63, 64, 100, 4000, 4093, 4094, 70000, 1_048_572, 1_048_573] {
            let enc = try AML.pkgLength(forBody: n)
            var decoded = Int(enc[0] & (enc.count == 1 ? 0x3F : 0x0F))
            for i in 1..<enc.count { decoded |= Int(enc[i]) << (4 + 8 * (i - 1)) }
            XCTAssertEqual(decoded, n + enc.count, "body \(n)")
            XCTAssertEqual(Int(enc[0] >> 6), enc.count - 1)
        }
    }

    func testNameStrings() throws {
        XCTAssertEqual(try AML.nameString("_SB"), Array("_SB_".utf8))
        XCTAssertEqual(try AML.nameString("\\_SB"), [0x5C] + Array("_SB_".utf8))
        XCTAssertEqual(try AML.nameString("\\_SB.COM1"), [0x5C, 0x2E] + Array("_SB_COM1".utf8))
        XCTAssertEqual(try AML.nameString("A.B.C"), [0x2F, 3] + Array("A___B___C___".utf8))
        XCTAssertEqual(try AML.nameString("^^VR0"), [0x5E, 0x5E] + Array("VR0_".utf8))
        XCTAssertEqual(try AML.nameString("\\"), [0x5C, 0x00])
        for bad in ["1ABC", "abcd", "FIVE5", "A..B", "A.", "A-B", "\\^A"] {
            XCTAssertThrowsError(try AML.nameString(bad), bad) { XCTAssertEqual($0 as? AMLError, .invalidName(bad)) }
        }
    }

    func testEISAIDCompression() throws {
        XCTAssertEqual(try AML.eisaID("PNP0501"), 0x0105_D041)
        XCTAssertEqual(try AML.eisaID("PNP0A03"), 0x030A_D041)
        XCTAssertEqual(try AML.eisaID("PNP0B00"), 0x000B_D041)
        for bad in ["PNP050", "pnp0501", "PNP05G1", "PN10501", "LNRO0005"] {
            XCTAssertThrowsError(try AML.eisaID(bad), bad)
        }
        XCTAssertEqual(try AMLTerm.name("_HID", .eisaID("PNP0501")).encode(),
                       [0x08, 0x5F, 0x48, 0x49, 0x44, 0x0C, 0x41, 0xD0, 0x05, 0x01])
    }

    func testIntegersAndStrings() throws {
        XCTAssertEqual(AML.integer(0), [0x00])
        XCTAssertEqual(AML.integer(1), [0x01])
        XCTAssertEqual(AML.integer(0x0F), [0x0A, 0x0F])
        XCTAssertEqual(AML.integer(0x3F8), [0x0B, 0xF8, 0x03])
        XCTAssertEqual(AML.integer(0xD000_0000), [0x0C, 0x00, 0x00, 0x00, 0xD0])
        XCTAssertEqual(AML.integer(0x1_0000_0000), [0x0E, 0, 0, 0, 0, 1, 0, 0, 0])
        XCTAssertEqual(try AMLData.string("LNRO0005").encode(), [0x0D] + Array("LNRO0005".utf8) + [0])
        XCTAssertThrowsError(try AMLData.string("a\u{0}b").encode())
        XCTAssertThrowsError(try AMLData.string("é").encode())
    }

    func testPackageMethodAndDevice() throws {
        XCTAssertEqual(try AMLTerm.name("\\_S5", .package([.integer(5), .integer(0)])).encode(),
                       [0x08, 0x5C, 0x5F, 0x53, 0x35, 0x5F, 0x12, 0x05, 0x02, 0x0A, 0x05, 0x00])
        // Method (_STA, 0, NotSerialized) { Return (0x0F) }
        XCTAssertEqual(try AMLTerm.method("_STA", argCount: 0, serialized: false, [.returnValue(.integer(0x0F))]).encode(),
                       [0x14, 0x09, 0x5F, 0x53, 0x54, 0x41, 0x00, 0xA4, 0x0A, 0x0F])
        XCTAssertThrowsError(try AMLTerm.method("M", argCount: 8, serialized: true, []).encode())
        // Device (COM1) { Name (_UID, One) }
        XCTAssertEqual(try AMLTerm.device("COM1", [.name("_UID", .integer(1))]).encode(),
                       [0x5B, 0x82, 0x0B] + Array("COM1".utf8) + [0x08] + Array("_UID".utf8) + [0x01])
        XCTAssertThrowsError(try AMLData.package(Array(repeating: .integer(0), count: 256)).encode())
        // A scope whose body needs a two-byte PkgLength.
        let big = AMLTerm.scope("\\_SB", (0..<20).map { .name("N\($0)", .integer(0x1234)) })
        let bytes = try big.encode()
        XCTAssertEqual(bytes[0], 0x10)
        XCTAssertEqual(Int(bytes[1] & 0x0F) | Int(bytes[2]) << 4, bytes.count - 1)
    }

    func testResourceDescriptors() throws {
        let template = try ResourceDescriptor.template([
            .io(minimum: 0x3F8, maximum: 0x3F8, alignment: 0, length: 8),
            .irqNoFlags(4),
            .memory32Fixed(readWrite: true, base: 0xD000_0000, length: 0x1000),
            .interrupt(edge: true, activeLow: false, shared: false, gsi: 5),
        ])
        XCTAssertEqual(template, [
            0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x00, 0x08,
            0x22, 0x10, 0x00,
            0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xD0, 0x00, 0x10, 0x00, 0x00,
            0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00,
            0x79, 0x00,
        ])
        XCTAssertThrowsError(try ResourceDescriptor.template([.irqNoFlags(16)])) {
            XCTAssertEqual($0 as? AMLError, .invalidISAIRQ(16))
        }
        // ResourceTemplate () {} is Buffer (2) { 0x79, 0x00 }.
        XCTAssertEqual(try AMLData.resourceTemplate([]).encode(), [0x11, 0x05, 0x0A, 0x02, 0x79, 0x00])
    }
}
