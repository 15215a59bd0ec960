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
use crate::le;

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
/// `flags` is 0, `nr_modules` is 1 with an initrd (module `cmdline_paddr` 0) and 0
/// without (then `modlist_paddr` is 0 too); `memmap_paddr` is `base + MEMMAP_OFFSET`.
///
/// Panics never; returns `None` if `block` is shorter than [`block_size`] (or if the
/// addresses would overflow), leaving `block` untouched.
pub fn build(block: &mut [u8], base: u64, params: &Params<'_>) -> Option<()> {
    let n = params.memmap.len();
    let need = n
        .checked_mul(MEMMAP_ENTRY_SIZE)?
        .checked_add(MEMMAP_OFFSET)?;
    let memmap_entries = u32::try_from(n).ok()?;
    let memmap_paddr = base.checked_add(MEMMAP_OFFSET as u64)?;
    let modlist_paddr = base.checked_add(MODLIST_OFFSET as u64)?;
    let block = block.get_mut(..need)?;
    block.fill(0);

    let mut ok = le::put(block, 0, &MAGIC.to_le_bytes());
    ok &= le::put(block, 4, &VERSION.to_le_bytes());
    ok &= le::put(block, 48, &memmap_entries.to_le_bytes());
    ok &= le::put(block, 24, &params.cmdline.to_le_bytes());
    ok &= le::put(block, 32, &params.rsdp.to_le_bytes());
    ok &= le::put(block, 40, &memmap_paddr.to_le_bytes());
    if let Some((paddr, size)) = params.initrd {
        ok &= le::put(block, 12, &1u32.to_le_bytes());
        ok &= le::put(block, 16, &modlist_paddr.to_le_bytes());
        ok &= le::put(block, MODLIST_OFFSET, &paddr.to_le_bytes());
        ok &= le::put(block, MODLIST_OFFSET + 8, &size.to_le_bytes());
    }
    for (i, e) in params.memmap.iter().enumerate() {
        let at = MEMMAP_OFFSET + i * MEMMAP_ENTRY_SIZE;
        ok &= le::put(block, at, &e.addr.to_le_bytes());
        ok &= le::put(block, at + 8, &e.size.to_le_bytes());
        ok &= le::put(block, at + 16, &e.kind.to_le_bytes());
    }
    ok.then_some(())
}

/// `hvm_start_info.version` written by [`build`].
pub const VERSION: u32 = 1;
