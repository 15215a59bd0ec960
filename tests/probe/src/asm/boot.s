/*
 * Entry points of the mvm probe kernel, in AT&T syntax. Named operands such as com1 are
 * constants passed in by src/hw.rs. Linked at 0x100000 by linker/probe.ld; all code is in
 * the one section .text.boot, so offsets from probe_boot_base are assembly-time constants.
 *
 *   +0x000  probe_entry32      bzImage 32-bit entry (code32_start): must not run
 *   +0x200  probe_entry64      bzImage 64-bit entry (Linux boot.rst "64-bit Boot Protocol")
 *           probe_pvh_entry    PVH entry (Xen pvh.pandoc), named by the .note.Xen note
 *           probe_setup16_*    real-mode stub that xtask copies into the setup sectors
 *           probe_reboot       back to real mode and F000:FFF0, like Linux `reboot=b`
 *           probe_isr_base     32 exception stubs, 16 bytes apart
 */

/* Write AL to COM1 once the transmitter is empty. Clobbers AH and DX. */
.macro putc_al
    mov %al, %ah
    mov ${com1_lsr}, %dx
9:  in %dx, %al
    test $0x20, %al
    jz 9b
    mov %ah, %al
    mov ${com1}, %dx
    out %al, %dx
.endm

/* Print the NUL-terminated string at (E/R)SI, then write BL to isa-debug-exit; halt. */
.macro report_and_exit
1:  lodsb
    test %al, %al
    jz 2f
    putc_al
    jmp 1b
2:  mov %bl, %al
    mov ${exit_port}, %dx
    out %al, %dx
3:  cli
    hlt
    jmp 3b
.endm

/* One exception stub: push a dummy error code unless the CPU pushed one, then the vector. */
.macro isr_stub vector, has_error
    .balign 16
    .if \has_error == 0
    push $0
    .endif
    push $\vector
    jmp probe_isr_common
.endm

    .section .text.boot, "ax", @progbits
    .globl probe_boot_base
probe_boot_base:

/* +0x000: the 32-bit boot protocol entry. Reaching it means the firmware ignored
 * XLF_KERNEL_64; DS is flat here per the 32-bit protocol, so absolute addresses work. */
    .code32
    .globl probe_entry32
probe_entry32:
    cld
    mov $msg_entry32, %esi
    mov ${entry32}, %bl
fail32:
    report_and_exit

/* kernel_info (boot protocol 2.15), found through the header's kernel_info_offset. */
    .balign 8
    .globl probe_kernel_info
probe_kernel_info:
    .ascii "LToP"
    .long probe_kernel_info_end - probe_kernel_info    /* size */
    .long probe_kernel_info_end - probe_kernel_info    /* size_total */
    .long 0                                            /* setup_type_max */
probe_kernel_info_end:

/* +0x200: the 64-bit entry. RSI = boot_params; no stack is promised, so capture RFLAGS,
 * the selectors and EFER with a stack of our own, zero .bss, and call Rust. */
    .org 0x200, 0xcc
    .code64
    .globl probe_entry64
probe_entry64:
    rdtsc                          /* first: the TSC at kernel entry, for benchmarks */
    shl $32, %rdx
    or %rax, %rdx
    mov %rdx, %r11
    lea probe_entry64(%rip), %rax
    mov $probe_entry64, %ecx
    cmp %rcx, %rax
    jne wrong_address
    mov %r11, probe_entry_tsc(%rip)
    mov %rsi, %r15
    lea probe_stack_top(%rip), %rsp
    pushfq
    pop %r14
    xor %r13d, %r13d
    mov %ss, %ax
    movzwl %ax, %eax
    shl $48, %rax
    or %rax, %r13
    mov %es, %ax
    movzwl %ax, %eax
    shl $32, %rax
    or %rax, %r13
    mov %ds, %ax
    movzwl %ax, %eax
    shl $16, %rax
    or %rax, %r13
    mov %cs, %ax
    movzwl %ax, %eax
    or %rax, %r13
    mov $0xc0000080, %ecx          /* IA32_EFER */
    rdmsr
    shl $32, %rdx
    or %rdx, %rax
    mov %rax, %r12
    cld
    lea __bss_start(%rip), %rdi
    lea __bss_end(%rip), %rcx
    sub %rdi, %rcx
    xor %eax, %eax
    rep stosb
    mov %r15, %rdi                 /* probe_main64(boot_params, rflags, selectors, efer) */
    mov %r14, %rsi
    mov %r13, %rdx
    mov %r12, %rcx
    call probe_main64
    ud2

/* Entered somewhere else than linked: report using RIP-relative addressing only. */
wrong_address:
    cld
    lea msg_load_address(%rip), %rsi
    mov ${load_address}, %bl
    report_and_exit

/* PVH entry: 32-bit protected mode, paging off, EBX = hvm_start_info. Capture CR0 and
 * EFLAGS, zero .bss, identity-map the first GiB, enter long mode, call Rust. */
    .code32
    .globl probe_pvh_entry
probe_pvh_entry:
    rdtsc
    mov %eax, probe_entry_tsc
    mov %edx, probe_entry_tsc + 4
    cld
    mov %cr0, %esi
    test $0x80000000, %esi
    jz 1f
    mov $msg_pvh_paging, %esi
    mov ${cpu_mode}, %bl
    jmp fail32
1:  mov $probe_stack_top, %esp
    pushfl
    pop %ebp
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb
    mov $probe_pd, %edi
    mov $0x83, %eax                /* present, writable, 2 MiB page */
    mov $512, %ecx
2:  mov %eax, (%edi)
    add $0x200000, %eax
    add $8, %edi
    loop 2b
    movl $(probe_pd + 3), probe_pdpt
    movl $(probe_pdpt + 3), probe_pml4
    mov $probe_pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $0x20, %eax                 /* CR4.PAE */
    mov %eax, %cr4
    mov $0xc0000080, %ecx
    rdmsr
    or $0x100, %eax                /* EFER.LME */
    wrmsr
    lgdt probe_gdt_desc
    mov %cr0, %eax
    or $0x80000000, %eax           /* CR0.PG */
    mov %eax, %cr0
    ljmpl $0x10, $pvh_long
    .code64
pvh_long:
    mov $0x18, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %eax, %fs
    mov %eax, %gs
    lea probe_stack_top(%rip), %rsp
    mov %ebx, %edi                 /* probe_main_pvh(start_info, cr0, eflags) */
    mov %esi, %esi
    mov %ebp, %edx
    call probe_main_pvh
    ud2

/* Real-mode setup stub: position-independent 16-bit code copied by xtask to offset 0x280
 * of the bzImage, where the header's `jump` leads. A firmware that runs the setup code
 * (qboot, SeaBIOS) lands here. */
    .code16
    .globl probe_setup16_start
probe_setup16_start:
    cli
    cld
    rdtsc                           /* first: the firmware's cost up to here */
    mov %eax, %edi
    mov %edx, %ebp
    call 5f
5:  pop %si                         /* SI = 5b: strings are found relative to it */
    add $(msg_tsc16 - 5b), %si
    call puts16
    mov %ebp, %ebx
    call hex32_16
    mov %edi, %ebx
    call hex32_16
    mov $0x0a, %al
    putc_al
    call 1f
1:  pop %si
    add $(msg_entry16 - 1b), %si
    call puts16
3:  mov ${entry16}, %al
    mov ${exit_port}, %dx
    out %al, %dx
4:  hlt
    jmp 4b
/* Print the NUL-terminated string at CS:SI. Clobbers AX, DX, SI. */
puts16:
6:  lodsb %cs:(%si), %al
    test %al, %al
    jz 7f
    putc_al
    jmp 6b
7:  ret
/* Print EBX as 8 hex digits. Clobbers AX, CX, DX, EBX. */
hex32_16:
    mov $8, %cx
8:  rol $4, %ebx
    mov %bl, %al
    and $0xf, %al
    add $0x30, %al
    cmp $0x39, %al
    jbe 9f
    add $7, %al
9:  push %cx
    putc_al
    pop %cx
    loop 8b
    ret
msg_tsc16:
    .asciz "PROBE TSC16 0x"
msg_entry16:
    .asciz "PROBE FAIL entry: 16-bit setup code was run\n"
    .globl probe_setup16_end
probe_setup16_end:

/* probe_map_4g(): identity-map 0..4 GiB with 2 MiB pages in the probe's own tables and
 * load CR3. Clobbers RAX, RCX, RDI. */
    .code64
    .globl probe_map_4g
probe_map_4g:
    lea probe_pd(%rip), %rdi
    mov $0x83, %eax
    mov $2048, %ecx
1:  mov %rax, (%rdi)
    add $0x200000, %rax
    add $8, %rdi
    loop 1b
    lea probe_pdpt(%rip), %rdi
    lea (probe_pd + 3)(%rip), %rax
    mov $4, %ecx
2:  mov %rax, (%rdi)
    add $0x1000, %rax
    add $8, %rdi
    loop 2b
    lea (probe_pdpt + 3)(%rip), %rax
    mov %rax, probe_pml4(%rip)
    lea probe_pml4(%rip), %rax
    mov %rax, %cr3
    ret

/* probe_load_gdt(): switch to the probe's GDT, CS = 0x10, data = 0x18. Clobbers RAX. */
    .globl probe_load_gdt
probe_load_gdt:
    lgdt probe_gdt_desc(%rip)
    lea 1f(%rip), %rax
    push $0x10
    push %rax
    lretq
1:  mov $0x18, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %eax, %fs
    mov %eax, %gs
    ret

/* probe_reboot(): what Linux's `reboot=b` does: leave long mode, drop to 16-bit protected
 * mode with real-mode limits, clear CR0.PE and jump to the reset vector at F000:FFF0
 * without a platform reset. Never returns. */
    .globl probe_reboot
probe_reboot:
    cli
    lgdt probe_gdt_desc(%rip)
    lea 1f(%rip), %rax
    push $0x08
    push %rax
    lretq
    .code32
1:  mov $0x18, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %cr0, %eax
    and $0x7fffffff, %eax          /* paging off: leaves long mode */
    mov %eax, %cr0
    mov $0xc0000080, %ecx
    rdmsr
    and $0xfffffeff, %eax          /* EFER.LME off */
    wrmsr
    mov %cr4, %eax
    and $0xffffffdf, %eax          /* CR4.PAE off */
    mov %eax, %cr4
    xor %eax, %eax
    mov %eax, %cr3
    lidt real_mode_idt             /* IVT at 0, as after reset */
    ljmpl $0x20, $(2f - probe_boot_base)
    .code16
2:  mov $0x28, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %ax, %fs
    mov %ax, %gs
    mov %cr0, %eax
    and $0xfffffffe, %eax          /* CR0.PE off: real mode */
    mov %eax, %cr0
    ljmp $0xf000, $0xfff0

/* Exception stubs: vector n at probe_isr_base + 16 * n. */
    .code64
    .balign 16
    .globl probe_isr_base
probe_isr_base:
    isr_stub 0, 0
    isr_stub 1, 0
    isr_stub 2, 0
    isr_stub 3, 0
    isr_stub 4, 0
    isr_stub 5, 0
    isr_stub 6, 0
    isr_stub 7, 0
    isr_stub 8, 1
    isr_stub 9, 0
    isr_stub 10, 1
    isr_stub 11, 1
    isr_stub 12, 1
    isr_stub 13, 1
    isr_stub 14, 1
    isr_stub 15, 0
    isr_stub 16, 0
    isr_stub 17, 1
    isr_stub 18, 0
    isr_stub 19, 0
    isr_stub 20, 0
    isr_stub 21, 1
    isr_stub 22, 0
    isr_stub 23, 0
    isr_stub 24, 0
    isr_stub 25, 0
    isr_stub 26, 0
    isr_stub 27, 0
    isr_stub 28, 0
    isr_stub 29, 1
    isr_stub 30, 1
    isr_stub 31, 0
probe_isr_common:
    mov %rsp, %rdi                 /* probe_exception(&[vector, error, rip, cs, rflags, rsp, ss]) */
    and $-16, %rsp
    call probe_exception
    ud2

/* GDT: 0x08 32-bit code, 0x10 64-bit code (__BOOT_CS), 0x18 flat data (__BOOT_DS),
 * 0x20 16-bit code based at probe_boot_base, 0x28 16-bit data (64 KiB limits). */
    .section .data.probe_gdt, "aw", @progbits
    .balign 16
probe_gdt:
    .quad 0
    .quad 0x00cf9b000000ffff
    .quad 0x00af9b000000ffff
    .quad 0x00cf93000000ffff
    .quad 0x00009b100000ffff
    .quad 0x000093000000ffff
probe_gdt_end:
    .balign 8
probe_gdt_desc:
    .word probe_gdt_end - probe_gdt - 1
    .quad probe_gdt
real_mode_idt:
    .word 0x3ff
    .long 0
/* TSC at the first instruction of the entry (in .data: written before .bss is zeroed). */
    .balign 8
    .globl probe_entry_tsc
probe_entry_tsc:
    .quad 0

    .section .rodata.probe_boot, "a", @progbits
msg_entry32:
    .asciz "PROBE FAIL entry: the 32-bit entry (code32_start) was run, not the 64-bit one\n"
msg_load_address:
    .asciz "PROBE FAIL entry: entered away from 0x100200; the probe only runs where it is linked\n"
msg_pvh_paging:
    .asciz "PROBE FAIL cpu-mode: CR0.PG is set at the PVH entry\n"

    .section .bss.probe_stack, "aw", @nobits
    .balign 16
    .skip 16384
    .globl probe_stack_top
probe_stack_top:

    .section .bss.probe_pagetables, "aw", @nobits
    .balign 4096
probe_pml4:
    .skip 4096
probe_pdpt:
    .skip 4096
probe_pd:
    .skip 16384

/* XEN_ELFNOTE_PHYS32_ENTRY (18): QEMU's load_elfboot() reads the entry from this note.
 * QEMU pads the name to the segment's p_align, so the note segment must be 4-aligned. */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 8
    .long 18
    .asciz "Xen"
    .balign 4
    .quad probe_pvh_entry
