//! Port I/O: the only place the firmware talks to devices by port number.
//!
//! Plain port accesses are declared `nomem`: they do not read or write RAM. The one
//! exception is [`kick_dma`], after which the fw_cfg device reads a descriptor from RAM
//! and writes the transferred data into RAM, so the compiler must treat it as touching
//! memory (no `nomem`), and the caller polls the descriptor with volatile reads.

use core::arch::asm;

/// COM1 transmit register.
pub const COM1: u16 = 0x3f8;
/// `isa-debug-exit` (QEMU exits with `(value << 1) | 1`), when the device exists.
pub const DEBUG_EXIT: u16 = 0xf4;
/// fw_cfg selector register (16-bit).
pub const FW_CFG_SELECTOR: u16 = 0x510;
/// fw_cfg data register (8-bit).
pub const FW_CFG_DATA: u16 = 0x511;
/// fw_cfg DMA address, high 32 bits (big-endian).
pub const FW_CFG_DMA_HIGH: u16 = 0x514;
/// fw_cfg DMA address, low 32 bits (big-endian); writing it starts the transfer.
pub const FW_CFG_DMA_LOW: u16 = 0x518;

/// Write a byte to an I/O port.
pub fn outb(port: u16, value: u8) {
    // SAFETY: the firmware runs at CPL 0 and owns every device; the ports written are
    // the fixed QEMU ones above, whose writes have no effect on memory.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    }
}

/// Write a 16-bit word to an I/O port.
pub fn outw(port: u16, value: u16) {
    // SAFETY: as in `outb`.
    unsafe {
        asm!("out dx, ax", in("dx") port, in("ax") value, options(nomem, nostack, preserves_flags))
    }
}

/// Write a 32-bit word to an I/O port that does not start a memory access.
pub fn outl(port: u16, value: u32) {
    // SAFETY: as in `outb`.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags))
    }
}

/// Read a byte from an I/O port.
pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: reading the fixed QEMU ports above has no effect on memory.
    unsafe {
        asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack, preserves_flags))
    }
    value
}

/// Start a fw_cfg DMA transfer whose descriptor is at physical address `desc`.
///
/// # Safety
/// `desc` must point at a valid `FWCfgDmaAccess` descriptor whose target range may be
/// overwritten by the device; both must stay valid until the device clears the control
/// word.
pub unsafe fn kick_dma(desc: u64) {
    outl(FW_CFG_DMA_HIGH, ((desc >> 32) as u32).to_be());
    // SAFETY: the caller guarantees the descriptor and its target; this write makes the
    // device access that memory, so the asm is not `nomem`.
    unsafe {
        asm!("out dx, eax", in("dx") FW_CFG_DMA_LOW, in("eax") (desc as u32).to_be(), options(nostack, preserves_flags))
    }
}

/// Read `len` bytes from an I/O port into physical memory at `dst` (`rep insb`).
///
/// # Safety
/// `[dst, dst + len)` must be identity-mapped memory that may be overwritten.
pub unsafe fn insb(port: u16, dst: u64, len: u64) {
    // SAFETY: the caller guarantees the destination range.
    unsafe {
        asm!("rep insb", in("dx") port, inout("rdi") dst => _, inout("rcx") len => _, options(nostack, preserves_flags))
    }
}

/// Stop: exit QEMU through `isa-debug-exit` if present, else halt forever.
pub fn exit(code: u8) -> ! {
    outb(DEBUG_EXIT, code);
    loop {
        // SAFETY: interrupts are off; `hlt` just stops the CPU.
        unsafe { asm!("cli; hlt", options(nomem, nostack)) }
    }
}
