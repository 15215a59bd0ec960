//! The probe's Rust entry points, called from `asm/boot.s`, and the order of the checks:
//! entry state, boot information, command line, memory map, initrd, ACPI; then one
//! verdict line and an exit code.

use core::fmt::{self, Write};

use mvm_probe::acpi;
use mvm_probe::args::Expect;
use mvm_probe::cpu::{LongEntry, PvhEntry};
use mvm_probe::handoff::{Handoff, Kind};
use mvm_probe::paging;
use mvm_probe::{Check, Fail, PASS};

use crate::hw::{self, Com1, Phys};

/// Print one line on COM1.
fn say(args: fmt::Arguments<'_>) {
    let _ = Com1.write_fmt(args);
    let _ = Com1.write_str("\n");
}

/// The 64-bit boot protocol entry: `boot_params` is RSI; the rest was captured by
/// `probe_entry64` before anything could change it.
#[unsafe(no_mangle)]
extern "C" fn probe_main64(boot_params: u64, rflags: u64, selectors: u64, efer: u64) -> ! {
    say(format_args!("PROBE ENTRY {}", Kind::BzImage64.name()));
    say(format_args!("PROBE TSC {}", hw::entry_tsc()));
    hw::load_gdt();
    hw::install_idt();
    let entry = LongEntry::new(rflags, selectors, efer);
    finish(Kind::BzImage64, run64(entry, boot_params))
}

fn run64(entry: LongEntry, boot_params: u64) -> Result<Outcome, Fail> {
    entry.check()?;
    // Read boot_params and the command line through the firmware's page tables: the boot
    // protocol requires it to map them (a fault here is reported as an exception).
    let handoff = Handoff::from_boot_params(&Phys, boot_params)?;
    paging::check_identity(&Phys, hw::cr3(), &handoff.memmap)?;
    hw::map_4g();
    verify(&handoff)
}

/// The PVH entry: `hvm_start_info` was EBX; `probe_pvh_entry` already switched to long
/// mode with the probe's own GDT and a 1 GiB identity map.
#[unsafe(no_mangle)]
extern "C" fn probe_main_pvh(start_info: u64, cr0: u64, eflags: u64) -> ! {
    say(format_args!("PROBE ENTRY {}", Kind::Pvh.name()));
    say(format_args!("PROBE TSC {}", hw::entry_tsc()));
    hw::install_idt();
    hw::map_4g();
    let result = PvhEntry { cr0, eflags }
        .check()
        .and_then(|()| Handoff::from_start_info(&Phys, start_info))
        .and_then(|handoff| verify(&handoff));
    finish(Kind::Pvh, result)
}

/// What passed, for the summary line.
struct Outcome {
    expect: Expect,
    entries: usize,
    ram: u64,
    initrd: Option<(u64, u64)>,
    acpi: acpi::Summary,
    cmdline_len: usize,
}

/// The checks shared by both entries.
fn verify(handoff: &Handoff<'_>) -> Result<Outcome, Fail> {
    Com1.write_bytes(b"PROBE CMDLINE ");
    Com1.write_bytes(handoff.cmdline);
    Com1.write_bytes(b"\n");
    for e in handoff.memmap.entries() {
        say(format_args!(
            "PROBE E820 {:#x} {:#x} {}",
            e.addr, e.size, e.kind
        ));
    }
    let expect = Expect::parse(handoff.cmdline)?;
    let (image_start, image_end) = hw::image();
    handoff.memmap.check(expect.mem, image_start, image_end)?;
    handoff.check_initrd(&Phys, expect.initrd)?;
    let acpi = acpi::check(&Phys, handoff.rsdp, expect.acpi, &handoff.memmap)?;
    Ok(Outcome {
        expect,
        entries: handoff.memmap.entries().len(),
        ram: handoff.memmap.ram_bytes(),
        initrd: handoff.initrd,
        acpi,
        cmdline_len: handoff.cmdline.len(),
    })
}

/// Print the verdict and leave: exit through `isa-debug-exit`, or reboot if asked to.
fn finish(kind: Kind, result: Result<Outcome, Fail>) -> ! {
    match result {
        Ok(o) => {
            say(format_args!(
                "PROBE INFO rsdp={:#x} acpi-revision={} acpi-tables={} cmdline-bytes={}",
                o.acpi.rsdp, o.acpi.revision, o.acpi.tables, o.cmdline_len
            ));
            let _ = write!(
                Com1,
                "PROBE PASS {} e820={} ram={:#x}",
                kind.name(),
                o.entries,
                o.ram
            );
            match o.initrd {
                Some((addr, size)) => say(format_args!(" initrd={size}@{addr:#x}")),
                None => say(format_args!(" initrd=none")),
            }
            if o.expect.reboot {
                say(format_args!("PROBE REBOOT"));
                hw::reboot();
            }
            hw::exit(PASS)
        }
        Err(fail) => {
            say(format_args!("PROBE FAIL {}: {fail}", fail.check().name()));
            hw::exit(fail.check().code())
        }
    }
}

/// Called by the exception stubs with `[vector, error code, RIP, CS, RFLAGS, RSP, SS]`.
#[unsafe(no_mangle)]
extern "C" fn probe_exception(frame: *const [u64; 7]) -> ! {
    // SAFETY: `probe_isr_common` passes the stack address of the stub's two pushes
    // followed by the CPU's five-word interrupt frame.
    let [vector, error, rip, ..] = unsafe { *frame };
    say(format_args!(
        "PROBE FAIL {}: vector {vector} error={error:#x} rip={rip:#x} cr2={:#x}",
        Check::Exception.name(),
        hw::cr2()
    ));
    hw::exit(Check::Exception.code())
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    say(format_args!("PROBE FAIL {}: {info}", Check::Panic.name()));
    hw::exit(Check::Panic.code())
}
