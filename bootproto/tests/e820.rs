//! `e820::Map::from_etc_e820` and the entry codec.

use bootproto::e820::{Entry, Map, ACPI, ENTRY_SIZE, MAP_CAPACITY, NVS, RAM, RESERVED};
use bootproto::BootError;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn e(addr: u64, size: u64, kind: u32) -> Entry {
    Entry { addr, size, kind }
}

fn etc(entries: &[Entry]) -> Vec<u8> {
    entries.iter().flat_map(|e| e.to_bytes()).collect()
}

/// The fixed low-memory part every map starts with.
fn low() -> Vec<Entry> {
    vec![
        e(0, 0x9fc00, RAM),
        e(0x9fc00, 0x400, RESERVED),
        e(0xe0000, 0x10000, RESERVED),
        e(0xf0000, 0x10000, RESERVED),
    ]
}

fn assert_sorted_disjoint(m: &Map) {
    for x in m.entries() {
        assert!(x.size > 0, "empty entry {x:?}");
    }
    for w in m.entries().windows(2) {
        assert!(w[0].end() <= w[1].addr, "{:?} overlaps {:?}", w[0], w[1]);
    }
}

#[test]
fn entry_bytes_round_trip() {
    let x = e(0x1122_3344_5566_7788, 0x99aa_bbcc_ddee_ff00, 0x0403_0201);
    let raw = x.to_bytes();
    assert_eq!(raw.len(), ENTRY_SIZE);
    assert_eq!(raw[..8], 0x1122_3344_5566_7788u64.to_le_bytes());
    assert_eq!(raw[8..16], 0x99aa_bbcc_ddee_ff00u64.to_le_bytes());
    assert_eq!(raw[16..], [1, 2, 3, 4]);
    assert_eq!(Entry::from_bytes(&raw), x);
    let mut raw = [0u8; ENTRY_SIZE];
    raw[0] = 0x10;
    raw[9] = 0x20;
    raw[16] = 2;
    assert_eq!(Entry::from_bytes(&raw), e(0x10, 0x2000, RESERVED));
    assert_eq!(Entry::from_bytes(&raw).to_bytes(), raw);
    assert_eq!(e(u64::MAX - 1, 5, RAM).end(), u64::MAX);
}

#[test]
fn one_entry_up_to_3_gib() {
    // microvm -m 512M: [0, 512 MiB) RAM.
    let m = Map::from_etc_e820(&etc(&[e(0, 512 * MIB, RAM)])).unwrap();
    let mut want = low();
    want.push(e(MIB, 511 * MIB, RAM));
    assert_eq!(m.entries(), &want[..]);
    assert_sorted_disjoint(&m);
    assert_eq!(m.low_ram_end(), 512 * MIB);
    assert_eq!(m.ram_top(), 512 * MIB);
    assert_eq!(m.ram_bytes(), 0x9fc00 + 511 * MIB);
}

#[test]
fn ram_above_4_gib() {
    // microvm -m 4G: [0, 3 GiB) and [4 GiB, 5 GiB).
    let raw = etc(&[e(0, 3 * GIB, RAM), e(4 * GIB, GIB, RAM)]);
    let m = Map::from_etc_e820(&raw).unwrap();
    let mut want = low();
    want.push(e(MIB, 3 * GIB - MIB, RAM));
    want.push(e(4 * GIB, GIB, RAM));
    assert_eq!(m.entries(), &want[..]);
    assert_eq!(m.low_ram_end(), 3 * GIB);
    assert_eq!(m.ram_top(), 5 * GIB);
    assert_eq!(m.ram_bytes(), 0x9fc00 + 4 * GIB - MIB);
    // The same map listed high entry first comes out sorted.
    let raw = etc(&[e(4 * GIB, GIB, RAM), e(0, 3 * GIB, RAM)]);
    assert_eq!(Map::from_etc_e820(&raw).unwrap().entries(), &want[..]);
}

#[test]
fn low_ram_end_is_capped_at_4_gib() {
    let m = Map::from_etc_e820(&etc(&[e(0, 6 * GIB, RAM)])).unwrap();
    assert_eq!(m.low_ram_end(), 4 * GIB);
    assert_eq!(m.ram_top(), 6 * GIB);
    // No RAM starting at 1 MiB: no lowmem.
    let m = Map::from_etc_e820(&etc(&[e(16 * MIB, 16 * MIB, RAM)])).unwrap();
    assert_eq!(m.low_ram_end(), 0);
    assert_eq!(m.ram_top(), 32 * MIB);
}

#[test]
fn non_ram_entries_pass_through() {
    let raw = etc(&[
        e(0, 256 * MIB, RAM),
        e(0xfeff_c000, 0x4000, RESERVED),
        e(0x1000_0000, 0x1000, ACPI),
        e(0x2000_0000, 0x2000, NVS),
        e(0x3000_0000, 0x1000, 7), // unknown types too
    ]);
    let m = Map::from_etc_e820(&raw).unwrap();
    let mut want = low();
    want.extend([
        e(MIB, 255 * MIB, RAM),
        e(0x1000_0000, 0x1000, ACPI),
        e(0x2000_0000, 0x2000, NVS),
        e(0x3000_0000, 0x1000, 7),
        e(0xfeff_c000, 0x4000, RESERVED),
    ]);
    assert_eq!(m.entries(), &want[..]);
    assert_eq!(m.ram_bytes(), 0x9fc00 + 255 * MIB);
}

#[test]
fn low_mib_is_the_firmwares_and_the_rest_passes_through_sorted() {
    let raw = etc(&[
        e(32 * MIB, 64 * MIB, RAM), // out of order, overlapping: passed on as is
        e(0, 64 * MIB, RAM),        // cut at 1 MiB
        e(2 * MIB, MIB, RESERVED),  // a hole inside RAM: Linux sanitizes
        e(0x9f000, 0x2000, ACPI),   // below 1 MiB: dropped
        e(0xe8000, 0x20_0000, NVS), // straddles 1 MiB: the part above stays
        e(0xa0000, 0, RESERVED),    // empty: dropped
    ]);
    let m = Map::from_etc_e820(&raw).unwrap();
    let mut want = low();
    want.extend([
        e(MIB, 63 * MIB, RAM),
        e(MIB, 0xe8000 + 0x20_0000 - MIB, NVS),
        e(2 * MIB, MIB, RESERVED),
        e(32 * MIB, 64 * MIB, RAM),
    ]);
    assert_eq!(m.entries(), &want[..]);
    assert!(m.entries().windows(2).all(|w| w[0].addr <= w[1].addr));
    assert_eq!(m.low_ram_end(), 64 * MIB);
    assert_eq!(m.ram_top(), 96 * MIB);
}

#[test]
fn wrapping_entry_is_clamped() {
    let raw = etc(&[e(0, 8 * MIB, RAM), e(u64::MAX - 0xfff, 0x10_0000, RESERVED)]);
    let m = Map::from_etc_e820(&raw).unwrap();
    assert_sorted_disjoint(&m);
    assert_eq!(
        m.entries().last(),
        Some(&e(u64::MAX - 0xfff, 0xfff, RESERVED))
    );
}

#[test]
fn malformed_lengths() {
    let one = etc(&[e(0, 512 * MIB, RAM)]);
    for len in [1, 19, 21, 39] {
        let mut raw = one.clone();
        raw.resize(len, 0);
        assert_eq!(
            Map::from_etc_e820(&raw).unwrap_err(),
            BootError::NoE820,
            "len {len}"
        );
    }
    let mut raw = one.clone();
    raw.push(0);
    assert_eq!(Map::from_etc_e820(&raw).unwrap_err(), BootError::NoE820);
}

#[test]
fn no_ram_is_no_e820() {
    for raw in [
        vec![],
        etc(&[e(0xfeff_c000, 0x4000, RESERVED)]),
        etc(&[e(0, 0x80000, RAM)]),  // RAM below 1 MiB only
        etc(&[e(16 * MIB, 0, RAM)]), // empty RAM
    ] {
        assert_eq!(Map::from_etc_e820(&raw).unwrap_err(), BootError::NoE820);
    }
}

#[test]
fn overflow_past_map_capacity() {
    let ram = |i: u64| e(GIB + 2 * i * MIB, MIB, RAM);
    let fits: Vec<Entry> = (0..(MAP_CAPACITY - 4) as u64).map(ram).collect();
    let m = Map::from_etc_e820(&etc(&fits)).unwrap();
    assert_eq!(m.entries().len(), MAP_CAPACITY);
    assert_sorted_disjoint(&m);
    let over: Vec<Entry> = (0..(MAP_CAPACITY - 3) as u64).map(ram).collect();
    assert_eq!(
        Map::from_etc_e820(&etc(&over)).unwrap_err(),
        BootError::E820Overflow
    );
    // Few input entries that split into too many pieces.
    let mut split = vec![e(0, 4 * GIB, RAM)];
    split.extend((0..100).map(|i| e(GIB + 4 * i * MIB, MIB, RESERVED)));
    assert_eq!(
        Map::from_etc_e820(&etc(&split)).unwrap_err(),
        BootError::E820Overflow
    );
}
