import KVMKit

/// virtio-console (§5.3) with a single port and no MULTIPORT: queue 0 is port 0's
/// receiveq (host → guest), queue 1 its transmitq (guest → host). Linux names it hvc0.
public final class VirtioConsole: VirtioDevice {
    public static let receiveQueue = 0
    public static let transmitQueue = 1
    public static let queueSize: UInt16 = 64

    public let backend: ConsoleBackend
    public private(set) var bytesIn: UInt64 = 0
    public private(set) var bytesOut: UInt64 = 0
    private var queues: [Virtqueue?] = []
    private var memory: GuestMemory?
    private var interrupt: VirtioInterrupt?
    /// A transmit chain the host has taken only part of, and how much.
    private var pendingTransmit: (chain: DescriptorChain, offset: UInt64)?

    public init(backend: ConsoleBackend) { self.backend = backend }

    public var deviceType: UInt32 { VirtioDeviceType.console }
    public var deviceFeatures: UInt64 { 0 }
    public var queueMaxSizes: [UInt16] { [Self.queueSize, Self.queueSize] }

    /// cols, rows, max_nr_ports, emerg_wr: none of their features is offered, so zeros.
    public func readConfig(offset: Int, into buffer: UnsafeMutableRawBufferPointer) {
        for i in 0..<buffer.count { buffer[i] = 0 }
    }
    public func writeConfig(offset: Int, bytes: UnsafeRawBufferPointer) {}

    public func activate(_ a: VirtioActivation) throws {
        queues = a.queues; memory = a.memory; interrupt = a.interrupt
    }
    public func reset() {
        queues = []; memory = nil; interrupt = nil; pendingTransmit = nil
    }

    public func process(queue index: Int) throws {
        guard index < queues.count, let queue = queues[index], let memory, let interrupt else { return }
        if index == Self.receiveQueue { try receive(queue, memory, interrupt) }
        else if index == Self.transmitQueue { try transmit(queue, memory, interrupt) }
    }

    /// Move host input into the guest's receive buffers while both exist.
    private func receive(_ queue: Virtqueue, _ memory: GuestMemory, _ interrupt: VirtioInterrupt) throws {
        while backend.hasInput {
            guard let chain = try queue.pop() else { return }
            var written: UInt64 = 0
            for b in chain.writable {
                let n = backend.readInput(into: try memory.slice(at: b.address, length: UInt64(b.length)))
                written += UInt64(n)
                if n < Int(b.length) { break }
            }
            if written == 0 { queue.undoPop(); return }
            bytesIn &+= written
            try queue.complete(chain, length: UInt32(written), interrupt: interrupt)
        }
    }

    /// Hand guest output to the host; a chain the host cannot take whole waits.
    private func transmit(_ queue: Virtqueue, _ memory: GuestMemory, _ interrupt: VirtioInterrupt) throws {
        while true {
            let (chain, start): (DescriptorChain, UInt64)
            if let p = pendingTransmit { (chain, start) = p } else {
                guard let c = try queue.pop() else { return }
                (chain, start) = (c, 0)
            }
            var position: UInt64 = 0
            for b in chain.readable {
                let length = UInt64(b.length)
                defer { position += length }
                if position + length <= start { continue }
                let skip = start > position ? start - position : 0
                let bytes = try memory.slice(at: b.address + skip, length: length - skip)
                let n = UInt64(backend.writeOutput(UnsafeRawBufferPointer(bytes)))
                bytesOut &+= n
                if n < length - skip {
                    pendingTransmit = (chain, position + skip + n)
                    return
                }
            }
            pendingTransmit = nil
            try queue.complete(chain, length: 0, interrupt: interrupt)
        }
    }
}
