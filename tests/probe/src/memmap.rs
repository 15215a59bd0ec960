//! The memory map the firmware handed over (`boot_params.e820_table` or the PVH memmap), and
//! the checks on it: at least two entries (Linux's `append_e820_table` in
//! `arch/x86/kernel/e820.c` ignores shorter maps), no overlaps, a RAM total that matches
//! `-m`, RAM above 4 GiB when `-m` exceeds microvm's 3 GiB of low memory, and the probe's
//! own image inside RAM.

use crate::Fail;

/// e820 type of usable RAM.
pub const RAM: u32 = 1;
/// Most entries the probe keeps (the size of `boot_params.e820_table`).
pub const MAX_ENTRIES: usize = 128;
/// Low memory the firmware may keep out of the RAM total: the EBDA, VGA hole and BIOS
/// area below 1 MiB.
pub const LOW_HOLES: u64 = 1 << 20;
/// microvm puts at most this much RAM below 4 GiB (`microvm_memory_init`).
pub const LOW_RAM_MAX: u64 = 0xc000_0000;
/// Where microvm puts the rest.
pub const FOUR_GIB: u64 = 1 << 32;

/// One memory range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// First byte.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// e820 type ([`RAM`], 2 reserved, 3 ACPI, 4 NVS, ...).
    pub kind: u32,
}

impl Entry {
    /// One past the last byte (saturating).
    pub fn end(&self) -> u64 {
        self.addr.saturating_add(self.size)
    }

    /// Whether `[start, end)` lies inside this entry.
    pub fn contains(&self, start: u64, end: u64) -> bool {
        self.addr <= start && end <= self.end()
    }
}

/// A memory map of at most [`MAX_ENTRIES`] entries, in the order given.
#[derive(Clone, Debug)]
pub struct MemMap {
    entries: [Entry; MAX_ENTRIES],
    len: usize,
}

impl MemMap {
    /// An empty map.
    pub const fn new() -> MemMap {
        MemMap {
            entries: [Entry {
                addr: 0,
                size: 0,
                kind: 0,
            }; MAX_ENTRIES],
            len: 0,
        }
    }

    /// Append `entry`; `None` if the map is full.
    pub fn push(&mut self, entry: Entry) -> Option<()> {
        *self.entries.get_mut(self.len)? = entry;
        self.len += 1;
        Some(())
    }

    /// The entries.
    pub fn entries(&self) -> &[Entry] {
        &self.entries[..self.len]
    }

    /// Total bytes of [`RAM`] entries.
    pub fn ram_bytes(&self) -> u64 {
        self.ram().fold(0u64, |sum, e| sum.saturating_add(e.size))
    }

    /// Whether `[start, end)` lies inside one RAM entry.
    pub fn ram_contains(&self, start: u64, end: u64) -> bool {
        self.ram().any(|e| e.contains(start, end))
    }

    /// Whether any byte of `[start, end)` is RAM.
    pub fn ram_overlaps(&self, start: u64, end: u64) -> bool {
        self.ram().any(|e| e.addr < end && start < e.end())
    }

    fn ram(&self) -> impl Iterator<Item = &Entry> {
        self.entries().iter().filter(|e| e.kind == RAM)
    }

    /// Check the map: 2..=128 entries, no overlaps, the probe image `[image_start,
    /// image_end)` in RAM, and if `mem` (the machine's RAM) is known, a RAM total in
    /// `[mem - 1 MiB, mem]` and RAM above 4 GiB when `mem` exceeds 3 GiB.
    pub fn check(&self, mem: Option<u64>, image_start: u64, image_end: u64) -> Result<(), Fail> {
        if self.len < 2 {
            return Err(Fail::MapEntries {
                count: self.len as u64,
            });
        }
        let entries = self.entries();
        for (i, a) in entries.iter().enumerate() {
            for b in &entries[i + 1..] {
                if a.size != 0 && b.size != 0 && a.addr < b.end() && b.addr < a.end() {
                    return Err(Fail::MapOverlap {
                        a: a.addr,
                        b: b.addr,
                    });
                }
            }
        }
        if !self.ram_contains(image_start, image_end) {
            return Err(Fail::NotInRam {
                start: image_start,
                end: image_end,
            });
        }
        let Some(mem) = mem else {
            return Ok(());
        };
        let found = self.ram_bytes();
        if found > mem || found.saturating_add(LOW_HOLES) < mem {
            return Err(Fail::RamTotal {
                found,
                expected: mem,
            });
        }
        if mem > LOW_RAM_MAX && !self.ram().any(|e| e.end() > FOUR_GIB) {
            return Err(Fail::NoHighRam { expected: mem });
        }
        Ok(())
    }
}

impl Default for MemMap {
    fn default() -> MemMap {
        MemMap::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn map(entries: &[(u64, u64, u32)]) -> MemMap {
        let mut m = MemMap::new();
        for &(addr, size, kind) in entries {
            m.push(Entry { addr, size, kind }).unwrap();
        }
        m
    }

    /// What qboot hands over for -m 128M.
    fn qboot_128m() -> MemMap {
        map(&[
            (0, 0x9fc00, 1),
            (0x9fc00, 0x400, 2),
            (0xd0000, 0x20000, 4),
            (0xf0000, 0x10000, 2),
            (MIB, 127 * MIB, 1),
        ])
    }

    #[test]
    fn accepts_qboot_layout() {
        let m = qboot_128m();
        m.check(Some(128 * MIB), MIB, MIB + 0x8000).unwrap();
        m.check(None, MIB, MIB + 0x8000).unwrap();
        assert_eq!(m.ram_bytes(), 128 * MIB - 0x60400);
    }

    #[test]
    fn rejects_single_entry() {
        let m = map(&[(0, 128 * MIB, 1)]);
        assert_eq!(
            m.check(None, MIB, 2 * MIB),
            Err(Fail::MapEntries { count: 1 })
        );
    }

    #[test]
    fn rejects_wrong_total_and_overlap() {
        let m = qboot_128m();
        assert!(matches!(
            m.check(Some(256 * MIB), MIB, 2 * MIB),
            Err(Fail::RamTotal { .. })
        ));
        assert!(matches!(
            m.check(Some(127 * MIB), MIB, 2 * MIB),
            Err(Fail::RamTotal { .. })
        ));
        let m = map(&[(0, 0xa0000, 1), (0x9f000, 0x1000, 2), (MIB, MIB, 1)]);
        assert_eq!(
            m.check(None, MIB, MIB + 1),
            Err(Fail::MapOverlap { a: 0, b: 0x9f000 })
        );
    }

    #[test]
    fn needs_high_ram_above_3g() {
        let low = map(&[(0, 0x9fc00, 1), (MIB, LOW_RAM_MAX - MIB, 1)]);
        let four_g = 4 << 30;
        assert_eq!(
            low.check(Some(LOW_RAM_MAX), MIB, 2 * MIB),
            Ok(()),
            "exactly 3 GiB needs no high RAM"
        );
        assert!(low.check(Some(four_g), MIB, 2 * MIB).is_err());
        let both = map(&[
            (0, 0x9fc00, 1),
            (MIB, LOW_RAM_MAX - MIB, 1),
            (FOUR_GIB, 1 << 30, 1),
        ]);
        both.check(Some(four_g), MIB, 2 * MIB).unwrap();
    }

    #[test]
    fn image_must_be_in_ram() {
        let m = qboot_128m();
        assert_eq!(
            m.check(None, 0xf0000, 0xf1000),
            Err(Fail::NotInRam {
                start: 0xf0000,
                end: 0xf1000
            })
        );
        assert!(m.ram_overlaps(0, 1));
        assert!(!m.ram_overlaps(0xf0000, 0x100000));
    }
}
