import XCTest
@testable import KVMKit

final class MPTableTests: XCTestCase {
    /// (type, bytes) for each entry of a configuration table.
    func entries(_ c: [UInt8]) -> [(type: UInt8, bytes: [UInt8])] {
        var out: [(UInt8, [UInt8])] = [], o = 44
        while o < c.count {
            let len = c[o] == 0 ? 20 : 8
            out.append((c[o], Array(c[o..<o + len])))
            o += len
        }
        return out
    }

    func testFloatingPointerAndConfigurationTable() throws {
        for cpus in [1, 2, 8] {
            let image = try FirmwareImage(layout: sampleLayout(cpus: cpus))
            let mpf = try image.blob("MP floating pointer")
            XCTAssertEqual(mpf.guestAddress, 0x9_FC00)
            XCTAssertEqual(image.mpFloatingPointerAddress, 0x9_FC00)
            XCTAssertEqual(ascii(mpf.bytes, 0, 4), "_MP_")
            XCTAssertEqual(mpf.bytes.count, 16)
            XCTAssertEqual(mpf.bytes[8], 1, "length in paragraphs")
            XCTAssertEqual(mpf.bytes[9], 4, "spec 1.4")
            XCTAssertEqual(byteSum(mpf.bytes), 0)
            XCTAssertEqual(mpf.bytes[11], 0, "configuration table present")

            let config = try image.blob("MP configuration table")
            XCTAssertEqual(UInt64(le32(mpf.bytes, 4)), config.guestAddress)
            XCTAssertEqual(config.guestAddress, 0x9_FC10)
            let c = config.bytes
            XCTAssertEqual(ascii(c, 0, 4), "PCMP")
            XCTAssertEqual(Int(le16(c, 4)), c.count)
            XCTAssertEqual(byteSum(c), 0)
            XCTAssertEqual(le32(c, 36), 0xFEE0_0000)
            let e = entries(c)
            XCTAssertEqual(Int(le16(c, 34)), e.count)
            XCTAssertEqual(e.count, cpus + 1 + 1 + 15 + 2)
            XCTAssertEqual(e.map(\.type), e.map(\.type).sorted(), "entries sorted by type")

            let processors = e.filter { $0.type == 0 }
            XCTAssertEqual(processors.map { $0.bytes[1] }, (0..<cpus).map { UInt8($0) })
            XCTAssertEqual(processors.map { $0.bytes[3] }, [0x03] + Array(repeating: 0x01, count: cpus - 1), "EN, BP on cpu 0")
            let bus = try XCTUnwrap(e.first { $0.type == 1 })
            XCTAssertEqual(ascii(bus.bytes, 2, 6), "ISA   ")
            let ioapic = try XCTUnwrap(e.first { $0.type == 2 })
            XCTAssertEqual(ioapic.bytes[1], UInt8(cpus))
            XCTAssertEqual(le32(ioapic.bytes, 4), 0xFEC0_0000)
            let routes = e.filter { $0.type == 3 }.map { (irq: $0.bytes[5], pin: $0.bytes[7], apic: $0.bytes[6]) }
            XCTAssertEqual(routes.first?.irq, 0)
            XCTAssertEqual(routes.first?.pin, 2, "IRQ0 → pin 2")
            XCTAssertEqual(routes.map(\.irq), [0, 1] + (3...15).map { UInt8($0) })
            XCTAssertTrue(routes.dropFirst().allSatisfy { $0.irq == $0.pin })
            XCTAssertTrue(routes.allSatisfy { $0.apic == UInt8(cpus) })
            let locals = e.filter { $0.type == 4 }.map { (kind: $0.bytes[1], lint: $0.bytes[7]) }
            XCTAssertEqual(locals.map(\.kind), [3, 1], "ExtINT, NMI")
            XCTAssertEqual(locals.map(\.lint), [0, 1])
        }
    }

    func testLargeConfigurationTableMovesToTheBIOSArea() throws {
        let image = try FirmwareImage(layout: sampleLayout(cpus: 64))
        let mpf = try image.blob("MP floating pointer")
        let config = try image.blob("MP configuration table")
        XCTAssertEqual(UInt64(le32(mpf.bytes, 4)), config.guestAddress)
        XCTAssertGreaterThanOrEqual(config.guestAddress, 0xE_0000)
        XCTAssertEqual(byteSum(config.bytes), 0)
        XCTAssertEqual(Int(le16(config.bytes, 34)), 64 + 19)
    }
}
