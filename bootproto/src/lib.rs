//! Boot-protocol structures and parsers shared by the mvm firmware.
//!
//! Everything here is pure logic over byte slices: no port I/O, no raw pointers, no
//! allocation. The firmware supplies the hardware through two narrow traits,
//! [`mem::GuestMem`] (physical memory) and [`fwcfg::FwCfg`] (QEMU's fw_cfg device), and
//! the host unit tests supply in-memory fakes of both.
//!
//! | module | implements |
//! |---|---|
//! | [`fwcfg`] | QEMU `docs/specs/fw_cfg.rst`: keys, DMA control bits, the file directory |
//! | [`e820`] | the BIOS e820 memory map handed to Linux and to PVH kernels |
//! | [`loader`] | QEMU `hw/acpi/bios-linker-loader.c`: the `etc/table-loader` script |
//! | [`linux`] | Linux `Documentation/arch/x86/boot.rst`: setup header, `boot_params` |
//! | [`mptable`] | Intel MultiProcessor Specification 1.4 tables (for `acpi=off`) |
//! | [`pvh`] | Xen `include/public/arch-x86/hvm/start_info.h`: `hvm_start_info` |
//! | [`layout`] | every fixed guest-physical address the firmware uses |
//! | [`error`] | the firmware's failure causes and their exit codes |
#![no_std]
#![forbid(unsafe_code)]

pub mod e820;
pub mod error;
pub mod fwcfg;
pub mod layout;
mod le;
pub mod linux;
pub mod loader;
pub mod mem;
pub mod mptable;
pub mod pvh;

pub use error::BootError;
