#include "ckvm_state.h"
#include <errno.h>
#include <sys/ioctl.h>

#define IOCTL(fd, req, arg) do { int r_ = ioctl((fd), (req), (arg)); return r_ < 0 ? -errno : r_; } while (0)

int ckvm_get_xsave2(int fd, void *b) { IOCTL(fd, KVM_GET_XSAVE2, b); }
int ckvm_get_xsave(int fd, void *b) { IOCTL(fd, KVM_GET_XSAVE, b); }
int ckvm_set_xsave(int fd, const void *b) { IOCTL(fd, KVM_SET_XSAVE, b); }
int ckvm_get_xcrs(int fd, struct kvm_xcrs *x) { IOCTL(fd, KVM_GET_XCRS, x); }
int ckvm_set_xcrs(int fd, const struct kvm_xcrs *x) { IOCTL(fd, KVM_SET_XCRS, x); }
int ckvm_get_debugregs(int fd, struct kvm_debugregs *d) { IOCTL(fd, KVM_GET_DEBUGREGS, d); }
int ckvm_set_debugregs(int fd, const struct kvm_debugregs *d) { IOCTL(fd, KVM_SET_DEBUGREGS, d); }
int ckvm_get_cpuid2(int fd, struct kvm_cpuid2 *c) { IOCTL(fd, KVM_GET_CPUID2, c); }

int ckvm_get_irqchip(int fd, struct kvm_irqchip *c) { IOCTL(fd, KVM_GET_IRQCHIP, c); }
int ckvm_set_irqchip(int fd, const struct kvm_irqchip *c) { IOCTL(fd, KVM_SET_IRQCHIP, c); }
int ckvm_get_pit2(int fd, struct kvm_pit_state2 *p) { IOCTL(fd, KVM_GET_PIT2, p); }
int ckvm_set_pit2(int fd, const struct kvm_pit_state2 *p) { IOCTL(fd, KVM_SET_PIT2, p); }
int ckvm_get_clock(int fd, struct kvm_clock_data *c) { IOCTL(fd, KVM_GET_CLOCK, c); }
