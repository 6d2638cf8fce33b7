/* virtio-net driver: polled, one queue pair (0 receive, 1 transmit), no offloads, no
 * mergeable buffers: every frame carries the 12-byte virtio_net_hdr_v1 (VERSION_1).
 * The `net` self-test speaks just enough ARP, IPv4 and ICMP to ping its peer:
 *   probe.ip=A.B.C.D/N probe.peer=A.B.C.D  ->  ARP request + ICMP echo, both answered. */
#include "probe.h"

#define NET_F_MAC (1ull << 5)
#define NET_F_STATUS (1ull << 16)
#define HDR 12
#define RX_BUFS 32
#define TX_BUFS 32
#define BUF_SIZE 2048
#define ETH_ARP 0x0806
#define ETH_IP 0x0800
#define ETH_BENCH 0x88b5 /* IEEE local experimental: the host stack drops it */

static struct vdev *dev;
static u8 mac[6];
static u8 *rxbuf, *txbuf;
static int tx_next;

static u16 be16(const u8 *p) { return (u16)(p[0] << 8 | p[1]); }
static void put16(u8 *p, u16 v) { p[0] = (u8)(v >> 8); p[1] = (u8)v; }
static void put32(u8 *p, u32 v) { put16(p, (u16)(v >> 16)); put16(p + 2, (u16)v); }
static u32 get32(const u8 *p) { return (u32)be16(p) << 16 | be16(p + 2); }

static void rx_post(int i) {
	struct vbuf b = { (u64)(rxbuf + i * BUF_SIZE), BUF_SIZE, true };
	virtio_submit_at(dev, 0, i, &b, 1);
}

static const char *net_open(void) {
	if (dev) return NULL;
	struct vdev *d = virtio_find(1);
	if (!d) return "absent";
	const char *err = virtio_init(d, NET_F_MAC | NET_F_STATUS, 2);
	if (err) return err;
	if (d->q[0].size < RX_BUFS || d->q[1].size < TX_BUFS) return "queues smaller than 32";
	for (int i = 0; i < 6; i++) mac[i] = (d->features & NET_F_MAC) ? mmio_read8(d->base + 0x100 + i) : (u8)(i == 0 ? 2 : i);
	rxbuf = phys_alloc(RX_BUFS * BUF_SIZE, 4096);
	txbuf = phys_alloc(TX_BUFS * BUF_SIZE, 4096);
	if (!rxbuf || !txbuf) return "out of memory";
	dev = d;
	for (int i = 0; i < RX_BUFS; i++) rx_post(i);
	return NULL;
}

/* Send `len` bytes of frame from txbuf slot `slot` (header already zeroed); 0 on success. */
static int tx_slot(int slot, u32 len) {
	struct vbuf b = { (u64)(txbuf + slot * BUF_SIZE), HDR + len, false };
	return virtio_submit_at(dev, 1, slot, &b, 1);
}

/* Synchronous send of one frame. */
static int tx_frame(const u8 *frame, u32 len) {
	u8 *p = txbuf + tx_next * BUF_SIZE;
	memset(p, 0, HDR);
	memcpy(p + HDR, frame, len);
	if (tx_slot(tx_next, len)) return -1;
	tx_next = (tx_next + 1) % TX_BUFS;
	return virtio_wait(dev, 1, NULL) < 0 ? -1 : 0;
}

/* Next received frame (header stripped) or NULL when none came before `deadline` (TSC).
 * The caller hands the slot back with rx_post(*slot). */
static u8 *rx_frame(u64 deadline, u32 *len, int *slot) {
	while (!virtio_has_used(dev, 0)) {
		if (rdtsc() > deadline) return NULL;
		__asm__ volatile("pause");
	}
	u32 l;
	int id = virtio_wait(dev, 0, &l);
	if (id < 0 || id >= RX_BUFS || l < HDR + 14) { if (id >= 0 && id < RX_BUFS) rx_post(id); return rx_frame(deadline, len, slot); }
	*len = l - HDR;
	*slot = id;
	return rxbuf + id * BUF_SIZE + HDR;
}

static bool parse_ip(const char *s, size_t n, u32 *ip, u32 *prefix) {
	u32 v = 0, part = 0, dots = 0;
	bool digit = false;
	size_t i = 0;
	for (; i < n && s[i] != '/'; i++) {
		if (s[i] == '.') { if (!digit || part > 255) return false; v = v << 8 | part; part = 0; dots++; digit = false; }
		else if (s[i] >= '0' && s[i] <= '9') { part = part * 10 + (u32)(s[i] - '0'); digit = true; if (part > 255) return false; }
		else return false;
	}
	if (dots != 3 || !digit) return false;
	*ip = v << 8 | part;
	if (prefix) {
		u64 p = 32;
		if (i < n && !parse_u64(s + i + 1, n - i - 1, &p)) return false;
		if (p > 32) return false;
		*prefix = (u32)p;
	}
	return true;
}

static u16 csum(const u8 *p, u32 n) {
	u32 s = 0;
	for (u32 i = 0; i + 1 < n; i += 2) s += be16(p + i);
	if (n & 1) s += (u32)p[n - 1] << 8;
	while (s >> 16) s = (s & 0xffff) + (s >> 16);
	return (u16)~s;
}

static void eth(u8 *f, const u8 *dst, u16 type) {
	memcpy(f, dst, 6);
	memcpy(f + 6, mac, 6);
	put16(f + 12, type);
}

static int send_arp(u16 op, const u8 *tha, u32 tip, u32 sip) {
	static const u8 bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	u8 f[60];
	memset(f, 0, sizeof f);
	eth(f, op == 1 ? bcast : tha, ETH_ARP);
	u8 *a = f + 14;
	put16(a, 1); put16(a + 2, ETH_IP); a[4] = 6; a[5] = 4; put16(a + 6, op);
	memcpy(a + 8, mac, 6); put32(a + 14, sip);
	memcpy(a + 18, op == 1 ? (const u8[6]){ 0 } : tha, 6); put32(a + 24, tip);
	return tx_frame(f, sizeof f);
}

static int send_echo(const u8 *dst, u32 sip, u32 dip, u16 seq) {
	u8 f[14 + 20 + 8 + 32];
	eth(f, dst, ETH_IP);
	u8 *ip = f + 14, *ic = ip + 20;
	memset(ip, 0, 20);
	ip[0] = 0x45; put16(ip + 2, 20 + 8 + 32); put16(ip + 4, seq); ip[8] = 64; ip[9] = 1;
	put32(ip + 12, sip); put32(ip + 16, dip);
	put16(ip + 10, csum(ip, 20));
	ic[0] = 8; ic[1] = 0; put16(ic + 2, 0); put16(ic + 4, 0x5356); put16(ic + 6, seq);
	for (int i = 0; i < 32; i++) ic[8 + i] = (u8)('a' + i % 26);
	put16(ic + 2, csum(ic, 8 + 32));
	return tx_frame(f, sizeof f);
}

/* Answer ARP requests for our address while we wait for something else. */
static void maybe_answer_arp(const u8 *f, u32 len, u32 me) {
	if (len < 42 || be16(f + 12) != ETH_ARP || be16(f + 20) != 1 || get32(f + 38) != me) return;
	send_arp(2, f + 22, get32(f + 28), me);
}

void net_info(void) {
	const char *err = net_open();
	if (err) { printk("net: %s\n", err); return; }
	u16 status = (u16)(mmio_read8(dev->base + 0x106) | mmio_read8(dev->base + 0x107) << 8);
	printk("net: at 0x%llx, mac %02x:%02x:%02x:%02x:%02x:%02x, link %s\n", dev->base, mac[0], mac[1], mac[2], mac[3],
	       mac[4], mac[5], (dev->features & NET_F_STATUS) ? (status & 1 ? "up" : "down") : "(no status feature)");
}

const char *net_test(void) {
	const char *err = net_open();
	if (err) return err;
	const char *v;
	size_t n;
	u32 me, prefix, peer;
	if (!param("probe.ip", &v, &n) || !parse_ip(v, n, &me, &prefix)) return "probe.ip=A.B.C.D/N missing or malformed";
	if (!param("probe.peer", &v, &n) || !parse_ip(v, n, &peer, NULL)) return "probe.peer=A.B.C.D missing or malformed";
	printk("net: mac %02x:%02x:%02x:%02x:%02x:%02x ip %u.%u.%u.%u/%u peer %u.%u.%u.%u\n", mac[0], mac[1], mac[2], mac[3],
	       mac[4], mac[5], me >> 24, (me >> 16) & 255, (me >> 8) & 255, me & 255, prefix, peer >> 24, (peer >> 16) & 255,
	       (peer >> 8) & 255, peer & 255);
	u8 peer_mac[6];
	bool have_mac = false, have_echo = false;
	for (int attempt = 0; attempt < 5 && !have_echo; attempt++) {
		if (!have_mac && send_arp(1, NULL, peer, me)) return "transmit of the ARP request failed";
		if (have_mac && send_echo(peer_mac, me, peer, (u16)attempt)) return "transmit of the ICMP echo failed";
		u64 deadline = rdtsc() + 2000000000ull;
		u32 len;
		int slot;
		u8 *f;
		while ((f = rx_frame(deadline, &len, &slot))) {
			u16 type = be16(f + 12);
			if (!have_mac && type == ETH_ARP && len >= 42 && be16(f + 20) == 2 && get32(f + 28) == peer && get32(f + 38) == me) {
				memcpy(peer_mac, f + 22, 6);
				have_mac = true;
				printk("net: ARP reply: %u.%u.%u.%u is at %02x:%02x:%02x:%02x:%02x:%02x\n", peer >> 24, (peer >> 16) & 255,
				       (peer >> 8) & 255, peer & 255, peer_mac[0], peer_mac[1], peer_mac[2], peer_mac[3], peer_mac[4], peer_mac[5]);
				rx_post(slot);
				if (send_echo(peer_mac, me, peer, (u16)attempt)) return "transmit of the ICMP echo failed";
				continue;
			}
			if (have_mac && type == ETH_IP && len >= 42 && f[23] == 1 && get32(f + 26) == peer && get32(f + 30) == me &&
			    f[34] == 0 && be16(f + 38) == 0x5356) {
				u32 ihl = (u32)(f[14] & 15) * 4;
				printk("net: ICMP echo reply from %u.%u.%u.%u seq %u ttl %u, %u bytes\n", peer >> 24, (peer >> 16) & 255,
				       (peer >> 8) & 255, peer & 255, be16(f + 14 + ihl + 6), f[22], len);
				have_echo = true;
				rx_post(slot);
				break;
			}
			maybe_answer_arp(f, len, me);
			rx_post(slot);
		}
	}
	virtio_ack(dev);
	if (!have_mac) return "no ARP reply from the peer";
	if (!have_echo) return "no ICMP echo reply from the peer";
	return NULL;
}

/* `count` frames of `size` bytes (Ethernet header included, 60..1514) to the broadcast
 * address with the local experimental EtherType, up to TX_BUFS in flight. */
void bench_net_tx(u64 count, u64 size) {
	const char *err = net_open();
	if (err) { printk("BENCH NET FAIL: %s\n", err); return; }
	if (size < 60 || size > 1514) { printk("BENCH NET FAIL: frame size %llu outside 60..1514\n", size); return; }
	static const u8 bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	for (int i = 0; i < TX_BUFS; i++) {
		u8 *p = txbuf + i * BUF_SIZE;
		memset(p, 0, HDR + (u32)size);
		eth(p + HDR, bcast, ETH_BENCH);
	}
	printk("BENCH NET START tx frames=%llu size=%llu\n", count, size);
	u64 sent = 0, done = 0, t0 = rdtsc();
	int inflight = 0;
	for (int s = 0; s < TX_BUFS && sent < count; s++, sent++, inflight++) tx_slot(s, (u32)size);
	while (inflight) {
		int head = virtio_wait(dev, 1, NULL);
		if (head < 0) { printk("BENCH NET FAIL: transmit timeout after %llu frames\n", done); return; }
		done++;
		inflight--;
		if (sent < count) { tx_slot(head, (u32)size); sent++; inflight++; }
	}
	printk("BENCH NET DONE tx frames=%llu bytes=%llu tsc=%llu\n", done, done * size, rdtsc() - t0);
}
