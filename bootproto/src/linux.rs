//! The Linux x86 boot protocol (`Documentation/arch/x86/boot.rst`), for a firmware that
//! enters the kernel through its 64-bit entry point.
//!
//! QEMU splits a bzImage into the setup sectors (`FW_CFG_SETUP_DATA`, header already
//! patched with QEMU's addresses) and the protected-mode kernel (`FW_CFG_KERNEL_DATA`).
//! The firmware loads both to QEMU's addresses, validates the header with
//! [`SetupHeader::parse`], checks placement with [`check_fit`], and builds the zero page
//! with [`build_boot_params`]. No 16-bit setup code runs.

use crate::e820;
use crate::layout::CMDLINE_MAX;
use crate::le;
use crate::BootError;

/// Offsets into `struct boot_params` (the "zero page"), from
/// `arch/x86/include/uapi/asm/bootparam.h`.
pub mod offset {
    /// `u64 acpi_rsdp_addr`.
    pub const ACPI_RSDP_ADDR: usize = 0x070;
    /// `u32 ext_ramdisk_image`: bits 63..32 of the initrd address.
    pub const EXT_RAMDISK_IMAGE: usize = 0x0c0;
    /// `u32 ext_ramdisk_size`.
    pub const EXT_RAMDISK_SIZE: usize = 0x0c4;
    /// `u32 ext_cmd_line_ptr`.
    pub const EXT_CMD_LINE_PTR: usize = 0x0c8;
    /// `u8 e820_entries`.
    pub const E820_ENTRIES: usize = 0x1e8;
    /// `u8 sentinel`: must stay 0.
    pub const SENTINEL: usize = 0x1ef;
    /// Start of `struct setup_header` (`setup_sects`).
    pub const HDR: usize = 0x1f1;
    /// `u16 boot_flag` = 0xAA55.
    pub const BOOT_FLAG: usize = 0x1fe;
    /// `u8 jump[2]`; byte 0x201 is the header length past 0x202.
    pub const JUMP: usize = 0x200;
    /// `u32 header` = "HdrS".
    pub const HEADER: usize = 0x202;
    /// `u16 version`.
    pub const VERSION: usize = 0x206;
    /// `u8 type_of_loader`.
    pub const TYPE_OF_LOADER: usize = 0x210;
    /// `u8 loadflags`.
    pub const LOADFLAGS: usize = 0x211;
    /// `u32 code32_start`.
    pub const CODE32_START: usize = 0x214;
    /// `u32 ramdisk_image`.
    pub const RAMDISK_IMAGE: usize = 0x218;
    /// `u32 ramdisk_size`.
    pub const RAMDISK_SIZE: usize = 0x21c;
    /// `u16 heap_end_ptr`.
    pub const HEAP_END_PTR: usize = 0x224;
    /// `u32 cmd_line_ptr`.
    pub const CMD_LINE_PTR: usize = 0x228;
    /// `u32 initrd_addr_max`.
    pub const INITRD_ADDR_MAX: usize = 0x22c;
    /// `u32 kernel_alignment`.
    pub const KERNEL_ALIGNMENT: usize = 0x230;
    /// `u8 relocatable_kernel`.
    pub const RELOCATABLE_KERNEL: usize = 0x234;
    /// `u16 xloadflags`.
    pub const XLOADFLAGS: usize = 0x236;
    /// `u32 cmdline_size`.
    pub const CMDLINE_SIZE: usize = 0x238;
    /// `u64 setup_data`.
    pub const SETUP_DATA: usize = 0x250;
    /// `u64 pref_address`.
    pub const PREF_ADDRESS: usize = 0x258;
    /// `u32 init_size`.
    pub const INIT_SIZE: usize = 0x260;
    /// `struct boot_e820_entry e820_table[128]`.
    pub const E820_TABLE: usize = 0x2d0;
}

/// Size of `struct boot_params`.
pub const BOOT_PARAMS_SIZE: usize = 4096;
/// "HdrS".
pub const HDRS_MAGIC: u32 = 0x5372_6448;
/// `boot_flag`.
pub const BOOT_FLAG_MAGIC: u16 = 0xaa55;
/// Oldest protocol with a 64-bit entry point (2.12).
pub const MIN_VERSION: u16 = 0x020c;
/// `xloadflags` bit: the kernel has a 64-bit entry at `load address + 0x200`.
pub const XLF_KERNEL_64: u16 = 1 << 0;
/// `xloadflags` bit: kernel, boot_params, command line and initrd may lie above 4 GiB.
pub const XLF_CAN_BE_LOADED_ABOVE_4G: u16 = 1 << 1;
/// `loadflags` bit: the protected-mode kernel is loaded at 1 MiB.
pub const LOADED_HIGH: u8 = 1 << 0;
/// `loadflags` bit: `heap_end_ptr` is valid.
pub const CAN_USE_HEAP: u8 = 1 << 7;
/// `type_of_loader` for a boot loader without an assigned ID.
pub const LOADER_TYPE_UNDEFINED: u8 = 0xff;
/// Offset of the 64-bit entry point from the protected-mode kernel's load address.
pub const ENTRY64_OFFSET: u64 = 0x200;
/// Bytes of the setup blob [`SetupHeader::parse`] needs (the header ends before this).
pub const HEADER_END: usize = 0x268;

/// What kind of image QEMU was given, judged by the first bytes of `FW_CFG_SETUP_DATA`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A bzImage ("HdrS" at 0x202).
    BzImage,
    /// An ELF file (QEMU only accepts one with a PVH note and loaded it already).
    Elf,
    /// Anything else.
    Unknown,
}

impl Kind {
    /// Classify `setup`, the start of `FW_CFG_SETUP_DATA` (any length).
    ///
    /// Like qboot: "HdrS" at 0x202 means a bzImage, else the ELF magic at 0 means an ELF.
    pub fn detect(setup: &[u8]) -> Kind {
        if le::u32_at(setup, offset::HEADER) == Some(HDRS_MAGIC) {
            Kind::BzImage
        } else if setup.starts_with(b"\x7fELF") {
            Kind::Elf
        } else {
            Kind::Unknown
        }
    }
}

/// The setup-header fields the firmware uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetupHeader {
    /// `version`, e.g. 0x020f.
    pub version: u16,
    /// `loadflags`.
    pub loadflags: u8,
    /// `xloadflags`.
    pub xloadflags: u16,
    /// `initrd_addr_max`: highest address the initrd may end at (inclusive).
    pub initrd_addr_max: u32,
    /// `kernel_alignment`.
    pub kernel_alignment: u32,
    /// `relocatable_kernel != 0`.
    pub relocatable: bool,
    /// `cmdline_size`: longest command line, NUL excluded.
    pub cmdline_size: u32,
    /// `pref_address`: where the kernel runs after decompression.
    pub pref_address: u64,
    /// `init_size`: bytes the kernel needs from `pref_address` before it reads the memory map.
    pub init_size: u32,
    /// `setup_data` (QEMU's absolute pointer, kept as is).
    pub setup_data: u64,
}

impl SetupHeader {
    /// Parse and validate the header in `setup` (at least [`HEADER_END`] bytes of
    /// `FW_CFG_SETUP_DATA`). Checks `boot_flag`, "HdrS", `version >= 2.12` and
    /// `XLF_KERNEL_64`.
    ///
    /// Errors: [`BootError::UnknownKernelFormat`] (short blob, bad `boot_flag` or magic),
    /// [`BootError::ProtocolTooOld`], [`BootError::NoKernel64`].
    pub fn parse(setup: &[u8]) -> Result<SetupHeader, BootError> {
        let unknown = BootError::UnknownKernelFormat;
        let hdr = setup.get(..HEADER_END).ok_or(unknown)?;
        let u16_at = |off| le::u16_at(hdr, off).ok_or(unknown);
        let u32_at = |off| le::u32_at(hdr, off).ok_or(unknown);
        let u8_at = |off: usize| hdr.get(off).copied().ok_or(unknown);
        if u16_at(offset::BOOT_FLAG)? != BOOT_FLAG_MAGIC || u32_at(offset::HEADER)? != HDRS_MAGIC {
            return Err(unknown);
        }
        let version = u16_at(offset::VERSION)?;
        if version < MIN_VERSION {
            return Err(BootError::ProtocolTooOld { version });
        }
        let xloadflags = u16_at(offset::XLOADFLAGS)?;
        if xloadflags & XLF_KERNEL_64 == 0 {
            return Err(BootError::NoKernel64);
        }
        Ok(SetupHeader {
            version,
            loadflags: u8_at(offset::LOADFLAGS)?,
            xloadflags,
            initrd_addr_max: u32_at(offset::INITRD_ADDR_MAX)?,
            kernel_alignment: u32_at(offset::KERNEL_ALIGNMENT)?,
            relocatable: u8_at(offset::RELOCATABLE_KERNEL)? != 0,
            cmdline_size: u32_at(offset::CMDLINE_SIZE)?,
            pref_address: le::u64_at(hdr, offset::PREF_ADDRESS).ok_or(unknown)?,
            init_size: u32_at(offset::INIT_SIZE)?,
            setup_data: le::u64_at(hdr, offset::SETUP_DATA).ok_or(unknown)?,
        })
    }
}

/// Where QEMU put the pieces (all from fw_cfg).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// `FW_CFG_KERNEL_ADDR`.
    pub kernel_addr: u64,
    /// `FW_CFG_KERNEL_SIZE`.
    pub kernel_size: u64,
    /// `FW_CFG_INITRD_ADDR`.
    pub initrd_addr: u64,
    /// `FW_CFG_INITRD_SIZE` (0: no initrd).
    pub initrd_size: u64,
    /// `FW_CFG_CMDLINE_SIZE`, NUL included (0 or 1: empty).
    pub cmdline_size: u64,
}

/// Check that the kernel, the memory it needs to decompress and the initrd fit in low RAM
/// (`low_ram_end` is [`e820::Map::low_ram_end`]), and that the command line fits the
/// kernel's limit.
///
/// The kernel needs `[kernel_addr, kernel_addr + kernel_size)` and
/// `[pref_address, pref_address + init_size)`; the initrd must start at or above the end
/// of both, end at or below `low_ram_end` and `initrd_addr_max + 1` (the last limit is
/// waived when `xloadflags` has [`XLF_CAN_BE_LOADED_ABOVE_4G`], as QEMU does).
///
/// The command line limit is the kernel's `cmdline_size`, further capped at
/// `layout::CMDLINE_MAX - 1` (the firmware's command-line area), and is reported as
/// `max`. Checks run in the order kernel, initrd, command line; a range whose end would
/// overflow counts as not fitting.
///
/// Errors: [`BootError::KernelTooBig`], [`BootError::InitrdTooBig`],
/// [`BootError::CmdlineTooLong`].
pub fn check_fit(
    hdr: &SetupHeader,
    placement: &Placement,
    low_ram_end: u64,
) -> Result<(), BootError> {
    let kernel_end = placement.kernel_addr.checked_add(placement.kernel_size);
    let decompress_end = hdr.pref_address.checked_add(u64::from(hdr.init_size));
    let need = match (kernel_end, decompress_end) {
        (Some(k), Some(d)) => k.max(d),
        _ => u64::MAX,
    };
    if need > low_ram_end {
        return Err(BootError::KernelTooBig {
            need,
            have: low_ram_end,
        });
    }
    if placement.initrd_size != 0 {
        // With XLF_CAN_BE_LOADED_ABOVE_4G the kernel takes an initrd anywhere (QEMU then
        // ignores `initrd_addr_max` and puts it at the top of low RAM).
        let limit = if hdr.xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G != 0 {
            low_ram_end
        } else {
            low_ram_end.min(u64::from(hdr.initrd_addr_max) + 1)
        };
        let fits = placement
            .initrd_addr
            .checked_add(placement.initrd_size)
            .is_some_and(|end| placement.initrd_addr >= need && end <= limit);
        if !fits {
            return Err(BootError::InitrdTooBig {
                size: placement.initrd_size,
            });
        }
    }
    let len = placement.cmdline_size.saturating_sub(1);
    let max = hdr.cmdline_size.min(CMDLINE_MAX.saturating_sub(1) as u32);
    if len > u64::from(max) {
        return Err(BootError::CmdlineTooLong {
            len: u32::try_from(len).unwrap_or(u32::MAX),
            max,
        });
    }
    Ok(())
}

/// What the zero page tells the kernel.
#[derive(Clone, Copy, Debug)]
pub struct Params<'a> {
    /// Guest address of the NUL-terminated command line.
    pub cmdline: u64,
    /// Initrd as `(address, size)`.
    pub initrd: Option<(u64, u64)>,
    /// Guest address of the RSDP, or 0.
    pub rsdp: u64,
    /// The memory map (at most 128 entries).
    pub e820: &'a [e820::Entry],
}

/// Build the zero page in `out`: zero it, copy the setup header bytes
/// `0x1f1..0x202 + setup[0x201]` from `setup`, then set `e820_entries`/`e820_table`,
/// `acpi_rsdp_addr`, `cmd_line_ptr` (+ `ext_cmd_line_ptr`), `ramdisk_image`/`_size`
/// (+ `ext_` halves; 0 without an initrd), `type_of_loader` (kept if QEMU set it, else
/// [`LOADER_TYPE_UNDEFINED`]) and `loadflags |= CAN_USE_HEAP` with `heap_end_ptr` 0xfe00.
///
/// Errors: [`BootError::UnknownKernelFormat`] if `setup` is shorter than the header,
/// [`BootError::E820Overflow`] for more than 128 entries.
pub fn build_boot_params(
    out: &mut [u8; BOOT_PARAMS_SIZE],
    setup: &[u8],
    params: &Params<'_>,
) -> Result<(), BootError> {
    let hdr_len = setup
        .get(offset::JUMP + 1)
        .ok_or(BootError::UnknownKernelFormat)?;
    let hdr_end = offset::HEADER + usize::from(*hdr_len);
    let hdr = setup
        .get(offset::HDR..hdr_end)
        .ok_or(BootError::UnknownKernelFormat)?;
    if params.e820.len() > e820::MAX_ENTRIES {
        return Err(BootError::E820Overflow);
    }

    out.fill(0);
    le::put(out, offset::HDR, hdr);
    for (i, e) in params.e820.iter().enumerate() {
        le::put(
            out,
            offset::E820_TABLE + i * e820::ENTRY_SIZE,
            &e.to_bytes(),
        );
    }
    // At most MAX_ENTRIES (128), checked above.
    out[offset::E820_ENTRIES] = params.e820.len() as u8;
    le::put(out, offset::ACPI_RSDP_ADDR, &params.rsdp.to_le_bytes());
    put_split(
        out,
        offset::CMD_LINE_PTR,
        offset::EXT_CMD_LINE_PTR,
        params.cmdline,
    );
    let (image, size) = params.initrd.unwrap_or((0, 0));
    put_split(out, offset::RAMDISK_IMAGE, offset::EXT_RAMDISK_IMAGE, image);
    put_split(out, offset::RAMDISK_SIZE, offset::EXT_RAMDISK_SIZE, size);
    if out[offset::TYPE_OF_LOADER] == 0 {
        out[offset::TYPE_OF_LOADER] = LOADER_TYPE_UNDEFINED;
    }
    out[offset::LOADFLAGS] |= CAN_USE_HEAP;
    le::put(out, offset::HEAP_END_PTR, &HEAP_END.to_le_bytes());
    Ok(())
}

/// `heap_end_ptr`: the end of the setup heap, relative to the real-mode code (as QEMU
/// and qboot set it).
const HEAP_END: u16 = 0xfe00;

/// Store the low 32 bits of `value` at `lo` and the high 32 bits at `hi`.
fn put_split(out: &mut [u8], lo: usize, hi: usize, value: u64) {
    le::put(out, lo, &(value as u32).to_le_bytes());
    le::put(out, hi, &((value >> 32) as u32).to_le_bytes());
}
