/* virtio-mmio (version 2, "modern") transport: discovery from the Linux command-line
 * syntax virtio_mmio.device=SIZE@ADDR:IRQ[:ID], feature negotiation, split virtqueues,
 * polled completion (no interrupts). */
#include "probe.h"

#define R_MAGIC 0x000
#define R_VERSION 0x004
#define R_DEVICE_ID 0x008
#define R_DEV_FEAT 0x010
#define R_DEV_FEAT_SEL 0x014
#define R_DRV_FEAT 0x020
#define R_DRV_FEAT_SEL 0x024
#define R_QUEUE_SEL 0x030
#define R_QUEUE_NUM_MAX 0x034
#define R_QUEUE_NUM 0x038
#define R_QUEUE_READY 0x044
#define R_QUEUE_NOTIFY 0x050
#define R_INT_STATUS 0x060
#define R_INT_ACK 0x064
#define R_STATUS 0x070
#define R_QUEUE_DESC 0x080
#define R_QUEUE_DRIVER 0x090
#define R_QUEUE_DEVICE 0x0a0
#define R_CONFIG 0x100

#define S_ACKNOWLEDGE 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8
#define S_FAILED 128

#define F_VERSION_1 (1ull << 32)
#define QSIZE_MAX 64
#define DESC_F_NEXT 1
#define DESC_F_WRITE 2
#define AVAIL_F_NO_INTERRUPT 1

struct vq_desc { u64 addr; u32 len; u16 flags, next; };
struct vq_avail { u16 flags, idx, ring[]; };
struct vq_used_elem { u32 id, len; };
struct vq_used { u16 flags, idx; struct vq_used_elem ring[]; };

struct vdev vdevs[VIRTIO_MAX_DEV];
int vdev_n;

static u32 rr(struct vdev *d, u32 off) { return mmio_read32(d->base + off); }
static void wr(struct vdev *d, u32 off, u32 v) { mmio_write32(d->base + off, v); }

const char *virtio_name(u32 id) {
	switch (id) {
	case 0: return "none";
	case 1: return "net";
	case 2: return "blk";
	case 3: return "console";
	case 4: return "rng";
	case 5: return "balloon";
	case 19: return "vsock";
	default: return "other";
	}
}

/* Linux memparse: number (decimal or 0x hex) with optional K/M/G suffix. */
static const char *memparse(const char *s, const char *end, u64 *out) {
	const char *p = s;
	while (p < end && *p != '@' && *p != ':' && *p != 'K' && *p != 'k' && *p != 'M' &&
	       *p != 'm' && *p != 'G' && *p != 'g') p++;
	if (!parse_u64(s, (size_t)(p - s), out)) return NULL;
	if (p < end) {
		if (*p == 'K' || *p == 'k') { *out <<= 10; p++; }
		else if (*p == 'M' || *p == 'm') { *out <<= 20; p++; }
		else if (*p == 'G' || *p == 'g') { *out <<= 30; p++; }
	}
	return p;
}

static void parse_device(const char *s, const char *end) {
	u64 size, addr, irq = 0;
	const char *p = memparse(s, end, &size);
	if (!p || p >= end || *p != '@') goto bad;
	p++;
	const char *q = p;
	while (q < end && *q != ':') q++;
	if (!parse_u64(p, (size_t)(q - p), &addr) || q >= end) goto bad;
	p = ++q;
	while (q < end && *q != ':') q++;
	if (!parse_u64(p, (size_t)(q - p), &irq)) goto bad;
	if (vdev_n >= VIRTIO_MAX_DEV) return;
	struct vdev *d = &vdevs[vdev_n++];
	d->base = addr;
	d->size = size;
	d->irq = (u32)irq;
	return;
bad:
	printk("virtio: cannot parse virtio_mmio.device=%s\n", "(see cmdline)");
}

void virtio_discover(void) {
	static bool done;
	if (done) return;
	done = true;
	const char *key = "virtio_mmio.device=";
	size_t kl = strlen(key);
	const char *s = boot.cmdline;
	while (*s) {
		while (*s == ' ') s++;
		const char *tok = s;
		while (*s && *s != ' ') s++;
		if ((size_t)(s - tok) > kl && strncmp(tok, key, kl) == 0) parse_device(tok + kl, s);
	}
	for (int i = 0; i < vdev_n; i++) {
		struct vdev *d = &vdevs[i];
		if (d->base >= 0x100000000ull) continue; /* beyond our identity map */
		if (rr(d, R_MAGIC) != 0x74726976) continue;
		d->version = rr(d, R_VERSION);
		d->id = rr(d, R_DEVICE_ID);
	}
}

struct vdev *virtio_find(u32 id) {
	virtio_discover();
	for (int i = 0; i < vdev_n; i++)
		if (vdevs[i].id == id) return &vdevs[i];
	return NULL;
}

u32 virtio_cfg32(struct vdev *d, u32 off) { return rr(d, R_CONFIG + off); }
u64 virtio_cfg64(struct vdev *d, u32 off) {
	return rr(d, R_CONFIG + off) | (u64)rr(d, R_CONFIG + off + 4) << 32;
}

const char *virtio_init(struct vdev *d, u64 want, int nq) {
	if (d->ready) return NULL;
	if (d->version != 2) return "legacy transport (version 1); the probe drives virtio-mmio version 2 only";
	wr(d, R_STATUS, 0);
	for (int i = 0; i < 1000 && rr(d, R_STATUS) != 0; i++) { }
	if (rr(d, R_STATUS) != 0) return "reset did not complete";
	wr(d, R_STATUS, S_ACKNOWLEDGE);
	wr(d, R_STATUS, S_ACKNOWLEDGE | S_DRIVER);
	wr(d, R_DEV_FEAT_SEL, 0);
	u64 f = rr(d, R_DEV_FEAT);
	wr(d, R_DEV_FEAT_SEL, 1);
	f |= (u64)rr(d, R_DEV_FEAT) << 32;
	if (!(f & F_VERSION_1)) { wr(d, R_STATUS, S_FAILED); return "device does not offer VIRTIO_F_VERSION_1"; }
	d->features = (want | F_VERSION_1) & f;
	wr(d, R_DRV_FEAT_SEL, 0);
	wr(d, R_DRV_FEAT, (u32)d->features);
	wr(d, R_DRV_FEAT_SEL, 1);
	wr(d, R_DRV_FEAT, (u32)(d->features >> 32));
	wr(d, R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK);
	if (!(rr(d, R_STATUS) & S_FEATURES_OK)) { wr(d, R_STATUS, S_FAILED); return "FEATURES_OK not accepted"; }
	for (int qi = 0; qi < nq; qi++) {
		struct vq *q = &d->q[qi];
		wr(d, R_QUEUE_SEL, (u32)qi);
		if (rr(d, R_QUEUE_READY)) { wr(d, R_STATUS, S_FAILED); return "queue already ready after reset"; }
		u32 max = rr(d, R_QUEUE_NUM_MAX);
		if (max == 0) { wr(d, R_STATUS, S_FAILED); return "queue not available (QueueNumMax 0)"; }
		u8 *page = phys_alloc(4096, 4096);
		if (!page) return "out of memory for a queue";
		memset(page, 0, 4096);
		q->size = (u16)(max < QSIZE_MAX ? max : QSIZE_MAX);
		q->qindex = (u16)qi;
		q->idx = q->last_used = 0;
		q->desc = (struct vq_desc *)page;
		q->avail = (struct vq_avail *)(page + 1024);
		q->used = (struct vq_used *)(page + 2048);
		q->avail->flags = AVAIL_F_NO_INTERRUPT; /* we poll */
		wr(d, R_QUEUE_NUM, q->size);
		wr(d, R_QUEUE_DESC, (u32)(u64)q->desc);
		wr(d, R_QUEUE_DESC + 4, 0);
		wr(d, R_QUEUE_DRIVER, (u32)(u64)q->avail);
		wr(d, R_QUEUE_DRIVER + 4, 0);
		wr(d, R_QUEUE_DEVICE, (u32)(u64)q->used);
		wr(d, R_QUEUE_DEVICE + 4, 0);
		wr(d, R_QUEUE_READY, 1);
	}
	wr(d, R_STATUS, S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	d->ready = true;
	return NULL;
}

/* Put a chain in descriptors [first, first+n) and make it available; notify the device. */
int virtio_submit_at(struct vdev *d, int qi, int first, const struct vbuf *b, int n) {
	struct vq *q = &d->q[qi];
	if (n <= 0 || first + n > q->size) return -1;
	for (int i = 0; i < n; i++) {
		struct vq_desc *e = &q->desc[first + i];
		e->addr = b[i].addr;
		e->len = b[i].len;
		e->flags = (u16)((b[i].write ? DESC_F_WRITE : 0) | (i + 1 < n ? DESC_F_NEXT : 0));
		e->next = (u16)(i + 1 < n ? first + i + 1 : 0);
	}
	q->avail->ring[q->idx % q->size] = (u16)first;
	barrier();
	q->idx++;
	*(volatile u16 *)&q->avail->idx = q->idx;
	mfence();
	wr(d, R_QUEUE_NOTIFY, (u32)qi);
	return 0;
}

int virtio_submit(struct vdev *d, int qi, const struct vbuf *b, int n) {
	return virtio_submit_at(d, qi, 0, b, n);
}

/* Poll the used ring for the next completion. Timeout ~ a few seconds of TSC. */
int virtio_wait(struct vdev *d, int qi, u32 *used_len) {
	struct vq *q = &d->q[qi];
	u64 start = rdtsc();
	while (*(volatile u16 *)&q->used->idx == q->last_used) {
		if (rdtsc() - start > 6000000000ull) return -1;
		__asm__ volatile("pause");
	}
	barrier();
	struct vq_used_elem *e = &q->used->ring[q->last_used % q->size];
	if (used_len) *used_len = e->len;
	int id = (int)e->id;
	q->last_used++;
	return id;
}

void virtio_ack(struct vdev *d) {
	u32 s = rr(d, R_INT_STATUS);
	if (s) wr(d, R_INT_ACK, s);
}

bool virtio_has_used(struct vdev *d, int qi) {
	struct vq *q = &d->q[qi];
	return *(volatile u16 *)&q->used->idx != q->last_used;
}
