import CKVM

// Conversions from the pure boot values to KVM's plain C structs. No ioctls here.

extension SegmentState {
    public var kvm: kvm_segment {
        var s = kvm_segment()
        s.base = base
        s.limit = limit
        s.selector = selector
        s.type = type
        s.present = present ? 1 : 0
        s.dpl = dpl
        s.db = defaultBig ? 1 : 0
        s.s = system ? 0 : 1
        s.l = long ? 1 : 0
        s.g = granularity ? 1 : 0
        s.avl = available ? 1 : 0
        s.unusable = unusable ? 1 : 0
        return s
    }
}

extension EntryState {
    /// Overwrite segments, descriptor tables, control registers and EFER in `sregs`
    /// (start from KVM_GET_SREGS so apic_base and the interrupt bitmap stay KVM's).
    public func apply(to sregs: inout kvm_sregs) {
        sregs.cs = cs.kvm
        sregs.ds = ds.kvm
        sregs.es = es.kvm
        sregs.fs = fs.kvm
        sregs.gs = gs.kvm
        sregs.ss = ss.kvm
        sregs.tr = tr.kvm
        sregs.ldt = ldt.kvm
        sregs.gdt.base = gdtBase
        sregs.gdt.limit = gdtLimit
        sregs.idt.base = idtBase
        sregs.idt.limit = idtLimit
        sregs.cr0 = cr0
        sregs.cr3 = cr3
        sregs.cr4 = cr4
        sregs.efer = efer
    }

    /// General registers at entry; everything not named is zero (the 32-bit protocols
    /// want EBP/EDI zero, and nothing else is defined).
    public var kvmRegs: kvm_regs {
        var r = kvm_regs()
        r.rip = rip
        r.rsi = rsi
        r.rbx = rbx
        r.rsp = rsp
        r.rflags = rflags
        return r
    }
}

extension CPUIDEntry {
    public init(_ e: kvm_cpuid_entry2) {
        self.init(function: e.function, index: e.index, flags: e.flags, eax: e.eax, ebx: e.ebx, ecx: e.ecx, edx: e.edx)
    }

    public var kvm: kvm_cpuid_entry2 {
        var e = kvm_cpuid_entry2()
        e.function = function
        e.index = index
        e.flags = flags
        e.eax = eax
        e.ebx = ebx
        e.ecx = ecx
        e.edx = edx
        return e
    }
}

extension FPUState {
    public var kvm: kvm_fpu {
        var f = kvm_fpu()
        f.fcw = fcw
        f.mxcsr = mxcsr
        return f
    }
}

extension BootLAPIC {
    /// Apply `configureLINT` to the state from KVM_GET_LAPIC; pass the result to KVM_SET_LAPIC.
    public static func configureLINT(_ lapic: inout kvm_lapic_state) {
        var bytes = withUnsafeBytes(of: lapic.regs) { Array($0) }
        configureLINT(&bytes)
        withUnsafeMutableBytes(of: &lapic.regs) { $0.copyBytes(from: bytes) }
    }
}
