import CKVM
import Glibc

/// One virtual CPU: its fd, its `kvm_run` page, and its registers.
public final class VCPU: @unchecked Sendable {
    public let id: Int
    public let fd: Int32
    public unowned let vm: VirtualMachine
    private let state: UnsafeMutablePointer<kvm_run>
    private let runSize: Int

    init(vm: VirtualMachine, fd: Int32, id: Int) throws {
        self.vm = vm
        self.fd = fd
        self.id = id
        runSize = try vm.kvm.vcpuMmapSize()
        let p = mmap(nil, runSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        if p == MAP_FAILED || p == nil { throw KVMError("mmap kvm_run of vCPU \(id)", errno: errno) }
        state = p!.assumingMemoryBound(to: kvm_run.self)
    }

    deinit {
        munmap(state, runSize)
        close(fd)
    }

    /// Enter the guest until the next exit that userspace must handle.
    @inline(__always)
    public func run() throws -> VMExit {
        let r = ckvm_run(fd)
        if r < 0 {
            if r == -EINTR || r == -EAGAIN {
                state.pointee.immediate_exit = 0
                return .interrupted
            }
            throw KVMError("KVM_RUN on vCPU \(id)", errno: -r)
        }
        let raw = UnsafeMutableRawPointer(state)
        switch Int32(state.pointee.exit_reason) {
        case KVM_EXIT_IO:
            let io = state.pointee.io
            let len = Int(io.size) * Int(io.count)
            let data = UnsafeMutableRawBufferPointer(start: raw + Int(io.data_offset), count: len)
            if io.direction == UInt8(KVM_EXIT_IO_OUT) {
                return .ioOut(port: io.port, size: Int(io.size), count: Int(io.count), data: UnsafeRawBufferPointer(data))
            }
            return .ioIn(port: io.port, size: Int(io.size), count: Int(io.count), data: data)
        case KVM_EXIT_MMIO:
            let mmio = state.pointee.mmio
            let len = min(Int(mmio.len), 8)
            let data = UnsafeMutableRawBufferPointer(start: ckvm_run_mmio_data(state), count: len)
            if mmio.is_write != 0 {
                return .mmioWrite(address: mmio.phys_addr, size: len, data: UnsafeRawBufferPointer(data))
            }
            return .mmioRead(address: mmio.phys_addr, size: len, data: data)
        case KVM_EXIT_HLT:
            return .halt
        case KVM_EXIT_SHUTDOWN:
            return .shutdown
        case KVM_EXIT_INTR:
            return .interrupted
        case KVM_EXIT_INTERNAL_ERROR:
            let e = state.pointee.internal
            let n = min(Int(e.ndata), 16)
            let words = withUnsafeBytes(of: e.data) { Array($0.bindMemory(to: UInt64.self).prefix(n)) }
            return .internalError(suberror: e.suberror, data: words)
        case KVM_EXIT_FAIL_ENTRY:
            return .failEntry(reason: state.pointee.fail_entry.hardware_entry_failure_reason, cpu: state.pointee.fail_entry.cpu)
        case KVM_EXIT_SYSTEM_EVENT:
            let ev = state.pointee.system_event
            let n = min(Int(ev.ndata), 16)
            let words = withUnsafeBytes(of: ev.data) { Array($0.bindMemory(to: UInt64.self).prefix(n)) }
            return .systemEvent(type: ev.type, flags: words)
        case KVM_EXIT_DEBUG:
            return .debug
        case KVM_EXIT_IRQ_WINDOW_OPEN:
            return .irqWindowOpen
        default:
            return .other(reason: state.pointee.exit_reason)
        }
    }

    /// Make the next (or current) KVM_RUN return `.interrupted`. Safe from any thread;
    /// pair with `VCPUKicker.kick` to interrupt a vCPU that is inside the guest.
    public func requestImmediateExit() {
        withUnsafeMutablePointer(to: &state.pointee.immediate_exit) { p in
            // A plain store is enough: KVM reads it on entry, and the signal that follows
            // forces an exit if the thread is already in the guest.
            p.pointee = 1
        }
    }

    // MARK: registers

    public func getRegisters() throws -> kvm_regs {
        var r = kvm_regs()
        _ = try check("KVM_GET_REGS on vCPU \(id)", ckvm_get_regs(fd, &r))
        return r
    }

    public func setRegisters(_ regs: kvm_regs) throws {
        var r = regs
        _ = try check("KVM_SET_REGS on vCPU \(id)", ckvm_set_regs(fd, &r))
    }

    public func getSpecialRegisters() throws -> kvm_sregs {
        var s = kvm_sregs()
        _ = try check("KVM_GET_SREGS on vCPU \(id)", ckvm_get_sregs(fd, &s))
        return s
    }

    public func setSpecialRegisters(_ sregs: kvm_sregs) throws {
        var s = sregs
        _ = try check("KVM_SET_SREGS on vCPU \(id)", ckvm_set_sregs(fd, &s))
    }

    public func getFPU() throws -> kvm_fpu {
        var f = kvm_fpu()
        _ = try check("KVM_GET_FPU on vCPU \(id)", ckvm_get_fpu(fd, &f))
        return f
    }

    public func setFPU(_ fpu: kvm_fpu) throws {
        var f = fpu
        _ = try check("KVM_SET_FPU on vCPU \(id)", ckvm_set_fpu(fd, &f))
    }

    /// KVM_SET_MSRS; every entry must be accepted.
    public func setMSRs(_ entries: [(index: UInt32, value: UInt64)]) throws {
        guard let msrs = ckvm_msrs_alloc(UInt32(entries.count)) else { throw KVMError("KVM_SET_MSRS", errno: ENOMEM) }
        defer { free(msrs) }
        let dst = ckvm_msrs_entries(msrs)!
        for (i, e) in entries.enumerated() { dst[i] = kvm_msr_entry(index: e.index, reserved: 0, data: e.value) }
        let n = try check("KVM_SET_MSRS on vCPU \(id)", ckvm_set_msrs(fd, msrs))
        if Int(n) != entries.count {
            let failed = entries[Int(n)].index
            throw KVMError("KVM_SET_MSRS on vCPU \(id): MSR \(hex(failed)) refused", errno: EINVAL)
        }
    }

    public func getMSRs(_ indices: [UInt32]) throws -> [UInt64] {
        guard let msrs = ckvm_msrs_alloc(UInt32(indices.count)) else { throw KVMError("KVM_GET_MSRS", errno: ENOMEM) }
        defer { free(msrs) }
        let dst = ckvm_msrs_entries(msrs)!
        for (i, idx) in indices.enumerated() { dst[i] = kvm_msr_entry(index: idx, reserved: 0, data: 0) }
        _ = try check("KVM_GET_MSRS on vCPU \(id)", ckvm_get_msrs(fd, msrs))
        return (0..<indices.count).map { dst[$0].data }
    }

    public func setCPUID(_ entries: [kvm_cpuid_entry2]) throws {
        guard let c = ckvm_cpuid2_alloc(UInt32(entries.count)) else { throw KVMError("KVM_SET_CPUID2", errno: ENOMEM) }
        defer { free(c) }
        let dst = ckvm_cpuid2_entries(c)!
        for (i, e) in entries.enumerated() { dst[i] = e }
        _ = try check("KVM_SET_CPUID2 on vCPU \(id)", ckvm_set_cpuid2(fd, c))
    }

    public func getLAPIC() throws -> kvm_lapic_state {
        var l = kvm_lapic_state()
        _ = try check("KVM_GET_LAPIC on vCPU \(id)", ckvm_get_lapic(fd, &l))
        return l
    }

    public func setLAPIC(_ lapic: kvm_lapic_state) throws {
        var l = lapic
        _ = try check("KVM_SET_LAPIC on vCPU \(id)", ckvm_set_lapic(fd, &l))
    }

    public func getMPState() throws -> UInt32 {
        var s = kvm_mp_state()
        _ = try check("KVM_GET_MP_STATE on vCPU \(id)", ckvm_get_mp_state(fd, &s))
        return s.mp_state
    }

    public func setMPState(_ state: UInt32) throws {
        var s = kvm_mp_state(mp_state: state)
        _ = try check("KVM_SET_MP_STATE on vCPU \(id)", ckvm_set_mp_state(fd, &s))
    }

    public func getEvents() throws -> kvm_vcpu_events {
        var e = kvm_vcpu_events()
        _ = try check("KVM_GET_VCPU_EVENTS on vCPU \(id)", ckvm_get_vcpu_events(fd, &e))
        return e
    }

    public func setEvents(_ events: kvm_vcpu_events) throws {
        var e = events
        _ = try check("KVM_SET_VCPU_EVENTS on vCPU \(id)", ckvm_set_vcpu_events(fd, &e))
    }

    /// Guest-virtual → guest-physical through the vCPU's current page tables.
    public func translate(_ linear: UInt64) throws -> UInt64? {
        var t = kvm_translation()
        t.linear_address = linear
        _ = try check("KVM_TRANSLATE on vCPU \(id)", ckvm_translate(fd, &t))
        return t.valid != 0 ? t.physical_address : nil
    }

    public func tscKHz() -> Int? {
        let r = ckvm_get_tsc_khz(fd)
        return r > 0 ? Int(r) : nil
    }
}
