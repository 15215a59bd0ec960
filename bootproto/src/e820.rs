//! The e820 memory map: parsed from QEMU's `etc/e820`, completed with the low-memory
//! layout (see [`crate::layout`]), and handed to Linux (`boot_params.e820_table`) or to a
//! PVH kernel (`hvm_start_info.memmap`).
//!
//! Linux ignores a map with fewer than two entries (`append_e820_table` in
//! `arch/x86/kernel/e820.c`), and microvm's `etc/e820` has a single entry when RAM is at
//! most 3 GiB, so the low-memory entries are not optional.

use crate::layout::{ACPI_START, EBDA, FIRMWARE_START, FOUR_GIB, HIGH_MEMORY, LOW_RAM_END};
use crate::le;
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
/// Most entries a [`Map`] holds. QEMU's `etc/e820` has one or two RAM entries plus any
/// reservations, and the firmware adds four: 32 leaves ample room while keeping the map
/// (which the firmware builds and moves on its small stack) under 1 KiB.
pub const MAP_CAPACITY: usize = 32;
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
        let mut out = [0u8; ENTRY_SIZE];
        le::put(&mut out, 0, &self.addr.to_le_bytes());
        le::put(&mut out, 8, &self.size.to_le_bytes());
        le::put(&mut out, 16, &self.kind.to_le_bytes());
        out
    }

    /// Decode one packed 20-byte entry.
    pub fn from_bytes(raw: &[u8; ENTRY_SIZE]) -> Entry {
        Entry {
            addr: le::u64_at(raw, 0).unwrap_or(0),
            size: le::u64_at(raw, 8).unwrap_or(0),
            kind: le::u32_at(raw, 16).unwrap_or(0),
        }
    }
}

/// A memory map of at most [`MAP_CAPACITY`] entries, sorted by address.
#[derive(Clone, Debug)]
pub struct Map {
    entries: [Entry; MAP_CAPACITY],
    len: usize,
}

impl Map {
    /// Build the map for the guest from the raw contents of `etc/e820`.
    ///
    /// The result, sorted by address, is:
    /// - `[0, EBDA)` RAM, `[EBDA, LOW_RAM_END)` reserved;
    /// - `[ACPI_START, FIRMWARE_START)` reserved (ACPI tables and the firmware stack);
    /// - `[FIRMWARE_START, HIGH_MEMORY)` reserved (the firmware image);
    /// - every entry of `etc/e820` with any part below 1 MiB cut off (the firmware alone
    ///   describes the first MiB, so the RAM entry that starts at 0 becomes
    ///   `[1 MiB, end)`).
    ///
    /// Entries are not merged, and overlaps among QEMU's own entries (QEMU never produces
    /// them) are passed on as they are: Linux sanitizes the map it is given, the larger
    /// type winning. Empty entries are dropped, and an entry that would wrap past 2^64
    /// ends at `u64::MAX`.
    ///
    /// Errors: [`BootError::NoE820`] if `etc_e820` holds no RAM entry (above 1 MiB) or
    /// its length is not a multiple of 20; [`BootError::E820Overflow`] past
    /// [`MAP_CAPACITY`] entries.
    pub fn from_etc_e820(etc_e820: &[u8]) -> Result<Map, BootError> {
        if !etc_e820.len().is_multiple_of(ENTRY_SIZE) {
            return Err(BootError::NoE820);
        }
        let mut map = Map::empty();
        for fixed in [
            (0, EBDA, RAM),
            (EBDA, LOW_RAM_END, RESERVED),
            (ACPI_START, FIRMWARE_START, RESERVED),
            (FIRMWARE_START, HIGH_MEMORY, RESERVED),
        ] {
            map.push(span(fixed.0, fixed.1, fixed.2))?;
        }
        let mut have_ram = false;
        for raw in etc_e820.chunks_exact(ENTRY_SIZE) {
            let Some(raw) = le::array_at::<ENTRY_SIZE>(raw, 0) else {
                continue;
            };
            let e = Entry::from_bytes(&raw);
            let e = span(e.addr.max(HIGH_MEMORY), e.end(), e.kind);
            if e.size == 0 {
                continue;
            }
            have_ram |= e.kind == RAM;
            map.insert_sorted(e)?;
        }
        if !have_ram {
            return Err(BootError::NoE820);
        }
        Ok(map)
    }

    /// An empty map.
    const fn empty() -> Map {
        Map {
            entries: [Entry {
                addr: 0,
                size: 0,
                kind: 0,
            }; MAP_CAPACITY],
            len: 0,
        }
    }

    /// Append `e`, or fail with [`BootError::E820Overflow`] when full.
    fn push(&mut self, e: Entry) -> Result<(), BootError> {
        let slot = self
            .entries
            .get_mut(self.len)
            .ok_or(BootError::E820Overflow)?;
        *slot = e;
        self.len += 1;
        Ok(())
    }

    /// Insert `e` after every entry that starts at or below it (a stable insertion sort:
    /// maps are a handful of entries long).
    fn insert_sorted(&mut self, e: Entry) -> Result<(), BootError> {
        self.push(e)?;
        let mut i = self.len - 1;
        while i > 0 && self.entries[i - 1].addr > e.addr {
            self.entries.swap(i - 1, i);
            i -= 1;
        }
        Ok(())
    }

    /// The entries, sorted by address.
    pub fn entries(&self) -> &[Entry] {
        &self.entries[..self.len]
    }

    /// End of the RAM that starts at 1 MiB and lies below 4 GiB ("lowmem"), i.e. where
    /// QEMU's initrd may end. 0 if there is none.
    pub fn low_ram_end(&self) -> u64 {
        self.entries()
            .iter()
            .find(|e| e.kind == RAM && e.addr == HIGH_MEMORY)
            .map_or(0, |e| e.end().min(FOUR_GIB))
    }

    /// One past the highest RAM byte (for the identity map above 4 GiB).
    pub fn ram_top(&self) -> u64 {
        self.entries()
            .iter()
            .filter(|e| e.kind == RAM)
            .map(Entry::end)
            .max()
            .unwrap_or(0)
    }

    /// Total bytes of [`RAM`] entries.
    pub fn ram_bytes(&self) -> u64 {
        self.entries()
            .iter()
            .filter(|e| e.kind == RAM)
            .fold(0u64, |sum, e| sum.saturating_add(e.size))
    }
}

/// The entry covering `[start, end)` (empty if `end <= start`).
const fn span(start: u64, end: u64, kind: u32) -> Entry {
    Entry {
        addr: start,
        size: end.saturating_sub(start),
        kind,
    }
}
