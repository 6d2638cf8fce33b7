/* floor: the least a KVM VMM can do to boot the probe kernel — the physical floor of
 * this host's KVM for swiftvmm's benchmarks. One memslot, one vCPU, the 64-bit Linux
 * boot protocol, a 16550 reduced to THR/LSR/SCR/loopback, MMIO reads all ones, and
 * 0xFE to port 0x64 (i8042 reset) or ACPI S5 on port 0x600 ends the run with status 0.
 * Usage: floor KERNEL CMDLINE [MEM_MIB [INITRD]] */
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define BOOT_PARAMS 0x7000
#define CMDLINE 0x20000
#define GDT 0x500
#define PML4 0x9000
#define KERNEL 0x100000

static void die(const char *what) { perror(what); exit(1); }

static uint8_t *slurp(const char *path, size_t *len) {
	int fd = open(path, O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) die(path);
	uint8_t *p = malloc((size_t)st.st_size + 1);
	if (!p || read(fd, p, (size_t)st.st_size) != st.st_size) die(path);
	close(fd);
	*len = (size_t)st.st_size;
	return p;
}

static void e820(uint8_t *bp, int i, uint64_t addr, uint64_t size, uint32_t type) {
	memcpy(bp + 0x2d0 + i * 20, &addr, 8);
	memcpy(bp + 0x2d0 + i * 20 + 8, &size, 8);
	memcpy(bp + 0x2d0 + i * 20 + 16, &type, 4);
	bp[0x1e8] = (uint8_t)(i + 1);
}

int main(int argc, char **argv) {
	if (argc < 3) { fprintf(stderr, "usage: floor KERNEL CMDLINE [MEM_MIB [INITRD]]\n"); return 2; }
	uint64_t mem_size = (argc > 3 ? strtoull(argv[3], NULL, 0) : 128) << 20;
	if (mem_size < (4 << 20) || mem_size > (3ull << 30)) { fprintf(stderr, "MEM_MIB out of range\n"); return 2; }
	size_t klen, ilen = 0;
	uint8_t *k = slurp(argv[1], &klen), *initrd = argc > 4 ? slurp(argv[4], &ilen) : NULL;
	if (klen < 0x1000 || memcmp(k + 0x202, "HdrS", 4) || (k[0x207] << 8 | k[0x206]) < 0x20c || !(k[0x236] & 1)) {
		fprintf(stderr, "%s: not a bzImage with a 64-bit entry\n", argv[1]);
		return 1;
	}
	size_t setup = ((size_t)(k[0x1f1] ? k[0x1f1] : 4) + 1) * 512;

	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) die("/dev/kvm");
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) die("KVM_CREATE_VM");
	uint8_t *mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) die("mmap guest memory");
	struct kvm_userspace_memory_region region = { .slot = 0, .guest_phys_addr = 0, .memory_size = mem_size,
		.userspace_addr = (uint64_t)mem };
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");
	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) die("KVM_CREATE_VCPU");
	int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED) die("mmap kvm_run");
	struct { struct kvm_cpuid2 c; struct kvm_cpuid_entry2 e[128]; } cpuid = { .c.nent = 128 };
	if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, &cpuid) < 0 || ioctl(vcpu, KVM_SET_CPUID2, &cpuid) < 0) die("CPUID");

	/* kernel, boot_params (header copied from the image), command line, initrd, e820 */
	if (KERNEL + klen - setup > mem_size) { fprintf(stderr, "kernel too big\n"); return 1; }
	memcpy(mem + KERNEL, k + setup, klen - setup);
	uint8_t *bp = mem + BOOT_PARAMS;
	memcpy(bp + 0x1f1, k + 0x1f1, 0x202 + k[0x201] - 0x1f1);
	bp[0x210] = 0xff;                          /* type_of_loader: undefined */
	uint32_t cmd = CMDLINE, cmdmax = *(uint32_t *)(k + 0x238);
	size_t clen = strlen(argv[2]);
	if (clen > cmdmax) { fprintf(stderr, "command line longer than cmdline_size\n"); return 1; }
	memcpy(mem + CMDLINE, argv[2], clen + 1);
	memcpy(bp + 0x228, &cmd, 4);
	if (initrd) {
		uint32_t at = (uint32_t)((mem_size - ilen) & ~0xfffull), size = (uint32_t)ilen;
		memcpy(mem + at, initrd, ilen);
		memcpy(bp + 0x218, &at, 4);
		memcpy(bp + 0x21c, &size, 4);
	}
	e820(bp, 0, 0, 0x9fc00, 1);
	e820(bp, 1, KERNEL, mem_size - KERNEL, 1);

	/* identity map of the first 1 GiB (2 MiB pages) and a flat GDT, as Linux expects */
	uint64_t *pt = (uint64_t *)(mem + PML4);
	pt[0] = (PML4 + 0x1000) | 3;
	pt[512] = (PML4 + 0x2000) | 3;
	for (uint64_t i = 0; i < 512; i++) pt[1024 + i] = (i << 21) | 0x83;
	uint64_t *gdt = (uint64_t *)(mem + GDT);
	gdt[2] = 0x00af9b000000ffff;               /* 0x10: __BOOT_CS, 64-bit */
	gdt[3] = 0x00cf93000000ffff;               /* 0x18: __BOOT_DS */

	struct kvm_sregs s;
	if (ioctl(vcpu, KVM_GET_SREGS, &s) < 0) die("KVM_GET_SREGS");
	struct kvm_segment cs = { .base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 11, .present = 1,
		.s = 1, .l = 1, .g = 1 };
	struct kvm_segment ds = { .base = 0, .limit = 0xffffffff, .selector = 0x18, .type = 3, .present = 1,
		.s = 1, .db = 1, .g = 1 };
	s.cs = cs;
	s.ds = s.es = s.fs = s.gs = s.ss = ds;
	s.gdt.base = GDT;
	s.gdt.limit = 31;
	s.cr3 = PML4;
	s.cr4 = 0x20;                              /* PAE */
	s.cr0 = 0x80050033;                        /* PG WP NE ET MP PE */
	s.efer = 0x500;                            /* LME LMA */
	if (ioctl(vcpu, KVM_SET_SREGS, &s) < 0) die("KVM_SET_SREGS");
	struct kvm_regs r = { .rip = KERNEL + 0x200, .rsi = BOOT_PARAMS, .rflags = 2 };
	if (ioctl(vcpu, KVM_SET_REGS, &r) < 0) die("KVM_SET_REGS");

	uint8_t lcr = 0, mcr = 0, scr = 0, rbr = 0, ready = 0;
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
		switch (run->exit_reason) {
		case KVM_EXIT_IO: {
			uint8_t *d = (uint8_t *)run + run->io.data_offset;
			for (uint32_t n = 0; n < run->io.count; n++, d += run->io.size) {
				uint16_t p = run->io.port;
				if (run->io.direction == KVM_EXIT_IO_OUT) {
					uint8_t v = d[0];
					if (p == 0x3f8 && !(lcr & 0x80)) {
						if (mcr & 0x10) { rbr = v; ready = 1; }
						else if (write(1, &v, 1) < 0) die("write");
					} else if (p == 0x3fb) lcr = v;
					else if (p == 0x3fc) mcr = v;
					else if (p == 0x3ff) scr = v;
					else if ((p == 0x64 && v == 0xfe) || (p == 0x600 && (v & 0x3c) == 0x34)) return 0;
				} else {
					memset(d, 0xff, run->io.size);
					if (p == 0x3fd) d[0] = 0x60 | ready;
					else if (p == 0x3f8 && !(lcr & 0x80)) { d[0] = rbr; ready = 0; }
					else if (p == 0x3fb) d[0] = lcr;
					else if (p == 0x3fc) d[0] = mcr;
					else if (p == 0x3ff) d[0] = scr;
					else if (p > 0x3f8 && p < 0x3ff) d[0] = 0;
				}
			}
			break;
		}
		case KVM_EXIT_MMIO:
			if (!run->mmio.is_write) memset(run->mmio.data, 0xff, sizeof run->mmio.data);
			break;
		case KVM_EXIT_HLT:
			fprintf(stderr, "floor: guest halted\n");
			return 0;
		case KVM_EXIT_SHUTDOWN:
			fprintf(stderr, "floor: guest shutdown (triple fault)\n");
			return 1;
		case KVM_EXIT_INTERNAL_ERROR:
			ioctl(vcpu, KVM_GET_REGS, &r);
			fprintf(stderr, "floor: internal error, suberror %u, rip 0x%llx\n", run->internal.suberror, r.rip);
			return 1;
		default:
			fprintf(stderr, "floor: unhandled exit %u\n", run->exit_reason);
			return 1;
		}
	}
}
