import XCTest
@testable import KVMKit

final class BzImageTests: XCTestCase {
    func testParsesHeaderFields() throws {
        let k = try BzImage(bytes: makeBzImage(setupSects: 27, payloadSize: 4096), path: "k")
        XCTAssertEqual(k.version, 0x020F)
        XCTAssertEqual(k.setupSectors, 27)
        XCTAssertEqual(k.payloadOffset, 28 * 512)
        XCTAssertEqual(k.payloadSize, 4096)
        XCTAssertEqual(k.payload.first, 1)
        XCTAssertEqual(k.kernelAlignment, 0x20_0000)
        XCTAssertTrue(k.relocatable)
        XCTAssertEqual(k.cmdlineSize, 2047)
        XCTAssertEqual(k.initrdAddrMax, 0x7FFF_FFFF)
        XCTAssertEqual(k.prefAddress, 0x100_0000)
        XCTAssertEqual(k.initSize, 0x40_0000)
        XCTAssertEqual(k.loadflags & 1, 1)
        XCTAssertTrue(k.canBeLoadedAbove4G)
        XCTAssertEqual(k.headerEnd, 0x26C)
        XCTAssertEqual(k.setupHeader.count, 0x26C - 0x1F1)
    }

    func testSetupSectsZeroMeansFour() throws {
        let k = try BzImage(bytes: makeBzImage(setupSects: 0), path: "k")
        XCTAssertEqual(k.setupSectors, 4)
        XCTAssertEqual(k.payloadOffset, 5 * 512)
    }

    func testMissingMagic() {
        assertBootError(try BzImage(bytes: makeBzImage(magic: false), path: "/tmp/x"), .notAKernel,
                        message: "/tmp/x: not a Linux kernel (no HdrS magic)")
        assertBootError(try BzImage(bytes: [1, 2, 3], path: "tiny"), .notAKernel)
        assertBootError(try LinuxKernel(bytes: [], path: "empty"), .notAKernel, path: "empty")
    }

    func testTruncatedSetup() {
        // 10 setup sectors claimed, file ends inside them.
        let b = Array(makeBzImage(setupSects: 10, payloadSize: 16).prefix(3000))
        assertBootError(try BzImage(bytes: b, path: "k"),
                        .truncatedBzImage(fileSize: 3000, needed: 11 * 512, what: "the setup code (10+1 sectors)"))
    }

    func testTruncatedPayload() throws {
        let b = makeBzImage(setupSects: 4, payloadSize: 8192, truncateBy: 100)
        XCTAssertThrowsError(try BzImage(bytes: b, path: "vmlinuz")) { e in
            let d = "\(e)"
            XCTAssertTrue(d.hasPrefix("vmlinuz: truncated bzImage: file is \(b.count) bytes"), d)
            XCTAssertTrue(d.contains("\(5 * 512 + 8192)"), d)
        }
    }

    func testOldProtocol() {
        assertBootError(try BzImage(bytes: makeBzImage(version: 0x0204), path: "old"), .protocolTooOld(version: 0x0204),
                        message: "old: boot protocol 2.04 is older than 2.06")
    }

    func testNo64BitEntry() {
        assertBootError(try BzImage(bytes: makeBzImage(xloadflags: 0x2), path: "k32"), .no64BitEntry,
                        message: "k32: kernel has no 64-bit entry (XLF_KERNEL_64 not set)")
        // Protocol 2.11 has no xloadflags at all: no way to know of a 64-bit entry.
        assertBootError(try BzImage(bytes: makeBzImage(version: 0x020B), path: "k"), .no64BitEntry)
    }

    func testBadAlignment() {
        XCTAssertThrowsError(try BzImage(bytes: makeBzImage(alignment: 0x30_0000), path: "k"))
    }

    func testKernelFileErrors() {
        assertBootError(try LinuxKernel(contentsOf: "/nonexistent/vmlinuz"), .cannotRead(errno: ENOENT),
                        message: "/nonexistent/vmlinuz: cannot read: No such file or directory")
        assertBootError(try LinuxKernel(contentsOf: "/tmp"), .cannotRead(errno: EISDIR))
    }

    func testDebianKernel() throws {
        let vmlinuz = try linuxGuestFile("vmlinuz"), initramfs = try linuxGuestFile("initramfs.cpio.gz")
        guard case .bzImage(let k) = try LinuxKernel(contentsOf: vmlinuz) else { return XCTFail("not a bzImage") }
        XCTAssertGreaterThanOrEqual(k.version, 0x020C)
        XCTAssertNotEqual(k.xloadflags & BzImage.xlfKernel64, 0)
        XCTAssertTrue(k.relocatable)
        XCTAssertEqual(k.prefAddress, 0x100_0000)
        XCTAssertGreaterThan(k.initSize, UInt32(k.payloadSize))
        XCTAssertLessThanOrEqual(k.payloadOffset + k.payloadSize, k.bytes.count)
        print("Debian bzImage: protocol \(versionText(k.version)), setup_sects \(k.setupSectors), payload \(k.payloadSize) bytes, init_size \(hex(k.initSize)), cmdline_size \(k.cmdlineSize)")

        let layout = try GuestRAMLayout(memoryMiB: 256)
        let memory = try makeMemory(layout)
        let loaded = try LinuxLoader.load(k, into: memory, layout: layout, commandLine: "console=ttyS0 earlyprintk=ttyS0 nokaslr",
                                          initrd: .path(initramfs))
        XCTAssertEqual(loaded.entry.rip, 0x100_0200)
        // The whole protected-mode kernel, as read from the file without the parser, is in RAM at 16 MiB.
        let expected = protectedModeKernel(ofFile: [UInt8](try Data(contentsOf: URL(fileURLWithPath: vmlinuz))))
        XCTAssertGreaterThan(expected.count, 1 << 20)
        XCTAssertTrue(try memory.readBytes(at: 0x100_0000, count: expected.count) == expected, "kernel bytes in RAM differ from the file")
        let i = try XCTUnwrap(loaded.initrd)
        XCTAssertGreaterThanOrEqual(i.address, loaded.kernelEnd)
        let initrdFile = [UInt8](try Data(contentsOf: URL(fileURLWithPath: initramfs)))
        XCTAssertEqual(i.size, UInt64(initrdFile.count))
        XCTAssertTrue(try memory.readBytes(at: i.address, count: initrdFile.count) == initrdFile, "initrd bytes in RAM differ from the file")
    }
}
