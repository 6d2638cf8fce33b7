import KVMKit
import Synchronization

/// virtio-console (§5.3) with a single port and no MULTIPORT: queue 0 is port 0's
/// receiveq (host → guest), queue 1 its transmitq (guest → host). Linux names it hvc0.
///
/// The host side is KVMKit's console plumbing, the same as the serial console's: guest
/// output goes into a `BoundedOutputBuffer` the console backend drains, host input comes
/// through `VirtioConsolePort.enqueueInput` (a `ConsoleGuestPort`). Unlike the UART, the
/// guest is held back instead of losing bytes: a transmit chain stays unconsumed while
/// the output buffer is full, and input stays with the host while the guest has no
/// receive buffers.
public final class VirtioConsole: VirtioDevice {
    public static let receiveQueue = 0
    public static let transmitQueue = 1
    public static let queueSize: UInt16 = 64
    public static let inputCapacity = 4096

    /// Guest output, drained by the host side; signals `notify` when it becomes non-empty.
    public let output: BoundedOutputBuffer
    /// Host input waiting for guest receive buffers.
    let input: BoundedOutputBuffer
    /// The port's notifyFD: new output, or room for input again.
    public let notify: EventFD
    public private(set) var bytesIn: UInt64 = 0
    public private(set) var bytesOut: UInt64 = 0

    /// A transmit chain the output buffer could take only part of, and how much.
    var pendingTransmit: (chain: DescriptorChain, offset: UInt64)?
    /// A pending transmit from a snapshot (head, offset), walked again at activation.
    var restoredTransmit: (head: UInt16, offset: UInt64)?
    let transmitBlocked = Atomic<Bool>(false)
    let inputWasFull = Atomic<Bool>(false)
    private var queues: [Virtqueue?] = []
    private var memory: GuestMemory?
    /// Set while active; used from the host side's thread, so behind its own lock.
    private let kick = Mutex<((Int) -> Void)?>(nil)

    public init(outputCapacity: Int = BoundedOutputBuffer.defaultCapacity) throws {
        let notify = try EventFD()
        self.notify = notify
        output = BoundedOutputBuffer(capacity: outputCapacity, overflow: .dropNewest, wakeupFileDescriptor: notify.fd)
        input = BoundedOutputBuffer(capacity: Self.inputCapacity, overflow: .dropNewest) {}
    }

    public var deviceType: UInt32 { VirtioDeviceType.console }
    public var deviceFeatures: UInt64 { 0 }
    public var queueMaxSizes: [UInt16] { [Self.queueSize, Self.queueSize] }

    /// cols, rows, max_nr_ports, emerg_wr: none of their features is offered, so zeros.
    public func readConfig(offset: Int, into buffer: UnsafeMutableRawBufferPointer) {
        for i in 0..<buffer.count { buffer[i] = 0 }
    }
    public func writeConfig(offset: Int, bytes: UnsafeRawBufferPointer) {}

    public func activate(_ a: VirtioActivation) throws {
        queues = a.queues; memory = a.memory
        if let r = restoredTransmit, Self.transmitQueue < queues.count, let q = queues[Self.transmitQueue] {
            let chain = try DescriptorChain.walk(memory: a.memory, table: q.descriptorTable, queueSize: q.size, head: r.head)
            pendingTransmit = (chain, r.offset)
        }
        restoredTransmit = nil
        // Input queued before DRIVER_OK goes in when the driver first notifies the receiveq
        // (Linux does after filling it); kicking here would re-enter the transport's lock.
        kick.withLock { $0 = a.kick }
    }
    public func reset() {
        queues = []; memory = nil; pendingTransmit = nil
        kick.withLock { $0 = nil }
        transmitBlocked.store(false, ordering: .relaxed)
    }

    public func process(queue index: Int) throws {
        guard index < queues.count, let queue = queues[index], let memory else { return }
        if index == Self.receiveQueue { try receive(queue, memory) }
        else if index == Self.transmitQueue { try transmit(queue, memory) }
    }

    /// Move host input into the guest's receive buffers while both exist.
    private func receive(_ queue: Virtqueue, _ memory: GuestMemory) throws {
        while input.count > 0 {
            guard let chain = try queue.pop() else { break }
            var written: UInt64 = 0
            for b in chain.writable {
                let n = try memory.withMutableSlice(at: b.address, length: UInt64(b.length)) { input.read(into: $0) }
                written += UInt64(n)
                if n < Int(b.length) { break }
            }
            if written == 0 { queue.undoPop(); break }
            bytesIn &+= written
            try queue.complete(chain, length: UInt32(written))
        }
        // The host side stopped feeding when the queue filled; tell it there is room.
        if input.count < Self.inputCapacity, inputWasFull.exchange(false, ordering: .acquiringAndReleasing) { notify.signal() }
    }

    /// Hand guest output to the output buffer; a chain it cannot take whole waits.
    private func transmit(_ queue: Virtqueue, _ memory: GuestMemory) throws {
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
                let bytes = try memory.readSlice(at: b.address + skip, length: length - skip)
                let room = UInt64(max(0, output.capacity - output.count))
                let n = min(room, length - skip)
                output.write(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[0..<Int(n)]))
                bytesOut &+= n
                if n < length - skip {
                    pendingTransmit = (chain, position + skip + n)
                    transmitBlocked.store(true, ordering: .releasing)
                    return
                }
            }
            pendingTransmit = nil
            try queue.complete(chain, length: 0)
        }
    }

    // MARK: host side (through VirtioConsolePort, on the event-loop thread)

    private func requestRun(_ queue: Int) {
        // Copy out first: the kick may process inline (tests) and must not hold this lock.
        let k = kick.withLock { $0 }
        k?(queue)
    }

    func enqueueInput(_ bytes: UnsafeRawBufferPointer) -> Int {
        let room = max(0, input.capacity - input.count)
        let n = min(room, bytes.count)
        input.write(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[0..<n]))
        if n < bytes.count { inputWasFull.store(true, ordering: .releasing) }
        if n > 0 { requestRun(Self.receiveQueue) }
        return n
    }

    func drainOutput(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let n = output.read(into: buffer)
        if n > 0, transmitBlocked.exchange(false, ordering: .acquiringAndReleasing) { requestRun(Self.transmitQueue) }
        return n
    }
}

/// The virtio console as a `ConsoleGuestPort`, for KVMKit's `ConsoleBackend`
/// (`--console hvc`): `ConsoleBackend(mode:port: VirtioConsolePort(console), loop:)`.
public final class VirtioConsolePort: ConsoleGuestPort {
    public let console: VirtioConsole
    public init(_ console: VirtioConsole) { self.console = console }
    public func enqueueInput(_ bytes: UnsafeRawBufferPointer) -> Int { console.enqueueInput(bytes) }
    public func drainOutput(into buffer: UnsafeMutableRawBufferPointer) -> Int { console.drainOutput(into: buffer) }
    public var notifyFD: Int32 { console.notify.fd }
}
