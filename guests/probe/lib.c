/* Minimal libc: memory and string helpers (no compiler vector code), CRC32, printk. */
#include "probe.h"
#include <stdarg.h>

void *memcpy(void *d, const void *s, size_t n) {
	void *r = d;
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
	return r;
}

void *memset(void *d, int c, size_t n) {
	void *r = d;
	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return r;
}

int memcmp(const void *a, const void *b, size_t n) {
	const u8 *x = a, *y = b;
	for (size_t i = 0; i < n; i++)
		if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
	return 0;
}

size_t strlen(const char *s) { size_t n = 0; while (s[n]) n++; return n; }

int strcmp(const char *a, const char *b) {
	while (*a && *a == *b) { a++; b++; }
	return (u8)*a - (u8)*b;
}

int strncmp(const char *a, const char *b, size_t n) {
	for (size_t i = 0; i < n; i++) {
		if (a[i] != b[i]) return (u8)a[i] - (u8)b[i];
		if (!a[i]) return 0;
	}
	return 0;
}

bool parse_u64(const char *s, size_t n, u64 *out) {
	u64 v = 0;
	size_t i = 0;
	if (n == 0) return false;
	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		for (i = 2; i < n; i++) {
			char c = s[i];
			int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
				c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
			if (d < 0) return false;
			v = v << 4 | (u64)d;
		}
	} else {
		for (; i < n; i++) {
			if (s[i] < '0' || s[i] > '9') return false;
			v = v * 10 + (u64)(s[i] - '0');
		}
	}
	*out = v;
	return true;
}

/* Slice-by-4 CRC32 (IEEE, reflected, as zlib/gzip): about 4 instructions per byte, which
 * matters at the emulator's ~1M instructions/s. Tables are generated at build time. */
extern const u32 crc32_tab[4][256];
#define crc_tab crc32_tab

u32 crc32_update(u32 crc, const void *p, size_t n) {
	const u8 *b = p;
	crc = ~crc;
	while (n && ((u64)b & 3)) { crc = crc_tab[0][(crc ^ *b++) & 0xff] ^ (crc >> 8); n--; }
	while (n >= 4) {
		crc ^= *(const u32 *)b;
		crc = crc_tab[3][crc & 0xff] ^ crc_tab[2][(crc >> 8) & 0xff] ^
		      crc_tab[1][(crc >> 16) & 0xff] ^ crc_tab[0][crc >> 24];
		b += 4;
		n -= 4;
	}
	while (n--) crc = crc_tab[0][(crc ^ *b++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static void puts_raw(const char *s) { while (*s) serial_putc(*s++); }

static void put_num(u64 v, int base, int width, bool zero, bool neg) {
	char buf[24];
	int i = 0;
	do { u64 d = v % (u64)base; buf[i++] = (char)(d < 10 ? '0' + d : 'a' + d - 10); v /= (u64)base; } while (v);
	if (neg) buf[i++] = '-';
	while (i < width && i < 24) buf[i++] = zero ? '0' : ' ';
	while (i) serial_putc(buf[--i]);
}

void printk(const char *fmt, ...) {
	va_list ap;
	va_start(ap, fmt);
	for (; *fmt; fmt++) {
		if (*fmt != '%') { serial_putc(*fmt); continue; }
		fmt++;
		bool zero = false;
		int width = 0, longs = 0;
		if (*fmt == '0') { zero = true; fmt++; }
		while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l') { longs++; fmt++; }
		switch (*fmt) {
		case 's': { const char *s = va_arg(ap, const char *); puts_raw(s ? s : "(null)"); break; }
		case 'c': serial_putc((char)va_arg(ap, int)); break;
		case 'd': {
			i64 v = longs ? va_arg(ap, i64) : va_arg(ap, int);
			put_num(v < 0 ? (u64)-v : (u64)v, 10, width, zero, v < 0);
			break;
		}
		case 'u': put_num(longs ? va_arg(ap, u64) : va_arg(ap, u32), 10, width, zero, false); break;
		case 'x': put_num(longs ? va_arg(ap, u64) : va_arg(ap, u32), 16, width, zero, false); break;
		case 'p': puts_raw("0x"); put_num((u64)va_arg(ap, void *), 16, width, zero, false); break;
		case '%': serial_putc('%'); break;
		default: serial_putc('%'); serial_putc(*fmt); break;
		}
		if (!*fmt) break;
	}
	va_end(ap);
}
