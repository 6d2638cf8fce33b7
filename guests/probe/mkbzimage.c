/* Host tool: wrap the probe kernel's raw image (linked at 0x100000) in a Linux boot
 * protocol 2.15 bzImage: one boot sector + setup_sects sectors of setup header, then the
 * protected-mode kernel. Usage: mkbzimage KERNEL.bin INIT_SIZE OUT.bzImage */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SETUP_SECTS 1
#define VERSION_OFF 0x300

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)v); put16(p + 2, (uint16_t)(v >> 16)); }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }

int main(int argc, char **argv) {
	if (argc != 4) { fprintf(stderr, "usage: %s KERNEL.bin INIT_SIZE OUT\n", argv[0]); return 2; }
	FILE *f = fopen(argv[1], "rb");
	if (!f) { perror(argv[1]); return 1; }
	static uint8_t kernel[16 << 20];
	size_t klen = fread(kernel, 1, sizeof kernel, f);
	fclose(f);
	unsigned long init_size = strtoul(argv[2], NULL, 0);
	init_size = (init_size + 4095) & ~4095ul;
	if (klen == 0 || init_size < klen) { fprintf(stderr, "bad kernel or init_size\n"); return 1; }

	uint8_t setup[(SETUP_SECTS + 1) * 512];
	memset(setup, 0, sizeof setup);
	uint8_t *h = setup;
	h[0x1f1] = SETUP_SECTS;                     /* setup_sects */
	put32(h + 0x1f4, (uint32_t)((klen + 15) / 16)); /* syssize, 16-byte units */
	put16(h + 0x1fe, 0xAA55);                   /* boot_flag */
	h[0x200] = 0xEB;                            /* jmp to the end of the header */
	h[0x201] = 0x26c - 0x202;
	memcpy(h + 0x202, "HdrS", 4);
	put16(h + 0x206, 0x020F);                   /* boot protocol 2.15 */
	put16(h + 0x20e, VERSION_OFF - 0x200);      /* kernel_version string */
	h[0x211] = 0x01;                            /* loadflags: LOADED_HIGH */
	put32(h + 0x214, 0x100000);                 /* code32_start */
	put32(h + 0x22c, 0x7fffffff);               /* initrd_addr_max */
	put32(h + 0x230, 0x100000);                 /* kernel_alignment */
	h[0x234] = 0;                               /* relocatable_kernel: no */
	h[0x235] = 12;                              /* min_alignment (log2) */
	put16(h + 0x236, 0x1);                      /* xloadflags: XLF_KERNEL_64 */
	put32(h + 0x238, 4095);                     /* cmdline_size */
	put64(h + 0x258, 0x100000);                 /* pref_address */
	put32(h + 0x260, (uint32_t)init_size);      /* init_size */
	/* real-mode entry (setup + 0x200 jumps here): not supported, halt */
	h[0x26c] = 0xFA; h[0x26d] = 0xF4; h[0x26e] = 0xEB; h[0x26f] = 0xFD;
	const char *ver = "swiftvmm probe";
	memcpy(h + VERSION_OFF, ver, strlen(ver) + 1);

	FILE *o = fopen(argv[3], "wb");
	if (!o) { perror(argv[3]); return 1; }
	if (fwrite(setup, 1, sizeof setup, o) != sizeof setup || fwrite(kernel, 1, klen, o) != klen || fclose(o)) {
		perror(argv[3]);
		return 1;
	}
	return 0;
}
