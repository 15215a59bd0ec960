//! fw.rom: a firmware that boots Linux on QEMU `microvm` straight from fw_cfg.
//!
//! The reset vector (`asm/reset.s`) switches real → protected → long mode with a
//! prebuilt identity map and calls [`fw_main`], which reads as the boot sequence: find
//! fw_cfg, build the memory map, map RAM above 4 GiB, install the ACPI tables (or MP tables
//! without ACPI), load the kernel, jump. Any failure prints one line on COM1 and exits QEMU through
//! `isa-debug-exit` with the code of [`bootproto::BootError`] (or halts without it).
//!
//! Built for `x86_64-unknown-none` by `cargo xtask build-fw`; on the host this crate is a
//! stub so that workspace-wide commands keep working.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod acpi;
#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod fwcfg;
#[cfg(target_os = "none")]
mod io;
#[cfg(target_os = "none")]
mod kernel;
#[cfg(target_os = "none")]
mod mem;
#[cfg(target_os = "none")]
mod mptable;
#[cfg(target_os = "none")]
mod paging;

#[cfg(target_os = "none")]
mod firmware {
    use core::fmt::Write;

    use bootproto::fwcfg::FwCfg;
    use bootproto::{e820, BootError};

    use crate::console::{milestone, Com1};
    use crate::{acpi, fwcfg, io, kernel, mem, mptable, paging};

    core::arch::global_asm!(include_str!("asm/reset.s"), options(att_syntax));

    /// Called by `asm/reset.s` in long mode, on the firmware stack.
    #[no_mangle]
    extern "C" fn fw_main() -> ! {
        match boot() {
            Ok(kernel) => {
                milestone!("entering kernel");
                kernel.start()
            }
            Err(e) => fail(e),
        }
    }

    fn boot() -> Result<kernel::Kernel, BootError> {
        let mut fw = fwcfg::Device::probe()?;
        milestone!("fw_cfg dma={}", fw.dma);
        let map = read_e820(&mut fw)?;
        let mut mem = mem::PhysMem::new(paging::map_high_ram(map.ram_top()));
        let rsdp = acpi::install(&mut fw, &mut mem)?;
        milestone!("acpi rsdp={:#x}", rsdp);
        if rsdp == 0 {
            mptable::install(&fw, &mut mem)?;
        }
        kernel::load(&mut fw, &mut mem, &map, rsdp)
    }

    fn read_e820(fw: &mut fwcfg::Device) -> Result<e820::Map, BootError> {
        let file = fw.find(b"etc/e820").ok_or(BootError::NoE820)?;
        let mut raw = [0u8; e820::MAP_CAPACITY * e820::ENTRY_SIZE];
        let len = (file.size as usize).min(raw.len());
        fw.read_to_guest(file.select, raw.as_mut_ptr() as u64, len as u32)?;
        e820::Map::from_etc_e820(&raw[..len])
    }

    fn fail(e: BootError) -> ! {
        let _ = writeln!(Com1, "fw: error: {e}");
        io::exit(e.exit_code())
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        let _ = writeln!(Com1, "fw: error: internal error");
        io::exit(0x3e)
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("mvm-firmware runs on bare metal: build fw.rom with `cargo xtask build-fw`");
    std::process::exit(2);
}
