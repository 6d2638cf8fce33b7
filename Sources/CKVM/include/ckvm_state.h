// The ioctls that read and write a VM's complete state (snapshots, migration) and its
// dirty-page log. Same conventions as ckvm.h: one function per ioctl, -errno on failure.
#ifndef CKVM_STATE_H
#define CKVM_STATE_H

#include <linux/kvm.h>
#include <stdint.h>
#include <stddef.h>

// ---- vCPU ----
// KVM_GET_XSAVE2 (buffer of KVM_CAP_XSAVE2 bytes) or KVM_GET_XSAVE (4096 bytes).
int ckvm_get_xsave2(int vcpu_fd, void *buffer);
int ckvm_get_xsave(int vcpu_fd, void *buffer);
int ckvm_set_xsave(int vcpu_fd, const void *buffer);
int ckvm_get_xcrs(int vcpu_fd, struct kvm_xcrs *xcrs);
int ckvm_set_xcrs(int vcpu_fd, const struct kvm_xcrs *xcrs);
int ckvm_get_debugregs(int vcpu_fd, struct kvm_debugregs *regs);
int ckvm_set_debugregs(int vcpu_fd, const struct kvm_debugregs *regs);
int ckvm_get_cpuid2(int vcpu_fd, struct kvm_cpuid2 *cpuid);

// ---- VM ----
int ckvm_get_irqchip(int vm_fd, struct kvm_irqchip *chip);
int ckvm_set_irqchip(int vm_fd, const struct kvm_irqchip *chip);
int ckvm_get_pit2(int vm_fd, struct kvm_pit_state2 *pit);
int ckvm_set_pit2(int vm_fd, const struct kvm_pit_state2 *pit);
int ckvm_get_clock(int vm_fd, struct kvm_clock_data *clock);

// Atomic OR into a dirty bitmap word (device writes may race with each other).
static inline void ckvm_atomic_or_u64(uint64_t *word, uint64_t bits) { __atomic_fetch_or(word, bits, __ATOMIC_RELAXED); }
// Atomic read-and-clear of a dirty bitmap word.
static inline uint64_t ckvm_atomic_take_u64(uint64_t *word) { return __atomic_exchange_n(word, 0, __ATOMIC_ACQ_REL); }

static const size_t CKVM_XSAVE_LEGACY_SIZE = sizeof(struct kvm_xsave);

#endif
