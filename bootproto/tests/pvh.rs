//! `pvh::build`: `hvm_start_info` v1 decoded field by field.

use bootproto::e820::{self, Entry};
use bootproto::pvh::*;

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

fn memmap() -> Vec<Entry> {
    let etc = [
        Entry {
            addr: 0,
            size: 0xc000_0000,
            kind: e820::RAM,
        },
        Entry {
            addr: 0x1_0000_0000,
            size: 0x4000_0000,
            kind: e820::RAM,
        },
    ];
    let raw: Vec<u8> = etc.iter().flat_map(|e| e.to_bytes()).collect();
    e820::Map::from_etc_e820(&raw).unwrap().entries().to_vec()
}

#[test]
fn build_with_initrd() {
    let map = memmap();
    let base = 0x7000;
    let mut block = vec![0xeeu8; block_size(map.len()) + 16];
    let params = Params {
        cmdline: 0x2_0000,
        initrd: Some((0x1ffb_4000, 0x4_c000)),
        rsdp: 0xe_0010,
        memmap: &map,
    };
    assert_eq!(build(&mut block, base, &params), Some(()));
    let b = &block;
    assert_eq!(u32_at(b, 0), MAGIC);
    assert_eq!(u32_at(b, 0), 0x336e_c578);
    assert_eq!(u32_at(b, 4), 1); // version
    assert_eq!(u32_at(b, 8), 0); // flags
    assert_eq!(u32_at(b, 12), 1); // nr_modules
    assert_eq!(u64_at(b, 16), base + MODLIST_OFFSET as u64);
    assert_eq!(u64_at(b, 24), 0x2_0000);
    assert_eq!(u64_at(b, 32), 0xe_0010);
    assert_eq!(u64_at(b, 40), base + MEMMAP_OFFSET as u64);
    assert_eq!(u32_at(b, 48) as usize, map.len());
    assert_eq!(u32_at(b, 52), 0); // reserved
    assert!(b[START_INFO_SIZE..MODLIST_OFFSET].iter().all(|&x| x == 0));
    // Module 0.
    let m = MODLIST_OFFSET;
    assert_eq!(u64_at(b, m), 0x1ffb_4000);
    assert_eq!(u64_at(b, m + 8), 0x4_c000);
    assert_eq!(u64_at(b, m + 16), 0); // cmdline_paddr
    assert_eq!(u64_at(b, m + 24), 0); // reserved
    assert!(b[m + MODULE_SIZE..MEMMAP_OFFSET].iter().all(|&x| x == 0));
    // The memory map.
    for (i, e) in map.iter().enumerate() {
        let at = MEMMAP_OFFSET + i * MEMMAP_ENTRY_SIZE;
        assert_eq!(u64_at(b, at), e.addr);
        assert_eq!(u64_at(b, at + 8), e.size);
        assert_eq!(u32_at(b, at + 16), e.kind);
        assert_eq!(u32_at(b, at + 20), 0);
    }
    // Bytes past the block are untouched.
    assert!(b[block_size(map.len())..].iter().all(|&x| x == 0xee));
}

#[test]
fn build_without_initrd_or_map() {
    let mut block = vec![0xeeu8; block_size(0)];
    let params = Params {
        cmdline: 0,
        initrd: None,
        rsdp: 0,
        memmap: &[],
    };
    assert_eq!(build(&mut block, 0x7000, &params), Some(()));
    assert_eq!(u32_at(&block, 0), MAGIC);
    assert_eq!(u32_at(&block, 4), 1);
    assert_eq!(u32_at(&block, 12), 0); // nr_modules
    assert_eq!(u64_at(&block, 16), 0); // modlist_paddr
    assert_eq!(u64_at(&block, 24), 0);
    assert_eq!(u64_at(&block, 32), 0);
    assert_eq!(u64_at(&block, 40), 0x7000 + MEMMAP_OFFSET as u64);
    assert_eq!(u32_at(&block, 48), 0);
    assert!(block[52..].iter().all(|&x| x == 0));
}

#[test]
fn short_block_is_none_and_untouched() {
    let map = memmap();
    let params = Params {
        cmdline: 1,
        initrd: Some((2, 3)),
        rsdp: 4,
        memmap: &map,
    };
    let mut block = vec![0xeeu8; block_size(map.len()) - 1];
    assert_eq!(build(&mut block, 0x7000, &params), None);
    assert!(block.iter().all(|&x| x == 0xee));
    assert_eq!(build(&mut [], 0x7000, &params), None);
    // Addresses that would wrap.
    let mut block = vec![0u8; block_size(map.len())];
    assert_eq!(build(&mut block, u64::MAX - 64, &params), None);
}

#[test]
fn block_layout() {
    assert_eq!(block_size(0), 128);
    assert_eq!(block_size(128), 128 + 128 * 24);
    const { assert!(START_INFO_SIZE <= MODLIST_OFFSET) };
    const { assert!(MODLIST_OFFSET + MODULE_SIZE <= MEMMAP_OFFSET) };
    // A full e820 map fits in the boot-info page.
    assert!(block_size(e820::MAX_ENTRIES) <= 4096);
}

/// The layout constants against `linux-loader`'s bindgen `start_info.h`.
#[test]
fn layout_matches_linux_loader() {
    use core::mem::{offset_of, size_of};
    use linux_loader::loader::elf::start_info::{
        hvm_memmap_table_entry as mm, hvm_modlist_entry as md, hvm_start_info as si,
    };
    assert_eq!(size_of::<si>(), START_INFO_SIZE);
    assert_eq!(size_of::<md>(), MODULE_SIZE);
    assert_eq!(size_of::<mm>(), MEMMAP_ENTRY_SIZE);
    let fields = [
        (offset_of!(si, magic), 0),
        (offset_of!(si, version), 4),
        (offset_of!(si, flags), 8),
        (offset_of!(si, nr_modules), 12),
        (offset_of!(si, modlist_paddr), 16),
        (offset_of!(si, cmdline_paddr), 24),
        (offset_of!(si, rsdp_paddr), 32),
        (offset_of!(si, memmap_paddr), 40),
        (offset_of!(si, memmap_entries), 48),
        (offset_of!(si, reserved), 52),
        (offset_of!(md, paddr), 0),
        (offset_of!(md, size), 8),
        (offset_of!(md, cmdline_paddr), 16),
        (offset_of!(mm, addr), 0),
        (offset_of!(mm, size), 8),
        (offset_of!(mm, type_), 16),
        (offset_of!(mm, reserved), 20),
    ];
    for (i, (got, want)) in fields.iter().enumerate() {
        assert_eq!(got, want, "field {i}");
    }
}
