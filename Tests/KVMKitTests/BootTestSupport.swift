import Foundation
import TestSupport
import XCTest
@testable import KVMKit

/// Synthetic bzImage: a setup area of `setupSects`+1 sectors and a payload of
/// `payloadSize` bytes (a recognisable pattern), with the given header fields.
func makeBzImage(version: UInt16 = 0x020F, setupSects: UInt8 = 4, payloadSize: Int = 8192,
                 xloadflags: UInt16 = 0x3, cmdlineSize: UInt32 = 2047, initrdAddrMax: UInt32 = 0x7FFF_FFFF,
                 prefAddress: UInt64 = 0x100_0000, initSize: UInt32 = 0x40_0000,
                 alignment: UInt32 = 0x20_0000, relocatable: UInt8 = 1, magic: Bool = true,
                 truncateBy: Int = 0) -> [UInt8] {
    let sects = setupSects == 0 ? 4 : Int(setupSects)
    var b = [UInt8](repeating: 0, count: (sects + 1) * 512 + payloadSize)
    func put<T: FixedWidthInteger>(_ v: T, _ at: Int) {
        for i in 0..<MemoryLayout<T>.size { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
    }
    put(setupSects, 0x1F1)
    put(UInt32(payloadSize / 16), 0x1F4)
    put(UInt16(0xAA55), 0x1FE)
    put(UInt8(0xEB), 0x200)
    put(UInt8(0x6A), 0x201)  // header ends at 0x26C
    if magic { put(UInt32(0x5372_6448), 0x202) }
    put(version, 0x206)
    put(UInt8(0x01), 0x211)  // LOADED_HIGH
    put(initrdAddrMax, 0x22C)
    put(alignment, 0x230)
    put(relocatable, 0x234)
    put(xloadflags, 0x236)
    put(cmdlineSize, 0x238)
    put(prefAddress, 0x258)
    put(initSize, 0x260)
    for i in 0..<payloadSize { b[(sects + 1) * 512 + i] = UInt8(truncatingIfNeeded: i &* 7 &+ 1) }
    return Array(b.dropLast(truncateBy))
}

/// The protected-mode kernel of a bzImage file, found the way the boot protocol document
/// says and without the parser: setup_sects at 0x1F1 (0 means 4), the kernel starts after
/// the boot sector and setup_sects sectors; syssize at 0x1F4 counts it in 16-byte units
/// (a signed distribution kernel has its signature after that).
func protectedModeKernel(ofFile file: [UInt8]) -> [UInt8] {
    let sects = file[0x1F1] == 0 ? 4 : Int(file[0x1F1])
    let syssize = Int(file[0x1F4]) | Int(file[0x1F5]) << 8 | Int(file[0x1F6]) << 16 | Int(file[0x1F7]) << 24
    let start = (sects + 1) * 512
    return Array(file[start..<min(file.count, start + syssize * 16)])
}

/// Minimal ELF64 x86-64 executable: one PT_LOAD at `paddr` (virtual `vaddr`) with
/// `fileSize` bytes from the file and `memSize` in memory, and optionally a PT_NOTE with
/// Xen's PHYS32_ENTRY note.
func makeELF(paddr: UInt64 = 0x100_0000, vaddr: UInt64 = 0xFFFF_FFFF_8100_0000, entry: UInt64 = 0x100_0010,
             fileSize: Int = 0x2000, memSize: Int = 0x3000, pvhEntry: UInt64? = nil, noteDescSize: Int = 8) -> [UInt8] {
    let phnum = pvhEntry == nil ? 1 : 2
    let phoff = 64
    let noteOffset = phoff + phnum * 56
    let noteSize = 12 + 4 + noteDescSize
    let dataOffset = 0x1000
    var b = [UInt8](repeating: 0, count: dataOffset + fileSize)
    func put<T: FixedWidthInteger>(_ v: T, _ at: Int) {
        for i in 0..<MemoryLayout<T>.size { b[at + i] = UInt8(truncatingIfNeeded: v >> (8 * i)) }
    }
    b[0] = 0x7F; b[1] = 0x45; b[2] = 0x4C; b[3] = 0x46; b[4] = 2; b[5] = 1; b[6] = 1
    put(UInt16(2), 16)  // ET_EXEC
    put(UInt16(62), 18)  // EM_X86_64
    put(UInt32(1), 20)
    put(entry, 24)
    put(UInt64(phoff), 32)
    put(UInt16(64), 52)
    put(UInt16(56), 54)
    put(UInt16(phnum), 56)
    // PT_LOAD
    put(UInt32(1), phoff); put(UInt32(7), phoff + 4)
    put(UInt64(dataOffset), phoff + 8); put(vaddr, phoff + 16); put(paddr, phoff + 24)
    put(UInt64(fileSize), phoff + 32); put(UInt64(memSize), phoff + 40); put(UInt64(0x1000), phoff + 48)
    if let pvh = pvhEntry {
        let h = phoff + 56
        put(UInt32(4), h)
        put(UInt64(noteOffset), h + 8)
        put(UInt64(noteSize), h + 32)
        put(UInt32(4), noteOffset); put(UInt32(noteDescSize), noteOffset + 4); put(UInt32(18), noteOffset + 8)
        b[noteOffset + 12] = 0x58; b[noteOffset + 13] = 0x65; b[noteOffset + 14] = 0x6E  // "Xen\0"
        if noteDescSize == 8 { put(pvh, noteOffset + 16) } else { put(UInt32(pvh), noteOffset + 16) }
    }
    for i in 0..<fileSize { b[dataOffset + i] = 0xC0 | UInt8(i & 0x3F) }
    return b
}

/// Guest RAM for a layout, mmapped (lazily backed, so large sizes are cheap).
func makeMemory(_ layout: GuestRAMLayout) throws -> GuestMemory {
    try GuestMemory(layout: layout.regions)
}

/// A file of Debian's kernel fetched by guests/linux/build (`vmlinuz`, `vmlinux`,
/// `initramfs.cpio.gz`) in $SWIFTVMM_LINUX_DIR or guests/out/linux. make test builds them,
/// so under CI=true a missing one is a failure.
func linuxGuestFile(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let dir = ProcessInfo.processInfo.environment["SWIFTVMM_LINUX_DIR"] ?? root.appendingPathComponent("guests/out/linux").path
    let path = dir + "/" + name
    guard FileManager.default.fileExists(atPath: path) else {
        throw missingPrerequisite("no \(path) (run guests/linux/build, or set SWIFTVMM_LINUX_DIR)", file: file, line: line)
    }
    return path
}

func assertBootError(_ expression: @autoclosure () throws -> Any, _ problem: BootError.Problem, path: String? = nil,
                     message: String? = nil, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try expression(), file: file, line: line) { error in
        guard let e = error as? BootError else { return XCTFail("not a BootError: \(error)", file: file, line: line) }
        XCTAssertEqual(e.problem, problem, file: file, line: line)
        if let path { XCTAssertEqual(e.path, path, file: file, line: line) }
        if let message { XCTAssertEqual(e.description, message, file: file, line: line) }
        XCTAssertFalse(e.description.contains("\n"), file: file, line: line)
    }
}
