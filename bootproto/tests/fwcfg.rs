//! fw_cfg directory entries and name matching.

use bootproto::fwcfg::{dma, entry_has_name, same_name, FileEntry, DIR_ENTRY_SIZE, NAME_LEN};

fn raw(size: u32, select: u16, name: &[u8]) -> [u8; DIR_ENTRY_SIZE] {
    let mut r = [0u8; DIR_ENTRY_SIZE];
    r[..4].copy_from_slice(&size.to_be_bytes());
    r[4..6].copy_from_slice(&select.to_be_bytes());
    r[8..8 + name.len()].copy_from_slice(name);
    r
}

#[test]
fn parse_is_big_endian_and_name_stops_at_nul() {
    let e = FileEntry::parse(&raw(0x0102_0304, 0x0a0b, b"etc/e820"));
    assert_eq!((e.size, e.select), (0x0102_0304, 0x0a0b));
    assert_eq!(e.name(), b"etc/e820");
}

#[test]
fn names_match_exactly() {
    assert!(same_name(b"etc/acpi/rsdp", b"etc/acpi/rsdp"));
    assert!(!same_name(b"etc/acpi/rsdp", b"etc/acpi/tables"));
    assert!(!same_name(b"etc/acpi/rsdq", b"etc/acpi/rsdp"));
    assert!(same_name(b"", b""));
    let r = raw(20, 0x20, b"etc/e820");
    assert!(entry_has_name(&r, b"etc/e820"));
    assert!(!entry_has_name(&r, b"etc/e82"), "a prefix is not a match");
    assert!(!entry_has_name(&r, b"etc/e8200"));
    assert!(!entry_has_name(&r, b""));
    let full = [b'x'; NAME_LEN];
    let r = raw(1, 1, &full);
    assert!(entry_has_name(&r, &full), "a name may fill all 56 bytes");
    assert!(!entry_has_name(&r, &[b'x'; NAME_LEN + 1]));
}

#[test]
fn select_read_control_word() {
    assert_eq!(dma::select_read(0x19), 0x0019_000a);
}
