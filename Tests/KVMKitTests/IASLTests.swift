import Foundation
import TestSupport
import XCTest
@testable import KVMKit

/// The ACPI tables as Linux would read them, checked by ACPICA's own tools: `iasl -d`
/// must disassemble every table cleanly, and the disassembled DSDT must compile again.
/// Needs `iasl` (Debian: acpica-tools). Without it the tests skip, except under CI=true.
final class IASLTests: XCTestCase {
    private var iasl = ""
    private var workDir: URL!

    override func setUpWithError() throws {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        let found = path.split(separator: ":").map { "\($0)/iasl" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let found else {
            throw missingPrerequisite("iasl not found in PATH (Debian: acpica-tools)")
        }
        iasl = found
        workDir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftvmm-iasl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: workDir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let workDir, ProcessInfo.processInfo.environment["KEEP_IASL_OUTPUT"] == nil {
            try? FileManager.default.removeItem(at: workDir)
        }
    }

    /// Run iasl in the work directory; its combined stdout and stderr.
    private func runIASL(_ arguments: [String]) throws -> ToolRun {
        try ToolRun(iasl, arguments, in: workDir)
    }

    /// Tables `iasl -d` can load, and their file names. iasl 20200925 cannot load a
    /// standalone RSDP ("RSD " is not a valid table signature to its file loader, even for
    /// an RSDP it compiled itself), so the RSDP is checked by compiling it instead.
    private let files = ["XSDT": "xsdt", "FADT": "facp", "MADT": "apic", "DSDT": "dsdt"]

    /// Write each ACPI table to `<sig>.dat`, disassemble it, and return the .dsl texts.
    private func disassembleAll(_ layout: FirmwareLayout) throws -> [String: String] {
        let image = try FirmwareImage(layout: layout)
        var listings: [String: String] = [:]
        for (name, base) in files {
            let blob = try image.blob(name)
            try Data(blob.bytes).write(to: workDir.appendingPathComponent("\(base).dat"))
            let run = try runIASL(["-d", "\(base).dat"])
            let (status, output) = (run.status, run.output)
            XCTAssertEqual(status, 0, "iasl -d \(name) (\(layout.cpuCount) cpus):\n\(output)")
            XCTAssertFalse(output.contains("Error"), "iasl -d \(name):\n\(output)")
            XCTAssertFalse(output.contains("Warning"), "iasl -d \(name):\n\(output)")
            let dsl = try String(contentsOf: workDir.appendingPathComponent("\(base).dsl"), encoding: .utf8)
            // Checksum and structure complaints land in the listing as comments.
            for bad in ["Incorrect checksum", "Invalid", "**** Unknown", "Error"] {
                XCTAssertFalse(dsl.contains(bad), "\(name) listing says \"\(bad)\":\n\(dsl)")
            }
            listings[name] = dsl
        }
        return listings
    }

    /// Whitespace collapsed to single spaces, so multi-line ASL can be matched.
    private func flat(_ s: String) -> String {
        s.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" }).joined(separator: " ")
    }

    func testEveryTableDisassemblesWithoutErrors() throws {
        for cpus in [1, 2, 8] {
            let dsl = try disassembleAll(sampleLayout(cpus: cpus))
            let madt = try XCTUnwrap(dsl["MADT"])
            XCTAssertEqual(madt.components(separatedBy: "Subtable Type : 00 [Processor Local APIC]").count - 1, cpus, madt)
            XCTAssertTrue(madt.contains("Subtable Type : 01 [I/O APIC]"), madt)
            XCTAssertTrue(madt.contains("Subtable Type : 02 [Interrupt Source Override]"), madt)
            XCTAssertTrue(madt.contains("Subtable Type : 04 [Local APIC NMI]"), madt)
        }
    }

    /// The "Name : Value" fields of a data-table listing, in order, with the
    /// "[offset length]" prefixes dropped ("Hardware Reduced (V5)" → "1").
    private func fields(_ listing: String) -> [(name: String, value: String)] {
        listing.split(separator: "\n").compactMap { line in
            var l = Substring(line)
            if l.hasPrefix("["), let close = l.firstIndex(of: "]") { l = l[l.index(after: close)...] }
            guard let colon = l.range(of: " : ") else { return nil }
            return (l[..<colon.lowerBound].trimmingCharacters(in: .whitespaces),
                    l[colon.upperBound...].trimmingCharacters(in: .whitespaces))
        }
    }

    /// The value of the first field called `name` after the field called `after`.
    private func field(_ name: String, after: String? = nil, in f: [(name: String, value: String)]) -> String? {
        var rest = f[...]
        if let after, let i = rest.firstIndex(where: { $0.name == after }) { rest = rest[(i + 1)...] }
        return rest.first { $0.name == name }?.value
    }

    /// The largest machine the layout allows: 254 vCPUs and a virtio device on every free
    /// GSI (5…23 without 8), which pushes the MP configuration table out of its KiB.
    func testLargestMachineDisassembles() throws {
        let gsis = (5...23).filter { $0 != 8 }.map { UInt32($0) }
        let layout = FirmwareLayout(
            cpuCount: FirmwareLayout.maxCPUCount,
            virtioMMIO: gsis.enumerated().map { .init(base: 0xD000_0000 + UInt64($0.offset) * 0x1000, size: 0x1000, gsi: $0.element) },
            serialMMIO: .init(base: 0xD100_0000, size: 8, gsi: nil))
        let dsl = try disassembleAll(layout)
        let madt = try XCTUnwrap(dsl["MADT"])
        XCTAssertEqual(madt.components(separatedBy: "[Processor Local APIC]").count - 1, 254)
        let dsdt = flat(try XCTUnwrap(dsl["DSDT"]))
        XCTAssertEqual(dsdt.components(separatedBy: "\"LNRO0005\"").count - 1, gsis.count)
        XCTAssertTrue(dsdt.contains("Device (VR10)"), dsdt)
        XCTAssertTrue(dsdt.contains("{ 0x00000017, }"), "GSI 23")
        XCTAssertTrue(dsdt.contains("Memory32Fixed (ReadWrite, 0xD1000000, // Address Base 0x00000008, // Address Length ) })"),
                      "polled MMIO UART has no Interrupt:\n\(dsdt)")
    }

    func testFADTAsACPICASeesIt() throws {
        let f = fields(try XCTUnwrap(try disassembleAll(sampleLayout(cpus: 1))["FADT"]))
        XCTAssertEqual(field("Revision", in: f), "06")
        XCTAssertEqual(field("FADT Minor Revision", in: f), "03")
        XCTAssertEqual(field("Hardware Reduced (V5)", in: f), "1")
        XCTAssertEqual(field("Reset Register Supported (V2)", in: f), "1")
        XCTAssertEqual(field("Legacy Devices Supported (V2)", in: f), "1")
        XCTAssertEqual(field("8042 Present on ports 60/64 (V2)", in: f), "0")
        XCTAssertEqual(field("VGA Not Present (V4)", in: f), "1")
        XCTAssertEqual(field("CMOS RTC Not Present (V5)", in: f), "0")
        for (register, address) in [("Sleep Control Register", "0000000000000600"),
                                    ("Sleep Status Register", "0000000000000601"),
                                    ("Reset Register", "0000000000000064")] {
            XCTAssertEqual(field("Space ID", after: register, in: f), "01 [SystemIO]", register)
            XCTAssertEqual(field("Bit Width", after: register, in: f), "08", register)
            XCTAssertEqual(field("Encoded Access Width", after: register, in: f), "01 [Byte Access:8]", register)
            XCTAssertEqual(field("Address", after: register, in: f), address, register)
        }
        XCTAssertEqual(field("Value to cause reset", in: f), "FE")
        let image = try FirmwareImage(layout: sampleLayout(cpus: 1))
        XCTAssertEqual(field("DSDT Address", after: "FADT Minor Revision", in: f).flatMap { UInt64($0, radix: 16) },
                       try image.blob("DSDT").guestAddress, "X_DSDT")
    }

    func testXSDTListsFADTAndMADT() throws {
        let image = try FirmwareImage(layout: sampleLayout(cpus: 2))
        let f = fields(try XCTUnwrap(try disassembleAll(sampleLayout(cpus: 2))["XSDT"]))
        let addresses = f.filter { $0.name.hasPrefix("ACPI Table Address") }.compactMap { UInt64($0.value, radix: 16) }
        XCTAssertEqual(addresses, [try image.blob("FADT").guestAddress, try image.blob("MADT").guestAddress])
    }

    func testDisassembledDSDTDeclaresTheDevicesAndCompilesAgain() throws {
        let dsl = try XCTUnwrap(try disassembleAll(sampleLayout(cpus: 2))["DSDT"])
        let text = flat(dsl)
        XCTAssertEqual(text.components(separatedBy: "Name (_HID, EisaId (\"PNP0501\")").count - 1, 2, "COM1 and the MMIO UART:\n\(dsl)")
        XCTAssertEqual(text.components(separatedBy: "Name (_HID, \"LNRO0005\")").count - 1, 3, dsl)
        XCTAssertTrue(text.contains("IO (Decode16, 0x03F8, // Range Minimum 0x03F8, // Range Maximum 0x00, // Alignment 0x08, // Length )"), dsl)
        XCTAssertTrue(text.contains("IRQNoFlags () {4}"), dsl)
        XCTAssertTrue(text.contains("Device (RTC0) { Name (_HID, EisaId (\"PNP0B00\") /* AT Real-Time Clock */) // _HID: Hardware ID Name (_CRS, ResourceTemplate () // _CRS: Current Resource Settings { IO (Decode16, 0x0070, // Range Minimum 0x0070, // Range Maximum 0x01, // Alignment 0x02, // Length ) }) }"), dsl)
        for (i, gsi) in [5, 6, 7].enumerated() {
            let base = String(format: "0x%08X", 0xD000_0000 + i * 0x1000)
            XCTAssertTrue(text.contains("Memory32Fixed (ReadWrite, \(base), // Address Base 0x00001000, // Address Length ) "
                                        + String(format: "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, ) { 0x%08X, }", gsi)),
                          "\(base) GSI \(gsi):\n\(dsl)")
        }
        XCTAssertTrue(text.contains("Memory32Fixed (ReadWrite, 0xD1000000, // Address Base 0x00001000, // Address Length )"), dsl)
        XCTAssertTrue(text.contains("Name (\\_S5, Package (0x04) // _S5_: S5 System State { 0x05, Zero, Zero, Zero })"), dsl)

        // Compile the listing back to AML: it must build with no errors, and — with iasl's
        // name-path shortening (\_SB → _SB_ at the root) off — to the same AML.
        let run = try runIASL(["-on", "-p", "recompiled", "dsdt.dsl"])
        let (status, output) = (run.status, run.output)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("Compilation successful. 0 Errors"), output)
        let ours = try Data(contentsOf: workDir.appendingPathComponent("dsdt.dat"))
        let theirs = try Data(contentsOf: workDir.appendingPathComponent("recompiled.aml"))
        // Same AML body; the header differs only in compiler id/revision and checksum.
        XCTAssertEqual(ours.dropFirst(36), theirs.dropFirst(36), "iasl encodes the same ASL to the same AML")
    }

    /// iasl cannot disassemble an RSDP, but its data-table compiler can build one: give it
    /// our field values with zero checksums and it must produce our exact bytes.
    func testIASLCompilesTheSameRSDP() throws {
        let image = try FirmwareImage(layout: sampleLayout(cpus: 1))
        let rsdp = try image.blob("RSDP").bytes
        let xsdt = String(try image.blob("XSDT").guestAddress, radix: 16, uppercase: true)
        let source = """
            [0008]                          Signature : "RSD PTR "
            [0001]                           Checksum : 00
            [0006]                             Oem ID : "SWFTVM"
            [0001]                           Revision : 02
            [0004]                       RSDT Address : 00000000
            [0004]                             Length : 00000024
            [0008]                       XSDT Address : \(String(repeating: "0", count: 16 - xsdt.count) + xsdt)
            [0001]                  Extended Checksum : 00
            [0003]                           Reserved : 000000

            """
        try source.write(to: workDir.appendingPathComponent("rsdp.dsl"), atomically: true, encoding: .utf8)
        let run = try runIASL(["-p", "rsdp-iasl", "rsdp.dsl"])
        let (status, output) = (run.status, run.output)
        XCTAssertEqual(status, 0, output)
        let theirs = try Data(contentsOf: workDir.appendingPathComponent("rsdp-iasl.aml"))
        XCTAssertEqual(Array(theirs), rsdp)
    }

    /// ACPICA's interpreter (acpiexec) loads FADT + DSDT + MADT, evaluates the objects Linux
    /// uses and runs its own hardware-reduced S5 sequence against our FADT.
    func testACPICALoadsTheNamespaceAndEntersS5() throws {
        let acpiexec = URL(fileURLWithPath: iasl).deletingLastPathComponent().appendingPathComponent("acpiexec").path
        guard FileManager.default.isExecutableFile(atPath: acpiexec) else {
            throw missingPrerequisite("acpiexec not next to iasl (Debian: acpica-tools)")
        }
        let image = try FirmwareImage(layout: sampleLayout(cpus: 2))
        for (name, base) in files where name != "XSDT" {
            try Data(try image.blob(name).bytes).write(to: workDir.appendingPathComponent("\(base).dat"))
        }
        let r = try ToolRun(acpiexec, ["-b", "evaluate \\_SB.VR02._CRS; evaluate \\_SB.COM1._HID; evaluate \\_SB.KBD0._HID; sleep 5",
                                       "facp.dat", "dsdt.dat", "apic.dat"], in: workDir)
        let out = r.output
        XCTAssertEqual(r.status, 0, out)
        XCTAssertTrue(out.contains("7 Devices"), out)  // COM1, RTC0, KBD0, COM2, VR00–VR02
        XCTAssertTrue(flat(out).contains("0000: 86 09 00 01 00 20 00 D0 00 10 00 00 89 06 00 03"), out)
        XCTAssertTrue(out.contains("[Integer] = 000000000105D041"), out)  // PNP0501
        XCTAssertTrue(out.contains("[Integer] = 000000000303D041"), out)  // PNP0303, the keyboard
        XCTAssertTrue(out.contains("Sleep-A: 05"), out)
        XCTAssertTrue(out.contains("HwExtendedSleep"), "hardware-reduced sleep path:\n\(out)")
        for bad in ["Error", "Warning", "ACPI Exception", "AE_"] {
            XCTAssertFalse(out.contains(bad), "acpiexec says \(bad):\n\(out)")
        }
    }

    func testDataTableListingsCompileAgain() throws {
        _ = try disassembleAll(sampleLayout(cpus: 2))
        for (name, base) in files where name != "DSDT" {
            let run = try runIASL(["-p", "\(base)-recompiled", "\(base).dsl"])
            let (status, output) = (run.status, run.output)
            XCTAssertEqual(status, 0, "\(name):\n\(output)")
            XCTAssertTrue(output.contains("0 Errors"), "\(name):\n\(output)")
            // Same bytes after the header (iasl stamps its own compiler id and checksum).
            let ours = try Data(contentsOf: workDir.appendingPathComponent("\(base).dat"))
            let theirs = try Data(contentsOf: workDir.appendingPathComponent("\(base)-recompiled.aml"))
            XCTAssertEqual(ours.dropFirst(36), theirs.dropFirst(36), name)
        }
    }
}
