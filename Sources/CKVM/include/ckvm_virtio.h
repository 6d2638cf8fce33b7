// Libc calls the virtio devices need that Swift's Glibc module does not import
// (fallocate and getrandom need _GNU_SOURCE or headers Glibc leaves out),
// plus a full memory fence for the virtqueue protocol. Same conventions as ckvm.h.
#ifndef CKVM_VIRTIO_H
#define CKVM_VIRTIO_H

#include <stdint.h>
#include <stddef.h>

// fallocate(2); mode bits below. Returns 0 or -errno.
int ckvm_fallocate(int fd, int mode, int64_t offset, int64_t length);
static const int CKVM_FALLOC_KEEP_SIZE = 0x01;
static const int CKVM_FALLOC_PUNCH_HOLE = 0x02;
static const int CKVM_FALLOC_ZERO_RANGE = 0x10;

// getrandom(2) with flags 0; returns the byte count or -errno.
long ckvm_getrandom(void *buffer, size_t length);

// Full (sequentially consistent) fence between guest-visible ring accesses.
static inline void ckvm_memory_fence(void) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

#endif
