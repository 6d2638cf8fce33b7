#define _GNU_SOURCE
#include "ckvm_virtio.h"
#include <errno.h>
#include <fcntl.h>
#include <sys/random.h>

int ckvm_fallocate(int fd, int mode, int64_t offset, int64_t length) {
    int r = fallocate(fd, mode, (off_t)offset, (off_t)length);
    return r < 0 ? -errno : r;
}
long ckvm_getrandom(void *buffer, size_t length) {
    ssize_t r = getrandom(buffer, length, 0);
    return r < 0 ? -errno : (long)r;
}
