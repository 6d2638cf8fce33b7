// CKVM: one typed function per KVM ioctl swiftvmm uses, plus libc calls Swift cannot
// import (ioctl and fcntl are variadic). Every function returns the ioctl's result, or
// -errno on failure. No logic lives here.
#ifndef CKVM_H
#define CKVM_H

#include <linux/kvm.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/eventfd.h>

// ---- system (/dev/kvm) ----
int ckvm_get_api_version(int kvm_fd);
int ckvm_check_extension(int fd, long capability);
int ckvm_get_vcpu_mmap_size(int kvm_fd);
int ckvm_get_supported_cpuid(int kvm_fd, struct kvm_cpuid2 *cpuid);
int ckvm_get_msr_index_list(int kvm_fd, struct kvm_msr_list *list);
int ckvm_create_vm(int kvm_fd, unsigned long type);

// ---- VM ----
int ckvm_create_vcpu(int vm_fd, unsigned long id);
int ckvm_set_user_memory_region(int vm_fd, const struct kvm_userspace_memory_region *region);
int ckvm_create_irqchip(int vm_fd);
int ckvm_create_pit2(int vm_fd, const struct kvm_pit_config *config);
int ckvm_irq_line(int vm_fd, uint32_t irq, uint32_t level);
int ckvm_irqfd(int vm_fd, const struct kvm_irqfd *irqfd);
int ckvm_ioeventfd(int vm_fd, const struct kvm_ioeventfd *ioeventfd);
int ckvm_set_tss_addr(int vm_fd, unsigned long address);
int ckvm_set_identity_map_addr(int vm_fd, uint64_t address);
int ckvm_set_gsi_routing(int vm_fd, const struct kvm_irq_routing *routing);
int ckvm_get_dirty_log(int vm_fd, struct kvm_dirty_log *log);
int ckvm_enable_cap(int fd, const struct kvm_enable_cap *cap);
int ckvm_set_clock(int vm_fd, const struct kvm_clock_data *clock);

// ---- vCPU ----
int ckvm_run(int vcpu_fd);
/* Tell the guest (kvmclock) that it was paused, so its soft-lockup watchdog stays quiet. */
int ckvm_kvmclock_ctrl(int vcpu_fd);
int ckvm_get_regs(int vcpu_fd, struct kvm_regs *regs);
int ckvm_set_regs(int vcpu_fd, const struct kvm_regs *regs);
int ckvm_get_sregs(int vcpu_fd, struct kvm_sregs *sregs);
int ckvm_set_sregs(int vcpu_fd, const struct kvm_sregs *sregs);
int ckvm_get_fpu(int vcpu_fd, struct kvm_fpu *fpu);
int ckvm_set_fpu(int vcpu_fd, const struct kvm_fpu *fpu);
int ckvm_get_msrs(int vcpu_fd, struct kvm_msrs *msrs);
int ckvm_set_msrs(int vcpu_fd, const struct kvm_msrs *msrs);
int ckvm_set_cpuid2(int vcpu_fd, const struct kvm_cpuid2 *cpuid);
int ckvm_get_lapic(int vcpu_fd, struct kvm_lapic_state *lapic);
int ckvm_set_lapic(int vcpu_fd, const struct kvm_lapic_state *lapic);
int ckvm_get_mp_state(int vcpu_fd, struct kvm_mp_state *state);
int ckvm_set_mp_state(int vcpu_fd, const struct kvm_mp_state *state);
int ckvm_get_vcpu_events(int vcpu_fd, struct kvm_vcpu_events *events);
int ckvm_set_vcpu_events(int vcpu_fd, const struct kvm_vcpu_events *events);
int ckvm_set_tsc_khz(int vcpu_fd, unsigned long khz);
int ckvm_get_tsc_khz(int vcpu_fd);
int ckvm_translate(int vcpu_fd, struct kvm_translation *tr);
int ckvm_interrupt(int vcpu_fd, uint32_t irq);

// ---- flexible-array helpers (Swift cannot size these structs itself) ----
struct kvm_cpuid2 *ckvm_cpuid2_alloc(uint32_t nent);
struct kvm_msrs *ckvm_msrs_alloc(uint32_t nmsrs);
struct kvm_msr_list *ckvm_msr_list_alloc(uint32_t nmsrs);
struct kvm_irq_routing *ckvm_irq_routing_alloc(uint32_t nr);
static inline struct kvm_cpuid_entry2 *ckvm_cpuid2_entries(struct kvm_cpuid2 *c) { return c->entries; }
static inline struct kvm_msr_entry *ckvm_msrs_entries(struct kvm_msrs *m) { return m->entries; }
static inline uint32_t *ckvm_msr_list_indices(struct kvm_msr_list *l) { return l->indices; }
static inline struct kvm_irq_routing_entry *ckvm_irq_routing_entries(struct kvm_irq_routing *r) { return r->entries; }

// kvm_run's exit payloads live in an anonymous union, which Swift reaches only through
// copies; these give the address of the real bytes.
static inline uint8_t *ckvm_run_mmio_data(struct kvm_run *r) { return r->mmio.data; }

// ---- libc calls Swift cannot import ----
int ckvm_fcntl_setfl(int fd, int flags);
int ckvm_fcntl_getfl(int fd);
int ckvm_blkgetsize64(int fd, uint64_t *size);
int ckvm_get_winsize(int fd, unsigned short *rows, unsigned short *cols);
int ckvm_open_rw_cloexec(const char *path);
int ckvm_flock(int fd, int operation);

// Request numbers, for diagnostics and benchmarks.
static const unsigned long CKVM_REQ_RUN = KVM_RUN;
static const unsigned long CKVM_REQ_CREATE_VM = KVM_CREATE_VM;

#endif
