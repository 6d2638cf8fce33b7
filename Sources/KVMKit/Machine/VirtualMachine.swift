import CKVM
import Glibc

/// A KVM virtual machine: memory slots, interrupt controllers, irqfds and ioeventfds.
public final class VirtualMachine: @unchecked Sendable {
    public let kvm: KVM
    public let fd: Int32
    public private(set) var memory: GuestMemory?
    private var nextSlot: UInt32 = 0

    init(kvm: KVM, fd: Int32) {
        self.kvm = kvm
        self.fd = fd
    }

    deinit { close(fd) }

    /// Register every region of `memory` as a KVM memory slot. Call once.
    public func setMemory(_ memory: GuestMemory, logDirtyPages: Bool = false) throws {
        for r in memory.regions {
            var region = kvm_userspace_memory_region(
                slot: nextSlot, flags: logDirtyPages ? UInt32(KVM_MEM_LOG_DIRTY_PAGES) : 0,
                guest_phys_addr: r.guestAddress, memory_size: r.size,
                userspace_addr: UInt64(UInt(bitPattern: r.host)))
            _ = try check("KVM_SET_USER_MEMORY_REGION slot \(nextSlot) at \(hex(r.guestAddress))",
                          ckvm_set_user_memory_region(fd, &region))
            nextSlot += 1
        }
        self.memory = memory
    }

    /// In-kernel PIC, IOAPIC and LAPICs.
    public func createIRQChip() throws {
        _ = try check("KVM_CREATE_IRQCHIP", ckvm_create_irqchip(fd))
    }

    /// In-kernel i8254 PIT; `speakerDummy` answers port 0x61 in the kernel.
    public func createPIT2(speakerDummy: Bool = true) throws {
        var config = kvm_pit_config()
        config.flags = speakerDummy ? UInt32(KVM_PIT_SPEAKER_DUMMY) : 0
        _ = try check("KVM_CREATE_PIT2", ckvm_create_pit2(fd, &config))
    }

    /// Intel VMX needs three pages for the real-mode TSS; harmless elsewhere.
    public func setTSSAddress(_ address: UInt64) throws {
        _ = try check("KVM_SET_TSS_ADDR", ckvm_set_tss_addr(fd, UInt(address)))
    }

    public func setIdentityMapAddress(_ address: UInt64) throws {
        _ = try check("KVM_SET_IDENTITY_MAP_ADDR", ckvm_set_identity_map_addr(fd, address))
    }

    public func setIRQLine(_ gsi: UInt32, high: Bool) throws {
        _ = try check("KVM_IRQ_LINE \(gsi)", ckvm_irq_line(fd, gsi, high ? 1 : 0))
    }

    /// Route writes to `eventFD` into an interrupt on `gsi` (edge). With `resampleFD`,
    /// the line is level-triggered and KVM signals `resampleFD` on EOI.
    public func registerIRQFD(eventFD: Int32, gsi: UInt32, resampleFD: Int32? = nil) throws {
        var req = kvm_irqfd()
        req.fd = UInt32(bitPattern: eventFD)
        req.gsi = gsi
        if let r = resampleFD {
            req.flags = UInt32(KVM_IRQFD_FLAG_RESAMPLE)
            req.resamplefd = UInt32(bitPattern: r)
        }
        _ = try check("KVM_IRQFD gsi \(gsi)", ckvm_irqfd(fd, &req))
    }

    public func unregisterIRQFD(eventFD: Int32, gsi: UInt32) throws {
        var req = kvm_irqfd()
        req.fd = UInt32(bitPattern: eventFD)
        req.gsi = gsi
        req.flags = UInt32(KVM_IRQFD_FLAG_DEASSIGN)
        _ = try check("KVM_IRQFD deassign gsi \(gsi)", ckvm_irqfd(fd, &req))
    }

    /// Signal `eventFD` on a guest write of `length` bytes at `address` (MMIO, or a port
    /// with `pio`), optionally only when the written value equals `dataMatch`. The write
    /// completes in the kernel without an exit to userspace.
    public func registerIOEventFD(eventFD: Int32, address: UInt64, length: UInt32, dataMatch: UInt64? = nil, pio: Bool = false) throws {
        var req = kvm_ioeventfd()
        req.addr = address
        req.len = length
        req.fd = eventFD
        var flags: UInt32 = 0
        if pio { flags |= UInt32(1 << kvm_ioeventfd_flag_nr_pio) }
        if let d = dataMatch {
            flags |= UInt32(1 << kvm_ioeventfd_flag_nr_datamatch)
            req.datamatch = d
        }
        req.flags = flags
        _ = try check("KVM_IOEVENTFD at \(hex(address))", ckvm_ioeventfd(fd, &req))
    }

    /// Enable a VM capability (KVM_ENABLE_CAP).
    public func enableCapability(_ cap: Int32, args: [UInt64] = []) throws {
        var req = kvm_enable_cap()
        req.cap = UInt32(cap)
        withUnsafeMutableBytes(of: &req.args) { raw in
            for (i, a) in args.prefix(4).enumerated() { raw.storeBytes(of: a, toByteOffset: i * 8, as: UInt64.self) }
        }
        _ = try check("KVM_ENABLE_CAP \(cap)", ckvm_enable_cap(fd, &req))
    }

    /// Dirty-page bitmap of a memory slot registered with `logDirtyPages`.
    public func dirtyLog(slot: UInt32, pages: Int) throws -> [UInt64] {
        var bitmap = [UInt64](repeating: 0, count: (pages + 63) / 64)
        try bitmap.withUnsafeMutableBytes { buf in
            var log = kvm_dirty_log()
            log.slot = slot
            log.dirty_bitmap = buf.baseAddress
            _ = try check("KVM_GET_DIRTY_LOG slot \(slot)", ckvm_get_dirty_log(fd, &log))
        }
        return bitmap
    }

    /// Replace the GSI routing table with IOAPIC/PIC pin routes (and MSI routes if given).
    public func setGSIRouting(_ entries: [kvm_irq_routing_entry]) throws {
        guard let table = ckvm_irq_routing_alloc(UInt32(entries.count)) else { throw KVMError("KVM_SET_GSI_ROUTING", errno: ENOMEM) }
        defer { free(table) }
        let dst = ckvm_irq_routing_entries(table)!
        for (i, e) in entries.enumerated() { dst[i] = e }
        _ = try check("KVM_SET_GSI_ROUTING", ckvm_set_gsi_routing(fd, table))
    }

    public func createVCPU(id: Int) throws -> VCPU {
        let vcpufd = try check("KVM_CREATE_VCPU \(id)", ckvm_create_vcpu(fd, UInt(id)))
        do {
            return try VCPU(vm: self, fd: vcpufd, id: id)
        } catch {
            close(vcpufd)
            throw error
        }
    }
}
