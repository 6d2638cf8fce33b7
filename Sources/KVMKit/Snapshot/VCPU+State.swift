import CKVM
import Glibc

extension VCPU {
    /// Read the complete state of a vCPU that is out of KVM_RUN (paused or never run).
    public func captureState(msrIndices: [UInt32]) throws -> VCPUState {
        let kvm = vm.kvm
        var xsave: [UInt8] = []
        if let size = kvm.xsaveSize {
            xsave = [UInt8](repeating: 0, count: size)
            let useV2 = kvm.hasXSAVE2
            _ = try xsave.withUnsafeMutableBytes { b in
                try check("KVM_GET_XSAVE on vCPU \(id)", useV2 ? ckvm_get_xsave2(fd, b.baseAddress) : ckvm_get_xsave(fd, b.baseAddress))
            }
        }
        var xcrs = kvm_xcrs()
        if kvm.checkExtension(KVM_CAP_XCRS) > 0 { _ = try check("KVM_GET_XCRS on vCPU \(id)", ckvm_get_xcrs(fd, &xcrs)) }
        var debug = kvm_debugregs()
        _ = try check("KVM_GET_DEBUGREGS on vCPU \(id)", ckvm_get_debugregs(fd, &debug))
        return VCPUState(
            id: UInt32(id), regs: try getRegisters(), sregs: try getSpecialRegisters(), fpu: try getFPU(), xsave: xsave,
            xcrs: xcrs, debugRegisters: debug, msrs: try readableMSRs(msrIndices), lapic: try getLAPIC(),
            mpState: try getMPState(), events: try getEvents(), tscKHz: UInt32(tscKHz() ?? 0), cpuid: try getCPUID())
    }

    /// Put a captured state on a fresh vCPU, in the order Firecracker uses (CPUID first:
    /// KVM checks later state against it; MSRs after the LAPIC; events last).
    public func restoreState(_ s: VCPUState) throws {
        if s.tscKHz != 0, let current = tscKHz(), UInt32(current) != s.tscKHz {
            _ = try check("KVM_SET_TSC_KHZ \(s.tscKHz) on vCPU \(id)", ckvm_set_tsc_khz(fd, UInt(s.tscKHz)))
        }
        try setCPUID(s.cpuid.map(\.kvm))
        try setMPState(s.mpState)
        try setRegisters(s.regs)
        try setSpecialRegisters(s.sregs)
        try setFPU(s.fpu)
        if !s.xsave.isEmpty {
            let size = vm.kvm.xsaveSize ?? 0
            guard s.xsave.count <= size else {
                throw KVMError("KVM_SET_XSAVE on vCPU \(id): saved area is \(s.xsave.count) bytes, this host holds \(size)", errno: EINVAL)
            }
            var area = s.xsave + [UInt8](repeating: 0, count: size - s.xsave.count)
            _ = try area.withUnsafeMutableBytes { try check("KVM_SET_XSAVE on vCPU \(id)", ckvm_set_xsave(fd, $0.baseAddress)) }
        }
        if s.xcrs.nr_xcrs > 0 {
            var x = s.xcrs
            _ = try check("KVM_SET_XCRS on vCPU \(id)", ckvm_set_xcrs(fd, &x))
        }
        var debug = s.debugRegisters
        _ = try check("KVM_SET_DEBUGREGS on vCPU \(id)", ckvm_set_debugregs(fd, &debug))
        try setLAPIC(s.lapic)
        try setMSRs(s.msrs.map { ($0.index, $0.value) })
        try setEvents(s.events)
    }

    /// KVM_GET_CPUID2: the CPUID this vCPU was given.
    public func getCPUID() throws -> [CPUIDEntry] {
        var n: UInt32 = 128
        while n <= 4096 {
            guard let buf = ckvm_cpuid2_alloc(n) else { throw KVMError("KVM_GET_CPUID2", errno: ENOMEM) }
            defer { free(buf) }
            let r = ckvm_get_cpuid2(fd, buf)
            if r == -E2BIG { n *= 2; continue }
            _ = try check("KVM_GET_CPUID2 on vCPU \(id)", r)
            let entries = ckvm_cpuid2_entries(buf)!
            return (0..<Int(buf.pointee.nent)).map { CPUIDEntry(entries[$0]) }
        }
        throw KVMError("KVM_GET_CPUID2 on vCPU \(id): more than 4096 entries", errno: E2BIG)
    }

    /// The listed MSRs this vCPU lets us read. KVM_GET_MSRS stops at the first MSR it
    /// refuses (its result is the count read); skip that one and carry on.
    private func readableMSRs(_ indices: [UInt32]) throws -> [MSREntry] {
        var out: [MSREntry] = []
        var rest = indices[...]
        while !rest.isEmpty {
            let batch = Array(rest)
            guard let msrs = ckvm_msrs_alloc(UInt32(batch.count)) else { throw KVMError("KVM_GET_MSRS", errno: ENOMEM) }
            defer { free(msrs) }
            let entries = ckvm_msrs_entries(msrs)!
            for (i, index) in batch.enumerated() { entries[i] = kvm_msr_entry(index: index, reserved: 0, data: 0) }
            let n = Int(try check("KVM_GET_MSRS on vCPU \(id)", ckvm_get_msrs(fd, msrs)))
            for i in 0..<min(n, batch.count) { out.append(MSREntry(index: entries[i].index, value: entries[i].data)) }
            rest = rest.dropFirst(n + 1)
        }
        return out
    }
}
