// libFuzzer target: the kernel file parsers (bzImage setup header, ELF program headers and
// notes) and the loader that places kernel, initrd and command line in guest memory.
// Input: 16 control bytes, then the kernel file.
//   0: bits 0-1 guest RAM (2, 16, 64, 256 MiB); bit 2 ELF entry PVH; bit 3 initrd present
//   1-3: initrd size (20 bits, bytes; its contents are a pattern)
//   4-11: a size for initrd placement with huge layouts (pure arithmetic, no memory)
//   12-15: an initrd_addr_max for that placement
// Invariants after a successful load: kernel, initrd and command line lie in RAM and do
// not overlap one another or the boot structures below 1 MiB. Seeds: the probe kernel
// (bzImage and ELF) and a stock Linux bzImage's setup sectors.
// libfuzzer: -max_len=131072
import Glibc
@testable import KVMKit

func le<T: FixedWidthInteger>(_ p: UnsafePointer<UInt8>, _ at: Int, _: T.Type) -> T {
    var v: T = 0
    for i in 0..<MemoryLayout<T>.size { v |= T(p[at + i]) << (8 * i) }
    return v
}

let hugeLayouts = [3072, 4096, 65536].map { try! GuestRAMLayout(memoryMiB: $0) }
// One guest RAM per size, mapped once (only touched pages cost); stale bytes from
// earlier inputs do not matter to the loader's checks.
let rams = [2, 16, 64, 256].map { mib -> (GuestRAMLayout, GuestMemory) in
    let layout = try! GuestRAMLayout(memoryMiB: UInt64(mib))
    return (layout, try! GuestMemory(layout: layout.regions))
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 16 else { return 0 }
    let control = data[0]
    let initrdSize = Int(data[1]) | Int(data[2]) << 8 | Int(data[3] & 0xf) << 16
    let placementSize = le(data, 4, UInt64.self)
    let placementMax = le(data, 12, UInt32.self)

    // Placement arithmetic against layouts too big to allocate: a result must fit.
    for layout in hugeLayouts {
        for kernelEnd in [UInt64(0x100_0000), UInt64(placementMax), layout.lowRAMEnd] {
            if let at = try? LinuxLoader.placeInitrd(size: placementSize, maxAddress: UInt64(placementMax), kernelEnd: kernelEnd,
                                                       layout: layout, allowHigh: control & 0x10 != 0, path: "initrd") {
                let (end, wraps) = at.addingReportingOverflow(placementSize)
                if wraps { fatalError("initrd of \(placementSize) at \(at) wraps") }
                let inLow = at >= kernelEnd && end <= layout.lowRAMEnd
                let inHigh = layout.highRAM.map { at >= $0.guestAddress && end <= $0.guestAddress + $0.size } ?? false
                if !(inLow || inHigh) { fatalError("initrd of \(placementSize) placed at \(at) outside RAM") }
            }
        }
    }

    let bytes = Array(UnsafeBufferPointer(start: data + 16, count: size - 16))
    guard let kernel = try? LinuxKernel(bytes: bytes, path: "kernel") else { return 0 }
    let (layout, memory) = rams[Int(control & 3)]
    let initrd: InitrdSource? = control & 8 != 0 ? .bytes([UInt8](repeating: 0x1d, count: initrdSize), path: "initrd") : nil
    guard let loaded = try? LinuxLoader.load(kernel, into: memory, layout: layout, commandLine: "console=ttyS0",
                                             initrd: initrd, elfEntry: control & 4 != 0 ? .pvh : nil, acpiRSDP: 0xE0000)
    else { return 0 }

    func check(_ what: String, _ start: UInt64, _ length: UInt64) {
        if !memory.isValid(address: start, length: length) { fatalError("\(what) [\(start), +\(length)) is not in RAM") }
    }
    let kernelLength = loaded.kernelEnd - loaded.kernelStart
    check("kernel", loaded.kernelStart, kernelLength)
    if loaded.kernelStart < LinuxLoader.kernelAddress { fatalError("kernel at \(loaded.kernelStart), over the boot structures") }
    if let (at, n) = loaded.initrd {
        check("initrd", at, n)
        if at < loaded.kernelEnd && loaded.kernelStart < at + n { fatalError("initrd overlaps the kernel") }
        if at < LinuxLoader.kernelAddress { fatalError("initrd at \(at), over the boot structures") }
    }
    check("command line", loaded.commandLineAddress, UInt64(loaded.commandLineLength + 1))
    return 0
}
