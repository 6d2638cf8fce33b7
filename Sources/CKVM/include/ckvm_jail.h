// What `swiftvmm jail` needs that Glibc's Swift module does not export (_GNU_SOURCE
// calls, pivot_root without a libc wrapper, the makedev macro). 0 / a value, or -errno.
#ifndef CKVM_JAIL_H
#define CKVM_JAIL_H

#include <stdint.h>
#include <sys/types.h>

static const int CKVM_CLONE_NEWNS = 0x00020000;
static const int CKVM_CLONE_NEWPID = 0x20000000;
static const int CKVM_CLONE_NEWNET = 0x40000000;

int ckvm_unshare(int flags);
int ckvm_setns(int fd, int nstype);
int ckvm_pivot_root(const char *new_root, const char *put_old);
// mount(2); data may be NULL. 0 or -errno.
int ckvm_mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data);
int ckvm_umount_detach(const char *target);
int ckvm_mknod_char(const char *path, unsigned int mode, unsigned int major, unsigned int minor);
// The major/minor of a character device node; 0 or -errno.
int ckvm_char_device_numbers(const char *path, unsigned int *major, unsigned int *minor);
// setgroups(0, NULL), setgid, setuid, in that order; 0 or -errno.
int ckvm_drop_to(uid_t uid, gid_t gid);
// Close every descriptor from `first` up; 0 or -errno.
int ckvm_close_from(int first);

static const unsigned long CKVM_MS_RDONLY = 1;
static const unsigned long CKVM_MS_NOSUID = 2;
static const unsigned long CKVM_MS_NODEV = 4;
static const unsigned long CKVM_MS_NOEXEC = 8;
static const unsigned long CKVM_MS_REMOUNT = 32;
static const unsigned long CKVM_MS_BIND = 4096;
static const unsigned long CKVM_MS_REC = 16384;
static const unsigned long CKVM_MS_PRIVATE = 1UL << 18;

#endif
