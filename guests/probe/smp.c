/* Secondary CPUs: the ACPI MADT lists the local APICs; each AP other than this one is
 * started with INIT-SIPI-SIPI through the local APIC, runs the real-mode trampoline
 * (head.S: ap_trampoline, copied below 1 MiB), reaches long mode on its own stack and
 * reports "PROBE CPU n online apic=x". One AP at a time; each then halts with interrupts off. */
#include "probe.h"

#define LAPIC_ID 0x20
#define LAPIC_SVR 0xF0
#define LAPIC_ICR_LO 0x300
#define LAPIC_ICR_HI 0x310
#define ICR_PENDING (1u << 12)
#define ICR_INIT 0x00004500u   /* INIT, level assert */
#define ICR_SIPI 0x00004600u   /* start-up, vector in bits 0-7 */
#define MAX_CPUS 64
#define AP_WAIT_CYCLES 6000000000ull

extern const u8 ap_trampoline[], ap_trampoline_end[];
volatile u64 ap_boot_stack; /* read by ap_start64 */
static volatile int ap_index, ap_online;
static volatile u32 ap_apic;

static u32 lapic_read(u32 reg) { return mmio_read32(LAPIC_BASE + reg); }
static void lapic_write(u32 reg, u32 v) { mmio_write32(LAPIC_BASE + reg, v); }

static void delay(u64 cycles) {
	u64 t = rdtsc();
	while (rdtsc() - t < cycles) __asm__ volatile("pause");
}

static bool checksum_ok(u64 a, u32 n) {
	u8 s = 0;
	for (u32 i = 0; i < n; i++) s = (u8)(s + *(volatile u8 *)(a + i));
	return s == 0;
}

static u64 find_rsdp(void) {
	if (boot.rsdp && boot.rsdp < 0x100000000ull && memcmp((const void *)boot.rsdp, "RSD PTR ", 8) == 0) return boot.rsdp;
	for (u64 a = 0xE0000; a < 0x100000; a += 16)
		if (memcmp((const void *)a, "RSD PTR ", 8) == 0 && checksum_ok(a, 20)) return a;
	return 0;
}

/* The MADT's enabled local APIC ids: count, or -1 with *why set. */
static int madt_apic_ids(u8 *ids, const char **why) {
	u64 rsdp = find_rsdp();
	if (!rsdp) { *why = "absent"; return -1; } /* a VMM without ACPI (the floor VMM) */
	u8 rev = *(volatile u8 *)(rsdp + 15);
	u64 sdt = rev >= 2 ? *(volatile u64 *)(rsdp + 24) : *(volatile u32 *)(rsdp + 16);
	u32 esize = rev >= 2 ? 8 : 4;
	if (!sdt || sdt >= 0x100000000ull) { *why = "RSDT/XSDT address beyond 4 GiB or 0"; return -1; }
	u32 sdt_len = *(volatile u32 *)(sdt + 4);
	if (sdt_len < 36 || sdt_len > 4096) { *why = "bad RSDT/XSDT length"; return -1; }
	for (u32 off = 36; off + esize <= sdt_len; off += esize) {
		u64 t = esize == 8 ? *(volatile u64 *)(sdt + off) : *(volatile u32 *)(sdt + off);
		if (!t || t >= 0x100000000ull || memcmp((const void *)t, "APIC", 4)) continue;
		u32 len = *(volatile u32 *)(t + 4);
		if (len < 44 || len > 65536 || !checksum_ok(t, len)) { *why = "bad MADT length or checksum"; return -1; }
		int n = 0;
		for (u32 e = 44; e + 2 <= len; ) {
			u8 type = *(volatile u8 *)(t + e), elen = *(volatile u8 *)(t + e + 1);
			if (elen < 2 || e + elen > len) { *why = "bad MADT entry length"; return -1; }
			if (type == 0 && elen >= 8 && (*(volatile u32 *)(t + e + 4) & 1)) {
				if (n == MAX_CPUS) { *why = "more than 64 CPUs"; return -1; }
				ids[n++] = *(volatile u8 *)(t + e + 3);
			}
			e += elen;
		}
		return n;
	}
	*why = "no MADT";
	return -1;
}

static void send_ipi(u8 apic, u32 icr) {
	lapic_write(LAPIC_ICR_HI, (u32)apic << 24);
	lapic_write(LAPIC_ICR_LO, icr);
	for (int i = 0; i < 100000 && (lapic_read(LAPIC_ICR_LO) & ICR_PENDING); i++) __asm__ volatile("pause");
}

static bool wait_online(u64 cycles) {
	u64 t = rdtsc();
	while (!ap_online)
		if (rdtsc() - t > cycles) return false;
	return true;
}

const char *smp_start(void) {
	static u8 ids[MAX_CPUS];
	const char *why = NULL;
	int n = madt_apic_ids(ids, &why);
	if (n < 0) return why;
	u32 self = lapic_read(LAPIC_ID) >> 24;
	printk("smp: %d CPUs in the MADT, this one apic=%u\n", n, self);
	bool listed = false;
	for (int i = 0; i < n; i++) listed |= ids[i] == self;
	if (!listed) return "the boot CPU's APIC id is not in the MADT";
	/* The trampoline page must be usable RAM that the loader's data does not use any more. */
	bool usable = false;
	for (int i = 0; i < boot.e820_n; i++) {
		struct e820 *e = &boot.e820[i];
		if (e->type == 1 && e->addr <= AP_TRAMPOLINE && e->addr + e->size >= AP_TRAMPOLINE + 4096) usable = true;
	}
	if (n > 1 && !usable) return "0x10000 is not usable RAM (AP trampoline)";
	lapic_write(LAPIC_SVR, lapic_read(LAPIC_SVR) | 0x1FF); /* software-enable, spurious vector 0xff */
	memcpy((void *)AP_TRAMPOLINE, ap_trampoline, (size_t)(ap_trampoline_end - ap_trampoline));
	int online = 1;
	for (int i = 0; i < n; i++) {
		if (ids[i] == self) { printk("PROBE CPU %d online apic=%u\n", i, self); continue; }
		u8 *stack = phys_alloc(16384, 4096);
		if (!stack) return "out of memory for AP stacks";
		ap_boot_stack = (u64)stack + 16384;
		ap_index = i;
		ap_online = 0;
		mfence();
		send_ipi(ids[i], ICR_INIT);
		delay(1000000);
		send_ipi(ids[i], ICR_SIPI | (u32)(AP_TRAMPOLINE >> 12));
		if (!wait_online(2000000)) {
			send_ipi(ids[i], ICR_SIPI | (u32)(AP_TRAMPOLINE >> 12));
			if (!wait_online(AP_WAIT_CYCLES)) {
				printk("smp: CPU %d (apic %u) did not come online\n", i, ids[i]);
				continue;
			}
		}
		if (ap_apic != ids[i]) { printk("smp: CPU %d reports apic %u, not %u\n", i, ap_apic, ids[i]); continue; }
		online++;
	}
	printk("smp: %d of %d CPUs online\n", online, n);
	return online == n ? NULL : "not every CPU in the MADT came online";
}

/* Entered from ap_start64 on the stack in ap_boot_stack. */
void ap_main(void) {
	idt_load();
	u32 id = lapic_read(LAPIC_ID) >> 24;
	printk("PROBE CPU %d online apic=%u\n", ap_index, id);
	ap_apic = id;
	mfence();
	ap_online = 1;
	for (;;) __asm__ volatile("cli; hlt");
}
