//! The PVH boot ABI: `struct hvm_start_info` version 1, from Xen
//! `include/public/arch-x86/hvm/start_info.h` and `docs/misc/pvh.pandoc`.
//!
//! Layout (all little-endian):
//!
//! | offset | field |
//! |---|---|
//! | 0 | `u32 magic` = 0x336ec578 |
//! | 4 | `u32 version` = 1 |
//! | 8 | `u32 flags` |
//! | 12 | `u32 nr_modules` |
//! | 16 | `u64 modlist_paddr` |
//! | 24 | `u64 cmdline_paddr` |
//! | 32 | `u64 rsdp_paddr` |
//! | 40 | `u64 memmap_paddr` |
//! | 48 | `u32 memmap_entries` |
//! | 52 | `u32 reserved` |
//!
//! A module is `{u64 paddr, u64 size, u64 cmdline_paddr, u64 reserved}` (32 bytes); a
//! memory-map entry is `{u64 addr, u64 size, u32 type, u32 reserved}` (24 bytes) with the
//! e820 type numbers.

use crate::e820;

/// `hvm_start_info.magic`.
pub const MAGIC: u32 = 0x336e_c578;
/// Size of `hvm_start_info` (version 1).
pub const START_INFO_SIZE: usize = 56;
/// Size of `hvm_modlist_entry`.
pub const MODULE_SIZE: usize = 32;
/// Size of `hvm_memmap_table_entry`.
pub const MEMMAP_ENTRY_SIZE: usize = 24;
/// Offset of the module list inside the block built by [`build`].
pub const MODLIST_OFFSET: usize = 64;
/// Offset of the memory map inside the block built by [`build`].
pub const MEMMAP_OFFSET: usize = 128;
/// Bytes [`build`] needs for a map of `n` entries.
pub const fn block_size(n: usize) -> usize {
    MEMMAP_OFFSET + n * MEMMAP_ENTRY_SIZE
}

/// What the PVH kernel is told.
#[derive(Clone, Copy, Debug)]
pub struct Params<'a> {
    /// Guest address of the NUL-terminated command line, or 0.
    pub cmdline: u64,
    /// Initrd as `(address, size)`, passed as module 0.
    pub initrd: Option<(u64, u64)>,
    /// Guest address of the RSDP, or 0.
    pub rsdp: u64,
    /// The memory map.
    pub memmap: &'a [e820::Entry],
}

/// Write `hvm_start_info`, its module list and its memory map into `block`, which will be
/// placed at guest address `base`: start_info at offset 0, the module list at
/// [`MODLIST_OFFSET`], the memory map at [`MEMMAP_OFFSET`]. The block is zeroed first.
///
/// Panics never; returns `None` if `block` is shorter than [`block_size`].
pub fn build(block: &mut [u8], base: u64, params: &Params<'_>) -> Option<()> {
    todo!()
}
