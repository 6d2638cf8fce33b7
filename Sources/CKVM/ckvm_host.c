#define _GNU_SOURCE
#include "ckvm_host.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <pthread.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

int ckvm_accept_nonblock_cloexec(int listen_fd) {
    int r = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    return r < 0 ? -errno : r;
}

int ckvm_dup3_cloexec(int source, int target) {
    return dup3(source, target, O_CLOEXEC) < 0 ? -errno : 0;
}

int ckvm_open_pty_pair(int *controller, int *terminal) {
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0) return -errno;
    char name[128];
    if (grantpt(m) < 0 || unlockpt(m) < 0 || ptsname_r(m, name, sizeof name) != 0) {
        int e = errno; close(m); return -e;
    }
    int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0) { int e = errno; close(m); return -e; }
    *controller = m; *terminal = s;
    return 0;
}

int ckvm_set_current_thread_name(const char *name) {
    char cut[16];
    strncpy(cut, name, 15);
    cut[15] = 0;
    int r = pthread_setname_np(pthread_self(), cut);
    return r == 0 ? 0 : -r;
}
