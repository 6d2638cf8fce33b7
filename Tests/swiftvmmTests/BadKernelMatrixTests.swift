import Foundation
import XCTest

/// Kernel files are user input. Prefixes of real kernels, random files and headers with
/// each field set to extreme values either boot or are refused before anything starts:
/// exit 2 with one line naming the file — never a signal, never a guest left to crash.
final class BadKernelMatrixTests: XCTestCase {
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    enum Outcome: Equatable { case refused, booted }

    /// Run `bytes` as the kernel; fail unless it boots the probe to the end or is refused
    /// with exit 2 and exactly one line.
    @discardableResult
    func run(_ bytes: [UInt8], _ what: String, mayBoot: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws -> Outcome {
        let path = try temporaryFile("kernel", bytes: bytes)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let r = try runProcess(swiftvmmExecutable(), ["run", "--kernel", path, "--memory", "64",
                                                      "--cmdline", "console=ttyS0 probe.run=none"], timeout: 30)
        if r.status == 2 {
            let lines = r.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "\(what): \(r.stderr)", file: file, line: line)
            XCTAssertTrue(r.stderr.hasPrefix("swiftvmm: \(path): "), "\(what): \(r.stderr)", file: file, line: line)
            XCTAssertEqual(r.stdout, "", "\(what): nothing started", file: file, line: line)
            return .refused
        }
        XCTAssertTrue(mayBoot, "\(what): expected exit 2, got \(r.status): \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.status, 0, "\(what): \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stdout.contains("PROBE DONE pass=0 fail=0"), "\(what): \(r.stdout)", file: file, line: line)
        return .booted
    }

    func kernelBytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: URL(fileURLWithPath: repositoryRoot().appendingPathComponent("guests/out/\(name)").path)))
    }

    func testPrefixesOfRealKernels() throws {
        try requireKVMDevice()
        _ = try probeKernel()
        for name in ["probe.bzImage", "probe.elf"] {
            let image = try kernelBytes(name)
            // Every header byte boundary early on, then every 1/40 of the file; a prefix
            // that ends in the bzImage's last (rounded) paragraph is still the whole kernel.
            var offsets = Array(stride(from: 0, to: 0x300, by: 0x21)) + Array(stride(from: 0x300, to: image.count - 16, by: image.count / 40))
            offsets.append(image.count - 16)
            // An ELF file goes on after its loadable segments (sections, symbols): a prefix
            // that holds every PT_LOAD is the whole kernel and boots.
            let loadEnd = name.hasSuffix(".elf") ? elfLoadEnd(image) : image.count
            for n in offsets { try run(Array(image.prefix(n)), "\(name) cut at \(n)", mayBoot: n >= loadEnd) }
        }
        // A stock Linux bzImage, if built: its setup header is the real thing.
        let linux = repositoryRoot().appendingPathComponent("guests/out/linux/vmlinuz").path
        if let data = FileManager.default.contents(atPath: linux) {
            let image = [UInt8](data)
            for n in [0x1f1, 0x202, 0x268, 0x400, 0x4000, 0x8000, image.count / 2, image.count - 4096] {
                try run(Array(image.prefix(n)), "vmlinuz cut at \(n)")
            }
        } else {
            print("SKIPPED: Linux vmlinuz prefixes (guests/out/linux/vmlinuz not built)")
        }
    }

    /// End of the last PT_LOAD's bytes in an ELF64 file.
    func elfLoadEnd(_ image: [UInt8]) -> Int {
        func u(_ at: Int, _ n: Int) -> Int { (0..<n).reduce(0) { $0 | Int(image[at + $1]) << (8 * $1) } }
        let (phoff, phentsize, phnum) = (u(32, 8), u(54, 2), u(56, 2))
        return (0..<phnum).map { phoff + $0 * phentsize }.filter { u($0, 4) == 1 }.map { u($0 + 8, 8) + u($0 + 32, 8) }.max() ?? 0
    }

    func testRandomFiles() throws {
        try requireKVMDevice()
        var rng = SplitMix(state: 13)
        for i in 0..<24 {
            let size = [0, 1, 0x201, 0x206, 0x270, 4096, 65536][i % 7] + Int(rng.next() % 64)
            var bytes = (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if i % 3 == 1, bytes.count >= 0x206 { bytes.replaceSubrange(0x202..<0x206, with: Array("HdrS".utf8)) }
            if i % 3 == 2, bytes.count >= 4 { bytes.replaceSubrange(0..<4, with: [0x7f, 0x45, 0x4c, 0x46]) }
            try run(bytes, "random file \(i) (\(bytes.count) bytes)")
        }
    }

    /// bzImage setup header fields (offset, width) at 0, all ones, the top bit alone, and
    /// values just past what the file or RAM holds.
    func testBzImageHeaderFieldsAtExtremes() throws {
        try requireKVMDevice()
        let image = try kernelBytes("probe.bzImage")
        let fields: [(String, Int, Int)] = [
            ("setup_sects", 0x1f1, 1), ("syssize", 0x1f4, 4), ("jump", 0x200, 2), ("version", 0x206, 2),
            ("type_of_loader", 0x210, 1), ("loadflags", 0x211, 1), ("code32_start", 0x214, 4),
            ("ramdisk_image", 0x218, 4), ("ramdisk_size", 0x21c, 4), ("heap_end_ptr", 0x224, 2),
            ("cmd_line_ptr", 0x228, 4), ("initrd_addr_max", 0x22c, 4), ("kernel_alignment", 0x230, 4),
            ("relocatable_kernel", 0x234, 1), ("min_alignment", 0x235, 1), ("xloadflags", 0x236, 2),
            ("cmdline_size", 0x238, 4), ("payload_offset", 0x248, 4), ("payload_length", 0x24c, 4),
            ("pref_address", 0x258, 8), ("init_size", 0x260, 4),
        ]
        var refused = 0
        for (name, offset, width) in fields {
            let ones = width == 8 ? UInt64.max : (UInt64(1) << (8 * UInt64(width))) - 1
            for value in [0, ones, UInt64(1) << (8 * UInt64(width) - 1), UInt64(image.count), 0x3FFF_FFFF & ones] {
                var bytes = image
                for b in 0..<width { bytes[offset + b] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(b))) }
                // Fields the loader overwrites or does not use may boot; the probe then runs to its end.
                if try run(bytes, "\(name) = \(String(value, radix: 16))", mayBoot: true) == .refused { refused += 1 }
            }
        }
        XCTAssertGreaterThan(refused, 20, "the fields that matter are checked")
    }

    /// ELF header and program header fields at extremes.
    func testELFHeaderFieldsAtExtremes() throws {
        try requireKVMDevice()
        let image = try kernelBytes("probe.elf")
        let phoff = Int(image[32]) | Int(image[33]) << 8
        let fields: [(String, Int, Int)] = [
            ("e_entry", 24, 8), ("e_phoff", 32, 8), ("e_phentsize", 54, 2), ("e_phnum", 56, 2),
            ("p_type", phoff, 4), ("p_offset", phoff + 8, 8), ("p_vaddr", phoff + 16, 8), ("p_paddr", phoff + 24, 8),
            ("p_filesz", phoff + 32, 8), ("p_memsz", phoff + 40, 8),
        ]
        for (name, offset, width) in fields {
            let ones = width == 8 ? UInt64.max : (UInt64(1) << (8 * UInt64(width))) - 1
            // p_offset 0 or p_filesz 0 are well-formed and load other bytes: a wrong kernel,
            // not a malformed one (the guest would run whatever it got).
            let zero: [UInt64] = name == "p_offset" || name == "p_filesz" ? [] : [0]
            for value in zero + [ones, UInt64(1) << (8 * UInt64(width) - 1), UInt64(image.count), 0xFFFF_F000 & ones] {
                var bytes = image
                for b in 0..<width { bytes[offset + b] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(b))) }
                try run(bytes, "\(name) = \(String(value, radix: 16))", mayBoot: true)
            }
        }
    }
}
