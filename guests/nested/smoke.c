// A stand-in for swiftvmm that proves the nested harness (guests/nested/selftest):
// real KVM in L1, disk pass-through, stdin forwarding and exit codes.
//   smoke kvm            create a VM, run 4 real-mode instructions, expect OUT 42 + HLT
//   smoke disk --disk P  write a marker at offset 0 of a block device, report its size
//   smoke file PATH      print PATH's size (artifact copied into L1 at its path)
//   smoke echo           copy stdin lines to stdout until a line "quit"
//   smoke exit N         exit with status N
//   smoke sleep SECONDS  sleep (timeout test)
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

static int fail(const char *what) { perror(what); return 1; }

static int kvm(void) {
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) return fail("open /dev/kvm");
    int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) return fail("KVM_CREATE_VM");
    // mov dx,0x10 ; mov al,42 ; out dx,al ; hlt
    static const uint8_t code[] = {0xba, 0x10, 0x00, 0xb0, 42, 0xee, 0xf4};
    uint8_t *mem = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return fail("mmap");
    memcpy(mem, code, sizeof code);
    struct kvm_userspace_memory_region region = {
        .slot = 0, .guest_phys_addr = 0x1000, .memory_size = 0x1000, .userspace_addr = (uintptr_t)mem};
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) return fail("KVM_SET_USER_MEMORY_REGION");
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) return fail("KVM_CREATE_VCPU");
    int size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    struct kvm_run *run = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) return fail("mmap kvm_run");
    struct kvm_sregs sregs;
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) return fail("KVM_GET_SREGS");
    sregs.cs.base = 0; sregs.cs.selector = 0;
    if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) return fail("KVM_SET_SREGS");
    struct kvm_regs regs = {.rip = 0x1000, .rflags = 2};
    if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) return fail("KVM_SET_REGS");
    int out = -1;
    for (int i = 0; i < 10; i++) {
        if (ioctl(vcpu, KVM_RUN, 0) < 0) return fail("KVM_RUN");
        if (run->exit_reason == KVM_EXIT_IO && run->io.direction == KVM_EXIT_IO_OUT && run->io.port == 0x10) {
            out = *((uint8_t *)run + run->io.data_offset);
        } else if (run->exit_reason == KVM_EXIT_HLT) {
            printf("smoke kvm: ok api=%d out=%d exit=hlt\n", api, out);
            return out == 42 ? 0 : 1;
        } else {
            fprintf(stderr, "smoke kvm: unexpected exit reason %u\n", run->exit_reason);
            return 1;
        }
    }
    fprintf(stderr, "smoke kvm: guest did not halt\n");
    return 1;
}

static int disk(char *spec) {
    char *path = strtok(spec, ",");  // PATH[,opts] as swiftvmm's --disk takes it
    if (!path) return 2;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return fail(path);
    uint64_t bytes = 0;
    if (ioctl(fd, BLKGETSIZE64, &bytes) < 0) return fail("BLKGETSIZE64");
    char block[512] = "NESTED-DISK-OK\n";
    if (pwrite(fd, block, sizeof block, 0) != sizeof block) return fail("pwrite");
    if (fdatasync(fd) < 0) return fail("fdatasync");
    printf("smoke disk: ok %s bytes=%llu\n", path, (unsigned long long)bytes);
    return 0;
}

static int file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail(path);
    long n = 0;
    while (fgetc(f) != EOF) n++;
    fclose(f);
    printf("smoke file: ok %s bytes=%ld\n", path, n);
    return 0;
}

static int echo(void) {
    char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        if (strcmp(line, "quit\n") == 0 || strcmp(line, "quit\r\n") == 0) return 0;
        printf("smoke echo: %s", line);
        fflush(stdout);
    }
    return 3;  // EOF before "quit"
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc >= 2 && strcmp(argv[1], "kvm") == 0) return kvm();
    if (argc >= 4 && strcmp(argv[1], "disk") == 0 && strcmp(argv[2], "--disk") == 0) return disk(argv[3]);
    if (argc >= 3 && strcmp(argv[1], "file") == 0) return file(argv[2]);
    if (argc >= 2 && strcmp(argv[1], "echo") == 0) return echo();
    if (argc >= 3 && strcmp(argv[1], "exit") == 0) return atoi(argv[2]);
    if (argc >= 3 && strcmp(argv[1], "sleep") == 0) { sleep(atoi(argv[2])); return 0; }
    fprintf(stderr, "usage: smoke kvm | disk --disk PATH | file PATH | echo | exit N | sleep SECONDS\n");
    return 2;
}
