/* virtio-vsock driver: polled, rx and tx queues only (the event queue stays off), stream
 * sockets. The `vsock` self-test exercises both directions against the host:
 *   probe.vsock_connect=P  connect to host port P, send "ping from guest", expect a reply,
 *                          then close (SHUTDOWN, wait for RST);
 *   probe.vsock_listen=L   accept one connection on port L, echo what arrives until the
 *                          host shuts down. */
#include "probe.h"

#define RX_BUFS 16
#define PAYLOAD 4096
#define HDR 44
#define OP_REQUEST 1
#define OP_RESPONSE 2
#define OP_RST 3
#define OP_SHUTDOWN 4
#define OP_RW 5
#define OP_CREDIT_UPDATE 6
#define BUF_ALLOC 65536

struct __attribute__((packed)) vhdr {
	u64 src_cid, dst_cid;
	u32 src_port, dst_port, len;
	u16 type, op;
	u32 flags, buf_alloc, fwd_cnt;
};

static struct vdev *dev;
static u64 cid;
static u8 *rxbuf, *txbuf;
static u32 fwd_cnt; /* bytes of payload we consumed (one connection at a time) */

static void rx_post(int i) {
	struct vbuf b = { (u64)(rxbuf + i * (HDR + PAYLOAD)), HDR + PAYLOAD, true };
	virtio_submit_at(dev, 0, i, &b, 1);
}

static const char *vsock_open(void) {
	if (dev) return NULL;
	struct vdev *d = virtio_find(19);
	if (!d) return "absent";
	const char *err = virtio_init(d, 0, 2);
	if (err) return err;
	cid = virtio_cfg64(d, 0);
	rxbuf = phys_alloc(RX_BUFS * (HDR + PAYLOAD), 4096);
	txbuf = phys_alloc(HDR + PAYLOAD, 4096);
	if (!rxbuf || !txbuf) return "out of memory";
	dev = d;
	for (int i = 0; i < RX_BUFS; i++) rx_post(i);
	return NULL;
}

static int send(u16 op, u32 src, u32 dst, u32 flags, const void *data, u32 len) {
	struct vhdr *h = (struct vhdr *)txbuf;
	memset(h, 0, HDR);
	h->src_cid = cid; h->dst_cid = 2; h->src_port = src; h->dst_port = dst;
	h->len = len; h->type = 1; h->op = op; h->flags = flags; h->buf_alloc = BUF_ALLOC; h->fwd_cnt = fwd_cnt;
	if (len) memcpy(txbuf + HDR, data, len);
	struct vbuf b[2] = { { (u64)txbuf, HDR, false }, { (u64)txbuf + HDR, len, false } };
	if (virtio_submit_at(dev, 1, 0, b, len ? 2 : 1)) return -1;
	return virtio_wait(dev, 1, NULL) < 0 ? -1 : 0;
}

/* Next packet, copied to *h and data (up to PAYLOAD); false on timeout. */
static bool recv(u64 deadline, struct vhdr *h, u8 *data) {
	while (!virtio_has_used(dev, 0))
		if (rdtsc() > deadline) return false;
	u32 len;
	int id = virtio_wait(dev, 0, &len);
	if (id < 0 || id >= RX_BUFS) return false;
	u8 *p = rxbuf + id * (HDR + PAYLOAD);
	memcpy(h, p, HDR);
	if (h->len > PAYLOAD || len < HDR + h->len) h->len = 0;
	if (h->len) memcpy(data, p + HDR, h->len);
	rx_post(id);
	return true;
}

static u64 soon(void) { return rdtsc() + 4000000000ull; }

static const char *guest_connects(u32 port) {
	struct vhdr h;
	static u8 data[PAYLOAD + 1];
	const u32 me = 40000;
	fwd_cnt = 0;
	if (send(OP_REQUEST, me, port, 0, NULL, 0)) return "transmit failed";
	if (!recv(soon(), &h, data)) return "no answer to REQUEST";
	if (h.op == OP_RST) return "host refused the connection (nobody listens on PATH_<port>?)";
	if (h.op != OP_RESPONSE || h.src_port != port || h.dst_port != me) return "unexpected answer to REQUEST";
	const char *msg = "ping from guest";
	if (send(OP_RW, me, port, 0, msg, (u32)strlen(msg))) return "transmit failed";
	for (;;) {
		if (!recv(soon(), &h, data)) return "no reply from the host";
		if (h.op == OP_RW && h.len) break;
		if (h.op == OP_RST) return "reset before the reply";
	}
	fwd_cnt += h.len;
	data[h.len] = 0;
	printk("vsock: guest->host port %u: host replied \"%s\"\n", port, (const char *)data);
	if (send(OP_SHUTDOWN, me, port, 3, NULL, 0)) return "transmit failed";
	for (;;) {
		if (!recv(soon(), &h, data)) return "no RST after SHUTDOWN";
		if (h.op == OP_RST) return NULL;
	}
}

static const char *guest_listens(u32 port) {
	struct vhdr h;
	static u8 data[PAYLOAD + 1];
	fwd_cnt = 0;
	u64 deadline = rdtsc() + 30000000000ull;
	for (;;) {
		if (!recv(deadline, &h, data)) return "no connection from the host";
		if (h.op == OP_REQUEST && h.dst_port == port) break;
	}
	u32 peer = h.src_port;
	printk("vsock: host->guest port %u: connection from host port %u\n", port, peer);
	if (send(OP_RESPONSE, port, peer, 0, NULL, 0)) return "transmit failed";
	u32 echoed = 0;
	for (;;) {
		if (!recv(soon(), &h, data)) return "host went quiet";
		if (h.src_port != peer || h.dst_port != port) continue;
		if (h.op == OP_RW && h.len) {
			fwd_cnt += h.len;
			if (send(OP_RW, port, peer, 0, data, h.len)) return "transmit failed";
			echoed += h.len;
		} else if (h.op == OP_SHUTDOWN) {
			send(OP_RST, port, peer, 0, NULL, 0);
			break;
		} else if (h.op == OP_RST) break;
	}
	printk("vsock: host->guest port %u: echoed %u bytes\n", port, echoed);
	return echoed ? NULL : "nothing arrived to echo";
}

const char *vsock_test(void) {
	const char *err = vsock_open();
	if (err) return err;
	printk("vsock: guest cid %llu\n", cid);
	u64 port;
	bool any = false;
	if (param_u64("probe.vsock_connect", &port)) {
		if ((err = guest_connects((u32)port))) return err;
		any = true;
	}
	if (param_u64("probe.vsock_listen", &port)) {
		if ((err = guest_listens((u32)port))) return err;
		any = true;
	}
	virtio_ack(dev);
	return any ? NULL : "neither probe.vsock_connect= nor probe.vsock_listen= given";
}
