import CKVM

/// One saved MSR.
public struct MSREntry: Equatable, Sendable, StateCodable {
    public var index: UInt32
    public var value: UInt64

    public init(index: UInt32, value: UInt64) {
        self.index = index
        self.value = value
    }

    public func encode(to w: inout StateWriter) { w.write(index); w.write(value) }
    public init(from r: inout StateReader) throws {
        index = try r.read(UInt32.self, "MSR index")
        value = try r.read(UInt64.self, "MSR value")
    }
}

extension CPUIDEntry: StateCodable, @unchecked Sendable {
    public func encode(to w: inout StateWriter) {
        for v in [function, index, flags, eax, ebx, ecx, edx] { w.write(v) }
    }
    public init(from r: inout StateReader) throws {
        self.init(function: try r.read(UInt32.self, "CPUID function"))
        index = try r.read(UInt32.self, "CPUID index")
        flags = try r.read(UInt32.self, "CPUID flags")
        eax = try r.read(UInt32.self, "CPUID eax")
        ebx = try r.read(UInt32.self, "CPUID ebx")
        ecx = try r.read(UInt32.self, "CPUID ecx")
        edx = try r.read(UInt32.self, "CPUID edx")
    }
}

/// Everything KVM holds for one vCPU: registers, FPU/XSAVE and XCRs, debug registers,
/// the saveable MSRs, local APIC, MP state, pending events, TSC frequency and the CPUID
/// it was given. The KVM structs are kept as KVM's own (x86-64, stable ABI) layouts.
public struct VCPUState: Sendable, StateCodable {
    public var id: UInt32
    public var regs: kvm_regs
    public var sregs: kvm_sregs
    public var fpu: kvm_fpu
    /// The XSAVE area; empty when the host has no XSAVE.
    public var xsave: [UInt8]
    public var xcrs: kvm_xcrs
    public var debugRegisters: kvm_debugregs
    public var msrs: [MSREntry]
    public var lapic: kvm_lapic_state
    public var mpState: UInt32
    public var events: kvm_vcpu_events
    /// TSC frequency in kHz; 0 when KVM did not say.
    public var tscKHz: UInt32
    public var cpuid: [CPUIDEntry]

    public func encode(to w: inout StateWriter) {
        w.write(id)
        w.writePOD(regs)
        w.writePOD(sregs)
        w.writePOD(fpu)
        w.write(bytes: xsave)
        w.writePOD(xcrs)
        w.writePOD(debugRegisters)
        w.write(msrs)
        w.writePOD(lapic)
        w.write(mpState)
        w.writePOD(events)
        w.write(tscKHz)
        w.write(cpuid)
    }

    public init(from r: inout StateReader) throws {
        id = try r.read(UInt32.self, "vCPU id")
        regs = try r.readPOD(kvm_regs.self, "registers")
        sregs = try r.readPOD(kvm_sregs.self, "special registers")
        fpu = try r.readPOD(kvm_fpu.self, "FPU")
        xsave = try r.readBytes("XSAVE area", limit: 1 << 20)
        xcrs = try r.readPOD(kvm_xcrs.self, "XCRs")
        if xcrs.nr_xcrs > UInt32(KVM_MAX_XCRS) {
            throw StateDecodingError.invalid(context: "\(r.context) XCRs", detail: "\(xcrs.nr_xcrs) entries, at most \(KVM_MAX_XCRS)")
        }
        debugRegisters = try r.readPOD(kvm_debugregs.self, "debug registers")
        msrs = try r.readArray(MSREntry.self, "MSRs", limit: 16384)
        lapic = try r.readPOD(kvm_lapic_state.self, "local APIC")
        mpState = try r.read(UInt32.self, "MP state")
        events = try r.readPOD(kvm_vcpu_events.self, "vCPU events")
        tscKHz = try r.read(UInt32.self, "TSC kHz")
        cpuid = try r.readArray(CPUIDEntry.self, "CPUID", limit: 4096)
    }

    public init(id: UInt32, regs: kvm_regs, sregs: kvm_sregs, fpu: kvm_fpu, xsave: [UInt8], xcrs: kvm_xcrs,
                debugRegisters: kvm_debugregs, msrs: [MSREntry], lapic: kvm_lapic_state, mpState: UInt32,
                events: kvm_vcpu_events, tscKHz: UInt32, cpuid: [CPUIDEntry]) {
        self.id = id; self.regs = regs; self.sregs = sregs; self.fpu = fpu; self.xsave = xsave; self.xcrs = xcrs
        self.debugRegisters = debugRegisters; self.msrs = msrs; self.lapic = lapic; self.mpState = mpState
        self.events = events; self.tscKHz = tscKHz; self.cpuid = cpuid
    }
}
