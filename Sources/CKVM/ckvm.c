#define _GNU_SOURCE
#include "ckvm.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <termios.h>

#define IOCTL(fd, req, arg) do { int r_ = ioctl((fd), (req), (arg)); return r_ < 0 ? -errno : r_; } while (0)

int ckvm_get_api_version(int fd) { IOCTL(fd, KVM_GET_API_VERSION, 0); }
int ckvm_check_extension(int fd, long cap) { IOCTL(fd, KVM_CHECK_EXTENSION, cap); }
int ckvm_get_vcpu_mmap_size(int fd) { IOCTL(fd, KVM_GET_VCPU_MMAP_SIZE, 0); }
int ckvm_get_supported_cpuid(int fd, struct kvm_cpuid2 *c) { IOCTL(fd, KVM_GET_SUPPORTED_CPUID, c); }
int ckvm_get_msr_index_list(int fd, struct kvm_msr_list *l) { IOCTL(fd, KVM_GET_MSR_INDEX_LIST, l); }
int ckvm_create_vm(int fd, unsigned long type) { IOCTL(fd, KVM_CREATE_VM, type); }

int ckvm_create_vcpu(int fd, unsigned long id) { IOCTL(fd, KVM_CREATE_VCPU, id); }
int ckvm_set_user_memory_region(int fd, const struct kvm_userspace_memory_region *r) { IOCTL(fd, KVM_SET_USER_MEMORY_REGION, r); }
int ckvm_create_irqchip(int fd) { IOCTL(fd, KVM_CREATE_IRQCHIP, 0); }
int ckvm_create_pit2(int fd, const struct kvm_pit_config *c) { IOCTL(fd, KVM_CREATE_PIT2, c); }
int ckvm_irq_line(int fd, uint32_t irq, uint32_t level) {
    struct kvm_irq_level l = { .irq = irq, .level = level };
    IOCTL(fd, KVM_IRQ_LINE, &l);
}
int ckvm_irqfd(int fd, const struct kvm_irqfd *i) { IOCTL(fd, KVM_IRQFD, i); }
int ckvm_ioeventfd(int fd, const struct kvm_ioeventfd *i) { IOCTL(fd, KVM_IOEVENTFD, i); }
int ckvm_set_tss_addr(int fd, unsigned long a) { IOCTL(fd, KVM_SET_TSS_ADDR, a); }
int ckvm_set_identity_map_addr(int fd, uint64_t a) { IOCTL(fd, KVM_SET_IDENTITY_MAP_ADDR, &a); }
int ckvm_set_gsi_routing(int fd, const struct kvm_irq_routing *r) { IOCTL(fd, KVM_SET_GSI_ROUTING, r); }
int ckvm_get_dirty_log(int fd, struct kvm_dirty_log *l) { IOCTL(fd, KVM_GET_DIRTY_LOG, l); }
int ckvm_enable_cap(int fd, const struct kvm_enable_cap *c) { IOCTL(fd, KVM_ENABLE_CAP, c); }
int ckvm_set_clock(int fd, const struct kvm_clock_data *c) { IOCTL(fd, KVM_SET_CLOCK, c); }

int ckvm_run(int fd) { IOCTL(fd, KVM_RUN, 0); }
int ckvm_kvmclock_ctrl(int fd) { IOCTL(fd, KVM_KVMCLOCK_CTRL, 0); }
int ckvm_get_regs(int fd, struct kvm_regs *r) { IOCTL(fd, KVM_GET_REGS, r); }
int ckvm_set_regs(int fd, const struct kvm_regs *r) { IOCTL(fd, KVM_SET_REGS, r); }
int ckvm_get_sregs(int fd, struct kvm_sregs *s) { IOCTL(fd, KVM_GET_SREGS, s); }
int ckvm_set_sregs(int fd, const struct kvm_sregs *s) { IOCTL(fd, KVM_SET_SREGS, s); }
int ckvm_get_fpu(int fd, struct kvm_fpu *f) { IOCTL(fd, KVM_GET_FPU, f); }
int ckvm_set_fpu(int fd, const struct kvm_fpu *f) { IOCTL(fd, KVM_SET_FPU, f); }
int ckvm_get_msrs(int fd, struct kvm_msrs *m) { IOCTL(fd, KVM_GET_MSRS, m); }
int ckvm_set_msrs(int fd, const struct kvm_msrs *m) { IOCTL(fd, KVM_SET_MSRS, m); }
int ckvm_set_cpuid2(int fd, const struct kvm_cpuid2 *c) { IOCTL(fd, KVM_SET_CPUID2, c); }
int ckvm_get_lapic(int fd, struct kvm_lapic_state *l) { IOCTL(fd, KVM_GET_LAPIC, l); }
int ckvm_set_lapic(int fd, const struct kvm_lapic_state *l) { IOCTL(fd, KVM_SET_LAPIC, l); }
int ckvm_get_mp_state(int fd, struct kvm_mp_state *s) { IOCTL(fd, KVM_GET_MP_STATE, s); }
int ckvm_set_mp_state(int fd, const struct kvm_mp_state *s) { IOCTL(fd, KVM_SET_MP_STATE, s); }
int ckvm_get_vcpu_events(int fd, struct kvm_vcpu_events *e) { IOCTL(fd, KVM_GET_VCPU_EVENTS, e); }
int ckvm_set_vcpu_events(int fd, const struct kvm_vcpu_events *e) { IOCTL(fd, KVM_SET_VCPU_EVENTS, e); }
int ckvm_set_tsc_khz(int fd, unsigned long khz) { IOCTL(fd, KVM_SET_TSC_KHZ, khz); }
int ckvm_get_tsc_khz(int fd) { IOCTL(fd, KVM_GET_TSC_KHZ, 0); }
int ckvm_translate(int fd, struct kvm_translation *t) { IOCTL(fd, KVM_TRANSLATE, t); }
int ckvm_interrupt(int fd, uint32_t irq) { struct kvm_interrupt i = { .irq = irq }; IOCTL(fd, KVM_INTERRUPT, &i); }

struct kvm_cpuid2 *ckvm_cpuid2_alloc(uint32_t n) {
    struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));
    if (c) c->nent = n;
    return c;
}
struct kvm_msrs *ckvm_msrs_alloc(uint32_t n) {
    struct kvm_msrs *m = calloc(1, sizeof(*m) + n * sizeof(struct kvm_msr_entry));
    if (m) m->nmsrs = n;
    return m;
}
struct kvm_msr_list *ckvm_msr_list_alloc(uint32_t n) {
    struct kvm_msr_list *l = calloc(1, sizeof(*l) + n * sizeof(uint32_t));
    if (l) l->nmsrs = n;
    return l;
}
struct kvm_irq_routing *ckvm_irq_routing_alloc(uint32_t n) {
    struct kvm_irq_routing *r = calloc(1, sizeof(*r) + n * sizeof(struct kvm_irq_routing_entry));
    if (r) r->nr = n;
    return r;
}

int ckvm_fcntl_setfl(int fd, int flags) { int r = fcntl(fd, F_SETFL, flags); return r < 0 ? -errno : r; }
int ckvm_fcntl_getfl(int fd) { int r = fcntl(fd, F_GETFL); return r < 0 ? -errno : r; }
int ckvm_blkgetsize64(int fd, uint64_t *size) { IOCTL(fd, BLKGETSIZE64, size); }
int ckvm_get_winsize(int fd, unsigned short *rows, unsigned short *cols) {
    struct winsize w;
    int r = ioctl(fd, TIOCGWINSZ, &w);
    if (r < 0) return -errno;
    *rows = w.ws_row; *cols = w.ws_col;
    return 0;
}
int ckvm_open_rw_cloexec(const char *path) { int r = open(path, O_RDWR | O_CLOEXEC); return r < 0 ? -errno : r; }
int ckvm_flock(int fd, int op) { int r = flock(fd, op); return r < 0 ? -errno : r; }
