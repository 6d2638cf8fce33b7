// Seccomp plumbing Swift cannot do itself: loading a BPF program (prctl and the seccomp
// syscall are variadic or absent from Glibc's module) and the SIGSYS handler, which must be
// async-signal-safe and so is C. The filters themselves are built in Swift (KVMKit/Sandbox).
#ifndef CKVM_SECCOMP_H
#define CKVM_SECCOMP_H

#include <stdint.h>

// The exit status after a forbidden system call: 128 + SIGSYS, what a shell reports for a
// process killed by SIGSYS.
#define CKVM_SECCOMP_EXIT_STATUS 159

// One classic-BPF instruction, laid out as the kernel's struct sock_filter.
struct ckvm_bpf_instruction {
    uint16_t code;
    uint8_t jt;
    uint8_t jf;
    uint32_t k;
};

// prctl(PR_SET_NO_NEW_PRIVS) then seccomp(SECCOMP_SET_MODE_FILTER) on the calling thread.
// 0 or -errno.
int ckvm_seccomp_load(const struct ckvm_bpf_instruction *program, uint16_t count);

// Install the process-wide SIGSYS handler (idempotent). On a trapped system call it writes
// "swiftvmm: seccomp: <kind> thread made a forbidden system call: <name> (<nr>)" to
// stderr, runs `cleanup` (async-signal-safe; may be NULL), and ends the process with
// CKVM_SECCOMP_EXIT_STATUS. 0 or -errno.
int ckvm_seccomp_install_sigsys_handler(void (*cleanup)(void));

// Name the calling thread's kind for the SIGSYS line (copied; at most 15 bytes kept).
void ckvm_seccomp_set_thread_kind(const char *kind);

// The ioctl request number with this name (KVM_RUN, TCSETS, ...), for argument checks;
// 0 when the name is not one the filters know.
uint32_t ckvm_ioctl_request(const char *name);

// The x86-64 system call with this number / name (NULL / -1 when unknown).
const char *ckvm_syscall_name(int number);
int ckvm_syscall_number(const char *name);

#endif
