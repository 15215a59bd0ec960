//! Every fixed guest-physical address the firmware uses, in one place.
//!
//! Low memory (below 1 MiB) on QEMU `microvm`:
//!
//! | range | use | e820 |
//! |---|---|---|
//! | `0x0000..0x1000` | real-mode IVT/BDA (untouched) | RAM |
//! | `0x1000..0x7000` | unused (the 0..4 GiB page tables live in the firmware image) | RAM |
//! | `0x7000..0x8000` | `boot_params` (bzImage) or `hvm_start_info` + memmap (PVH) | RAM |
//! | `0x8000..0x10000` | scratch: fw_cfg directory, `etc/table-loader` (dead after boot) | RAM |
//! | `0x10000..0x20000` | QEMU's setup blob (`FW_CFG_SETUP_ADDR`) | RAM |
//! | `0x20000..0x30000` | kernel command line (`FW_CFG_CMDLINE_ADDR`) | RAM |
//! | `0x30000..0x90000` | page directories for RAM above 4 GiB (up to 96 GiB) | RAM |
//! | `0x9fc00..0xa0000` | EBDA (kept reserved, as every PC firmware does) | reserved |
//! | `0xe0000..0xec000` | ACPI tables from `etc/table-loader` | reserved |
//! | `0xec000..0xf0000` | firmware stack | reserved |
//! | `0xf0000..0x100000` | the firmware image itself (the `-bios` low alias) | reserved |
//!
//! Everything the kernel must read (boot_params, start_info, command line) sits in RAM
//! below 1 MiB, which Linux never hands to its allocator before copying them.

/// Page directories for RAM above 4 GiB, one per GiB.
pub const PD_HIGH: u64 = 0x30000;
/// Number of page directories available at [`PD_HIGH`].
pub const PD_HIGH_COUNT: u64 = 96;
/// The Linux zero page, or the PVH start_info block.
pub const BOOT_INFO: u64 = 0x7000;
/// Where QEMU expects the setup blob (its `setup_data` pointers are absolute).
pub const SETUP_ADDR: u64 = 0x10000;
/// Default kernel command line address (QEMU reports its own in `FW_CFG_CMDLINE_ADDR`).
pub const CMDLINE_ADDR: u64 = 0x20000;
/// Largest command line the firmware places at [`CMDLINE_ADDR`].
pub const CMDLINE_MAX: u64 = 0x10000;
/// Start of the Extended BIOS Data Area: conventional RAM ends here.
pub const EBDA: u64 = 0x9fc00;
/// End of conventional memory (start of the legacy VGA hole).
pub const LOW_RAM_END: u64 = 0xa0000;
/// ACPI tables (table-loader HIGH and FSEG zones) live in `[ACPI_START, ACPI_END)`.
pub const ACPI_START: u64 = 0xe0000;
/// End of the ACPI area.
pub const ACPI_END: u64 = 0xec000;
/// Lowest address of the firmware stack.
pub const STACK_BOTTOM: u64 = 0xec000;
/// Initial stack pointer (the stack grows down from here).
pub const STACK_TOP: u64 = 0xf0000;
/// The firmware image's low alias (64 KiB below 1 MiB).
pub const FIRMWARE_START: u64 = 0xf0000;
/// One MiB: where extended memory begins.
pub const HIGH_MEMORY: u64 = 0x100000;
/// The 4 GiB boundary: microvm puts RAM above 3 GiB here.
pub const FOUR_GIB: u64 = 0x1_0000_0000;

/// Scratch area for the fw_cfg file directory (`[DIR_SCRATCH, LOADER_SCRATCH)`, 256
/// entries); dead once the kernel runs.
pub const DIR_SCRATCH: u64 = 0x8000;
/// Scratch area for `etc/table-loader` (`[LOADER_SCRATCH, SETUP_ADDR)`, 128 commands).
pub const LOADER_SCRATCH: u64 = 0xc000;
