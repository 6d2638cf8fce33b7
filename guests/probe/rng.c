/* virtio-rng and virtio-console: one request each, polled. */
#include "probe.h"

static struct vdev *rng;

static const char *rng_read(u8 *buf, u32 n) {
	if (!rng) {
		struct vdev *d = virtio_find(4);
		if (!d) return "absent";
		const char *err = virtio_init(d, 0, 1);
		if (err) return err;
		rng = d;
	}
	u32 got = 0;
	for (int tries = 0; got < n && tries < 64; tries++) {
		struct vbuf b = { (u64)(buf + got), n - got, true };
		u32 len = 0;
		if (virtio_submit(rng, 0, &b, 1)) return "submit failed";
		if (virtio_wait(rng, 0, &len) < 0) return "timeout waiting for entropy";
		if (len > n - got) return "device reported more bytes than the buffer holds";
		got += len;
	}
	virtio_ack(rng);
	return got < n ? "device returned too few bytes" : NULL;
}

const char *rng_test(void) {
	static u8 a[64], b[64];
	const char *err = rng_read(a, 64);
	if (err) return err;
	if ((err = rng_read(b, 64))) return err;
	bool varied = false;
	for (int i = 1; i < 64; i++) if (a[i] != a[0]) varied = true;
	if (!varied) return "64 bytes all equal";
	if (!memcmp(a, b, 64)) return "two reads returned the same 64 bytes";
	return NULL;
}

void rng_show(void) {
	static u8 a[16];
	const char *err = rng_read(a, 16);
	if (err) { printk("rng: %s\n", err); return; }
	printk("rng:");
	for (int i = 0; i < 16; i++) printk(" %02x", a[i]);
	printk("\n");
}

/* virtio-console without MULTIPORT: port 0, receiveq 0, transmitq 1. */
const char *vcons_test(void) {
	static const char line[] = "swiftvmm probe: hello on virtio-console\n";
	static struct vdev *con;
	if (!con) {
		struct vdev *d = virtio_find(3);
		if (!d) return "absent";
		const char *err = virtio_init(d, 0, 2);
		if (err) return err;
		con = d;
	}
	struct vbuf b = { (u64)line, sizeof line - 1, false };
	if (virtio_submit(con, 1, &b, 1)) return "submit failed";
	if (virtio_wait(con, 1, NULL) < 0) return "timeout on transmitq";
	virtio_ack(con);
	return NULL;
}
