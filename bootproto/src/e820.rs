//! The e820 memory map: parsed from QEMU's `etc/e820`, completed with the low-memory
//! layout (see [`crate::layout`]), and handed to Linux (`boot_params.e820_table`) or to a
//! PVH kernel (`hvm_start_info.memmap`).
//!
//! Linux ignores a map with fewer than two entries (`append_e820_table` in
//! `arch/x86/kernel/e820.c`), and microvm's `etc/e820` has a single entry when RAM is at
//! most 3 GiB, so the low-memory entries are not optional.

use crate::BootError;

/// Usable RAM.
pub const RAM: u32 = 1;
/// Reserved.
pub const RESERVED: u32 = 2;
/// ACPI reclaimable.
pub const ACPI: u32 = 3;
/// ACPI non-volatile storage.
pub const NVS: u32 = 4;

/// Most entries a map holds (the size of `boot_params.e820_table`).
pub const MAX_ENTRIES: usize = 128;
/// Size of one `etc/e820` / `boot_params` entry: `{u64 addr, u64 size, u32 type}`, packed.
pub const ENTRY_SIZE: usize = 20;

/// One memory range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// First byte.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// [`RAM`], [`RESERVED`], [`ACPI`] or [`NVS`].
    pub kind: u32,
}

impl Entry {
    /// One past the last byte (saturating).
    pub fn end(&self) -> u64 {
        self.addr.saturating_add(self.size)
    }

    /// The packed 20-byte little-endian form used by `etc/e820` and `boot_params`.
    pub fn to_bytes(&self) -> [u8; ENTRY_SIZE] {
        todo!()
    }

    /// Decode one packed 20-byte entry.
    pub fn from_bytes(raw: &[u8; ENTRY_SIZE]) -> Entry {
        todo!()
    }
}

/// A memory map of at most [`MAX_ENTRIES`] entries, sorted by address.
#[derive(Clone, Debug)]
pub struct Map {
    entries: [Entry; MAX_ENTRIES],
    len: usize,
}

impl Map {
    /// Build the map for the guest from the raw contents of `etc/e820`.
    ///
    /// The result, sorted and non-overlapping, is:
    /// - `[0, EBDA)` RAM, `[EBDA, LOW_RAM_END)` reserved;
    /// - `[ACPI_START, FIRMWARE_START)` reserved (ACPI tables and the firmware stack);
    /// - `[FIRMWARE_START, HIGH_MEMORY)` reserved (the firmware image);
    /// - every RAM entry of `etc/e820`, with any part below 1 MiB cut off (so the RAM
    ///   entry that starts at 0 becomes `[1 MiB, end)`), plus every non-RAM entry of
    ///   `etc/e820` unchanged.
    ///
    /// Errors: [`BootError::NoE820`] if `etc_e820` holds no RAM entry or its length is
    /// not a multiple of 20; [`BootError::E820Overflow`] past 128 entries.
    pub fn from_etc_e820(etc_e820: &[u8]) -> Result<Map, BootError> {
        todo!()
    }

    /// The entries, sorted by address.
    pub fn entries(&self) -> &[Entry] {
        &self.entries[..self.len]
    }

    /// End of the RAM that starts at 1 MiB and lies below 4 GiB ("lowmem"), i.e. where
    /// QEMU's initrd may end. 0 if there is none.
    pub fn low_ram_end(&self) -> u64 {
        todo!()
    }

    /// One past the highest RAM byte (for the identity map above 4 GiB).
    pub fn ram_top(&self) -> u64 {
        todo!()
    }

    /// Total bytes of [`RAM`] entries.
    pub fn ram_bytes(&self) -> u64 {
        todo!()
    }
}
