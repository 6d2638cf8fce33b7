// See ckvm_jail.h.
#define _GNU_SOURCE
#include "ckvm_jail.h"

#include <errno.h>
#include <grp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RET(call) return (call) < 0 ? -errno : 0

int ckvm_unshare(int flags) { RET(unshare(flags)); }
int ckvm_setns(int fd, int nstype) { RET(setns(fd, nstype)); }
int ckvm_pivot_root(const char *new_root, const char *put_old) { RET(syscall(SYS_pivot_root, new_root, put_old)); }
int ckvm_mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data) {
    RET(mount(source, target, fstype, flags, data));
}
int ckvm_umount_detach(const char *target) { RET(umount2(target, MNT_DETACH)); }
int ckvm_mknod_char(const char *path, unsigned int mode, unsigned int major, unsigned int minor) {
    RET(mknod(path, S_IFCHR | mode, makedev(major, minor)));
}

int ckvm_char_device_numbers(const char *path, unsigned int *major_out, unsigned int *minor_out) {
    struct stat st;
    if (stat(path, &st) < 0) return -errno;
    if (!S_ISCHR(st.st_mode)) return -ENODEV;
    *major_out = major(st.st_rdev);
    *minor_out = minor(st.st_rdev);
    return 0;
}

int ckvm_drop_to(uid_t uid, gid_t gid) {
    if (setgroups(0, NULL) < 0) return -errno;
    if (setgid(gid) < 0) return -errno;
    RET(setuid(uid));
}

int ckvm_close_from(int first) { RET(syscall(SYS_close_range, first, ~0U, 0)); }
