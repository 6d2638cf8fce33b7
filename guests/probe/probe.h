/* Shared declarations of the probe kernel. Freestanding: no libc, no SSE. */
#ifndef PROBE_H
#define PROBE_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef long long i64;
typedef unsigned long size_t;
typedef _Bool bool;
#define true 1
#define false 0
#define NULL ((void *)0)

#define PROBE_VERSION "0.1.0"

/* ---- port and memory-mapped I/O ---- */
static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u32 mmio_read32(u64 a) { return *(volatile u32 *)a; }
static inline u8 mmio_read8(u64 a) { return *(volatile u8 *)a; }
static inline void mmio_write32(u64 a, u32 v) { *(volatile u32 *)a = v; }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }
static inline void mfence(void) { __asm__ volatile("mfence" ::: "memory"); }
static inline u64 rdtsc(void) { u32 lo, hi; __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi)); return ((u64)hi << 32) | lo; }
static inline void cpuid(u32 leaf, u32 sub, u32 r[4]) {
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

/* ---- lib.c ---- */
void *memcpy(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
bool parse_u64(const char *s, size_t n, u64 *out); /* decimal or 0x hex, whole string */
u32 crc32_update(u32 crc, const void *p, size_t n); /* start with 0, IEEE (zlib) CRC */
void printk(const char *fmt, ...); /* %s %c %d %u %x %lx %llx %llu %p, width/0-pad for x/u */

/* ---- serial.c ---- */
void serial_init(void);
void serial_putc(char c);
int serial_getc_nowait(void); /* -1 if nothing */

/* ---- boot.c ---- */
#define BOOT_LINUX64 1
#define BOOT_LINUX32 2
#define BOOT_PVH 3
#define E820_MAX 64
struct e820 { u64 addr, size; u32 type; };
struct bootinfo {
	int kind;
	u64 info_addr;
	char cmdline[4096];
	u32 cmdline_size;     /* boot protocol limit (bzImage) or 0 */
	bool cmdline_truncated;
	struct e820 e820[E820_MAX];
	int e820_n;
	u64 initrd_addr, initrd_size;
	u64 rsdp; /* ACPI RSDP from boot_params.acpi_rsdp_addr or hvm_start_info, 0 if none */
};
extern struct bootinfo boot;
extern char _kernel_start[], _end[];
void boot_parse(int kind, u64 info);
/* Command-line parameters: "key=value" tokens separated by spaces. */
bool param(const char *key, const char **val, size_t *len);
bool param_u64(const char *key, u64 *out);
bool param_hex32(const char *key, u32 *out);
/* A CRC the test must be told: NULL if `key=` is present, well-formed and equals `got`,
 * else why not (missing, garbled or different). */
const char *expect_crc32(const char *key, u32 got);
void print_e820(void);
const char *e820_type_name(u32 t);
/* Bump allocator over usable RAM above the kernel and initrd; 4 KiB aligned, not zeroed. */
void *phys_alloc(u64 size, u64 align);

/* ---- power.c ---- */
void poweroff(void) __attribute__((noreturn));
void triple_fault(void) __attribute__((noreturn));

/* ---- virtio.c ---- */
#define VIRTIO_MAX_DEV 16
struct vq {
	u16 size, idx, last_used, qindex;
	struct vq_desc *desc;
	struct vq_avail *avail;
	struct vq_used *used;
};
struct vdev {
	u64 base, size;
	u32 irq, id, version;
	u64 features;
	struct vq q[2];
	bool ready;
};
extern struct vdev vdevs[VIRTIO_MAX_DEV];
extern int vdev_n;
void virtio_discover(void);
struct vdev *virtio_find(u32 device_id);
/* Reset and negotiate (VERSION_1 plus `want` & offered), set up `nq` queues: error text or NULL. */
const char *virtio_init(struct vdev *d, u64 want, int nq);
u32 virtio_cfg32(struct vdev *d, u32 off);
u64 virtio_cfg64(struct vdev *d, u32 off);
/* Submit a chain of n buffers (addr, len, device-writable flag) and poll for completion. */
struct vbuf { u64 addr; u32 len; bool write; };
int virtio_submit(struct vdev *d, int q, const struct vbuf *b, int n); /* descriptors from 0 */
int virtio_submit_at(struct vdev *d, int q, int first_desc, const struct vbuf *b, int n);
int virtio_wait(struct vdev *d, int q, u32 *used_len); /* head descriptor id, -1 on timeout */
bool virtio_has_used(struct vdev *d, int q); /* a completion is waiting */
void virtio_ack(struct vdev *d);
const char *virtio_name(u32 id);

/* ---- blk.c / rng.c / vcons.c ---- */
const char *blk_open(void);
const char *blk_test(void);
void blk_info(void);
const char *blk_count_step(u64 n);
void bench_blk(bool write, bool random, u64 mib);
const char *rng_test(void);
void rng_show(void);
const char *vcons_test(void);
const char *net_test(void);
void net_info(void);
const char *vsock_test(void);
void bench_net_tx(u64 count, u64 size);

/* ---- smp.c ---- */
#define LAPIC_BASE 0xFEE00000ull
#define AP_TRAMPOLINE 0x10000ull /* real-mode start page of the APs (SIPI vector 0x10) */
const char *smp_start(void);
void ap_main(void);
void idt_load(void);

/* ---- tests.c / shell.c / bench.c ---- */
void run_tests(const char *list, size_t len);
extern const char *current_test;
extern int test_pass, test_fail;
void shell(void);
void count_ticks(u64 n, u64 spin_millions, bool disk); /* print count 1..n (0: for ever) */
void bench_pio(u64 n);
void bench_mmio(u64 n, u64 addr);
bool bench_cmd(const char *spec, size_t len); /* "pio:N", "mmio:N[:ADDR]", "blk:read:MIB" */

#endif
