/* Line shell on the polled COM1 console. */
#include "probe.h"

static char line[256];

static void readline(void) {
	size_t n = 0;
	for (;;) {
		int c = serial_getc_nowait();
		if (c < 0) { __asm__ volatile("pause"); continue; }
		if (c == '\r' || c == '\n') { serial_putc('\n'); break; }
		if (c == 8 || c == 127) {
			if (n) { n--; printk("\b \b"); }
			continue;
		}
		if (c < 32 || c > 126 || n + 1 >= sizeof line) continue;
		line[n++] = (char)c;
		serial_putc((char)c);
	}
	line[n] = 0;
}

static void cmd_mem(void) {
	u64 ram = 0;
	for (int i = 0; i < boot.e820_n; i++) if (boot.e820[i].type == 1) ram += boot.e820[i].size;
	printk("mem: %llu KiB usable in %d e820 entries\n", ram >> 10, boot.e820_n);
	printk("mem: kernel 0x%llx-0x%llx\n", (u64)_kernel_start, (u64)_end - 1);
	if (boot.initrd_size) printk("mem: initrd 0x%llx-0x%llx\n", boot.initrd_addr, boot.initrd_addr + boot.initrd_size - 1);
}

/* The raw bytes of one input line, control characters included (readline drops them):
 * shows what a VMM's console really delivers. */
static void cmd_keys(void) {
	printk("keys: type a line\n");
	printk("keys:");
	for (;;) {
		int c = serial_getc_nowait();
		if (c < 0) { __asm__ volatile("pause"); continue; }
		if (c == '\r' || c == '\n') break;
		printk(" %02x", (u32)c);
	}
	printk("\n");
}

static void cmd_cpuid(void) {
	u32 r[4];
	char s[49];
	cpuid(0, 0, r);
	u32 max = r[0];
	memcpy(s, &r[1], 4); memcpy(s + 4, &r[3], 4); memcpy(s + 8, &r[2], 4); s[12] = 0;
	printk("cpuid: vendor %s, max leaf 0x%x\n", s, max);
	cpuid(1, 0, r);
	u32 fam = (r[0] >> 8) & 0xf, model = (r[0] >> 4) & 0xf;
	if (fam == 6 || fam == 15) model |= ((r[0] >> 16) & 0xf) << 4;
	if (fam == 15) fam += (r[0] >> 20) & 0xff;
	printk("cpuid: family 0x%x model 0x%x stepping %u, ecx 0x%08x edx 0x%08x%s\n", fam, model, r[0] & 0xf,
	       r[2], r[3], r[2] & (1u << 31) ? " (hypervisor)" : "");
	cpuid(0x80000000, 0, r);
	if (r[0] >= 0x80000004) {
		for (u32 i = 0; i < 3; i++) { cpuid(0x80000002 + i, 0, r); memcpy(s + 16 * i, r, 16); }
		s[48] = 0;
		printk("cpuid: brand %s\n", s);
	}
	cpuid(0x40000000, 0, r);
	memcpy(s, &r[1], 4); memcpy(s + 4, &r[2], 4); memcpy(s + 8, &r[3], 4); s[12] = 0;
	bool printable = true;
	for (int i = 0; i < 12 && s[i]; i++) if (s[i] < 32 || s[i] > 126) printable = false;
	if (printable && s[0]) printk("cpuid: hypervisor \"%s\", max leaf 0x%x\n", s, r[0]);
}

static bool word(const char **p, const char **w, size_t *n) {
	while (**p == ' ') (*p)++;
	if (!**p) return false;
	*w = *p;
	while (**p && **p != ' ') (*p)++;
	*n = (size_t)(*p - *w);
	return true;
}

static bool is(const char *w, size_t n, const char *s) { return strlen(s) == n && !strncmp(w, s, n); }

/* Ctrl, Alt, Delete make codes as the keyboard controller delivers them: scan code set 1
 * when it translates (its default), set 2 otherwise. */
static const u8 cad_set1[4] = {0x1D, 0x38, 0xE0, 0x53};
static const u8 cad_set2[4] = {0x14, 0x11, 0xE0, 0x71};

/* Poll the i8042 (no interrupts in the probe); true once Ctrl-Alt-Del has arrived. */
static bool ctrl_alt_del_pressed(void) {
	static u8 last[4];
	while (inb(0x64) & 1) {
		for (int i = 0; i < 3; i++) last[i] = last[i + 1];
		last[3] = inb(0x60);
		if (!memcmp(last, cad_set1, 4) || !memcmp(last, cad_set2, 4)) return true;
	}
	return false;
}

/* A guest that works and shows it: pause/resume, snapshot and migration tests watch the
 * numbers continue with no gap and no repeat. With `disk`, each step also checks the
 * sector the previous step wrote and writes its own (blk_count_step), so the disk's
 * contents follow the count too. Ctrl-Alt-Del on the keyboard (the API's
 * SendCtrlAltDel) ends it with a power-off, as Linux's reboot=k would. */
void count_ticks(u64 n, u64 spin_millions, bool disk) {
	for (u64 i = 1; n == 0 || i <= n; i++) {
		u64 start = rdtsc();
		while (rdtsc() - start < spin_millions * 1000000ull) __asm__ volatile("pause");
		const char *err = disk ? blk_count_step(i) : NULL;
		if (err) { printk("count %lu disk error: %s\n", (unsigned long)i, err); return; }
		printk("count %lu\n", (unsigned long)i);
		if (ctrl_alt_del_pressed()) {
			printk("probe: ctrl-alt-del\n");
			poweroff();
		}
	}
}

/* Keep writing one word per page over MIB MiB, for ever (the migration benchmark's
 * "dirtying" guest); prints a line per sweep. */
static void cmd_dirty(u64 mib) {
	u64 *buf = phys_alloc(mib << 20, 4096);
	if (!buf) { printk("dirty: cannot allocate %llu MiB\n", mib); return; }
	for (u64 sweep = 1;; sweep++) {
		for (u64 i = 0; i < (mib << 20) / 8; i += 512) buf[i] = sweep;
		printk("dirty sweep=%llu\n", sweep);
	}
}

static const char help[] =
	"commands:\n"
	"  help                     this text\n"
	"  echo TEXT                print TEXT\n"
	"  keys                     show the bytes of the next line in hex (control keys too)\n"
	"  mem | e820 | cpuid       memory summary, e820 map, CPU identification\n"
	"  blk | rng | net          virtio-blk info, 16 bytes from virtio-rng, virtio-net MAC and link\n"
	"  test LIST                run self-tests (all or a,b,...), stay in the shell\n"
	"  bench pio N              N outb to port 0x80\n"
	"  bench mmio N [ADDR]      N 32-bit writes to ADDR (default 0xc0000000)\n"
	"  bench blk read|write MIB sequential virtio-blk I/O (write overwrites the disk)\n"
	"  count N [SPIN] [disk]    print count 1..N (N=0: for ever), SPIN million TSC cycles apart (default 20);\n"
	"                           with disk, check and write a disk sector per count\n"
	"  dirty MIB                write a word per page of MIB MiB, sweep after sweep\n"
	"  fault                    execute ud2 (exception report, then power off)\n"
	"  crash                    triple fault (the VMM reports a guest crash)\n"
	"  poweroff                 power off\n";

static void execute(const char *p) {
	const char *w, *a, *b;
	size_t n, an, bn;
	u64 x, y;
	if (!word(&p, &w, &n)) return;
	if (is(w, n, "help")) printk("%s", help);
	else if (is(w, n, "echo")) { while (*p == ' ') p++; printk("%s\n", p); }
	else if (is(w, n, "keys")) cmd_keys();
	else if (is(w, n, "mem")) cmd_mem();
	else if (is(w, n, "e820")) print_e820();
	else if (is(w, n, "cpuid")) cmd_cpuid();
	else if (is(w, n, "blk")) blk_info();
	else if (is(w, n, "rng")) rng_show();
	else if (is(w, n, "net")) net_info();
	else if (is(w, n, "poweroff")) poweroff();
	else if (is(w, n, "count")) {
		if (!word(&p, &a, &an) || !parse_u64(a, an, &x)) { printk("usage: count N [SPIN]\n"); return; }
		y = 20;
		bool disk = false;
		while (word(&p, &b, &bn)) {
			if (is(b, bn, "disk")) disk = true;
			else if (!parse_u64(b, bn, &y)) { printk("usage: count N [SPIN] [disk]\n"); return; }
		}
		count_ticks(x, y, disk);
	}
	else if (is(w, n, "dirty")) {
		if (word(&p, &a, &an) && parse_u64(a, an, &x) && x > 0) cmd_dirty(x); else printk("usage: dirty MIB\n");
	}
	else if (is(w, n, "fault")) __asm__ volatile("ud2"); /* exercise the exception report */
	else if (is(w, n, "crash")) triple_fault();
	else if (is(w, n, "test")) {
		if (word(&p, &a, &an)) run_tests(a, an); else printk("usage: test all|NAME,...\n");
	} else if (is(w, n, "bench")) {
		if (!word(&p, &a, &an)) { printk("usage: bench pio|mmio|blk ...\n"); return; }
		if (is(a, an, "pio") && word(&p, &b, &bn) && parse_u64(b, bn, &x)) bench_pio(x);
		else if (is(a, an, "mmio") && word(&p, &b, &bn) && parse_u64(b, bn, &x)) {
			y = 0xC0000000;
			if (word(&p, &b, &bn) && !parse_u64(b, bn, &y)) { printk("bad address\n"); return; }
			bench_mmio(x, y);
		} else if (is(a, an, "blk") && word(&p, &b, &bn) && (is(b, bn, "read") || is(b, bn, "write"))) {
			bool wr = is(b, bn, "write");
			if (word(&p, &b, &bn) && parse_u64(b, bn, &x)) bench_blk(wr, false, x); else printk("usage: bench blk read|write MIB\n");
		} else printk("usage: bench pio N | bench mmio N [ADDR] | bench blk read|write MIB\n");
	} else printk("unknown command (try help)\n");
}

void shell(void) {
	printk("type help for commands\n");
	for (;;) {
		printk("probe> ");
		readline();
		execute(line);
	}
}
