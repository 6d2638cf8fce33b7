// Host facilities the event loop, the console and the API server need that Glibc's Swift
// module does not export: <sys/epoll.h>, <sys/eventfd.h> and <sys/timerfd.h> are not in
// it, and accept4 and the pty calls need _GNU_SOURCE / _XOPEN_SOURCE. Functions return the call's result or -errno.
#ifndef CKVM_HOST_H
#define CKVM_HOST_H

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>

// accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC).
int ckvm_accept_nonblock_cloexec(int listen_fd);

// dup3(source, target, O_CLOEXEC): target now refers to source's file; 0 or -errno.
int ckvm_dup3_cloexec(int source, int target);

// A pseudo-terminal pair (posix_openpt + grantpt + unlockpt + open(ptsname)), both ends
// O_CLOEXEC and without becoming the controlling terminal. 0 or -errno.
int ckvm_open_pty_pair(int *controller, int *terminal);

// pthread_setname_np(pthread_self(), name); the name is cut to 15 bytes. 0 or -errno.
int ckvm_set_current_thread_name(const char *name);

#endif
