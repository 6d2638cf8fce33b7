import CKVM
import Glibc
import KVMKit

/// virtio-rng / entropy device (§5.4): one queue of device-writable buffers, each
/// filled from getrandom(2). Readable buffers in a chain are ignored.
public final class VirtioRng: VirtioDevice {
    public static let queueSize: UInt16 = 64
    /// Cap per request, so one chain cannot keep the event loop busy for long.
    public static let maxBytesPerRequest: UInt64 = 64 * 1024

    public private(set) var bytesProvided: UInt64 = 0
    public private(set) var failures: UInt64 = 0
    private var queue: Virtqueue?
    private var memory: GuestMemory?

    public init() {}

    public var deviceType: UInt32 { VirtioDeviceType.entropy }
    public var deviceFeatures: UInt64 { 0 }
    public var queueMaxSizes: [UInt16] { [Self.queueSize] }
    public func readConfig(offset: Int, into buffer: UnsafeMutableRawBufferPointer) {
        for i in 0..<buffer.count { buffer[i] = 0 }
    }
    public func writeConfig(offset: Int, bytes: UnsafeRawBufferPointer) {}

    public func activate(_ a: VirtioActivation) throws {
        queue = a.queues.first ?? nil; memory = a.memory
    }
    public func reset() { queue = nil; memory = nil }

    public func process(queue index: Int) throws {
        guard index == 0, let queue, let memory else { return }
        while let chain = try queue.pop() {
            var written: UInt64 = 0
            for b in chain.writable where written < Self.maxBytesPerRequest {
                let n = min(UInt64(b.length), Self.maxBytesPerRequest - written)
                guard try memory.withMutableSlice(at: b.address, length: n, fill) else { failures &+= 1; break }
                written += n
            }
            bytesProvided &+= written
            try queue.complete(chain, length: UInt32(written))
        }
    }

    /// getrandom until the buffer is full; false if the kernel refuses.
    private func fill(_ buffer: UnsafeMutableRawBufferPointer) -> Bool {
        var done = 0
        while done < buffer.count {
            let r = ckvm_getrandom(buffer.baseAddress! + done, buffer.count - done)
            if r == -Int(EINTR) { continue }
            if r <= 0 { return false }
            done += r
        }
        return true
    }
}
