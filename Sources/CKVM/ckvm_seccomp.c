// Seccomp filter loading and the SIGSYS reporter (see ckvm_seccomp.h).
#define _GNU_SOURCE
#include "ckvm_seccomp.h"

#include <errno.h>
#include <pthread.h>
#include <linux/filter.h>
#include <linux/if_tun.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_SECCOMP
#define SYS_SECCOMP 1  // si_code of a seccomp trap (asm-generic/siginfo.h)
#endif

_Static_assert(sizeof(struct ckvm_bpf_instruction) == sizeof(struct sock_filter), "sock_filter layout");

int ckvm_seccomp_load(const struct ckvm_bpf_instruction *program, uint16_t count) {
    // A trapped call while SIGSYS is blocked (vCPU threads block all but their kick) is
    // killed by the kernel without a word: let it reach the reporter.
    sigset_t sys;
    sigemptyset(&sys);
    sigaddset(&sys, SIGSYS);
    int r = pthread_sigmask(SIG_UNBLOCK, &sys, 0);
    if (r != 0) return -r;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -errno;
    struct sock_fprog fprog = { .len = count, .filter = (struct sock_filter *)program };
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) return -errno;
    return 0;
}

static __thread char thread_kind[16] = "unnamed";
static void (*volatile sigsys_cleanup)(void);

void ckvm_seccomp_set_thread_kind(const char *kind) {
    size_t i = 0;
    for (; kind[i] && i < sizeof thread_kind - 1; i++) thread_kind[i] = kind[i];
    thread_kind[i] = 0;
}

static size_t append(char *buf, size_t at, size_t cap, const char *s) {
    while (*s && at < cap) buf[at++] = *s++;
    return at;
}

static size_t append_decimal(char *buf, size_t at, size_t cap, long v) {
    char digits[24];
    int n = 0;
    unsigned long u = v < 0 ? (unsigned long)(-(v + 1)) + 1 : (unsigned long)v;
    do { digits[n++] = (char)('0' + u % 10); u /= 10; } while (u);
    if (v < 0 && at < cap) buf[at++] = '-';
    while (n && at < cap) buf[at++] = digits[--n];
    return at;
}

static void on_sigsys(int sig, siginfo_t *info, void *context) {
    (void)sig; (void)context;
    char line[160];
    size_t n = 0, cap = sizeof line - 1;
    int nr = info->si_syscall;
    const char *name = ckvm_syscall_name(nr);
    n = append(line, n, cap, "swiftvmm: seccomp: ");
    n = append(line, n, cap, thread_kind);
    if (info->si_code == SYS_SECCOMP) {
        n = append(line, n, cap, " thread made a forbidden system call: ");
        n = append(line, n, cap, name ? name : "unknown");
        n = append(line, n, cap, " (");
        n = append_decimal(line, n, cap, nr);
        n = append(line, n, cap, ")\n");
    } else {
        n = append(line, n, cap, " thread received SIGSYS from outside\n");
    }
    // The raw syscall: write(2) is allowed in every filter; a failed write changes nothing.
    (void)syscall(SYS_write, 2, line, n);
    void (*cleanup)(void) = sigsys_cleanup;
    if (cleanup) cleanup();
    syscall(SYS_exit_group, CKVM_SECCOMP_EXIT_STATUS);
}

int ckvm_seccomp_install_sigsys_handler(void (*cleanup)(void)) {
    sigsys_cleanup = cleanup;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigsys;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigfillset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, 0) != 0) return -errno;
    return 0;
}

#include <linux/fs.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>

#define REQ(name) { #name, name }
static const struct { const char *name; uint32_t request; } ioctl_requests[] = {
    REQ(KVM_RUN), REQ(KVM_GET_REGS), REQ(KVM_SET_REGS), REQ(KVM_GET_SREGS), REQ(KVM_SET_SREGS),
    REQ(KVM_GET_FPU), REQ(KVM_SET_FPU), REQ(KVM_GET_MSRS), REQ(KVM_SET_MSRS),
    REQ(KVM_GET_LAPIC), REQ(KVM_SET_LAPIC), REQ(KVM_GET_MP_STATE), REQ(KVM_SET_MP_STATE),
    REQ(KVM_GET_VCPU_EVENTS), REQ(KVM_SET_VCPU_EVENTS), REQ(KVM_TRANSLATE), REQ(KVM_INTERRUPT),
    REQ(KVM_IRQ_LINE), REQ(KVM_IRQFD), REQ(KVM_IOEVENTFD), REQ(KVM_GET_DIRTY_LOG),
    REQ(KVM_SET_USER_MEMORY_REGION), REQ(KVM_GET_CLOCK), REQ(KVM_SET_CLOCK),
    REQ(KVM_KVMCLOCK_CTRL), REQ(KVM_CHECK_EXTENSION), REQ(KVM_GET_MSR_INDEX_LIST), REQ(KVM_GET_SUPPORTED_CPUID),
    REQ(KVM_GET_XSAVE2), REQ(KVM_GET_XCRS), REQ(KVM_GET_DEBUGREGS), REQ(KVM_GET_TSC_KHZ), REQ(KVM_GET_CPUID2),
    REQ(KVM_GET_IRQCHIP), REQ(KVM_GET_PIT2), REQ(BLKGETSIZE64),
    REQ(TCGETS), REQ(TCSETS), REQ(TCSETSW), REQ(TCSETSF), REQ(TIOCGWINSZ), REQ(FIONBIO), REQ(TUNSETOFFLOAD),
    REQ(TUNSETIFF), REQ(TUNSETVNETHDRSZ),
};

static int same(const char *a, const char *b) {
    while (*a && *a == *b) { a++; b++; }
    return *a == *b;
}

uint32_t ckvm_ioctl_request(const char *name) {
    for (size_t i = 0; i < sizeof ioctl_requests / sizeof ioctl_requests[0]; i++)
        if (same(ioctl_requests[i].name, name)) return ioctl_requests[i].request;
    return 0;
}
