/* Entry points of the probe kernel, all at fixed physical addresses (loaded at 0x100000):
 *   startup_32  (+0x000)  32-bit Linux boot protocol: flat protected mode, ESI = boot_params
 *   startup_64  (+0x200)  64-bit Linux boot protocol: long mode, identity paging, RSI = boot_params
 *   pvh_start32           PVH (XEN_ELFNOTE_PHYS32_ENTRY): flat protected mode, EBX = hvm_start_info
 * Every path builds its own 4 GiB identity map (2 MiB pages) and GDT, zeroes .bss, sets the
 * stack and calls kmain(kind, info). */

#define BOOT_LINUX64 1
#define BOOT_LINUX32 2
#define BOOT_PVH     3

#define SEL_CODE64 0x08
#define SEL_DATA   0x10
#define SEL_CODE32 0x18

	.section .head.text, "ax"
	.code32
	.globl startup_32
startup_32:
	cli
	cld
	movl	%esi, %edi
	movl	$BOOT_LINUX32, %ebp
	jmp	enter_from_32

	.org	0x200
	.code64
	.globl startup_64
startup_64:
	cli
	cld
	movq	%rsi, %r12		/* boot_params */
	/* Nothing to clear or build: zero-initialised data and the identity-map page tables
	 * are part of the loaded image (PVM's emulator runs ~1M instructions/s; filling 2048
	 * page-directory entries here took ~7 ms, the loader's memcpy takes nothing). */
	movq	$pml4, %rax
	movq	%rax, %cr3
	lgdt	gdt_desc
	movq	$stack_top, %rsp
	pushq	$SEL_CODE64
	pushq	$3f
	lretq
3:	movl	$SEL_DATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	movq	%r12, %rsi
	movl	$BOOT_LINUX64, %edi
	jmp	start64_common

	.text
	.code32
	.globl pvh_start32
pvh_start32:
	cli
	cld
	movl	%ebx, %edi
	movl	$BOOT_PVH, %ebp
	/* fall through */

/* EDI = info pointer, EBP = boot kind; flat 32-bit protected mode, paging off */
enter_from_32:
	lgdt	gdt_desc
	ljmp	$SEL_CODE32, $1f
1:	movl	$SEL_DATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	movl	%edi, %esi		/* keep info in ESI */
	movl	$stack_top, %esp
	movl	$pml4, %eax
	movl	%eax, %cr3
	movl	%cr4, %eax
	orl	$0x20, %eax		/* PAE */
	movl	%eax, %cr4
	movl	$0xC0000080, %ecx	/* EFER */
	rdmsr
	orl	$0x100, %eax		/* LME */
	wrmsr
	movl	%cr0, %eax
	orl	$0x80000001, %eax	/* PG | PE */
	movl	%eax, %cr0
	ljmp	$SEL_CODE64, $4f
	.code64
4:	movl	$SEL_DATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	movq	$stack_top, %rsp
	movl	%esi, %esi		/* zero-extend info pointer */
	movl	%ebp, %edi

/* EDI = boot kind, RSI = info pointer */
start64_common:
	xorl	%ebp, %ebp
	call	kmain
5:	cli
	hlt
	jmp	5b

/* Secondary CPUs (smp.c): ap_trampoline jumps here in flat 32-bit protected mode. */
	.code32
ap_start32:
	movl	$SEL_DATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	movl	$pml4, %eax
	movl	%eax, %cr3
	movl	%cr4, %eax
	orl	$0x20, %eax		/* PAE */
	movl	%eax, %cr4
	movl	$0xC0000080, %ecx	/* EFER */
	rdmsr
	orl	$0x100, %eax		/* LME */
	wrmsr
	movl	%cr0, %eax
	orl	$0x80000001, %eax	/* PG | PE */
	movl	%eax, %cr0
	ljmp	$SEL_CODE64, $7f
	.code64
7:	movl	$SEL_DATA, %eax
	movl	%eax, %ds
	movl	%eax, %es
	movl	%eax, %ss
	movl	%eax, %fs
	movl	%eax, %gs
	movq	ap_boot_stack(%rip), %rsp
	xorl	%ebp, %ebp
	call	ap_main
8:	cli
	hlt
	jmp	8b

/* Exception stubs: push a uniform frame (vector, error code) and call exception_handler. */
.macro ISR_NOERR n
isr\n:
	pushq	$0
	pushq	$\n
	jmp	isr_common
.endm
.macro ISR_ERR n
isr\n:
	pushq	$\n
	jmp	isr_common
.endm
	ISR_NOERR 0
	ISR_NOERR 1
	ISR_NOERR 2
	ISR_NOERR 3
	ISR_NOERR 4
	ISR_NOERR 5
	ISR_NOERR 6
	ISR_NOERR 7
	ISR_ERR   8
	ISR_NOERR 9
	ISR_ERR   10
	ISR_ERR   11
	ISR_ERR   12
	ISR_ERR   13
	ISR_ERR   14
	ISR_NOERR 15
	ISR_NOERR 16
	ISR_ERR   17
	ISR_NOERR 18
	ISR_NOERR 19
	ISR_NOERR 20
	ISR_ERR   21
isr_common:
	pushq	%rax
	pushq	%rcx
	pushq	%rdx
	pushq	%rbx
	pushq	%rbp
	pushq	%rsi
	pushq	%rdi
	movq	%rsp, %rdi
	andq	$-16, %rsp
	call	exception_handler
6:	cli
	hlt
	jmp	6b

	.section .rodata
	.globl isr_table
	.balign 8
isr_table:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21
	.quad isr\n
	.endr

/* The APs' real-mode start, copied to AP_TRAMPOLINE (a page below 1 MiB; the SIPI vector
 * is its page number, so CS = page << 8 and IP = 0). Only position-independent code: the
 * GDT descriptor is addressed relative to CS. */
	.globl ap_trampoline, ap_trampoline_end
	.code16
ap_trampoline:
	cli
	cld
	lgdtl	%cs:(ap_gdt_desc - ap_trampoline)
	movl	%cr0, %eax
	orl	$1, %eax		/* PE */
	movl	%eax, %cr0
	ljmpl	$SEL_CODE32, $ap_start32
	.balign 8
ap_gdt_desc:
	.word	gdt_end - gdt - 1
	.long	gdt
ap_trampoline_end:
	.code64

	.balign 8
gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff	/* 0x10: data */
	.quad 0x00cf9a000000ffff	/* 0x18: 32-bit code */
gdt_end:
gdt_desc:
	.word gdt_end - gdt - 1
	.quad gdt

/* PVH entry note (Xen ELF note type 18, XEN_ELFNOTE_PHYS32_ENTRY) */
	.section .note.Xen, "a"
	.balign 4
	.long 4
	.long 4
	.long 18
	.asciz "Xen"
	.balign 4
	.long pvh_start32

/* The 4 GiB identity map, 2 MiB pages (PVM offers no 1 GiB pages), built by the assembler. */
	.section .data.pgtable, "aw"
	.balign 4096
pml4:	.quad	pdpt + 3
	.fill	511, 8, 0
pdpt:	.quad	pd + 3, pd + 0x1003, pd + 0x2003, pd + 0x3003
	.fill	508, 8, 0
pd:	.set	addr, 0
	.rept	2048
	.quad	addr + 0x83		/* present | writable | 2 MiB page */
	.set	addr, addr + 0x200000
	.endr

	.section .noinit, "aw", @nobits
	.balign 16
stack:	.skip 32768
stack_top:
