import CKVM

/// Text for a guest that died: the reason line and a register dump.
public enum CrashReport {
    public static func registerDump(_ vcpu: VCPU, memory: GuestMemory) -> String {
        guard let r = try? vcpu.getRegisters(), let s = try? vcpu.getSpecialRegisters() else {
            return "(registers unavailable)"
        }
        func h(_ v: UInt64) -> String {
            let t = String(v, radix: 16)
            return String(repeating: "0", count: max(0, 16 - t.count)) + t
        }
        var lines = [
            "vCPU \(vcpu.id) registers:",
            "RIP=\(h(r.rip)) RSP=\(h(r.rsp)) RFLAGS=\(h(r.rflags))",
            "RAX=\(h(r.rax)) RBX=\(h(r.rbx)) RCX=\(h(r.rcx)) RDX=\(h(r.rdx))",
            "RSI=\(h(r.rsi)) RDI=\(h(r.rdi)) RBP=\(h(r.rbp)) R8 =\(h(r.r8))",
            "R9 =\(h(r.r9)) R10=\(h(r.r10)) R11=\(h(r.r11)) R12=\(h(r.r12))",
            "R13=\(h(r.r13)) R14=\(h(r.r14)) R15=\(h(r.r15))",
            "CS=\(String(s.cs.selector, radix: 16)) base=\(h(s.cs.base)) L=\(s.cs.l) DB=\(s.cs.db)  SS=\(String(s.ss.selector, radix: 16))",
            "CR0=\(h(s.cr0)) CR2=\(h(s.cr2)) CR3=\(h(s.cr3)) CR4=\(h(s.cr4)) EFER=\(h(s.efer))",
        ]
        if let bytes = instructionBytes(vcpu, memory: memory, rip: r.rip, csBase: s.cs.base) {
            lines.append("code at RIP: " + bytes.map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }

    /// Up to 16 bytes at the guest's RIP, through its page tables.
    static func instructionBytes(_ vcpu: VCPU, memory: GuestMemory, rip: UInt64, csBase: UInt64) -> [UInt8]? {
        let linear = csBase &+ rip
        guard let phys = (try? vcpu.translate(linear)) ?? nil else { return nil }
        for n in stride(from: 16, through: 1, by: -1) {
            if let b = try? memory.readBytes(at: phys, count: n) { return b }
        }
        return nil
    }

    static func internalErrorText(_ vcpu: VCPU, suberror: UInt32, data: [UInt64], memory: GuestMemory) -> String {
        let rip = (try? vcpu.getRegisters().rip) ?? 0
        let what: String
        switch Int32(suberror) {
        case KVM_INTERNAL_ERROR_EMULATION: what = "instruction emulation failed"
        case KVM_INTERNAL_ERROR_SIMUL_EX: what = "exception while delivering an exception"
        case KVM_INTERNAL_ERROR_DELIVERY_EV: what = "event delivery failed"
        default: what = "internal error \(suberror)"
        }
        return "vCPU \(vcpu.id): KVM \(what) at RIP \(hex(rip))"
    }
}
