/* Self-tests selected by probe.run=all|a,b,...; output protocol:
 *   PROBE PASS <name> | PROBE FAIL <name>: <reason> | PROBE SKIP <name>[: why]
 *   PROBE DONE pass=<n> fail=<m>                                                   */
#include "probe.h"

#define SKIP ((const char *)1)
const char *current_test;
int test_pass, test_fail;

static const char *t_serial(void) {
	const u16 com = 0x3F8;
	outb(com + 7, 0x5A);
	if (inb(com + 7) != 0x5A) return "scratch register does not hold 0x5a";
	outb(com + 7, 0xA5);
	if (inb(com + 7) != 0xA5) return "scratch register does not hold 0xa5";
	u8 mcr = inb(com + 4);
	for (int i = 0; i < 10000 && !(inb(com + 5) & 0x40); i++) { } /* TEMT: our output has left */
	outb(com + 4, 0x10); /* loopback */
	for (int i = 0; i < 64 && (inb(com + 5) & 1); i++) inb(com); /* drain */
	outb(com, 0x42);
	int i;
	for (i = 0; i < 100000 && !(inb(com + 5) & 1); i++) { }
	u8 got = inb(com), lsr = inb(com + 5);
	outb(com + 4, mcr);
	if (i == 100000) return "loopback: no data ready after writing THR";
	if (got != 0x42) return "loopback: received byte differs";
	if (lsr & 1) return "loopback: data still ready after reading RBR";
	return NULL;
}

/* The Linux boot path (what swiftvmm builds) must give a sorted, non-overlapping table
 * without empty entries. QEMU's PVH firmware hands over an unsorted table with an empty
 * last entry, so for PVH the check runs on a sorted copy without empty entries. */
static const char *t_e820(void) {
	static struct e820 m[E820_MAX];
	int n = 0;
	for (int i = 0; i < boot.e820_n; i++) {
		if (boot.kind == BOOT_PVH && boot.e820[i].size == 0) continue;
		m[n++] = boot.e820[i];
	}
	if (boot.kind == BOOT_PVH)
		for (int i = 1; i < n; i++)
			for (int j = i; j > 0 && m[j].addr < m[j - 1].addr; j--) { struct e820 t = m[j]; m[j] = m[j - 1]; m[j - 1] = t; }
	if (n == 0) return "no entries";
	u64 ram = 0;
	bool covers = false;
	for (int i = 0; i < n; i++) {
		struct e820 *e = &m[i];
		if (e->size == 0) return "entry of size 0";
		if (e->addr + e->size < e->addr) return "entry wraps around";
		if (e->type < 1 || e->type > 5) return "unknown entry type";
		if (i && e->addr < m[i - 1].addr + m[i - 1].size) return "entries unsorted or overlapping";
		if (e->type == 1) {
			ram += e->size;
			if (e->addr <= (u64)_kernel_start && e->addr + e->size >= (u64)_end) covers = true;
		}
	}
	if (!covers) return "no usable entry covers the kernel";
	if (ram < (1 << 20)) return "less than 1 MiB usable RAM";
	return NULL;
}

static const char *t_initrd(void) {
	if (!boot.initrd_size) return SKIP;
	if (boot.initrd_addr + boot.initrd_size > 0x100000000ull) return "initrd beyond 4 GiB (not mapped)";
	bool in_ram = false;
	for (int i = 0; i < boot.e820_n; i++) {
		struct e820 *e = &boot.e820[i];
		if (e->type == 1 && e->addr <= boot.initrd_addr && e->addr + e->size >= boot.initrd_addr + boot.initrd_size) in_ram = true;
	}
	if (!in_ram) return "initrd not inside usable RAM";
	if (boot.initrd_addr < (u64)_end && boot.initrd_addr + boot.initrd_size > (u64)_kernel_start) return "initrd overlaps the kernel";
	u32 crc = crc32_update(0, (const void *)boot.initrd_addr, boot.initrd_size);
	printk("initrd: crc32=%08x\n", crc);
	return expect_crc32("probe.initrd_crc32", crc);
}

/* probe.cmdline_crc32=X: X is the CRC32 of everything before " probe.cmdline_crc32=" (the
 * test computes it over the command line it passed; a VMM may append after it). */
static const char *t_cmdline(void) {
	static const char key[] = "probe.cmdline_crc32";
	const char *v;
	size_t n;
	if (!boot.cmdline[0]) return "empty";
	if (boot.cmdline_truncated) return "not NUL-terminated within cmdline_size";
	if (!param("probe.run", &v, &n)) return "probe.run= missing";
	if (!param(key, &v, &n)) return "probe.cmdline_crc32= missing";
	size_t before = (size_t)(v - (sizeof key) - boot.cmdline);
	if (before > 0 && boot.cmdline[before - 1] == ' ') before--;
	return expect_crc32(key, crc32_update(0, boot.cmdline, before));
}

static const char *t_mmio(void) {
	u64 a = 0xC0000000;
	param_u64("probe.mmio_addr", &a);
	if (a >= 0x100000000ull) return "address beyond the 4 GiB identity map";
	u32 v = mmio_read32(a);
	if (v != 0xffffffff) return "32-bit read did not return all ones";
	mmio_write32(a, 0x12345678);
	if (mmio_read32(a) != 0xffffffff) return "read after write did not return all ones";
	if (mmio_read8(a + 1) != 0xff) return "8-bit read did not return 0xff";
	return NULL;
}

static const char *t_virtio(void) {
	virtio_discover();
	if (vdev_n == 0) return SKIP;
	int found = 0;
	for (int i = 0; i < vdev_n; i++) {
		struct vdev *d = &vdevs[i];
		if (d->base >= 0x100000000ull) return "device beyond 4 GiB";
		u32 magic = mmio_read32(d->base);
		printk("virtio: %llu@0x%llx irq %u: magic %08x version %u device %u (%s)\n",
		       d->size, d->base, d->irq, magic, d->version, d->id, virtio_name(d->id));
		if (magic != 0x74726976) return "bad magic (want 0x74726976 \"virt\")";
		if (d->version != 2) return "version is not 2 (legacy transport?)";
		if (d->id) found++;
	}
	if (!found) return "no device behind any transport";
	return NULL;
}

static const char *absent_is_skip(const char *r) {
	return r && strcmp(r, "absent") == 0 ? SKIP : r;
}
static const char *t_blk(void) { return absent_is_skip(blk_test()); }
static const char *t_rng(void) { return absent_is_skip(rng_test()); }
static const char *t_console(void) { return absent_is_skip(vcons_test()); }
static const char *t_smp(void) { return absent_is_skip(smp_start()); }

static const struct { const char *name; const char *(*fn)(void); } tests[] = {
	{ "serial", t_serial }, { "e820", t_e820 }, { "initrd", t_initrd }, { "cmdline", t_cmdline },
	{ "mmio", t_mmio }, { "virtio", t_virtio }, { "blk", t_blk }, { "rng", t_rng },
	{ "console", t_console }, { "smp", t_smp },
};
#define NTESTS (sizeof tests / sizeof tests[0])

static void run_one(int i) {
	current_test = tests[i].name;
	const char *r = tests[i].fn();
	current_test = NULL;
	if (r == SKIP) printk("PROBE SKIP %s\n", tests[i].name);
	else if (r) { printk("PROBE FAIL %s: %s\n", tests[i].name, r); test_fail++; }
	else { printk("PROBE PASS %s\n", tests[i].name); test_pass++; }
}

void run_tests(const char *list, size_t len) {
	test_pass = test_fail = 0;
	if (len == 4 && strncmp(list, "none", 4) == 0) {
		/* nothing: "boot, report, power off" for startup benchmarks */
	} else if (len == 3 && strncmp(list, "all", 3) == 0) {
		for (unsigned i = 0; i < NTESTS; i++) run_one((int)i);
	} else {
		const char *p = list, *end = list + len;
		while (p < end) {
			const char *q = p;
			while (q < end && *q != ',') q++;
			size_t n = (size_t)(q - p);
			int found = -1;
			for (unsigned i = 0; i < NTESTS; i++)
				if (strlen(tests[i].name) == n && strncmp(tests[i].name, p, n) == 0) found = (int)i;
			if (found >= 0) run_one(found);
			else if (n) {
				printk("PROBE FAIL ");
				for (size_t k = 0; k < n; k++) serial_putc(p[k]);
				printk(": unknown test\n");
				test_fail++;
			}
			p = q + 1;
		}
	}
	printk("PROBE DONE pass=%d fail=%d\n", test_pass, test_fail);
}

/* CPU exceptions: report (as a test failure if one is running) and power off. */
struct frame { u64 rdi, rsi, rbp, rbx, rdx, rcx, rax, vector, err, rip, cs, rflags, rsp, ss; };

void exception_handler(struct frame *f) {
	u64 cr2;
	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	if (current_test) {
		printk("PROBE FAIL %s: exception %llu err=0x%llx rip=0x%llx cr2=0x%llx\n", current_test, f->vector, f->err, f->rip, cr2);
		printk("PROBE DONE pass=%d fail=%d\n", test_pass, test_fail + 1);
	} else {
		printk("probe: exception %llu err=0x%llx rip=0x%llx cr2=0x%llx\n", f->vector, f->err, f->rip, cr2);
	}
	poweroff();
}

extern const u64 isr_table[22];
static struct __attribute__((packed)) { u16 lo, sel; u8 ist, attr; u16 mid; u32 hi, zero; } idt[22];

void idt_load(void) {
	struct __attribute__((packed)) { u16 limit; u64 base; } d = { sizeof idt - 1, (u64)idt };
	__asm__ volatile("lidt %0" : : "m"(d));
}

void idt_init(void) {
	for (int i = 0; i < 22; i++) {
		u64 a = isr_table[i];
		idt[i].lo = (u16)a;
		idt[i].sel = 0x08;
		idt[i].ist = 0;
		idt[i].attr = 0x8E;
		idt[i].mid = (u16)(a >> 16);
		idt[i].hi = (u32)(a >> 32);
		idt[i].zero = 0;
	}
	idt_load();
}
