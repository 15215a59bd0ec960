//! Loading the kernel QEMU was given and entering it: a bzImage through the 64-bit boot
//! protocol (Linux `Documentation/arch/x86/boot.rst`), or an ELF `vmlinux` through PVH
//! (Xen `hvm/start_info.h`), which QEMU has already loaded into RAM.

use core::arch::asm;

use bootproto::fwcfg::{key, FwCfg};
use bootproto::linux::{self, Kind, SetupHeader, BOOT_PARAMS_SIZE};
use bootproto::mem::GuestMem;
use bootproto::{e820, layout, pvh, BootError};

use crate::console::milestone;
use crate::fwcfg::Device;
use crate::mem::PhysMem;

extern "C" {
    /// `asm/reset.s`: leave long mode and jump to a PVH entry with EBX = start_info.
    fn enter_pvh(entry: u64, start_info: u64) -> !;
}

/// A loaded kernel, ready to run.
#[derive(Debug)]
pub enum Kernel {
    /// 64-bit Linux entry point and the zero page.
    Linux { entry: u64, boot_params: u64 },
    /// PVH 32-bit entry point and `hvm_start_info`.
    Pvh { entry: u64, start_info: u64 },
}

/// Load whatever QEMU holds in fw_cfg and prepare its boot information.
pub fn load(
    fw: &mut Device,
    mem: &mut PhysMem,
    map: &e820::Map,
    rsdp: u64,
) -> Result<Kernel, BootError> {
    let setup_size = fw.u32(key::SETUP_SIZE);
    if setup_size == 0 && fw.u32(key::KERNEL_SIZE) == 0 {
        return Err(BootError::NoKernel);
    }
    if u64::from(setup_size) > layout::CMDLINE_ADDR - layout::SETUP_ADDR {
        return Err(BootError::UnknownKernelFormat);
    }
    fw.read_to_guest(key::SETUP_DATA, layout::SETUP_ADDR, setup_size)?;
    // SAFETY: just filled by fw_cfg; SETUP_ADDR..CMDLINE_ADDR is firmware-owned RAM.
    let setup = unsafe {
        core::slice::from_raw_parts(layout::SETUP_ADDR as *const u8, setup_size as usize)
    };
    match Kind::detect(setup) {
        Kind::BzImage => load_bzimage(fw, mem, map, rsdp, setup),
        Kind::Elf => load_pvh(fw, mem, map, rsdp),
        Kind::Unknown => Err(BootError::UnknownKernelFormat),
    }
}

fn load_bzimage(
    fw: &mut Device,
    mem: &mut PhysMem,
    map: &e820::Map,
    rsdp: u64,
    setup: &[u8],
) -> Result<Kernel, BootError> {
    let hdr = SetupHeader::parse(setup)?;
    let placement = placement(fw);
    milestone!(
        "bzImage {:x?} low_ram_end={:#x}",
        placement,
        map.low_ram_end()
    );
    linux::check_fit(&hdr, &placement, map.low_ram_end())?;
    fw.read_to_guest(
        key::KERNEL_DATA,
        placement.kernel_addr,
        placement.kernel_size as u32,
    )?;
    let initrd = load_cmdline_initrd(fw, mem, &placement)?;
    // SAFETY: BOOT_INFO is a firmware-owned, identity-mapped 4 KiB page (layout).
    let zero_page = unsafe { &mut *(layout::BOOT_INFO as *mut [u8; BOOT_PARAMS_SIZE]) };
    let params = linux::Params {
        cmdline: layout::CMDLINE_ADDR,
        initrd,
        rsdp,
        e820: map.entries(),
    };
    linux::build_boot_params(zero_page, setup, &params)?;
    Ok(Kernel::Linux {
        entry: placement.kernel_addr + linux::ENTRY64_OFFSET,
        boot_params: layout::BOOT_INFO,
    })
}

fn load_pvh(
    fw: &mut Device,
    mem: &mut PhysMem,
    map: &e820::Map,
    rsdp: u64,
) -> Result<Kernel, BootError> {
    let entry = u64::from(fw.u32(key::KERNEL_ENTRY));
    if entry == 0 {
        return Err(BootError::UnknownKernelFormat);
    }
    let mut placement = placement(fw);
    let kernel_end = placement.kernel_addr + placement.kernel_size;
    let low_end = map.low_ram_end();
    if placement.initrd_size > 0 {
        if placement.initrd_addr == 0 {
            placement.initrd_addr = low_end.saturating_sub(placement.initrd_size) & !0xfff;
        }
        let end = placement.initrd_addr.checked_add(placement.initrd_size);
        if placement.initrd_addr < kernel_end || end.is_none_or(|e| e > low_end) {
            return Err(BootError::InitrdTooBig {
                size: placement.initrd_size,
            });
        }
    }
    let initrd = load_cmdline_initrd(fw, mem, &placement)?;
    let n = map.entries().len();
    // SAFETY: BOOT_INFO is a firmware-owned, identity-mapped 4 KiB page (layout).
    let page = unsafe { &mut *(layout::BOOT_INFO as *mut [u8; 4096]) };
    let params = pvh::Params {
        cmdline: layout::CMDLINE_ADDR,
        initrd,
        rsdp,
        memmap: map.entries(),
    };
    pvh::build(
        &mut page[..pvh::block_size(n).min(4096)],
        layout::BOOT_INFO,
        &params,
    )
    .ok_or(BootError::E820Overflow)?;
    Ok(Kernel::Pvh {
        entry,
        start_info: layout::BOOT_INFO,
    })
}

/// Where QEMU put (or wants) the kernel, initrd and command line.
fn placement(fw: &Device) -> linux::Placement {
    linux::Placement {
        kernel_addr: u64::from(fw.u32(key::KERNEL_ADDR)),
        kernel_size: u64::from(fw.u32(key::KERNEL_SIZE)),
        initrd_addr: u64::from(fw.u32(key::INITRD_ADDR)),
        initrd_size: u64::from(fw.u32(key::INITRD_SIZE)),
        cmdline_size: u64::from(fw.u32(key::CMDLINE_SIZE)),
    }
}

/// Read the command line to [`layout::CMDLINE_ADDR`] and the initrd to QEMU's address.
fn load_cmdline_initrd(
    fw: &mut Device,
    mem: &mut PhysMem,
    p: &linux::Placement,
) -> Result<Option<(u64, u64)>, BootError> {
    if p.cmdline_size > layout::CMDLINE_MAX {
        let len = p.cmdline_size.saturating_sub(1) as u32;
        return Err(BootError::CmdlineTooLong {
            len,
            max: layout::CMDLINE_MAX as u32 - 1,
        });
    }
    if p.cmdline_size == 0 {
        mem.write(layout::CMDLINE_ADDR, &[0])?;
    } else {
        fw.read_to_guest(
            key::CMDLINE_DATA,
            layout::CMDLINE_ADDR,
            p.cmdline_size as u32,
        )?;
    }
    if p.initrd_size == 0 {
        return Ok(None);
    }
    fw.read_to_guest(key::INITRD_DATA, p.initrd_addr, p.initrd_size as u32)?;
    Ok(Some((p.initrd_addr, p.initrd_size)))
}

impl Kernel {
    /// Jump into the kernel. Interrupts are off and stay off.
    pub fn start(self) -> ! {
        match self {
            Kernel::Linux { entry, boot_params } => {
                // SAFETY: the kernel image, its zero page and the GDT (0x10 code, 0x18
                // data) are in place as the 64-bit boot protocol requires; control never
                // returns.
                unsafe {
                    asm!("cld", "jmp {entry}", entry = in(reg) entry, in("rsi") boot_params, options(noreturn))
                }
            }
            // SAFETY: QEMU loaded the ELF segments; start_info is built; `enter_pvh`
            // never returns.
            Kernel::Pvh { entry, start_info } => unsafe { enter_pvh(entry, start_info) },
        }
    }
}
