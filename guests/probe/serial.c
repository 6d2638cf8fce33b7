/* Polled 16550 on COM1 (0x3F8): no interrupts. */
#include "probe.h"

#define COM1 0x3F8
#define THR 0
#define RBR 0
#define IER 1
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define LSR_DR 0x01
#define LSR_THRE 0x20

/* Input that arrived before we programmed the UART (reprogramming may discard it). */
static u8 early[16];
static int early_n, early_pos;

void serial_init(void) {
	for (u8 lsr; early_n < 16 && (lsr = inb(COM1 + LSR)) != 0xff && (lsr & LSR_DR);)
		early[early_n++] = inb(COM1 + RBR);
	outb(COM1 + IER, 0x00);
	outb(COM1 + LCR, 0x80); /* DLAB: 115200 baud */
	outb(COM1 + 0, 0x01);
	outb(COM1 + 1, 0x00);
	outb(COM1 + LCR, 0x03); /* 8N1 */
	outb(COM1 + FCR, 0x00); /* FIFOs off (see serial_putc) */
	outb(COM1 + MCR, 0x03); /* DTR, RTS */
}

/* One LSR poll per byte (two exits per byte). Bursting 16 bytes per THRE with the FIFO
 * on would halve that, but QEMU's 16550 in FIFO mode stalls polled input after 16
 * bytes, so the FIFO stays off and the UART is driven like a 16450. */
void serial_putc(char c) {
	if (c == '\n') serial_putc('\r');
	/* bounded wait: a VMM without a UART model must not hang us */
	for (int i = 0; i < 10000 && !(inb(COM1 + LSR) & LSR_THRE); i++) { }
	outb(COM1 + THR, (u8)c);
}

int serial_getc_nowait(void) {
	if (early_pos < early_n) return early[early_pos++];
	u8 lsr = inb(COM1 + LSR);
	if (lsr == 0xff || !(lsr & LSR_DR)) return -1; /* 0xff: no UART there */
	return inb(COM1 + RBR);
}
