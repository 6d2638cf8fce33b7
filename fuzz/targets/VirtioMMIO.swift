// libFuzzer target: the virtio-mmio register interface driven by arbitrary access
// sequences — any offset, any size, any order (feature negotiation out of order, queue
// set-up after DRIVER_OK, resets mid-way, notifications of any queue) — in front of an
// entropy, console or block device, with guest memory filled from the input.
// Input: byte 0 picks the device; bytes 1-2 the number of operations; then 8-byte
// operations (kind, size, offset u16, value u32); the rest fills guest memory (64 KiB).
// Invariant: every access returns; reads of a size the transport does not serve give
// all ones or zero, never a trap.
// libfuzzer: -max_len=16384
import Glibc
@testable import KVMKit
import VirtioDevices

let memorySize = 64 * 1024
let guestBuffer = UnsafeMutableRawPointer.allocate(byteCount: memorySize, alignment: 4096)
let memory = GuestMemory(borrowing: [MemoryRegion(guestAddress: 0, size: UInt64(memorySize), host: guestBuffer)])

final class NullLine: InterruptLine {
    func setLevel(_ high: Bool) {}
}

final class MemoryDisk: BlockBackend {
    var bytes = [UInt8](repeating: 0x5a, count: 8 * 1024)
    var size: UInt64 { UInt64(bytes.count) }
    var isReadOnly: Bool { false }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        guard offset + UInt64(buffer.count) <= size else { fatalError("read beyond the disk") }
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[Int(offset)..<Int(offset) + buffer.count])) }
    }
    func write(from buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard offset + UInt64(buffer.count) <= size else { fatalError("write beyond the disk") }
        bytes.withUnsafeMutableBytes { UnsafeMutableRawBufferPointer(rebasing: $0[Int(offset)..<Int(offset) + buffer.count]).copyMemory(from: buffer) }
    }
    func flush() throws {}
    func discard(offset: UInt64, length: UInt64) throws {}
    func writeZeroes(offset: UInt64, length: UInt64, mayUnmap: Bool) throws {}
}

let sizes = [4, 1, 2, 8, 0, 3]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    guard size >= 3 else { return 0 }
    let count = min(Int(data[1]) | Int(data[2] & 1) << 8, (size - 3) / 8)
    let opsEnd = 3 + 8 * count
    memset(guestBuffer, 0, memorySize)
    guestBuffer.copyMemory(from: data + opsEnd, byteCount: min(size - opsEnd, memorySize))

    let device: VirtioDevice
    switch data[0] % 3 {
    case 0: device = VirtioRng()
    case 1:
        guard let c = try? VirtioConsole(outputCapacity: 1024) else { return 0 }
        device = c
    default:
        guard let b = try? VirtioBlock(backend: MemoryDisk(), serial: "fuzz", ioThreads: 1) else { return 0 }
        device = b
    }
    guard let t = try? VirtioMMIOTransport(device: device, memory: memory, interrupt: NullLine(), notify: .inline) else { return 0 }
    for k in 0..<count {
        let at = 3 + 8 * k
        let kind = data[at], width = sizes[Int(data[at + 1]) % sizes.count]
        let offset = UInt64(data[at + 2]) | UInt64(data[at + 3]) << 8
        let value = UInt64(data[at + 4]) | UInt64(data[at + 5]) << 8 | UInt64(data[at + 6]) << 16 | UInt64(data[at + 7]) << 24
        switch kind % 4 {
        case 0: _ = t.read(offset: offset & 0x1ff, size: width)
        case 1: t.write(offset: offset & 0x1ff, size: width, value: value)
        case 2: t.write(offset: offset % 0x80, size: 4, value: value)   // the common registers
        default: t.handleNotify(queue: Int(value & 3))
        }
    }
    return 0
}
