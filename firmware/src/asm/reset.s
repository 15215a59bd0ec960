# Reset vector to long mode, in three steps named after the CPU mode they run in.
#
# At reset the CPU is in real mode with CS = 0xF000 (base 0xFFFF0000) and IP = 0xFFF0,
# i.e. executing the last 16 bytes of fw.rom at its high mapping. Everything else is
# linked at the low alias (0xF0000..0x100000), which on microvm is the same RAM.

# ---------------------------------------------------------------------------------------
# The last 16 bytes of the image: jump to the low alias.
.section .reset, "ax"
.code16
.global reset_vector
reset_vector:
    ljmp $0xf000, $(start16 - 0xf0000)
    .fill 11, 1, 0xf4                  # hlt: never reached, pads to 16 bytes

# ---------------------------------------------------------------------------------------
.section .text.start16, "ax"
.code16
start16:
    cli
    cld
    movw %cs, %ax
    movw %ax, %ds
    # A second entry without a platform reset (Linux's BIOS reboot on microvm jumps to
    # F000:FFF0) finds the flag set. Force a real reset, so QEMU reloads the image and
    # honours -no-reboot.
    cmpb $0, (warm_flag - 0xf0000)
    jne force_reset16
    movb $1, (warm_flag - 0xf0000)

    lgdtl (gdt_descriptor - 0xf0000)
    movl %cr0, %eax
    andl $0x9fffffff, %eax             # caches on: clear CD and NW
    orl $0x1, %eax                     # PE
    movl %eax, %cr0
    ljmpl $0x08, $start32

force_reset16:
    # An empty IVT turns the next interrupt into a triple fault: a platform reset.
    lidtl (null_idt - 0xf0000)
    int $3
1:  hlt
    jmp 1b

# ---------------------------------------------------------------------------------------
.code32
start32:
    movw $0x18, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movl $pml4, %eax
    movl %eax, %cr3
    movl %cr4, %eax
    orl $0x20, %eax                    # PAE
    movl %eax, %cr4
    movl $0xc0000080, %ecx             # EFER
    rdmsr
    orl $0x100, %eax                   # LME
    wrmsr
    movl %cr0, %eax
    orl $0x80000000, %eax              # PG: long mode is now active
    movl %eax, %cr0
    ljmpl $0x10, $start64

# ---------------------------------------------------------------------------------------
.code64
start64:
    movl $0xf0000, %esp                # layout::STACK_TOP
    xorl %ebp, %ebp
    call fw_main
2:  hlt
    jmp 2b

# Leave long mode and enter a PVH kernel: rdi = entry point, rsi = &hvm_start_info.
# The PVH ABI wants 32-bit protected mode, paging off, EBX = start_info.
.global enter_pvh
enter_pvh:
    movq %rsi, %rbx
    pushq $0x08
    leaq pvh32(%rip), %rax
    pushq %rax
    lretq
.code32
pvh32:
    movl %cr0, %eax
    andl $0x7fffffff, %eax             # PG off: long mode is inactive from here
    movl %eax, %cr0
    movl $0xc0000080, %ecx
    rdmsr
    andl $0xfffffeff, %eax             # LME off
    wrmsr
    xorl %eax, %eax
    movl %eax, %cr4
    movw $0x18, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    jmp *%edi

# ---------------------------------------------------------------------------------------
.section .rodata.gdt, "a"
.balign 16
# 0x08: 32-bit code, 0x10: 64-bit code, 0x18: flat data (the Linux boot protocol wants
# __BOOT_CS = 0x10 and __BOOT_DS = 0x18).
gdt:
    .quad 0
    .quad 0x00cf9a000000ffff
    .quad 0x00af9a000000ffff
    .quad 0x00cf92000000ffff
gdt_end:
gdt_descriptor:
    .word gdt_end - gdt - 1
    .long gdt
null_idt:
    .word 0
    .long 0

.section .data.warm, "aw"
# 0 in the image QEMU copies at every platform reset; set on first entry.
warm_flag:
    .byte 0

# ---------------------------------------------------------------------------------------
# Identity map of 0..4 GiB with 2 MiB pages, prebuilt so that no instruction builds it.
# PDPT entries 4.. are filled at run time when RAM extends above 4 GiB.
.section .pagetables, "aw"
.balign 4096
.global pml4
pml4:
    .quad pdpt + 0x3                   # present, writable
    .fill 511, 8, 0
.global pdpt
pdpt:
    .quad pd + 0x3
    .quad pd + 0x1003
    .quad pd + 0x2003
    .quad pd + 0x3003
    .fill 508, 8, 0
.global pd
pd:
    .set page, 0
    .rept 2048
    .quad (page << 21) | 0x83          # present, writable, 2 MiB page
    .set page, page + 1
    .endr
