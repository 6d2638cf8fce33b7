// Tap devices (/dev/net/tun ioctls) and timerfd, for virtio-net and the rate limiters.
// Same conventions as ckvm.h: one function per call, 0 / a value or -errno.
#ifndef CKVM_NET_H
#define CKVM_NET_H

#include <stdint.h>
#include <stddef.h>

// TUNSETIFF with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR on an open /dev/net/tun fd.
// `name` (at most 15 bytes) names the tap to attach to, or to create if it does not exist.
int ckvm_tap_set_iff(int fd, const char *name);
// TUNSETVNETHDRSZ.
int ckvm_tap_set_vnet_hdr_size(int fd, int size);
// TUNSETOFFLOAD with TUN_F_* bits below.
int ckvm_tap_set_offload(int fd, unsigned int flags);
static const unsigned int CKVM_TUN_F_CSUM = 0x01;
static const unsigned int CKVM_TUN_F_TSO4 = 0x02;
static const unsigned int CKVM_TUN_F_TSO6 = 0x04;
static const unsigned int CKVM_TUN_F_TSO_ECN = 0x08;
static const unsigned int CKVM_TUN_F_UFO = 0x10;

// timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC).
int ckvm_timerfd_create(void);
// One-shot expiry after `nanoseconds` (0 disarms).
int ckvm_timerfd_arm(int fd, uint64_t nanoseconds);

#endif
