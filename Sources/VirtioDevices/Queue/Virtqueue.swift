import CKVM
import KVMKit

/// A split virtqueue (virtio 1.2 §2.7) as the device side sees it: takes chains from the
/// available ring, returns them through the used ring, and decides when the driver wants
/// an interrupt (VIRTIO_F_EVENT_IDX, or the NO_INTERRUPT flag without it).
///
/// Ring layout, all little-endian (§2.7.6, §2.7.8):
///   avail: flags u16, idx u16, ring[size] u16, used_event u16
///   used:  flags u16, idx u16, ring[size] {id u32, len u32}, avail_event u16
///
/// Owned by one device and used from its event-loop thread only.
public final class Virtqueue {
    public static let availNoInterrupt: UInt16 = 1  // VIRTQ_AVAIL_F_NO_INTERRUPT

    public let memory: GuestMemory
    public let size: UInt16
    public let descriptorTable: UInt64
    public let availRing: UInt64
    public let usedRing: UInt64
    public let eventIndex: Bool

    /// The next available-ring slot the device will read (free-running).
    public private(set) var nextAvail: UInt16 = 0
    /// The device's used index (free-running), published after each `addUsed`.
    public private(set) var nextUsed: UInt16 = 0
    /// Used entries were added since the last `needsInterrupt`.
    public private(set) var hasNewUsed = false
    /// Used index at the last interrupt, for vring_need_event; nil before the first.
    private var signalledUsed: UInt16?
    /// At most this many chains per batch (one notification's worth of work), so a guest
    /// that refills the ring as fast as it drains cannot hold the event loop forever.
    public var batchLimit: Int
    private var poppedInBatch = 0
    /// The last batch stopped at `batchLimit` with chains still pending.
    public private(set) var hasDeferredWork = false

    /// Validate a queue the driver programmed (§2.7: power-of-two size up to the
    /// maximum; table 16-, avail 2-, used 4-byte aligned; each ring inside guest memory).
    public init(config c: QueueConfig, memory: GuestMemory, eventIndex: Bool) throws {
        guard c.size > 0, c.size <= c.maxSize, c.size & (c.size - 1) == 0 else {
            throw VirtqueueError.invalidSize(c.size, max: c.maxSize)
        }
        let n = UInt64(c.size)
        try Virtqueue.checkRing(memory, "descriptor table", c.descriptorTable, 16 * n, alignment: 16)
        try Virtqueue.checkRing(memory, "available ring", c.availRing, 6 + 2 * n, alignment: 2)
        try Virtqueue.checkRing(memory, "used ring", c.usedRing, 6 + 8 * n, alignment: 4)
        self.memory = memory
        self.size = c.size
        self.descriptorTable = c.descriptorTable
        self.availRing = c.availRing
        self.usedRing = c.usedRing
        self.eventIndex = eventIndex
        self.batchLimit = Int(c.size)
    }

    /// Where the device is in the rings (snapshots): what it has taken and returned, and
    /// the used index of its last interrupt.
    public struct Positions: Equatable, Sendable {
        public var nextAvail: UInt16
        public var nextUsed: UInt16
        public var signalledUsed: UInt16?

        public init(nextAvail: UInt16, nextUsed: UInt16, signalledUsed: UInt16?) {
            self.nextAvail = nextAvail; self.nextUsed = nextUsed; self.signalledUsed = signalledUsed
        }
    }

    /// The ring positions; set only on a queue built from a snapshot, before first use.
    public var positions: Positions {
        get { Positions(nextAvail: nextAvail, nextUsed: nextUsed, signalledUsed: signalledUsed) }
        set { nextAvail = newValue.nextAvail; nextUsed = newValue.nextUsed; signalledUsed = newValue.signalledUsed }
    }

    /// Start a new batch (the transport calls this before each `process`).
    public func beginBatch() {
        poppedInBatch = 0
        hasDeferredWork = false
    }

    private static func checkRing(_ m: GuestMemory, _ name: String, _ address: UInt64, _ length: UInt64, alignment: UInt64) throws {
        if address % alignment != 0 { throw VirtqueueError.ringMisaligned(ring: name, address: address, alignment: alignment) }
        if !m.isValid(address: address, length: length) {
            throw VirtqueueError.ringOutOfRange(ring: name, address: address, length: length)
        }
    }

    // MARK: ring fields (all inside the validated rings; failures are still typed)

    private func load16(_ address: UInt64) throws -> UInt16 {
        do { return try memory.load(UInt16.self, at: address) } catch let e as GuestMemoryError { throw VirtqueueError.memory(e) }
    }
    private func store<T: FixedWidthInteger>(_ v: T, _ address: UInt64) throws {
        do { try memory.store(v, at: address) } catch let e as GuestMemoryError { throw VirtqueueError.memory(e) }
    }

    var availFlags: UInt16 { get throws { try load16(availRing) } }
    var availIndex: UInt16 { get throws { try load16(availRing + 2) } }
    /// used_event: the driver wants an interrupt once the used index passes it.
    var usedEvent: UInt16 { get throws { try load16(availRing + 4 + 2 * UInt64(size)) } }
    var usedIndexAddress: UInt64 { usedRing + 2 }
    var availEventAddress: UInt64 { usedRing + 4 + 8 * UInt64(size) }

    // MARK: available ring

    /// How many chains the driver has made available that the device has not taken.
    /// Throws if the driver's index is more than a queue's worth ahead (§2.7.13.3).
    public func pendingCount() throws -> UInt16 {
        let idx = try availIndex
        let pending = idx &- nextAvail
        if pending > size { throw VirtqueueError.availIndexJump(seen: idx, next: nextAvail, size: size) }
        return pending
    }

    /// Take the next available chain, walked and validated, or nil if the ring is empty.
    /// With EVENT_IDX, an empty ring re-arms avail_event and checks once more, so a
    /// notification that races with the check is not lost.
    public func pop() throws -> DescriptorChain? {
        var pending = try pendingCount()
        if poppedInBatch >= batchLimit {
            hasDeferredWork = pending > 0
            return nil
        }
        if pending == 0 {
            guard eventIndex else { return nil }
            try store(nextAvail, availEventAddress)
            ckvm_memory_fence()
            pending = try pendingCount()
            if pending == 0 { return nil }
        }
        ckvm_memory_fence()  // read ring entries only after seeing idx (§2.7.13)
        let head = try load16(availRing + 4 + 2 * UInt64(nextAvail % size))
        nextAvail &+= 1
        poppedInBatch += 1
        if eventIndex { try store(nextAvail, availEventAddress) }
        return try DescriptorChain.walk(memory: memory, table: descriptorTable, queueSize: size, head: head)
    }

    /// Give back the last popped chain (e.g. no host data yet for a receive queue).
    public func undoPop() {
        nextAvail &-= 1
        poppedInBatch -= 1
        if eventIndex { try? store(nextAvail, availEventAddress) }
    }

    // MARK: used ring

    /// Put `head` in the used ring with `length` bytes written, then publish the index.
    public func addUsed(head: UInt16, length: UInt32) throws {
        let slot = usedRing + 4 + 8 * UInt64(nextUsed % size)
        try store(UInt32(head), slot)
        try store(length, slot + 4)
        nextUsed &+= 1
        hasNewUsed = true
        ckvm_memory_fence()  // the entry is visible before the index (§2.7.14)
        try store(nextUsed, usedIndexAddress)
    }

    /// Whether the driver wants an interrupt for the used entries added since the last
    /// one: vring_need_event(used_event, new, old) with EVENT_IDX, else !NO_INTERRUPT.
    /// Call after `addUsed`; it records the interrupt as sent when it answers true.
    public func needsInterrupt() throws -> Bool {
        ckvm_memory_fence()  // the used index is visible before we read the driver's wish
        hasNewUsed = false
        let new = nextUsed
        if !eventIndex { return try availFlags & Virtqueue.availNoInterrupt == 0 }
        let old = signalledUsed
        signalledUsed = new
        guard let old else { return true }
        if old == new { return false }
        let event = try usedEvent
        return Virtqueue.needEvent(event: event, new: new, old: old)
    }

    /// vring_need_event from the spec: has the index moved past `event` in (old, new]?
    @inline(__always)
    public static func needEvent(event: UInt16, new: UInt16, old: UInt16) -> Bool {
        (new &- event &- 1) < (new &- old)
    }
}
