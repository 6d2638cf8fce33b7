/* What the loader told us: Linux boot_params (zero page) or PVH hvm_start_info. */
#include "probe.h"

struct bootinfo boot;

#define BP_ACPI_RSDP_ADDR 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_CMD_LINE_PTR 0x228
#define BP_CMDLINE_SIZE 0x238
#define BP_E820_TABLE 0x2d0

#define PVH_MAGIC 0x336ec578

static u32 rd32(u64 a) { return *(volatile u32 *)a; }
static u64 rd64(u64 a) { return *(volatile u64 *)a; }

/* Copy at most `limit` bytes (cmdline_size excludes the NUL); flag a missing NUL. */
static void copy_cmdline(u64 ptr, u32 limit) {
	size_t i = 0;
	if (ptr) {
		const char *s = (const char *)ptr;
		while (i < sizeof boot.cmdline - 1 && i < limit && s[i]) { boot.cmdline[i] = s[i]; i++; }
		if (s[i]) boot.cmdline_truncated = true;
	}
	boot.cmdline[i] = 0;
}

void boot_parse(int kind, u64 info) {
	boot.kind = kind;
	boot.info_addr = info;
	if (kind == BOOT_PVH) {
		if (!info || rd32(info) != PVH_MAGIC) return;
		u32 version = rd32(info + 4);
		u32 nr_modules = rd32(info + 12);
		u64 modlist = rd64(info + 16);
		copy_cmdline(rd64(info + 24), 4095);
		boot.rsdp = rd64(info + 32);
		if (nr_modules && modlist) {
			boot.initrd_addr = rd64(modlist);
			boot.initrd_size = rd64(modlist + 8);
		}
		if (version >= 1) {
			u64 map = rd64(info + 40);
			u32 n = rd32(info + 48);
			for (u32 i = 0; map && i < n && boot.e820_n < E820_MAX; i++) {
				struct e820 *e = &boot.e820[boot.e820_n++];
				e->addr = rd64(map + i * 24);
				e->size = rd64(map + i * 24 + 8);
				e->type = rd32(map + i * 24 + 16);
			}
		}
		return;
	}
	if (!info) return;
	u64 cmd = rd32(info + BP_CMD_LINE_PTR) | (u64)rd32(info + BP_EXT_CMD_LINE_PTR) << 32;
	boot.cmdline_size = rd32(info + BP_CMDLINE_SIZE);
	boot.rsdp = rd64(info + BP_ACPI_RSDP_ADDR);
	copy_cmdline(cmd, boot.cmdline_size ? boot.cmdline_size : 255);
	boot.initrd_addr = rd32(info + BP_RAMDISK_IMAGE) | (u64)rd32(info + BP_EXT_RAMDISK_IMAGE) << 32;
	boot.initrd_size = rd32(info + BP_RAMDISK_SIZE) | (u64)rd32(info + BP_EXT_RAMDISK_SIZE) << 32;
	u32 n = *(volatile u8 *)(info + BP_E820_ENTRIES);
	for (u32 i = 0; i < n && i < 128 && boot.e820_n < E820_MAX; i++) {
		u64 a = info + BP_E820_TABLE + i * 20;
		struct e820 *e = &boot.e820[boot.e820_n++];
		e->addr = rd64(a);
		e->size = rd64(a + 8);
		e->type = rd32(a + 16);
	}
}

/* Find "key=" as a whole space-separated token; value runs to the next space. */
bool param(const char *key, const char **val, size_t *len) {
	size_t kl = strlen(key);
	const char *s = boot.cmdline;
	while (*s) {
		while (*s == ' ') s++;
		const char *tok = s;
		while (*s && *s != ' ') s++;
		if ((size_t)(s - tok) > kl && strncmp(tok, key, kl) == 0 && tok[kl] == '=') {
			*val = tok + kl + 1;
			*len = (size_t)(s - tok) - kl - 1;
			return true;
		}
	}
	return false;
}

bool param_u64(const char *key, u64 *out) {
	const char *v;
	size_t n;
	return param(key, &v, &n) && parse_u64(v, n, out);
}

/* Hex with or without 0x (as printed by crc32 tools). */
bool param_hex32(const char *key, u32 *out) {
	const char *v;
	size_t n;
	if (!param(key, &v, &n)) return false;
	if (n > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) { v += 2; n -= 2; }
	if (n == 0 || n > 8) return false;
	u32 r = 0;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
			c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0) return false;
		r = r << 4 | (u32)d;
	}
	*out = r;
	return true;
}

const char *expect_crc32(const char *key, u32 got) {
	const char *v;
	size_t n;
	u32 want;
	if (!param(key, &v, &n)) { printk("%s: missing (crc32 here is %08x)\n", key, got); return "expected crc32 not given"; }
	if (!param_hex32(key, &want)) return "expected crc32 is not 1-8 hex digits";
	if (want != got) { printk("%s: expected %08x, got %08x\n", key, want, got); return "crc32 differs from the expected one"; }
	return NULL;
}

const char *e820_type_name(u32 t) {
	switch (t) {
	case 1: return "usable";
	case 2: return "reserved";
	case 3: return "ACPI data";
	case 4: return "ACPI NVS";
	case 5: return "unusable";
	default: return "other";
	}
}

void print_e820(void) {
	for (int i = 0; i < boot.e820_n; i++) {
		struct e820 *e = &boot.e820[i];
		printk("e820: [mem 0x%016llx-0x%016llx] %s\n", e->addr, e->addr + e->size - 1, e820_type_name(e->type));
	}
}

static u64 alloc_cursor;

static bool overlaps(u64 a, u64 n, u64 b, u64 m) { return a < b + m && b < a + n; }

void *phys_alloc(u64 size, u64 align) {
	if (!alloc_cursor) alloc_cursor = (u64)_end;
	if (align < 4096) align = 4096;
	for (int i = 0; i < boot.e820_n; i++) {
		struct e820 *e = &boot.e820[i];
		if (e->type != 1) continue;
		u64 a = alloc_cursor > e->addr ? alloc_cursor : e->addr;
		for (int tries = 0; tries < 2; tries++) {
			a = (a + align - 1) & ~(align - 1);
			if (boot.initrd_size && overlaps(a, size, boot.initrd_addr, boot.initrd_size))
				a = boot.initrd_addr + boot.initrd_size;
			else
				break;
		}
		a = (a + align - 1) & ~(align - 1);
		if (boot.initrd_size && overlaps(a, size, boot.initrd_addr, boot.initrd_size)) continue;
		if (a + size <= e->addr + e->size && a + size <= 0x100000000ull && a >= 0x100000) {
			alloc_cursor = a + size;
			return (void *)a;
		}
	}
	return NULL;
}
