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

    func testHeaderCorruption() throws {
        let layout = try GuestRAMLayout(memoryMiB: 32)
        let memory = try makeMemory(layout)
        var rng = SplitMix(state: 42)
        let bz = makeBzImage(payloadSize: 1024)
        let elf = makeELF(pvhEntry: 0x100_0100)
        for _ in 0..<10_000 {
            var a = bz
            for _ in 0..<4 { a[Int.random(in: 0x1F0..<0x270, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            parse(a)
            var b = elf
            for _ in 0..<4 { b[Int.random(in: 0..<0x120, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
            parse(b)
            // Loading what parses must not trap either.
            if let k = try? ELFKernel(bytes: b, path: "fuzz") {
                _ = try? LinuxLoader.load(k, into: memory, layout: layout, commandLine: "x")
            }
        }
    }
}
