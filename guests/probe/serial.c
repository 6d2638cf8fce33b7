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

void serial_init(void) {
	outb(COM1 + IER, 0x00);
	outb(COM1 + LCR, 0x80); /* DLAB: 115200 baud */
	outb(COM1 + 0, 0x01);
	outb(COM1 + 1, 0x00);
	outb(COM1 + LCR, 0x03); /* 8N1 */
	outb(COM1 + FCR, 0x07); /* FIFO on, cleared */
	outb(COM1 + MCR, 0x03); /* DTR, RTS */
}

/* With FIFOs on, THRE means the 16-byte transmit FIFO is empty: one LSR read per 16
 * bytes instead of per byte halves the exits a line of output costs. */
static int tx_room;

void serial_putc(char c) {
	if (c == '\n') serial_putc('\r');
	if (tx_room == 0) {
		/* bounded wait: a VMM without a UART model must not hang us */
		for (int i = 0; i < 10000 && !(inb(COM1 + LSR) & LSR_THRE); i++) { }
		tx_room = 16;
	}
	tx_room--;
	outb(COM1 + THR, (u8)c);
}

int serial_getc_nowait(void) {
	u8 lsr = inb(COM1 + LSR);
	if (lsr == 0xff || !(lsr & LSR_DR)) return -1; /* 0xff: no UART there */
	return inb(COM1 + RBR);
}
