//! The firmware's identity map, checked by walking the page tables CR3 points to at the
//! 64-bit entry (4-level paging, Intel SDM vol. 3A §4.5): every RAM range of the memory
//! map, and all of 0..4 GiB, must translate to itself.

use crate::fail::Fail;
use crate::memmap::{MemMap, FOUR_GIB, RAM};
use crate::Memory;

const PRESENT: u64 = 1;
const HUGE: u64 = 1 << 7;
const ADDR: u64 = 0x000f_ffff_ffff_f000;

fn entry<M: Memory>(mem: &M, table: u64, index: u64) -> Option<u64> {
    let raw = mem.read((table & ADDR) + index * 8, 8)?;
    let e = u64::from_le_bytes(raw.try_into().ok()?);
    (e & PRESENT != 0).then_some(e)
}

/// The physical address `va` maps to under `cr3`, or `None` if it is not mapped (or a
/// table is unreadable).
pub fn translate<M: Memory>(mem: &M, cr3: u64, va: u64) -> Option<u64> {
    let pml4e = entry(mem, cr3, (va >> 39) & 0x1ff)?;
    let pdpte = entry(mem, pml4e, (va >> 30) & 0x1ff)?;
    if pdpte & HUGE != 0 {
        return Some((pdpte & ADDR & !0x3fff_ffff) | (va & 0x3fff_ffff));
    }
    let pde = entry(mem, pdpte, (va >> 21) & 0x1ff)?;
    if pde & HUGE != 0 {
        return Some((pde & ADDR & !0x1f_ffff) | (va & 0x1f_ffff));
    }
    let pte = entry(mem, pde, (va >> 12) & 0x1ff)?;
    Some((pte & ADDR) | (va & 0xfff))
}

/// Check that 0..4 GiB and every RAM entry's first and last byte are identity-mapped.
pub fn check_identity<M: Memory>(mem: &M, cr3: u64, map: &MemMap) -> Result<(), Fail> {
    let ram = map.entries().iter().filter(|e| e.kind == RAM && e.size > 0);
    let probes = [0, FOUR_GIB / 2, FOUR_GIB - 1]
        .into_iter()
        .chain(ram.flat_map(|e| [e.addr, e.end() - 1]));
    for va in probes {
        let pa = translate(mem, cr3, va);
        if pa != Some(va) {
            return Err(Fail::NotIdentity {
                va,
                pa: pa.unwrap_or(u64::MAX),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memmap::Entry;
    use std::vec::Vec;

    /// Physical memory as a sparse list of 4 KiB pages.
    struct Pages(Vec<(u64, [u8; 4096])>);

    impl Pages {
        fn set(&mut self, table: u64, index: u64, value: u64) {
            let page = match self.0.iter_mut().find(|(a, _)| *a == table) {
                Some((_, p)) => p,
                None => {
                    self.0.push((table, [0; 4096]));
                    &mut self.0.last_mut().unwrap().1
                }
            };
            let at = (index * 8) as usize;
            page[at..at + 8].copy_from_slice(&value.to_le_bytes());
        }
    }

    impl Memory for Pages {
        fn read(&self, addr: u64, len: usize) -> Option<&[u8]> {
            let (base, page) = self.0.iter().find(|(a, _)| addr & !0xfff == *a)?;
            let off = (addr - base) as usize;
            page.get(off..off + len)
        }
    }

    /// 0..4 GiB with 2 MiB pages, plus `[4, 4 + high) GiB` with 1 GiB pages.
    fn tables(high_gib: u64, shift_last: bool) -> Pages {
        let mut m = Pages(Vec::new());
        m.set(0x1000, 0, 0x2000 | 3);
        for g in 0..4 {
            m.set(0x2000, g, (0x3000 + g * 0x1000) | 3);
            for i in 0..512 {
                m.set(0x3000 + g * 0x1000, i, ((g << 30) + (i << 21)) | 0x83);
            }
        }
        for g in 4..4 + high_gib {
            let target = if shift_last && g == 3 + high_gib {
                g + 1
            } else {
                g
            };
            m.set(0x2000, g, (target << 30) | 0x83);
        }
        m
    }

    fn map(entries: &[(u64, u64)]) -> MemMap {
        let mut m = MemMap::new();
        for &(addr, size) in entries {
            m.push(Entry {
                addr,
                size,
                kind: RAM,
            })
            .unwrap();
        }
        m
    }

    #[test]
    fn walks_2m_and_1g_pages() {
        let m = tables(2, false);
        assert_eq!(translate(&m, 0x1000, 0x1234_5678), Some(0x1234_5678));
        assert_eq!(translate(&m, 0x1000, (5 << 30) + 7), Some((5 << 30) + 7));
        assert_eq!(translate(&m, 0x1000, 6 << 30), None);
    }

    #[test]
    fn identity_check_covers_ram_above_4g() {
        let ram = map(&[(0, 0x9fc00), (1 << 20, 0xbff0_0000), (4 << 30, 2 << 30)]);
        assert_eq!(check_identity(&tables(2, false), 0x1000, &ram), Ok(()));
        let short = tables(1, false);
        assert_eq!(
            check_identity(&short, 0x1000, &ram),
            Err(Fail::NotIdentity {
                va: (6 << 30) - 1,
                pa: u64::MAX
            })
        );
        let shifted = tables(2, true);
        assert_eq!(
            check_identity(&shifted, 0x1000, &ram),
            Err(Fail::NotIdentity {
                va: (6 << 30) - 1,
                pa: (7 << 30) - 1
            })
        );
    }
}
