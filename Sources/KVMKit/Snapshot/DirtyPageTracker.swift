import CKVM

/// Pages of guest RAM changed since the last harvest, one bitmap per memory region
/// (bit n of word w: page 64w+n of the region, 4 KiB pages).
public struct DirtyPages: Equatable, Sendable {
    public var bitmaps: [[UInt64]]

    public init(bitmaps: [[UInt64]]) { self.bitmaps = bitmaps }

    public var count: Int { bitmaps.reduce(0) { $0 + $1.reduce(0) { $0 + $1.nonzeroBitCount } } }

    /// Region index and page index within it of every dirty page, in address order.
    public func forEachPage(_ body: (_ region: Int, _ page: UInt64) throws -> Void) rethrows {
        for (r, words) in bitmaps.enumerated() {
            for (w, word) in words.enumerated() where word != 0 {
                var bits = word
                while bits != 0 {
                    let bit = UInt64(bits.trailingZeroBitCount)
                    try body(r, UInt64(w) * 64 + bit)
                    bits &= bits - 1
                }
            }
        }
    }

    /// Add the pages of `other` (bitmaps of the same shape).
    public mutating func formUnion(_ other: [[UInt64]]) {
        for r in bitmaps.indices where r < other.count {
            for w in bitmaps[r].indices where w < other[r].count { bitmaps[r][w] |= other[r][w] }
        }
    }
}

/// Every write to guest RAM, whoever made it: KVM's dirty log for vCPU writes (the
/// memory slots get KVM_MEM_LOG_DIRTY_PAGES) and GuestMemory's bitmap for device writes.
/// Used by diff snapshots and by migration's copy rounds.
public final class DirtyPageTracker {
    public let vm: VirtualMachine
    public let memory: GuestMemory

    public init(vm: VirtualMachine, memory: GuestMemory) {
        self.vm = vm
        self.memory = memory
    }

    /// Start logging; what was written before is forgotten.
    public func start() throws {
        try vm.setDirtyPageLogging(true, memory: memory)
        memory.trackDeviceWrites(true)
        _ = try harvest()
    }

    public func stop() throws {
        memory.trackDeviceWrites(false)
        try vm.setDirtyPageLogging(false, memory: memory)
    }

    /// Pages written since `start` or the previous harvest; both logs are cleared.
    public func harvest() throws -> DirtyPages {
        var pages = DirtyPages(bitmaps: try memory.regions.enumerated().map { i, r in
            try vm.dirtyLog(slot: UInt32(i), pages: Int(GuestMemory.pages(in: r.size)))
        })
        pages.formUnion(memory.takeDeviceDirtyPages())
        return pages
    }
}

extension VirtualMachine {
    /// Turn KVM's dirty-page log on or off for every slot of `memory`, which must be the
    /// memory registered with `setMemory` (slots 0…n-1 in region order).
    public func setDirtyPageLogging(_ on: Bool, memory: GuestMemory) throws {
        for (i, r) in memory.regions.enumerated() {
            var region = kvm_userspace_memory_region(
                slot: UInt32(i), flags: on ? UInt32(KVM_MEM_LOG_DIRTY_PAGES) : 0,
                guest_phys_addr: r.guestAddress, memory_size: r.size,
                userspace_addr: UInt64(UInt(bitPattern: r.host)))
            _ = try check("KVM_SET_USER_MEMORY_REGION (dirty log \(on ? "on" : "off")) slot \(i)",
                          ckvm_set_user_memory_region(fd, &region))
        }
    }
}
