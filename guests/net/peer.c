/* peer: a tiny static stream peer for the network tests in the nested test bed (busybox
 * nc cannot half-close, and speaks neither AF_VSOCK nor Unix sockets).
 *
 *   peer tcp-listen PORT | tcp-connect ADDR PORT
 *   peer vsock-listen PORT | vsock-connect CID PORT
 *   peer unix-listen PATH | unix-connect PATH
 *   peer hybrid-connect PATH PORT   (Firecracker hybrid vsock: CONNECT PORT, expect OK)
 *
 * One connection: stdin goes to the socket (then shutdown(SHUT_WR) at EOF), the socket
 * goes to stdout until the other side closes; exit 0 once both directions ended. At exit
 * it prints "peer: received N bytes in S s (M Mbit/s)" to stderr, timed from the first
 * to the last byte received (the receiver's view of a transfer's throughput). With
 * PEER_MARK=BYTES in the environment it also prints "peer: after BYTES bytes: M Mbit/s
 * over the remaining R bytes in S s", the steady rate once a transfer's start (TCP slow
 * start, a rate limiter's first bucket) is behind it.
 * Build: gcc -static -O2 -o peer peer.c */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what) { perror(what); exit(1); }

static int listen_accept(int fd, struct sockaddr *a, socklen_t len) {
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, a, len) < 0) die("bind");
	if (listen(fd, 1) < 0) die("listen");
	int c = accept(fd, NULL, NULL);
	if (c < 0) die("accept");
	close(fd);
	return c;
}

static int open_socket(int argc, char **argv) {
	const char *mode = argv[1];
	if (!strcmp(mode, "tcp-listen") && argc == 3) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[2])) };
		return listen_accept(socket(AF_INET, SOCK_STREAM, 0), (struct sockaddr *)&a, sizeof a);
	}
	if (!strcmp(mode, "tcp-connect") && argc == 4) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[3])) };
		if (inet_pton(AF_INET, argv[2], &a.sin_addr) != 1) die("address");
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
		return fd;
	}
	if (!strcmp(mode, "vsock-listen") && argc == 3) {
		struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = atoi(argv[2]) };
		return listen_accept(socket(AF_VSOCK, SOCK_STREAM, 0), (struct sockaddr *)&a, sizeof a);
	}
	if (!strcmp(mode, "vsock-connect") && argc == 4) {
		struct sockaddr_vm a = { .svm_family = AF_VSOCK, .svm_cid = atoi(argv[2]), .svm_port = atoi(argv[3]) };
		int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
		return fd;
	}
	if ((!strcmp(mode, "unix-listen") && argc == 3) || (!strcmp(mode, "unix-connect") && argc == 3) ||
	    (!strcmp(mode, "hybrid-connect") && argc == 4)) {
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		if (strlen(argv[2]) >= sizeof a.sun_path) die("path");
		strcpy(a.sun_path, argv[2]);
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (!strcmp(mode, "unix-listen")) { unlink(argv[2]); return listen_accept(fd, (struct sockaddr *)&a, sizeof a); }
		if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
		if (!strcmp(mode, "hybrid-connect")) {
			char line[64];
			int n = snprintf(line, sizeof line, "CONNECT %s\n", argv[3]), got = 0;
			if (write(fd, line, n) != n) die("write CONNECT");
			while (got < (int)sizeof line - 1 && read(fd, line + got, 1) == 1 && line[got] != '\n') got++;
			line[got] = 0;
			if (strncmp(line, "OK ", 3)) { fprintf(stderr, "peer: no OK after CONNECT (got \"%s\")\n", line); exit(1); }
			fprintf(stderr, "peer: %s\n", line);
		}
		return fd;
	}
	fprintf(stderr, "usage: peer tcp-listen PORT | tcp-connect ADDR PORT | vsock-listen PORT | vsock-connect CID PORT |\n"
			"            unix-listen PATH | unix-connect PATH | hybrid-connect PATH PORT\n");
	exit(2);
}

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* Full duplex without deadlock: the socket is non-blocking and stdin is read only once
 * the previous chunk has gone out, so a peer that is itself writing never waits on us
 * while we wait on it (two blocking writers with full buffers would stall forever). */
int main(int argc, char **argv) {
	if (argc < 2) open_socket(1, argv);
	int s = open_socket(argc, argv);
	if (fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK) < 0) die("fcntl");
	static char out[65536], in[65536];
	size_t out_len = 0, out_off = 0;
	int in_open = 1, sock_open = 1, shut = 0;
	unsigned long long received = 0, mark = 0, mark_at_bytes = 0;
	double first = 0, last = 0, mark_at = 0;
	const char *mark_env = getenv("PEER_MARK");
	if (mark_env) mark = strtoull(mark_env, NULL, 10);
	while (sock_open || out_len > out_off || in_open) {
		if (!in_open && out_len == out_off && !shut) { shutdown(s, SHUT_WR); shut = 1; }
		struct pollfd p[2] = {
			{ .fd = (in_open && out_len == out_off) ? 0 : -1, .events = POLLIN },
			{ .fd = s, .events = (sock_open ? POLLIN : 0) | (out_len > out_off ? POLLOUT : 0) },
		};
		if (!p[1].events) p[1].fd = -1;
		if (p[0].fd < 0 && p[1].fd < 0) break;
		if (poll(p, 2, -1) < 0) { if (errno == EINTR) continue; die("poll"); }
		if (p[0].revents) {
			ssize_t n = read(0, out, sizeof out);
			if (n < 0 && errno != EINTR) die("read stdin");
			if (n <= 0) in_open = 0;
			else { out_len = (size_t)n; out_off = 0; }
		}
		if (p[1].revents & (POLLOUT | POLLERR) && out_len > out_off) {
			ssize_t w = write(s, out + out_off, out_len - out_off);
			if (w < 0 && errno != EAGAIN && errno != EINTR) die("write socket");
			if (w > 0) out_off += (size_t)w;
			if (out_off == out_len) out_len = out_off = 0;
		}
		if (sock_open && p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			ssize_t n = read(s, in, sizeof in);
			if (n < 0) { if (errno == EAGAIN || errno == EINTR) continue; die("read socket"); }
			if (n == 0) { sock_open = 0; continue; }
			last = now();
			if (!received) first = last;
			received += (unsigned long long)n;
			if (mark && !mark_at && received >= mark) { mark_at = last; mark_at_bytes = received; }
			for (ssize_t off = 0; off < n;) {
				ssize_t w = write(1, in + off, n - off);
				if (w <= 0) die("write stdout");
				off += w;
			}
		}
	}
	double t = last - first;
	fprintf(stderr, "peer: received %llu bytes in %.3f s (%.1f Mbit/s)\n", received, t, t > 0 ? received * 8 / t / 1e6 : 0.0);
	if (mark_at && last > mark_at) {
		double rest = (double)(received - mark_at_bytes), dt = last - mark_at;
		fprintf(stderr, "peer: after %llu bytes: %.3f Mbit/s over the remaining %.0f bytes in %.3f s\n",
			mark, rest * 8 / dt / 1e6, rest, dt);
	}
	return 0;
}
