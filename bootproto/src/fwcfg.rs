//! QEMU's firmware configuration device, as specified in QEMU `docs/specs/fw_cfg.rst`.
//!
//! This module holds the wire formats (keys, DMA control bits, the file directory) and
//! the [`FwCfg`] trait through which the table-loader reads files. Port and DMA access
//! live in the firmware crate.

use crate::BootError;

/// Selector keys (`FW_CFG_*` in QEMU `include/standard-headers/linux/qemu_fw_cfg.h`).
pub mod key {
    /// Reads "QEMU".
    pub const SIGNATURE: u16 = 0x00;
    /// Feature bitmap, little-endian u32: bit 0 traditional interface, bit 1 DMA.
    pub const ID: u16 = 0x01;
    /// Number of CPUs (u16).
    pub const NB_CPUS: u16 = 0x05;
    /// Guest address of the kernel (u32).
    pub const KERNEL_ADDR: u16 = 0x07;
    /// Size of `KERNEL_DATA` (u32).
    pub const KERNEL_SIZE: u16 = 0x08;
    /// Guest address of the initrd (u32).
    pub const INITRD_ADDR: u16 = 0x0a;
    /// Size of the initrd (u32).
    pub const INITRD_SIZE: u16 = 0x0b;
    /// PVH (ELF) entry point (u32).
    pub const KERNEL_ENTRY: u16 = 0x10;
    /// The kernel image after the setup sectors.
    pub const KERNEL_DATA: u16 = 0x11;
    /// The initrd image.
    pub const INITRD_DATA: u16 = 0x12;
    /// Guest address of the command line (u32).
    pub const CMDLINE_ADDR: u16 = 0x13;
    /// Size of the command line including its NUL (u32).
    pub const CMDLINE_SIZE: u16 = 0x14;
    /// The command line, NUL-terminated.
    pub const CMDLINE_DATA: u16 = 0x15;
    /// Guest address of the setup blob (u32).
    pub const SETUP_ADDR: u16 = 0x16;
    /// Size of the setup blob (u32).
    pub const SETUP_SIZE: u16 = 0x17;
    /// The setup sectors (bzImage) or the first 8 KiB of the file (ELF).
    pub const SETUP_DATA: u16 = 0x18;
    /// The file directory.
    pub const FILE_DIR: u16 = 0x19;
    /// 1 when ISA IRQ 0 is wired to I/O APIC pin 2 (u32).
    pub const IRQ0_OVERRIDE: u16 = 0x8002;
}

/// Feature bit: the traditional (port I/O) interface.
pub const FEATURE_TRADITIONAL: u32 = 1 << 0;
/// Feature bit: the DMA interface.
pub const FEATURE_DMA: u32 = 1 << 1;

/// The value of the signature register.
pub const SIGNATURE: [u8; 4] = *b"QEMU";

/// Control bits of an `FWCfgDmaAccess` descriptor (big-endian on the wire).
pub mod dma {
    /// Set by the device when the transfer failed.
    pub const ERROR: u32 = 1 << 0;
    /// Read from the selected item into guest memory.
    pub const READ: u32 = 1 << 1;
    /// Advance the item offset without transferring.
    pub const SKIP: u32 = 1 << 2;
    /// Select the item in bits 31..16 before the transfer.
    pub const SELECT: u32 = 1 << 3;
    /// Write guest memory into the selected item.
    pub const WRITE: u32 = 1 << 4;

    /// The control word that selects `key` and reads from offset 0.
    pub const fn select_read(key: u16) -> u32 {
        ((key as u32) << 16) | SELECT | READ
    }
}

/// Size of one directory entry on the wire.
pub const DIR_ENTRY_SIZE: usize = 64;
/// Length of the NUL-padded file name field.
pub const NAME_LEN: usize = 56;

/// One entry of the fw_cfg file directory: `{be32 size, be16 select, u16 reserved, name[56]}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// Size of the file in bytes.
    pub size: u32,
    /// Selector key that reads it.
    pub select: u16,
    /// The NUL-padded name.
    pub name: [u8; NAME_LEN],
}

impl FileEntry {
    /// Decode one 64-byte directory entry.
    pub fn parse(raw: &[u8; DIR_ENTRY_SIZE]) -> FileEntry {
        let mut name = [0u8; NAME_LEN];
        name.copy_from_slice(&raw[8..8 + NAME_LEN]);
        FileEntry {
            size: u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]),
            select: u16::from_be_bytes([raw[4], raw[5]]),
            name,
        }
    }

    /// The name up to (not including) its first NUL.
    pub fn name(&self) -> &[u8] {
        let end = self.name.iter().position(|&b| b == 0).unwrap_or(NAME_LEN);
        &self.name[..end]
    }
}

/// Whether `a` and `b` are the same name. Lengths first, then bytes from the end: fw_cfg
/// names share long prefixes (`etc/acpi/…`), so this rejects a mismatch in a step or two
/// where a generic `memcmp` walks the common prefix.
pub fn same_name(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().rev().zip(b.iter().rev()).all(|(x, y)| x == y)
}

/// Whether the NUL-padded name field of a raw directory entry holds exactly `name`,
/// without decoding the entry.
pub fn entry_has_name(raw: &[u8; DIR_ENTRY_SIZE], name: &[u8]) -> bool {
    let field = &raw[8..];
    match field.get(name.len()) {
        Some(&next) if next != 0 => false,
        None if name.len() > NAME_LEN => false,
        _ => field.get(..name.len()).is_some_and(|f| same_name(f, name)),
    }
}

/// The number of entries announced by the directory's 4-byte big-endian header.
pub fn dir_count(header: [u8; 4]) -> u32 {
    u32::from_be_bytes(header)
}

/// Access to fw_cfg files, as the table-loader needs it.
pub trait FwCfg {
    /// Look a file up by its exact name.
    fn find(&mut self, name: &[u8]) -> Option<FileEntry>;
    /// Copy the first `len` bytes of item `select` to guest-physical address `addr`.
    fn read_to_guest(&mut self, select: u16, addr: u64, len: u32) -> Result<(), BootError>;
}
