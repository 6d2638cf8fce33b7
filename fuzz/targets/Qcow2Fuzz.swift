// libFuzzer target: the qcow2 header and metadata parser over an in-memory image.
// The input is the image file. It is opened (read-only or read-write by the first
// byte of the header's padding), read at offsets the input picks, and when writable,
// written, zeroed, discarded, flushed and closed. Any crash, trap or hang is a finding;
// errors thrown for a bad image are the expected outcome.
import Glibc
@testable import VirtioDevices

/// An image file in memory. Growth past 64 MiB is refused (a fuzzed image must not
/// make the harness allocate without bound).
final class MemoryImage: ImageStorage {
    let path = "fuzz.qcow2"
    var bytes: [UInt8]
    init(_ bytes: [UInt8]) { self.bytes = bytes }
    var length: UInt64 { UInt64(bytes.count) }
    struct TooLarge: Error {}
    struct PastEnd: Error {}

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        guard offset <= length, UInt64(buffer.count) <= length - offset else { throw PastEnd() }
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[Int(offset)..<Int(offset) + buffer.count])) }
    }
    func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        let end = offset.addingReportingOverflow(UInt64(buffer.count))
        guard !end.overflow else { throw TooLarge() }
        if end.partialValue > length { try setLength(end.partialValue) }
        bytes.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[Int(offset)..<Int(offset) + buffer.count]).copyMemory(from: buffer) }
    }
    func flush() throws {}
    func setLength(_ n: UInt64) throws {
        guard n <= 64 << 20 else { throw TooLarge() }
        if n > length { bytes += [UInt8](repeating: 0, count: Int(n - length)) } else { bytes.removeLast(Int(length - n)) }
    }
}

private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 4096)

@_cdecl("LLVMFuzzerTestOneInput")
public func qcow2FuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    // Byte 108 (inside the v3 header's padding/extension area) picks the mode and offsets.
    let knob = size > 108 ? input[108] : 0
    let storage = MemoryImage(input)
    guard let image = try? Qcow2Image(storage: storage, readOnly: knob & 1 == 0, backing: nil) else { return 0 }
    let diskSize = image.size
    guard diskSize >= 512 else { return 0 }
    // Offsets from the input's tail, so the fuzzer can aim reads and writes.
    var offsets: [UInt64] = [0, diskSize / 2 & ~511, (diskSize - 512) & ~511]
    for i in stride(from: max(0, size - 32), to: size - 3, by: 4) {
        let v = UInt64(input[i]) | UInt64(input[i + 1]) << 8 | UInt64(input[i + 2]) << 16 | UInt64(input[i + 3]) << 24
        offsets.append((v << 9) % diskSize)
    }
    for o in offsets {
        let n = Int(min(UInt64(scratch.count), diskSize - o))
        _ = try? image.read(into: UnsafeMutableRawBufferPointer(rebasing: scratch[0..<n]), at: o)
    }
    // Writes on clusters up to 64 KiB only: with 2 MiB clusters each allocation moves
    // megabytes under ASan and the run slows to a crawl (reads cover every size).
    guard !image.isReadOnly, image.layout.clusterBits <= 16 else { return 0 }
    for (k, o) in offsets.prefix(6).enumerated() {
        let n = UInt64(min(UInt64(4096 << (k % 4)), diskSize - o))
        switch (Int(knob >> 1) + k) % 4 {
        case 0: _ = try? image.write(from: UnsafeRawBufferPointer(rebasing: scratch[0..<Int(n)]), at: o)
        case 1: _ = try? image.writeZeroes(offset: o, length: n, mayUnmap: k % 2 == 0)
        case 2: _ = try? image.discard(offset: o, length: n)
        default: _ = try? image.flush()
        }
    }
    for o in offsets.prefix(4) {
        let n = Int(min(UInt64(scratch.count), diskSize - o))
        _ = try? image.read(into: UnsafeMutableRawBufferPointer(rebasing: scratch[0..<n]), at: o)
    }
    _ = try? image.close()
    return 0
}
