/* The probe kernel: banner, boot facts, then self-tests, a benchmark or the shell. */
#include "probe.h"

void idt_init(void);

static const char *kind_name(int k) {
	return k == BOOT_LINUX64 ? "linux-64" : k == BOOT_LINUX32 ? "linux-32" : k == BOOT_PVH ? "pvh" : "?";
}

void kmain(int kind, u64 info) {
	serial_init();
	idt_init();
	boot_parse(kind, info);
	printk("\nswiftvmm probe %s (entry %s, info at 0x%llx)\n", PROBE_VERSION, kind_name(kind), info);
	if (kind == BOOT_PVH && !boot.e820_n && !boot.cmdline[0]) printk("probe: no valid hvm_start_info\n");
	printk("cmdline: %s\n", boot.cmdline);
	print_e820();
	if (boot.initrd_size) printk("initrd: 0x%llx size %llu\n", boot.initrd_addr, boot.initrd_size);
	else printk("initrd: none\n");
	const char *v;
	size_t n;
	if (param("probe.bench", &v, &n)) {
		if (!bench_cmd(v, n)) printk("probe: bad probe.bench= (pio:N, mmio:N[:ADDR], blk:[rand]read|[rand]write:MIB)\n");
		poweroff();
	}
	if (param("probe.count", &v, &n)) {
		/* N[:SPIN]: count as the shell's `count` does, then power off. */
		size_t i = 0;
		while (i < n && v[i] != ':') i++;
		u64 count = 0, spin = 20;
		if (!parse_u64(v, i, &count) || (i < n && !parse_u64(v + i + 1, n - i - 1, &spin)))
			printk("probe: bad probe.count= (N or N:SPIN)\n");
		else
			count_ticks(count, spin, false);
		poweroff();
	}
	if (param("probe.run", &v, &n)) {
		run_tests(v, n);
		poweroff();
	}
	shell();
}
