import CKVM

/// A classic-BPF seccomp program: the instructions the kernel runs on every system call.
public typealias BPFInstruction = ckvm_bpf_instruction

public enum SeccompProgram {
    /// The kernel's limit (BPF_MAXINSNS).
    public static let maxInstructions = 4096

    // BPF opcodes and seccomp constants (linux/filter.h, linux/seccomp.h, linux/audit.h).
    static let loadWordAbsolute: UInt16 = 0x20   // BPF_LD | BPF_W | BPF_ABS
    static let jumpIfEqual: UInt16 = 0x15        // BPF_JMP | BPF_JEQ | BPF_K
    static let returnConstant: UInt16 = 0x06     // BPF_RET | BPF_K
    static let retAllow: UInt32 = 0x7fff_0000    // SECCOMP_RET_ALLOW
    static let retTrap: UInt32 = 0x0003_0000     // SECCOMP_RET_TRAP: SIGSYS, reported by the handler
    static let retKillProcess: UInt32 = 0x8000_0000
    static let archX86_64: UInt32 = 0xC000_003E  // AUDIT_ARCH_X86_64
    // struct seccomp_data: nr at 0, arch at 4, args[i] at 16 + 8i (low half first).
    static let offsetNR: UInt32 = 0
    static let offsetArch: UInt32 = 4
    static func offsetArgumentLow(_ i: Int) -> UInt32 { 16 + 8 * UInt32(i) }

    /// Compile an allow-list. Layout: a wrong architecture (x32 numbers, int 0x80) kills
    /// the process; then per rule `if nr == N` either allow, or check the argument against
    /// each allowed value; anything else traps (SIGSYS: one line naming thread and call).
    /// Every jump is a skip of at most one instruction, so no offset can overflow 8 bits.
    public static func compile(_ rules: [SyscallRule]) throws(SeccompError) -> [BPFInstruction] {
        var p: [BPFInstruction] = [
            stmt(loadWordAbsolute, offsetArch),
            jump(archX86_64, ifTrue: 1, ifFalse: 0),
            stmt(returnConstant, retKillProcess),
            stmt(loadWordAbsolute, offsetNR),
        ]
        var names = Set<String>()
        for rule in rules {
            let nr = ckvm_syscall_number(rule.name)
            guard nr >= 0 else { throw .unknownSyscall(rule.name) }
            guard names.insert(rule.name).inserted else { throw .duplicateSyscall(rule.name) }
            guard let argument = rule.argumentIndex else {
                p += [jump(UInt32(nr), ifTrue: 0, ifFalse: 1), stmt(returnConstant, retAllow)]
                continue
            }
            for v in rule.allowedValues where v.value == 0 { throw .unknownIoctl(v.name) }
            // Skip the argument block when this is not the call; the block ends in a trap,
            // so it never falls through with the argument loaded instead of nr.
            let block = 1 + 2 * rule.allowedValues.count + 1
            guard block <= 255 else { throw .programTooLong(count: block) }
            p.append(jump(UInt32(nr), ifTrue: 0, ifFalse: UInt8(block)))
            p.append(stmt(loadWordAbsolute, offsetArgumentLow(argument)))
            for v in rule.allowedValues {
                p += [jump(v.value, ifTrue: 0, ifFalse: 1), stmt(returnConstant, retAllow)]
            }
            p.append(stmt(returnConstant, retTrap))
        }
        p.append(stmt(returnConstant, retTrap))
        guard p.count <= maxInstructions else { throw .programTooLong(count: p.count) }
        return p
    }

    static func stmt(_ code: UInt16, _ k: UInt32) -> BPFInstruction {
        BPFInstruction(code: code, jt: 0, jf: 0, k: k)
    }

    static func jump(_ k: UInt32, ifTrue: UInt8, ifFalse: UInt8) -> BPFInstruction {
        BPFInstruction(code: jumpIfEqual, jt: ifTrue, jf: ifFalse, k: k)
    }
}
