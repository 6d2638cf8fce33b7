import Foundation
import XCTest
@testable import KVMKit

final class LinuxLoaderTests: XCTestCase {
    let layout64 = try! GuestRAMLayout(memoryMiB: 64)

    func testLoadsBzImageAndBuildsZeroPage() throws {
        let file = makeBzImage(payloadSize: 8192)
        let image = try BzImage(bytes: file, path: "k")
        let memory = try makeMemory(layout64)
        let initrd = [UInt8](repeating: 0x5A, count: 10_000)
        let loaded = try LinuxLoader.load(image, into: memory, layout: layout64, commandLine: "console=ttyS0",
                                          initrd: .bytes(initrd, path: "initrd"), acpiRSDP: 0xE0000)
        // pref_address 16 MiB is valid and fits: the payload goes there.
        XCTAssertEqual(loaded.kernelStart, 0x100_0000)
        XCTAssertEqual(loaded.kernelEnd, 0x100_0000 + 0x40_0000)
        XCTAssertTrue(try memory.readBytes(at: 0x100_0000, count: 8192) == protectedModeKernel(ofFile: file),
                      "kernel bytes in RAM differ from the file's protected-mode kernel")
        XCTAssertEqual(loaded.entry.rip, 0x100_0200)
        XCTAssertEqual(loaded.entry.rsi, 0x7000)

        // Setup header copied at 0x1F1.
        let bp: UInt64 = 0x7000
        XCTAssertEqual(try memory.load(UInt32.self, at: bp + 0x202), 0x5372_6448)
        XCTAssertEqual(try memory.load(UInt16.self, at: bp + 0x206), 0x020F)
        XCTAssertEqual(try memory.load(UInt16.self, at: bp + 0x1FE), 0xAA55)
        XCTAssertEqual(try memory.load(UInt8.self, at: bp + 0x1F1), 4)
        XCTAssertEqual(try memory.load(UInt32.self, at: bp + 0x238), 2047)
        XCTAssertEqual(try memory.load(UInt8.self, at: bp + 0x210), 0xFF)  // type_of_loader
        XCTAssertEqual(try memory.load(UInt8.self, at: bp + 0x211) & 0x81, 0x81)  // LOADED_HIGH | CAN_USE_HEAP
        XCTAssertEqual(try memory.load(UInt32.self, at: bp + 0x214), 0x100_0000)  // code32_start
        // Command line.
        XCTAssertEqual(try memory.load(UInt32.self, at: bp + 0x228), 0x20000)
        XCTAssertEqual(try memory.load(UInt32.self, at: bp + 0xC8), 0)
        XCTAssertEqual(try memory.readBytes(at: 0x20000, count: 14), Array("console=ttyS0\0".utf8))
        // Initrd: page aligned, as high as possible in 64 MiB.
        let ramdisk = UInt64(try memory.load(UInt32.self, at: bp + 0x218))
        XCTAssertEqual(try memory.load(UInt32.self, at: bp + 0x21C), 10_000)
        XCTAssertEqual(ramdisk % 4096, 0)
        XCTAssertEqual(ramdisk, (64 << 20) - 12288)
        XCTAssertEqual(loaded.initrd?.address, ramdisk)
        XCTAssertEqual(try memory.readBytes(at: ramdisk, count: 10_000), initrd)
        // e820.
        XCTAssertEqual(try memory.load(UInt8.self, at: bp + 0x1E8), 4)
        let e = bp + 0x2D0
        XCTAssertEqual(try memory.load(UInt64.self, at: e), 0)
        XCTAssertEqual(try memory.load(UInt64.self, at: e + 8), 0x9FC00)
        XCTAssertEqual(try memory.load(UInt32.self, at: e + 16), 1)
        XCTAssertEqual(try memory.load(UInt64.self, at: e + 20), 0x9FC00)
        XCTAssertEqual(try memory.load(UInt32.self, at: e + 36), 2)
        XCTAssertEqual(try memory.load(UInt64.self, at: e + 60), 0x100000)
        XCTAssertEqual(try memory.load(UInt64.self, at: e + 68), (64 << 20) - 0x100000)
        XCTAssertEqual(try memory.load(UInt64.self, at: bp + 0x70), 0xE0000)
        // Page tables and GDT written.
        XCTAssertEqual(try BootPageTables.translate(0x100_0200, in: memory), 0x100_0200)
        XCTAssertEqual(try memory.load(UInt64.self, at: 0x510), BootGDT.descriptor(.code64))
    }

    func testPrefAddressZeroLoadsAtOneMiB() throws {
        let image = try BzImage(bytes: makeBzImage(prefAddress: 0), path: "k")
        let memory = try makeMemory(layout64)
        let loaded = try LinuxLoader.load(image, into: memory, layout: layout64, commandLine: "")
        XCTAssertEqual(loaded.kernelStart, 0x100000)
        XCTAssertEqual(loaded.entry.rip, 0x100200)
        // Decompression buffer starts at the next 2 MiB boundary.
        XCTAssertEqual(loaded.kernelEnd, 0x20_0000 + 0x40_0000)
        XCTAssertNil(loaded.initrd)
        XCTAssertEqual(try memory.load(UInt32.self, at: 0x7000 + 0x218), 0)
    }

    func testCommandLineTooLong() throws {
        let image = try BzImage(bytes: makeBzImage(cmdlineSize: 255), path: "vmlinuz")
        let memory = try makeMemory(layout64)
        assertBootError(try LinuxLoader.load(image, into: memory, layout: layout64, commandLine: String(repeating: "a", count: 300)),
                        .commandLineTooLong(length: 300, allowed: 255), message: "vmlinuz: command line is 300 bytes, kernel allows 255")
        // Exactly cmdline_size is fine (the limit excludes the NUL).
        XCTAssertNoThrow(try LinuxLoader.load(image, into: memory, layout: layout64, commandLine: String(repeating: "a", count: 255)))
        assertBootError(try LinuxLoader.load(image, into: memory, layout: layout64, commandLine: "a\0b"), .commandLineHasNUL)
    }

    func testInitrdTooBig() throws {
        let image = try BzImage(bytes: makeBzImage(), path: "k")
        let memory = try makeMemory(layout64)
        let big = [UInt8](repeating: 1, count: 60 << 20)
        XCTAssertThrowsError(try LinuxLoader.load(image, into: memory, layout: layout64, commandLine: "",
                                                  initrd: .bytes(big, path: "big.cpio"))) { e in
            XCTAssertEqual((e as? BootError)?.path, "big.cpio")
            XCTAssertTrue("\(e)".hasPrefix("big.cpio: initrd does not fit"), "\(e)")
        }
        // Nothing was written: the kernel area is still zero.
        XCTAssertEqual(try memory.load(UInt64.self, at: 0x100_0000), 0)
    }

    func testInitrdRespectsInitrdAddrMax() throws {
        let image = try BzImage(bytes: makeBzImage(initrdAddrMax: 0x01FF_FFFF), path: "k")
        let memory = try makeMemory(layout64)
        let loaded = try LinuxLoader.load(image, into: memory, layout: layout64, commandLine: "",
                                          initrd: .bytes([UInt8](repeating: 1, count: 5000), path: "i"))
        XCTAssertEqual(loaded.initrd?.address, 0x200_0000 - 8192)
    }

    func testInitrdGoesAbove4GWhenAllowedAndLowIsFull() throws {
        let layout = try GuestRAMLayout(memoryMiB: 3072 + 256)
        let memory = try makeMemory(layout)
        let image = try BzImage(bytes: makeBzImage(initrdAddrMax: 0x01FF_FFFF), path: "k")
        // 24 MiB does not fit between the kernel's end (20 MiB) and 32 MiB.
        let size = 24 << 20
        let loaded = try LinuxLoader.load(image, into: memory, layout: layout, commandLine: "",
                                          initrd: .bytes([UInt8](repeating: 1, count: size), path: "i"))
        XCTAssertEqual(loaded.initrd?.address, 0x1_0000_0000 + (256 << 20) - UInt64(size))
        XCTAssertEqual(try memory.load(UInt32.self, at: 0x7000 + 0xC0), 1)  // ext_ramdisk_image
        XCTAssertEqual(try memory.load(UInt32.self, at: 0x7000 + 0x218), UInt32((256 << 20) - size))
    }

    func testInitrdFromFileDescriptorAndPath() throws {
        let path = NSTemporaryDirectory() + "swiftvmm-initrd-\(getpid())"
        let content = (0..<20_000).map { UInt8(truncatingIfNeeded: $0 * 13) }
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(content)))
        defer { unlink(path) }
        let image = try BzImage(bytes: makeBzImage(), path: "k")

        let memory = try makeMemory(layout64)
        let loaded = try LinuxLoader.load(image, into: memory, layout: layout64, commandLine: "", initrd: .path(path))
        XCTAssertEqual(try memory.readBytes(at: loaded.initrd!.address, count: content.count), content)

        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        let memory2 = try makeMemory(layout64)
        let loaded2 = try LinuxLoader.load(image, into: memory2, layout: layout64, commandLine: "",
                                           initrd: .file(descriptor: fd, size: UInt64(content.count), path: path))
        XCTAssertEqual(try memory2.readBytes(at: loaded2.initrd!.address, count: content.count), content)

        // A file shorter than the size given is a short read naming the file.
        assertBootError(try LinuxLoader.load(image, into: memory2, layout: layout64, commandLine: "",
                                             initrd: .file(descriptor: fd, size: 30_000, path: path)),
                        .shortRead(expected: 30_000, got: 20_000), path: path)
        assertBootError(try LinuxLoader.load(image, into: memory2, layout: layout64, commandLine: "",
                                             initrd: .path("/nonexistent/initrd")), .cannotRead(errno: ENOENT), path: "/nonexistent/initrd")
    }

    func testMemoryTooSmall() throws {
        // init_size 40 MiB from 16 MiB needs 56 MiB; give it 32.
        let image = try BzImage(bytes: makeBzImage(initSize: 40 << 20), path: "vmlinuz")
        let layout = try GuestRAMLayout(memoryMiB: 32)
        let memory = try makeMemory(layout)
        assertBootError(try LinuxLoader.load(image, into: memory, layout: layout, commandLine: ""),
                        .memoryTooSmall(needed: 56 << 20, available: 32 << 20),
                        message: "vmlinuz: memory too small for the kernel: needs 56 MiB of low RAM, have 32 MiB")
    }

    // MARK: ELF

    func testLoadsELFWith64BitEntry() throws {
        let kernel = try ELFKernel(bytes: makeELF(), path: "vmlinux")
        XCTAssertNil(kernel.pvhEntry)
        XCTAssertEqual(kernel.entry, 0x100_0010)
        XCTAssertTrue(kernel.entry64Usable)
        let memory = try makeMemory(layout64)
        try memory.store(UInt64.max, at: 0x100_2800)  // in the bss: must be zeroed
        let loaded = try LinuxLoader.load(kernel, into: memory, layout: layout64, commandLine: "console=ttyS0",
                                          initrd: .bytes([1, 2, 3], path: "i"))
        XCTAssertEqual(loaded.entryKind, .linux64)
        XCTAssertEqual(loaded.entry.rip, 0x100_0010)
        XCTAssertEqual(loaded.entry.rsi, 0x7000)
        XCTAssertEqual(loaded.entry.cs.selector, 0x10)
        XCTAssertEqual(try memory.load(UInt8.self, at: 0x100_0001), 0xC1)
        XCTAssertEqual(try memory.load(UInt64.self, at: 0x100_2800), 0)
        // Header fields an ELF kernel has no image for.
        XCTAssertEqual(try memory.load(UInt16.self, at: 0x7000 + 0x1FE), 0xAA55)
        XCTAssertEqual(try memory.load(UInt32.self, at: 0x7000 + 0x202), 0x5372_6448)
        XCTAssertEqual(try memory.load(UInt16.self, at: 0x7000 + 0x206), 0x020F)
        XCTAssertEqual(try memory.load(UInt8.self, at: 0x7000 + 0x210), 0xFF)
        XCTAssertEqual(try memory.load(UInt8.self, at: 0x7000 + 0x211), 1)
        XCTAssertEqual(try memory.load(UInt32.self, at: 0x7000 + 0x230), 0x100_0000)
        XCTAssertEqual(try memory.load(UInt32.self, at: 0x7000 + 0x228), 0x20000)
        XCTAssertEqual(try memory.load(UInt32.self, at: 0x7000 + 0x21C), 3)
        XCTAssertEqual(try memory.load(UInt8.self, at: 0x7000 + 0x1E8), 4)
    }

    func testELFVirtualEntryIsTranslated() throws {
        let kernel = try ELFKernel(bytes: makeELF(entry: 0xFFFF_FFFF_8100_0040), path: "v")
        XCTAssertEqual(kernel.entry, 0x100_0040)
    }

    func testELFWithPVHNote() throws {
        for descSize in [8, 4] {
            let kernel = try ELFKernel(bytes: makeELF(pvhEntry: 0x100_0100, noteDescSize: descSize), path: "vmlinux")
            XCTAssertEqual(kernel.pvhEntry, 0x100_0100)
        }
        let kernel = try ELFKernel(bytes: makeELF(pvhEntry: 0x100_0100), path: "vmlinux")
        let memory = try makeMemory(layout64)
        let loaded = try LinuxLoader.load(kernel, into: memory, layout: layout64, commandLine: "console=hvc0",
                                          initrd: .bytes([9, 9], path: "i"), entry: .pvh, acpiRSDP: 0xE0000)
        XCTAssertEqual(loaded.entryKind, .pvh)
        XCTAssertEqual(loaded.entry.rip, 0x100_0100)
        XCTAssertEqual(loaded.entry.rbx, 0x7000)
        XCTAssertEqual(loaded.entry.cr0 & EntryState.cr0PG, 0)
        XCTAssertEqual(loaded.entry.cs.selector, 0x08)
        XCTAssertFalse(loaded.entry.cs.long)
        XCTAssertTrue(loaded.entry.cs.defaultBig)
        XCTAssertEqual(try memory.load(UInt32.self, at: 0x7000), 0x336E_C578)
        XCTAssertEqual(try memory.load(UInt32.self, at: 0x7004), 1)
        XCTAssertEqual(try memory.load(UInt32.self, at: 0x700C), 1)  // nr_modules
        XCTAssertEqual(try memory.load(UInt64.self, at: 0x7018), 0x20000)  // cmdline
        XCTAssertEqual(try memory.load(UInt64.self, at: 0x7020), 0xE0000)  // rsdp
        XCTAssertEqual(try memory.load(UInt32.self, at: 0x7030), 4)  // memmap entries
        let modlist = try memory.load(UInt64.self, at: 0x7010)
        XCTAssertEqual(try memory.load(UInt64.self, at: modlist), loaded.initrd?.address)
        XCTAssertEqual(try memory.load(UInt64.self, at: modlist + 8), 2)
        let memmap = try memory.load(UInt64.self, at: 0x7028)
        XCTAssertEqual(try memory.load(UInt64.self, at: memmap + 3 * 24), 0x100000)
        XCTAssertEqual(try memory.load(UInt32.self, at: memmap + 3 * 24 + 16), 1)
        XCTAssertEqual(try memory.readBytes(at: 0x20000, count: 13), Array("console=hvc0\0".utf8))
        XCTAssertEqual(try memory.load(UInt64.self, at: 0x508), BootGDT.descriptor(.code32))

        // Default choice stays 64-bit when that works.
        let memory2 = try makeMemory(layout64)
        XCTAssertEqual(try LinuxLoader.load(kernel, into: memory2, layout: layout64, commandLine: "").entryKind, .linux64)
    }

    func testELFErrors() throws {
        assertBootError(try ELFKernel(bytes: Array(makeELF().prefix(0x1800)), path: "cut"), .segmentOutsideFile(index: 0), path: "cut")
        var wrongMachine = makeELF()
        wrongMachine[18] = 3
        XCTAssertThrowsError(try ELFKernel(bytes: wrongMachine, path: "i386")) { e in
            XCTAssertEqual("\(e)", "i386: not a usable x86-64 ELF kernel: machine is not x86-64")
        }
        assertBootError(try ELFKernel(bytes: makeELF(entry: 0x5000), path: "e"), .entryNotInSegment(entry: 0x5000))
        var elf32 = makeELF()
        elf32[4] = 1
        XCTAssertThrowsError(try LinuxKernel(bytes: elf32, path: "k"))
        // A segment beyond RAM, a segment over the boot area, PVH requested without a note.
        let memory = try makeMemory(layout64)
        let high = try ELFKernel(bytes: makeELF(paddr: 0x1_0000_0000, entry: 0x1_0000_0000), path: "hi")
        assertBootError(try LinuxLoader.load(high, into: memory, layout: layout64, commandLine: ""),
                        .segmentOutsideRAM(index: 0, address: 0x1_0000_0000, size: 0x3000))
        let low = try ELFKernel(bytes: makeELF(paddr: 0x8000, entry: 0x8000), path: "lo")
        XCTAssertThrowsError(try LinuxLoader.load(low, into: memory, layout: layout64, commandLine: ""))
        let big = try ELFKernel(bytes: makeELF(paddr: 0x300_0000, entry: 0x300_0000, memSize: 0x200_0000), path: "big")
        assertBootError(try LinuxLoader.load(big, into: memory, layout: layout64, commandLine: ""),
                        .memoryTooSmall(needed: 0x500_0000, available: 0x400_0000))
        let plain = try ELFKernel(bytes: makeELF(), path: "plain")
        XCTAssertThrowsError(try LinuxLoader.load(plain, into: memory, layout: layout64, commandLine: "", entry: .pvh))
    }

    func testDebianVmlinux() throws {
        guard case .elf(let k) = try LinuxKernel(contentsOf: try linuxGuestFile("vmlinux")) else { return XCTFail("not ELF") }
        print("Debian vmlinux: entry \(hex(k.entry)), PVH entry \(k.pvhEntry.map { hex($0) } ?? "none"), \(k.segments.count) segments, \(hex(k.physicalStart))-\(hex(k.physicalEnd))")
        XCTAssertEqual(k.physicalStart, 0x100_0000)
        XCTAssertNotNil(k.pvhEntry)  // CONFIG_PVH=y
        XCTAssertTrue(k.entry64Usable)
        let layout = try GuestRAMLayout(memoryMiB: 256)
        let memory = try makeMemory(layout)
        let loaded = try LinuxLoader.load(k, into: memory, layout: layout, commandLine: "console=ttyS0")
        XCTAssertEqual(loaded.entryKind, .linux64)
        XCTAssertEqual(loaded.entry.rip, k.entry)
    }
}
