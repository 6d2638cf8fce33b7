/* virtio-blk driver: polled, one split queue, requests of up to 1 MiB split to the
 * device's size_max/seg_max limits. */
#include "probe.h"

#define BLK_F_SIZE_MAX (1ull << 1)
#define BLK_F_SEG_MAX (1ull << 2)
#define BLK_F_RO (1ull << 5)
#define BLK_F_BLK_SIZE (1ull << 6)
#define BLK_F_FLUSH (1ull << 9)
#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4

#define REQ_MAX (1u << 20)
#define DEPTH_MAX 4
#define CRC_BYTES_DEFAULT 65536

struct blk_hdr { u32 type, reserved; u64 sector; };
struct blk_slot { struct blk_hdr hdr; u8 status; u8 pad[7]; };

static struct vdev *dev;
static u64 capacity;             /* 512-byte sectors */
static u32 seg_bytes, seg_count; /* per-segment limit and data segments per request */
static u32 slot_desc;             /* descriptors per request: header + segments + status */
static struct blk_slot *slots;   /* DEPTH_MAX headers + statuses, one page */
static u8 *small;                /* 2 sectors scratch + 64 KiB CRC window */

static u32 req_limit(void);

const char *blk_open(void) {
	if (dev) return NULL;
	struct vdev *d = virtio_find(2);
	if (!d) return "absent";
	const char *err = virtio_init(d, BLK_F_SIZE_MAX | BLK_F_SEG_MAX | BLK_F_RO | BLK_F_BLK_SIZE | BLK_F_FLUSH, 1);
	if (err) return err;
	capacity = virtio_cfg64(d, 0);
	seg_bytes = REQ_MAX;
	if (d->features & BLK_F_SIZE_MAX) {
		u32 m = virtio_cfg32(d, 8);
		if (m >= 512 && m < seg_bytes) seg_bytes = m & ~511u;
	}
	seg_count = d->q[0].size - 2u;
	if (d->features & BLK_F_SEG_MAX) {
		u32 m = virtio_cfg32(d, 12);
		if (m >= 1 && m < seg_count) seg_count = m;
	}
	if (seg_count > 64) seg_count = 64;
	slot_desc = (req_limit() + seg_bytes - 1) / seg_bytes + 2;
	slots = phys_alloc(4096, 4096);
	small = phys_alloc(CRC_BYTES_DEFAULT + 4096, 4096);
	if (!slots || !small) return "out of memory";
	dev = d;
	return NULL;
}

static u32 req_limit(void) {
	u64 n = (u64)seg_bytes * seg_count;
	if (n > REQ_MAX) n = REQ_MAX;
	return (u32)n & ~511u;
}

/* Queue one request in slot s (descriptors s*(seg_count+2) ...). */
static int blk_submit(int s, u32 type, u64 sector, u64 buf, u32 len) {
	struct vbuf b[66];
	struct blk_slot *sl = &slots[s];
	int n = 0, nseg = (int)slot_desc - 2;
	sl->hdr.type = type;
	sl->hdr.reserved = 0;
	sl->hdr.sector = sector;
	sl->status = 0xff;
	b[n++] = (struct vbuf){ (u64)&sl->hdr, sizeof sl->hdr, false };
	while (len) {
		u32 l = len < seg_bytes ? len : seg_bytes;
		if (n - 1 >= nseg) return -1;
		b[n++] = (struct vbuf){ buf, l, type == T_IN };
		buf += l;
		len -= l;
	}
	b[n++] = (struct vbuf){ (u64)&sl->status, 1, true };
	return virtio_submit_at(dev, 0, s * (int)slot_desc, b, n);
}

static int slot_of(int head) { return head / (int)slot_desc; }

/* One synchronous request: 0 ok, else a virtio status or -1 (timeout / bad chain). */
static int blk_rw(u32 type, u64 sector, void *buf, u32 len) {
	if (blk_submit(0, type, sector, (u64)buf, len)) return -1;
	if (virtio_wait(dev, 0, NULL) < 0) return -1;
	return slots[0].status;
}

void blk_info(void) {
	const char *err = blk_open();
	if (err) { printk("blk: %s\n", err); return; }
	printk("blk: at 0x%llx irq %u, %llu sectors (%llu MiB), features 0x%llx%s%s, request limit %u bytes (%u x %u)\n",
	       dev->base, dev->irq, capacity, capacity >> 11, dev->features,
	       dev->features & BLK_F_RO ? " ro" : "", dev->features & BLK_F_FLUSH ? " flush" : "",
	       req_limit(), seg_count, seg_bytes);
}

/* One step of the `count` workload: check that sector (n-1) % 64 holds n-1 (what the
 * previous step wrote), then fill sector n % 64 with n. NULL when fine. */
const char *blk_count_step(u64 n) {
	if (blk_open()) return "no disk";
	u64 *s = (u64 *)small;
	if (n > 1) {
		if (blk_rw(T_IN, (n - 1) % 64, s, 512)) return "read failed";
		for (int i = 0; i < 64; i++) if (s[i] != n - 1) return "sector holds the wrong count";
	}
	for (int i = 0; i < 64; i++) s[i] = n;
	if (blk_rw(T_OUT, n % 64, s, 512)) return "write failed";
	return NULL;
}

static u64 crc_bytes(void) {
	u64 n = CRC_BYTES_DEFAULT;
	if (capacity * 512 < n) n = capacity * 512;
	return n;
}

/* CRC32 of the first 64 KiB of the disk (or the whole disk if smaller). */
static const char *blk_crc(u32 *out) {
	u32 n = (u32)crc_bytes();
	if (n == 0) { *out = 0; return NULL; }
	for (u32 off = 0; off < n; ) {
		u32 l = n - off < req_limit() ? n - off : req_limit();
		if (blk_rw(T_IN, off / 512, small + 4096 + off, l)) return "read of the first 64 KiB failed";
		off += l;
	}
	*out = crc32_update(0, small + 4096, n);
	return NULL;
}

const char *blk_test(void) {
	const char *err = blk_open();
	if (err) return err;
	blk_info();
	if (capacity == 0) return "capacity is 0";
	u32 crc;
	if ((err = blk_crc(&crc))) return err;
	printk("blk: crc32(first %llu bytes)=%08x\n", crc_bytes(), crc);
	if ((err = expect_crc32("probe.blk_crc32", crc))) return err;
	if (dev->features & BLK_F_RO) { printk("blk: read-only, write test skipped\n"); return NULL; }
	/* Non-destructive write test on the last sector: save, write pattern, read back, restore. */
	u64 last = capacity - 1;
	u8 *orig = small, *pat = small + 512, *back = small + 1024;
	if (blk_rw(T_IN, last, orig, 512)) return "read of the last sector failed";
	for (int i = 0; i < 512; i++) pat[i] = (u8)(i * 7 + 13 + last);
	if (blk_rw(T_OUT, last, pat, 512)) return "write failed";
	memset(back, 0, 512);
	if (blk_rw(T_IN, last, back, 512)) return "read-back failed";
	if (memcmp(pat, back, 512)) return "read-back differs from the written pattern";
	if (blk_rw(T_OUT, last, orig, 512)) return "restoring the last sector failed";
	if (dev->features & BLK_F_FLUSH) {
		if (blk_rw(T_FLUSH, 0, NULL, 0)) return "flush failed";
	} else {
		printk("blk: no VIRTIO_BLK_F_FLUSH, flush skipped\n");
	}
	virtio_ack(dev);
	return NULL;
}

/* Sequential large requests, up to DEPTH_MAX in flight, wrapping at the disk's end;
 * or, with random, 4 KiB requests at 4 KiB-aligned offsets from a fixed LCG sequence.
 * write overwrites the disk with whatever the buffers hold. */
void bench_blk(bool write, bool random, u64 mib) {
	const char *err = blk_open();
	if (err) { printk("BENCH BLK FAIL: %s\n", err); return; }
	u32 req = req_limit();
	if ((u64)req > capacity * 512) req = (u32)(capacity * 512) & ~511u;
	if (random) req = 4096;
	if (req == 0 || (u64)req > capacity * 512) { printk("BENCH BLK FAIL: disk too small\n"); return; }
	int depth = dev->q[0].size / (int)slot_desc;
	if (depth > DEPTH_MAX) depth = DEPTH_MAX;
	if (depth < 1) { printk("BENCH BLK FAIL: queue too small\n"); return; }
	static u8 *bufs[DEPTH_MAX];
	for (int i = 0; i < depth; i++)
		if (!bufs[i] && !(bufs[i] = phys_alloc(REQ_MAX, 1 << 20))) { depth = i; break; }
	if (depth < 1) { printk("BENCH BLK FAIL: out of memory\n"); return; }
	u64 total = mib << 20, sent = 0, done = 0, sector = 0, span = capacity - capacity % (req / 512);
	u32 lens[DEPTH_MAX];
	u64 lcg = 0x2545F4914F6CDD1Dull, blocks = capacity / 8;
	const char *op = random ? (write ? "randwrite" : "randread") : (write ? "write" : "read");
	printk("bench: blk %s %llu MiB, %u-byte requests, depth %d\n", op, mib, req, depth);
	printk("BENCH BLK START\n");
	int inflight = 0;
	for (int s = 0; s < depth && sent < total; s++) {
		u32 l = total - sent < req ? (u32)(total - sent) : req;
		if (random) { lcg = lcg * 6364136223846793005ull + 1442695040888963407ull; sector = (lcg >> 16) % blocks * 8; }
		else if (sector + l / 512 > span) sector = 0;
		if (blk_submit(s, write ? T_OUT : T_IN, sector, (u64)bufs[s], l)) { printk("BENCH BLK FAIL: submit\n"); return; }
		lens[s] = l; sent += l; sector += l / 512; inflight++;
	}
	while (inflight) {
		int head = virtio_wait(dev, 0, NULL);
		if (head < 0) { printk("BENCH BLK FAIL: timeout\n"); return; }
		int s = slot_of(head);
		if (s < 0 || s >= depth || slots[s].status != 0) {
			printk("BENCH BLK FAIL: request error (status %u)\n", s >= 0 && s < depth ? slots[s].status : 255);
			return;
		}
		done += lens[s];
		inflight--;
		if (sent < total) {
			u32 l = total - sent < req ? (u32)(total - sent) : req;
			if (random) { lcg = lcg * 6364136223846793005ull + 1442695040888963407ull; sector = (lcg >> 16) % blocks * 8; }
		else if (sector + l / 512 > span) sector = 0;
			if (blk_submit(s, write ? T_OUT : T_IN, sector, (u64)bufs[s], l)) { printk("BENCH BLK FAIL: submit\n"); return; }
			lens[s] = l; sent += l; sector += l / 512; inflight++;
		}
	}
	if (write && (dev->features & BLK_F_FLUSH)) blk_rw(T_FLUSH, 0, NULL, 0);
	virtio_ack(dev);
	printk("BENCH BLK DONE op=%s bytes=%llu\n", op, done);
}
