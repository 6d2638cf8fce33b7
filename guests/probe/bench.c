/* Exit-cost benchmarks: the host times the interval between the START and DONE lines;
 * nothing is printed in between. */
#include "probe.h"

void bench_pio(u64 n) {
	printk("BENCH PIO START\n");
	for (u64 i = 0; i < n; i++) outb(0x80, (u8)i);
	printk("BENCH PIO DONE n=%llu\n", n);
}

void bench_mmio(u64 n, u64 addr) {
	if (addr >= 0x100000000ull) { printk("BENCH MMIO FAIL: address beyond 4 GiB\n"); return; }
	printk("BENCH MMIO START\n");
	for (u64 i = 0; i < n; i++) mmio_write32(addr, (u32)i);
	printk("BENCH MMIO DONE n=%llu\n", n);
}

static bool field(const char **p, const char *end, const char **f, size_t *n) {
	if (*p >= end) return false;
	const char *q = *p;
	while (q < end && *q != ':') q++;
	*f = *p;
	*n = (size_t)(q - *p);
	*p = q < end ? q + 1 : q;
	return true;
}

/* "pio:N", "mmio:N[:ADDR]", "blk:[rand]read:MIB", "blk:[rand]write:MIB", "net:tx:FRAMES[:SIZE]" */
bool bench_cmd(const char *s, size_t len) {
	const char *p = s, *end = s + len, *f;
	size_t n;
	u64 a, b;
	if (!field(&p, end, &f, &n)) return false;
	if (n == 3 && !strncmp(f, "pio", 3)) {
		if (!field(&p, end, &f, &n) || !parse_u64(f, n, &a)) return false;
		bench_pio(a);
		return true;
	}
	if (n == 4 && !strncmp(f, "mmio", 4)) {
		if (!field(&p, end, &f, &n) || !parse_u64(f, n, &a)) return false;
		b = 0xC0000000;
		if (field(&p, end, &f, &n) && !parse_u64(f, n, &b)) return false;
		bench_mmio(a, b);
		return true;
	}
	if (n == 3 && !strncmp(f, "blk", 3)) {
		if (!field(&p, end, &f, &n)) return false;
		bool w, r = n > 4 && !strncmp(f, "rand", 4);
		if (r) { f += 4; n -= 4; }
		if (n == 4 && !strncmp(f, "read", 4)) w = false;
		else if (n == 5 && !strncmp(f, "write", 5)) w = true;
		else return false;
		if (!field(&p, end, &f, &n) || !parse_u64(f, n, &a)) return false;
		bench_blk(w, r, a);
		return true;
	}
	if (n == 3 && !strncmp(f, "net", 3)) {
		if (!field(&p, end, &f, &n) || n != 2 || strncmp(f, "tx", 2)) return false;
		if (!field(&p, end, &f, &n) || !parse_u64(f, n, &a)) return false;
		b = 1514;
		if (field(&p, end, &f, &n) && !parse_u64(f, n, &b)) return false;
		bench_net_tx(a, b);
		return true;
	}
	return false;
}
