/* Power off, trying in turn what each VMM understands. */
#include "probe.h"

#define ACPI_SLEEP_CTL_PORT 0x600        /* swiftvmm: hardware-reduced FADT sleep control */
#define QEMU_MICROVM_GED_SLEEP 0xfea00200ull /* QEMU microvm: ACPI GED sleep control (MMIO) */
#define SLP_S5 ((5 << 2) | (1 << 5))     /* SLP_TYP = 5, SLP_EN */

void poweroff(void) {
	outb(0x64, 0xFE);                /* i8042 pulse reset line: swiftvmm and the floor exit 0 */
	for (volatile int i = 0; i < 1000; i++) { }
	outb(ACPI_SLEEP_CTL_PORT, SLP_S5);
	for (volatile int i = 0; i < 1000; i++) { }
	*(volatile u8 *)QEMU_MICROVM_GED_SLEEP = SLP_S5;
	for (volatile int i = 0; i < 1000; i++) { }
	triple_fault();
}

/* An empty IDT and an exception: a triple fault (QEMU -no-reboot exits; swiftvmm reports
 * a guest crash). */
void triple_fault(void) {
	struct __attribute__((packed)) { u16 limit; u64 base; } idt = { 0, 0 };
	__asm__ volatile("lidt %0; ud2" : : "m"(idt));
	for (;;) __asm__ volatile("cli; hlt");
}
