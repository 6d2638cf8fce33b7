import Foundation
import XCTest
@testable import KVMKit

/// Kernel files are user input: every truncation and header corruption must end in a
/// parsed value or a BootError, never a trap.
final class KernelParserRobustnessTests: XCTestCase {
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

    func parse(_ bytes: [UInt8]) {
        do { _ = try LinuxKernel(bytes: bytes, path: "fuzz") } catch is BootError {} catch { XCTFail("\(error)") }
    }

    func testTruncations() {
        for image in [makeBzImage(payloadSize: 1024), makeELF(pvhEntry: 0x100_0100)] {
            for n in stride(from: 0, through: image.count, by: 7) { parse(Array(image.prefix(n))) }
        }
    }

    /// Load a parsed kernel: a loaded kernel or a BootError, nothing else. True if it loaded.
    func load(_ k: LinuxKernel, into memory: GuestMemory, layout: GuestRAMLayout) -> Bool {
        do {
            _ = try LinuxLoader.load(k, into: memory, layout: layout, commandLine: "x",
                                     initrd: .bytes([1, 2, 3], path: "initrd"), acpiRSDP: 0xE0000)
            return true
        } catch is BootError {
            return false
        } catch {
            XCTFail("\(error)")
            return false
        }
    }

    /// A new seed each run (printed, and settable with SWIFTVMM_FUZZ_SEED to replay a failure).
    func testHeaderCorruption() throws {
        let layout = try GuestRAMLayout(memoryMiB: 32)
        let memory = try makeMemory(layout)
        let seed = ProcessInfo.processInfo.environment["SWIFTVMM_FUZZ_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0...UInt64.max)
        print("KernelParserRobustnessTests seed \(seed) (replay: SWIFTVMM_FUZZ_SEED=\(seed))")
        var rng = SplitMix(state: seed)
        let bz = makeBzImage(payloadSize: 1024)
        let elf = makeELF(pvhEntry: 0x100_0100)
        var loaded = (bz: 0, elf: 0)
        for i in 0..<10_000 {
            var a = bz
            for _ in 0..<4 { a[Int.random(in: 0x1F0..<0x270, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            parse(a)
            var b = elf
            for _ in 0..<4 { b[Int.random(in: 0..<0x120, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            parse(b)
            // Loading what parses must not trap either (every 10th: a load writes page tables,
            // boot_params and the images, ~1 ms).
            guard i % 10 == 0 else { continue }
            if let k = try? LinuxKernel(bytes: a, path: "fuzz"), load(k, into: memory, layout: layout) { loaded.bz += 1 }
            if let k = try? LinuxKernel(bytes: b, path: "fuzz"), load(k, into: memory, layout: layout) { loaded.elf += 1 }
        }
        print("KernelParserRobustnessTests: loaded \(loaded.bz) corrupted bzImages and \(loaded.elf) ELFs of 1000 each")
        // Most corruptions miss the fields that matter: the loader really ran on both kinds.
        XCTAssertGreaterThan(loaded.bz, 100, "seed \(seed)")
        XCTAssertGreaterThan(loaded.elf, 100, "seed \(seed)")
    }
}
