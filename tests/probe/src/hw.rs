//! The probe's hardware access: port I/O (COM1, `isa-debug-exit`), control registers, the
//! IDT, and the assembly in `asm/boot.s`. Every fixed port is a constant here.

use core::arch::{asm, global_asm};
use core::cell::UnsafeCell;
use core::fmt;
use core::ptr::addr_of;

use mvm_probe::{Check, Memory};

/// COM1 data register.
pub const COM1: u16 = 0x3f8;
/// COM1 line status register (bit 5: transmitter holding register empty).
const COM1_LSR: u16 = COM1 + 5;
/// `-device isa-debug-exit,iobase=0xf4,iosize=4`.
pub const DEBUG_EXIT: u16 = 0xf4;
/// The probe identity-maps (and reads) physical memory below this.
const MAPPED_END: u64 = 1 << 32;
/// Kernel code selector in the probe's GDT (`asm/boot.s`).
const CODE64: u64 = 0x10;

global_asm!(
    include_str!("asm/boot.s"),
    com1 = const COM1,
    com1_lsr = const COM1_LSR,
    exit_port = const DEBUG_EXIT,
    entry16 = const Check::Entry16.code(),
    entry32 = const Check::Entry32.code(),
    load_address = const Check::LoadAddress.code(),
    cpu_mode = const Check::CpuMode.code(),
    options(att_syntax)
);

unsafe extern "C" {
    /// Identity-map 0..4 GiB in the probe's page tables and load CR3.
    fn probe_map_4g();
    /// Load the probe's GDT and reload CS/DS/ES/SS/FS/GS.
    fn probe_load_gdt();
    /// Return to real mode and jump to F000:FFF0.
    fn probe_reboot() -> !;
    /// First exception stub; stub `n` is at `+16 * n`.
    static probe_isr_base: u8;
    /// TSC at the entry's first instruction (written by `asm/boot.s`).
    static probe_entry_tsc: u64;
    /// Start of the probe image (the load address).
    static __image_start: u8;
    /// End of the probe image including `.bss`, page-aligned.
    static __image_end: u8;
}

/// Read a byte from `port`.
///
/// # Safety
///
/// Reading `port` must have no effect on memory the program relies on.
unsafe fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: the caller vouches for the port; `in` touches no memory.
    unsafe {
        asm!("in al, dx", out("al") value, in("dx") port, options(nomem, nostack, preserves_flags))
    };
    value
}

/// Write a byte to `port`.
///
/// # Safety
///
/// Writing `value` to `port` must have no effect on memory the program relies on.
unsafe fn outb(port: u16, value: u8) {
    // SAFETY: the caller vouches for the port; `out` touches no memory.
    unsafe {
        asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack, preserves_flags))
    };
}

/// COM1 as a `fmt::Write` sink (no initialisation needed: QEMU's UART transmits at reset
/// settings). Polls the line status register, so nothing is lost when the host is slow.
#[derive(Debug)]
pub struct Com1;

impl Com1 {
    /// Send raw bytes.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            // SAFETY: COM1's status and data registers only affect the UART.
            unsafe {
                while inb(COM1_LSR) & 0x20 == 0 {}
                outb(COM1, b);
            }
        }
    }
}

impl fmt::Write for Com1 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Write `code` to `isa-debug-exit` (QEMU exits with `(code << 1) | 1`); halt if there is
/// no such device.
pub fn exit(code: u8) -> ! {
    // SAFETY: the debug-exit port stops QEMU or, without the device, does nothing.
    unsafe { outb(DEBUG_EXIT, code) };
    loop {
        // SAFETY: halting with interrupts off only stops this CPU.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// CR2 (the faulting address of the last page fault).
pub fn cr2() -> u64 {
    let value: u64;
    // SAFETY: reading CR2 has no side effects.
    unsafe { asm!("mov {}, cr2", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// CR3: the page tables in use.
pub fn cr3() -> u64 {
    let value: u64;
    // SAFETY: reading CR3 has no side effects.
    unsafe { asm!("mov {}, cr3", out(reg) value, options(nomem, nostack, preserves_flags)) };
    value
}

/// Switch to the probe's own page tables, which map all of 0..4 GiB.
pub fn map_4g() {
    // SAFETY: the new tables identity-map 0..4 GiB, a superset of what is in use (the
    // probe image, its stack, and the firmware's structures), so every live address keeps
    // its meaning.
    unsafe { probe_map_4g() };
}

/// Switch to the probe's GDT (same selector values as the boot protocol's).
pub fn load_gdt() {
    // SAFETY: the probe's GDT has a 64-bit code segment at 0x10 and flat data at 0x18, so
    // the code keeps running and the data segments stay flat.
    unsafe { probe_load_gdt() };
}

/// Jump back to the reset vector the way a BIOS reboot does.
pub fn reboot() -> ! {
    // SAFETY: leaving long mode abandons this program; nothing runs after the jump but
    // the firmware.
    unsafe { probe_reboot() }
}

/// The IDT: 32 exception gates (16 bytes each).
#[repr(C, align(16))]
struct Idt(UnsafeCell<[u64; 64]>);

// SAFETY: only `install_idt` writes it, on the single CPU the probe runs on.
unsafe impl Sync for Idt {}

static IDT: Idt = Idt(UnsafeCell::new([0; 64]));

/// Point vectors 0..32 at the stubs in `asm/boot.s`, which report through
/// `probe_exception`.
pub fn install_idt() {
    let base = addr_of!(probe_isr_base) as u64;
    let table = IDT.0.get();
    for vector in 0..32u64 {
        let handler = base + 16 * vector;
        let low = (handler & 0xffff)
            | CODE64 << 16
            | 0x8e << 40 // present, DPL 0, 64-bit interrupt gate
            | ((handler >> 16) & 0xffff) << 48;
        // SAFETY: `table` points at the IDT, which nothing else accesses while we write.
        unsafe {
            (*table)[2 * vector as usize] = low;
            (*table)[2 * vector as usize + 1] = handler >> 32;
        }
    }
    #[repr(C, packed)]
    struct Pointer {
        limit: u16,
        base: u64,
    }
    let pointer = Pointer {
        limit: (64 * 8 - 1) as u16,
        base: table as u64,
    };
    // SAFETY: the IDT is a static with gates to valid handlers, and lives forever.
    unsafe { asm!("lidt [{}]", in(reg) &pointer, options(readonly, nostack, preserves_flags)) };
}

/// The time-stamp counter at the entry's first instruction. Under TCG it counts host TSC
/// ticks since the VM's reset; under `-icount shift=0` it counts guest instructions.
pub fn entry_tsc() -> u64 {
    // SAFETY: written once by the entry code before any Rust runs; read-only afterwards.
    unsafe { core::ptr::read_volatile(addr_of!(probe_entry_tsc)) }
}

/// The probe image as `[start, end)`, `.bss` included.
pub fn image() -> (u64, u64) {
    (addr_of!(__image_start) as u64, addr_of!(__image_end) as u64)
}

/// Physical memory below 4 GiB, identity-mapped.
#[derive(Debug)]
pub struct Phys;

impl Memory for Phys {
    fn read(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let end = addr.checked_add(len as u64)?;
        if addr == 0 || end > MAPPED_END {
            return None;
        }
        // SAFETY: the range is non-null and below 4 GiB, which is identity-mapped (by the
        // firmware for boot_params and the command line, by `map_4g` for the rest). Nothing
        // writes guest memory while the probe reads it: the probe runs on one CPU and
        // only reads the firmware's structures.
        Some(unsafe { core::slice::from_raw_parts(addr as *const u8, len) })
    }
}
