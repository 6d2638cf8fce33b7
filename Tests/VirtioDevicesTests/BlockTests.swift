import Foundation
import TestSupport
@testable import KVMKit
import XCTest
@testable import VirtioDevices

final class BlockTests: XCTestCase {
    var path: String!
    var guest: FakeGuest!
    var line: RecordingLine!
    var block: VirtioBlock!
    var t: VirtioMMIOTransport!
    var d: MMIODriver!
    var nextHead = 0

    override func setUp() { path = makeImage(size: 64 * 1024) }
    override func tearDown() {
        block = nil; t = nil; d = nil
        unlink(path)
    }

    func start(readOnly: Bool = false, id: String? = nil) throws {
        guest = FakeGuest(queueSize: 64)
        line = RecordingLine()
        block = try VirtioBlock(options: DiskOptions(path: path, readOnly: readOnly, id: id))
        t = try VirtioMMIOTransport(device: block, memory: guest.memory, interrupt: line, notify: .inline)
        d = MMIODriver(t: t)
        d.start(guest)
    }

    /// Notify, then wait until the I/O threads completed everything (pause drains).
    func settle() {
        d.notify(0)
        block.pause()
        block.resume()
    }

    func header(_ type: UInt32, sector: UInt64 = 0) -> [UInt8] {
        withUnsafeBytes(of: type.littleEndian, Array.init) + [0, 0, 0, 0] + withUnsafeBytes(of: sector.littleEndian, Array.init)
    }

    /// Submit header + data parts + status; returns the status address.
    @discardableResult
    func submit(_ type: UInt32, sector: UInt64 = 0, data: [(UInt64, UInt32, Bool)] = []) -> UInt64 {
        let h = guest.put(header(type, sector: sector))
        let s = guest.alloc(1, fill: 0xff)
        let head = guest.chain(at: nextHead, [(h, 16, false)] + data + [(s, 1, true)])
        nextHead += data.count + 2
        guest.publish(head)
        settle()
        return s
    }

    func imageBytes(_ range: Range<Int>) -> [UInt8] {
        Array(FileManager.default.contents(atPath: path)![range])
    }

    func testConfigSpace() throws {
        try start()
        XCTAssertEqual(t.read(offset: 0x100, size: 8), 128)  // 64 KiB = 128 sectors
        XCTAssertEqual(t.read(offset: 0x114, size: 4), 512)  // blk_size
        XCTAssertEqual(t.read(offset: 0x10c, size: 4), 254)  // seg_max
        let f = d.deviceFeatures
        for bit in [BlockFeature.flush, BlockFeature.discard, BlockFeature.writeZeroes, BlockFeature.segMax, BlockFeature.sizeMax, BlockFeature.blockSize] {
            XCTAssertNotEqual(f & bit, 0)
        }
        XCTAssertEqual(f & BlockFeature.readOnly, 0)
    }

    func testReadSpanningTwoBuffers() throws {
        try start()
        let a = guest.alloc(512), b = guest.alloc(1024)
        let s = submit(BlockRequestType.read, sector: 2, data: [(a, 512, true), (b, 1024, true)])
        XCTAssertEqual(guest.byte(at: s), BlockStatus.ok)
        XCTAssertEqual(guest.bytes(at: a, 512), imageBytes(1024..<1536))
        XCTAssertEqual(guest.bytes(at: b, 1024), imageBytes(1536..<2560))
        XCTAssertEqual(guest.usedIndex, 1)
        XCTAssertEqual(guest.usedElement(0).len, 1537)
        XCTAssertEqual(line.triggers, 1)
        XCTAssertEqual(block.metrics.bytesRead, 1536)
    }

    func testWriteThenFlush() throws {
        try start()
        let a = guest.put([UInt8](repeating: 0xab, count: 1024))
        XCTAssertEqual(guest.byte(at: submit(BlockRequestType.write, sector: 10, data: [(a, 1024, false)])), BlockStatus.ok)
        XCTAssertEqual(guest.byte(at: submit(BlockRequestType.flush)), BlockStatus.ok)
        XCTAssertEqual(imageBytes(5120..<6144), [UInt8](repeating: 0xab, count: 1024))
        XCTAssertEqual(imageBytes(6144..<6145), [UInt8(6144 % 251)])
        XCTAssertEqual(block.metrics.flushes, 1)
    }

    /// A FLUSH request really writes the image back (fdatasync), seen from outside the
    /// device: the written page is dirty in the page cache before the flush and clean after.
    func testFlushWritesTheDirtyPagesBack() throws {
        unlink(path)
        path = try diskBackedScratchDirectory() + "/flush-\(getpid())-\(UUID().uuidString.prefix(8)).img"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(count: 64 * 1024)))
        let fd = open(path, O_RDWR)
        XCTAssertEqual(fsync(fd), 0)
        close(fd)
        XCTAssertEqual(try pageCacheState(of: path).dirty, 0, "clean before the test")
        try start()
        let a = guest.put([UInt8](repeating: 0xcd, count: 4096))
        XCTAssertEqual(guest.byte(at: submit(BlockRequestType.write, sector: 8, data: [(a, 4096, false)])), BlockStatus.ok)
        XCTAssertGreaterThan(try pageCacheState(of: path).dirty, 0, "the write left dirty pages")
        XCTAssertEqual(guest.byte(at: submit(BlockRequestType.flush)), BlockStatus.ok)
        let after = try pageCacheState(of: path)
        XCTAssertEqual(after.dirty, 0, "FLUSH wrote the dirty pages back")
        XCTAssertEqual(after.writeback, 0, "and waited for the write-back")
        XCTAssertEqual(imageBytes(4096..<8192), [UInt8](repeating: 0xcd, count: 4096))
    }

    func testHeaderAndDataInOneDescriptor() throws {
        // The spec forbids assuming framing: header + data in one readable buffer.
        try start()
        let both = guest.put(header(BlockRequestType.write, sector: 1) + [UInt8](repeating: 7, count: 512))
        let s = guest.alloc(1, fill: 0xff)
        guest.publish(guest.chain(at: 0, [(both, 528, false), (s, 1, true)]))
        settle()
        XCTAssertEqual(guest.byte(at: s), BlockStatus.ok)
        XCTAssertEqual(imageBytes(512..<1024), [UInt8](repeating: 7, count: 512))
    }

    func testGetIDFromIdOrBasename() throws {
        try start(id: "disk-serial-0123456789-too-long")
        let a = guest.alloc(20)
        XCTAssertEqual(guest.byte(at: submit(BlockRequestType.getID, data: [(a, 20, true)])), BlockStatus.ok)
        XCTAssertEqual(String(decoding: guest.bytes(at: a, 20), as: UTF8.self), "disk-serial-01234567")
        block = nil; t = nil; d = nil
        try start()
        let b = guest.alloc(20)
        XCTAssertEqual(guest.byte(at: submit(BlockRequestType.getID, data: [(b, 20, true)])), BlockStatus.ok)
        let name = String(path.split(separator: "/").last!.prefix(20))
        XCTAssertEqual(String(decoding: guest.bytes(at: b, 20).prefix { $0 != 0 }, as: UTF8.self), name)
    }

    func range(_ sector: UInt64, _ n: UInt32, flags: UInt32 = 0) -> [UInt8] {
        withUnsafeBytes(of: sector.littleEndian, Array.init) + withUnsafeBytes(of: n.littleEndian, Array.init)
            + withUnsafeBytes(of: flags.littleEndian, Array.init)
    }

    func testDiscardAndWriteZeroes() throws {
        try start()
        let r1 = guest.put(range(8, 8))
        XCTAssertEqual(guest.byte(at: submit(BlockRequestType.discard, data: [(r1, 16, false)])), BlockStatus.ok)
        XCTAssertEqual(imageBytes(4096..<8192), [UInt8](repeating: 0, count: 4096))
        let r2 = guest.put(range(1, 3))
        XCTAssertEqual(guest.byte(at: submit(BlockRequestType.writeZeroes, data: [(r2, 16, false)])), BlockStatus.ok)
        XCTAssertEqual(imageBytes(512..<2048), [UInt8](repeating: 0, count: 1536))
        XCTAssertEqual(imageBytes(2048..<2049), [UInt8(2048 % 251)])
        let r3 = guest.put(range(4, 1, flags: 1))  // write zeroes that may unmap: still zeros
        XCTAssertEqual(guest.byte(at: submit(BlockRequestType.writeZeroes, data: [(r3, 16, false)])), BlockStatus.ok)
        XCTAssertEqual(imageBytes(2048..<2560), [UInt8](repeating: 0, count: 512))
        XCTAssertEqual(imageBytes(2560..<2561), [UInt8(2560 % 251)])
        let r4 = guest.put(range(1, 3, flags: 1))  // unmap flag is reserved for discard
        XCTAssertEqual(guest.byte(at: submit(BlockRequestType.discard, data: [(r4, 16, false)])), BlockStatus.unsupported)
        let r5 = guest.put(range(0, 1) + range(2, 1))  // more ranges than max_discard_seg
        XCTAssertEqual(guest.byte(at: submit(BlockRequestType.discard, data: [(r5, 32, false)])), BlockStatus.ioError)
    }

    func testReadOnlyRejectsWrites() throws {
        try start(readOnly: true)
        XCTAssertNotEqual(d.deviceFeatures & BlockFeature.readOnly, 0)
        let a = guest.put([UInt8](repeating: 1, count: 512))
        XCTAssertEqual(guest.byte(at: submit(BlockRequestType.write, data: [(a, 512, false)])), BlockStatus.ioError)
        let r = guest.put(range(0, 1))
        XCTAssertEqual(guest.byte(at: submit(BlockRequestType.discard, data: [(r, 16, false)])), BlockStatus.ioError)
        XCTAssertEqual(imageBytes(0..<512), (0..<512).map { UInt8($0 % 251) })
        let b = guest.alloc(512)
        XCTAssertEqual(guest.byte(at: submit(BlockRequestType.read, data: [(b, 512, true)])), BlockStatus.ok)
    }

    func testInvalidRequestsGetErrorStatus() throws {
        try start()
        let a = guest.alloc(512)
        // Beyond capacity, overflowing sector, length not a multiple of 512.
        XCTAssertEqual(guest.byte(at: submit(BlockRequestType.read, sector: 128, data: [(a, 512, true)])), BlockStatus.ioError)
        XCTAssertEqual(guest.byte(at: submit(BlockRequestType.read, sector: UInt64.max, data: [(a, 512, true)])), BlockStatus.ioError)
        XCTAssertEqual(guest.byte(at: submit(BlockRequestType.read, data: [(a, 100, true)])), BlockStatus.ioError)
        // Wrong direction: a read whose data is device-readable; a write whose data is device-writable.
        XCTAssertEqual(guest.byte(at: submit(BlockRequestType.read, data: [(a, 512, false)])), BlockStatus.ioError)
        XCTAssertEqual(guest.byte(at: submit(BlockRequestType.write, data: [(a, 512, true)])), BlockStatus.ioError)
        // Unknown type.
        XCTAssertEqual(guest.byte(at: submit(99)), BlockStatus.unsupported)
        XCTAssertEqual(guest.usedIndex, 6)
        XCTAssertFalse(d.needsReset)
        XCTAssertEqual(block.metrics.invalidRequests, 5)
        XCTAssertEqual(block.metrics.unsupportedRequests, 1)
    }

    func testShortHeaderGetsIOError() throws {
        try start()
        let h = guest.alloc(8), s = guest.alloc(1, fill: 0xff)
        guest.publish(guest.chain(at: 0, [(h, 8, false), (s, 1, true)]))
        settle()
        XCTAssertEqual(guest.byte(at: s), BlockStatus.ioError)
    }

    func testRequestWithoutStatusByteNeedsReset() throws {
        try start()
        let h = guest.put(header(BlockRequestType.flush))
        guest.publish(guest.chain(at: 0, [(h, 16, false)]))
        settle()
        XCTAssertTrue(d.needsReset)
    }

    func testAdversarialChainsNeedReset() throws {
        let cases: [(String, (FakeGuest) -> Void)] = [
            ("loop", { g in
                let h = g.put(self.header(BlockRequestType.read))
                g.setDescriptor(0, h, 16, VirtqDescriptorFlag.next, next: 1)
                g.setDescriptor(1, h, 16, VirtqDescriptorFlag.next, next: 0)
                g.publish(0) }),
            ("nested indirect", { g in
                let t1 = g.alloc(16), t2 = g.alloc(16)
                g.setDescriptor(table: t1, 0, t2, 16, VirtqDescriptorFlag.indirect)
                g.setDescriptor(0, t1, 16, VirtqDescriptorFlag.indirect)
                g.publish(0) }),
            ("zero length", { g in
                let h = g.put(self.header(BlockRequestType.flush)), s = g.alloc(1)
                g.chain(at: 0, [(h, 0, false), (s, 1, true)])
                g.publish(0) }),
            ("overflow", { g in
                let h = g.put(self.header(BlockRequestType.flush))
                g.chain(at: 0, [(h, 16, false), (UInt64.max, 1, true)])
                g.publish(0) }),
            ("out of range", { g in
                let h = g.put(self.header(BlockRequestType.read))
                g.chain(at: 0, [(h, 16, false), (0x4000_0000, 512, true), (g.alloc(1), 1, true)])
                g.publish(0) }),
            ("readable after writable", { g in
                let h = g.put(self.header(BlockRequestType.write)), a = g.alloc(512), s = g.alloc(1)
                g.chain(at: 0, [(h, 16, false), (s, 1, true), (a, 512, false)])
                g.publish(0) }),
            ("avail index jump", { g in g.setAvailIndex(1000) }),
            ("head out of range", { g in g.publish(200) }),
        ]
        for (name, build) in cases {
            try start()
            build(guest)
            settle()
            XCTAssertTrue(d.needsReset, name)
            XCTAssertNotEqual(d.r(VirtioMMIORegister.interruptStatus) & VirtioInterruptBit.configChange, 0, name)
            XCTAssertEqual(guest.usedIndex, 0, name)
            block = nil; t = nil; d = nil
        }
    }

    func testImageSizeMustBeMultipleOf512() {
        let p = makeImage(size: 1000)
        defer { unlink(p) }
        XCTAssertThrowsError(try FileBlockBackend(path: p, readOnly: false)) {
            XCTAssertEqual($0 as? BlockBackendError, .sizeNotMultipleOf512(path: p, size: 1000))
            XCTAssertTrue("\($0)".contains("not a multiple of 512"))
        }
    }

    func testImageIsLockedAgainstASecondWriter() throws {
        try withExtendedLifetime(try FileBlockBackend(path: path, readOnly: false)) {
            XCTAssertThrowsError(try FileBlockBackend(path: path, readOnly: false)) {
                XCTAssertEqual($0 as? BlockBackendError, .inUse(path: path))
                XCTAssertTrue("\($0)".contains("is in use by another process"))
            }
            XCTAssertThrowsError(try FileBlockBackend(path: path, readOnly: true))
        }
        let readers = [try FileBlockBackend(path: path, readOnly: true), try FileBlockBackend(path: path, readOnly: true)]
        XCTAssertThrowsError(try FileBlockBackend(path: path, readOnly: false))
        withExtendedLifetime(readers) {}
    }

    func testMissingImage() {
        XCTAssertThrowsError(try FileBlockBackend(path: "/nonexistent/x.img", readOnly: true)) {
            XCTAssertEqual($0 as? BlockBackendError, .open(path: "/nonexistent/x.img", errno: ENOENT))
        }
    }

    func testDiskOptionsParsing() throws {
        XCTAssertEqual(try DiskOptions(parsing: "/a/b.img"), DiskOptions(path: "/a/b.img"))
        XCTAssertEqual(try DiskOptions(parsing: "b.img,ro,id=root"), DiskOptions(path: "b.img", readOnly: true, id: "root"))
        XCTAssertEqual(try DiskOptions(parsing: "/a/b.img").serial, "b.img")
        XCTAssertThrowsError(try DiskOptions(parsing: "b.img,rw"))
        XCTAssertThrowsError(try DiskOptions(parsing: ",ro"))
    }

    func testManyRequestsWithEventIndex() throws {
        guest = FakeGuest(queueSize: 8)
        line = RecordingLine()
        block = try VirtioBlock(options: DiskOptions(path: path))
        t = try VirtioMMIOTransport(device: block, memory: guest.memory, interrupt: line, notify: .inline)
        d = MMIODriver(t: t)
        d.start(guest, features: VirtioFeature.version1 | VirtioFeature.eventIndex)
        guest.setUsedEvent(100)  // the driver wants no interrupt until used idx passes 100
        // 20 flushes in batches of 4, reusing descriptors: the ring wraps.
        var statuses: [UInt64] = []
        for _ in 0..<5 {
            nextHead = 0
            for _ in 0..<4 {
                let h = guest.put(header(BlockRequestType.flush)), s = guest.alloc(1, fill: 0xff)
                guest.publish(guest.chain(at: nextHead, [(h, 16, false), (s, 1, true)]))
                nextHead += 2
                statuses.append(s)
            }
            settle()
        }
        XCTAssertEqual(guest.usedIndex, 20)
        XCTAssertTrue(statuses.allSatisfy { guest.byte(at: $0) == BlockStatus.ok })
        XCTAssertEqual(line.triggers, 1)  // only the first completion interrupts
        XCTAssertEqual(guest.availEvent, 20)
    }

    /// A block device as the backend (the nested test bed uses /dev/vdb): a loop device on
    /// a scratch file (needs root, as CI runs), or SWIFTVMM_TEST_BLOCK_DEVICE (destroyed).
    func testBlockDeviceBackend() throws {
        var dev = ProcessInfo.processInfo.environment["SWIFTVMM_TEST_BLOCK_DEVICE"] ?? ""
        if dev.isEmpty {
            guard getuid() == 0 else { throw missingPrerequisite("not root: no loop device (or set SWIFTVMM_TEST_BLOCK_DEVICE)") }
            let file = try diskBackedScratchDirectory() + "/loop-\(getpid()).img"
            XCTAssertTrue(FileManager.default.createFile(atPath: file, contents: Data(count: 4 << 20)))
            defer { unlink(file) }
            let r = try ToolRun("/usr/sbin/losetup", ["-f", "--show", file])
            guard r.status == 0, r.output.hasPrefix("/dev/loop") else {
                throw missingPrerequisite("losetup -f --show failed: \(r.output)")
            }
            dev = r.output.trimmingCharacters(in: .whitespacesAndNewlines)
            let loop = dev
            addTeardownBlock { _ = try? ToolRun("/usr/sbin/losetup", ["-d", loop]) }
        }
        let b = try FileBlockBackend(path: dev, readOnly: false)
        XCTAssertTrue(b.isBlockDevice)
        XCTAssertGreaterThan(b.size, 0)
        XCTAssertThrowsError(try FileBlockBackend(path: dev, readOnly: false)) {
            XCTAssertEqual($0 as? BlockBackendError, .inUse(path: dev))
        }
        var data = [UInt8](repeating: 0x3c, count: 4096)
        try data.withUnsafeBytes { try b.write(from: $0, at: 8192) }
        try b.flush()
        var back = [UInt8](repeating: 0, count: 4096)
        try back.withUnsafeMutableBytes { try b.read(into: $0, at: 8192) }
        XCTAssertEqual(back, data)
        try b.writeZeroes(offset: 8192, length: 4096, mayUnmap: false)
        try back.withUnsafeMutableBytes { try b.read(into: $0, at: 8192) }
        XCTAssertEqual(back, [UInt8](repeating: 0, count: 4096))
        data = [UInt8](repeating: 0x77, count: 4096)
        try data.withUnsafeBytes { try b.write(from: $0, at: 8192) }
        try b.discard(offset: 8192, length: 4096)
        try data.withUnsafeBytes { try b.write(from: $0, at: 12288) }
        try b.writeZeroes(offset: 12288, length: 4096, mayUnmap: true)
        try back.withUnsafeMutableBytes { try b.read(into: $0, at: 12288) }
        XCTAssertEqual(back, [UInt8](repeating: 0, count: 4096))
    }
}
