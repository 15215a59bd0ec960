//! The parsers against real fw_cfg files captured from QEMU 7.2 `-M microvm`
//! (see `testdata/microvm-qemu7.2/README.md` for how they were captured).

mod common;

use std::collections::BTreeSet;

use bootproto::e820::{Entry, Map, RAM, RESERVED};
use bootproto::layout::{ACPI_END, ACPI_START};
use bootproto::loader::{execute, Zone};
use bootproto::BootError;
use common::{sum8, FakeFwCfg, FakeMem};

const TABLE_LOADER: &[u8] = include_bytes!("../testdata/microvm-qemu7.2/etc_table-loader");
const TABLES: &[u8] = include_bytes!("../testdata/microvm-qemu7.2/etc_acpi_tables");
const RSDP: &[u8] = include_bytes!("../testdata/microvm-qemu7.2/etc_acpi_rsdp");
const E820_512M: &[u8] = include_bytes!("../testdata/microvm-qemu7.2/etc_e820");
const E820_4G: &[u8] = include_bytes!("../testdata/microvm-qemu7.2/etc_e820-4G");

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn e(addr: u64, size: u64, kind: u32) -> Entry {
    Entry { addr, size, kind }
}

fn low() -> Vec<Entry> {
    vec![
        e(0, 0x9fc00, RAM),
        e(0x9fc00, 0x400, RESERVED),
        e(0xe0000, 0x10000, RESERVED),
        e(0xf0000, 0x10000, RESERVED),
    ]
}

#[test]
fn captured_sizes() {
    assert_eq!(TABLE_LOADER.len(), 1664); // 13 commands
    assert_eq!(TABLES.len(), 738);
    assert_eq!(RSDP.len(), 36);
    assert_eq!(E820_512M.len(), 20);
    assert_eq!(E820_4G.len(), 40);
}

#[test]
fn e820_512m() {
    let m = Map::from_etc_e820(E820_512M).unwrap();
    let mut want = low();
    want.push(e(MIB, 511 * MIB, RAM));
    assert_eq!(m.entries(), &want[..]);
    assert_eq!(m.low_ram_end(), 512 * MIB);
    assert_eq!(m.ram_top(), 512 * MIB);
}

#[test]
fn e820_4g() {
    let m = Map::from_etc_e820(E820_4G).unwrap();
    let mut want = low();
    want.push(e(MIB, 3 * GIB - MIB, RAM));
    want.push(e(4 * GIB, GIB, RAM));
    assert_eq!(m.entries(), &want[..]);
    assert_eq!(m.low_ram_end(), 0xc000_0000);
    assert_eq!(m.ram_top(), 0x1_4000_0000);
    assert_eq!(m.ram_bytes(), 0x9fc00 + 4 * GIB - MIB);
}

/// Run the captured script with the ACPI area starting at `zone_start`.
fn run_loader(zone_start: u64) -> (FakeMem, u64) {
    let mut mem = FakeMem::new(0x10_0000);
    let files: &[(&str, &[u8])] = &[
        ("etc/e820", E820_512M),
        ("etc/acpi/tables", TABLES),
        ("etc/table-loader", TABLE_LOADER),
        ("etc/acpi/rsdp", RSDP),
    ];
    let mut fw = FakeFwCfg::new(&mem, files);
    let mut zone = Zone::new(zone_start, ACPI_END);
    let out = execute(TABLE_LOADER, &mut fw, &mut mem, &mut zone).unwrap();
    assert_eq!(out.commands, 13);
    assert!(zone.next <= ACPI_END);
    (mem, out.rsdp.expect("the script allocates etc/acpi/rsdp"))
}

/// Check the ACPI table at `addr` (signature, length, checksum) and return its bytes.
fn table(mem: &FakeMem, addr: u64, sig: Option<&[u8; 4]>) -> Vec<u8> {
    assert!(
        (ACPI_START..ACPI_END).contains(&addr),
        "table at {addr:#x} outside the ACPI area"
    );
    let len = mem.u32(addr + 4) as usize;
    assert!(len >= 36, "table at {addr:#x} has length {len}");
    let t = mem.bytes(addr, len);
    if let Some(sig) = sig {
        assert_eq!(&t[..4], sig);
    }
    assert_eq!(sum8(&t), 0, "{} checksum", String::from_utf8_lossy(&t[..4]));
    t
}

fn check_acpi(mem: &FakeMem, rsdp: u64) {
    assert_eq!(rsdp % 16, 0, "RSDP must be 16-byte aligned");
    let r = mem.bytes(rsdp, 36);
    assert_eq!(&r[..8], b"RSD PTR ");
    assert_eq!(sum8(&r[..20]), 0, "RSDP checksum");
    assert_eq!(r[15], 2, "ACPI 2.0+ RSDP");
    assert_eq!(u32::from_le_bytes(r[20..24].try_into().unwrap()), 36);
    assert_eq!(sum8(&r), 0, "RSDP extended checksum");
    assert_eq!(
        u32::from_le_bytes(r[16..20].try_into().unwrap()),
        0,
        "no RSDT"
    );

    let xsdt_addr = u64::from_le_bytes(r[24..32].try_into().unwrap());
    let xsdt = table(mem, xsdt_addr, Some(b"XSDT"));
    let mut sigs = BTreeSet::new();
    let mut facp = None;
    for ptr in xsdt[36..].chunks_exact(8) {
        let addr = u64::from_le_bytes(ptr.try_into().unwrap());
        let t = table(mem, addr, None);
        let sig: [u8; 4] = t[..4].try_into().unwrap();
        if &sig == b"FACP" {
            facp = Some(t);
        }
        sigs.insert(sig);
    }
    let want: BTreeSet<[u8; 4]> = [*b"FACP", *b"APIC"].into();
    assert_eq!(sigs, want);

    // The FADT (revision 5) points at the DSDT through DSDT (32-bit) and X_DSDT.
    let facp = facp.unwrap();
    assert_eq!(facp[8], 5);
    let dsdt32 = u32::from_le_bytes(facp[40..44].try_into().unwrap());
    let x_dsdt = u64::from_le_bytes(facp[140..148].try_into().unwrap());
    assert!(dsdt32 == 0 || u64::from(dsdt32) == x_dsdt);
    table(mem, x_dsdt, Some(b"DSDT"));
}

#[test]
fn table_loader_builds_valid_acpi_tables() {
    // The firmware's layout, then an unaligned start to move every pointer.
    for zone_start in [ACPI_START, ACPI_START + 8, 0xe3001] {
        let (mem, rsdp) = run_loader(zone_start);
        check_acpi(&mem, rsdp);
    }
}

#[test]
fn table_loader_places_rsdp_first() {
    // The script allocates the RSDP (FSEG, align 16) before the tables (HIGH, align 64).
    let (mem, rsdp) = run_loader(ACPI_START);
    assert_eq!(rsdp, ACPI_START);
    assert_eq!(mem.bytes(ACPI_START + 0x40, 4), b"DSDT");
}

#[test]
fn table_loader_needs_enough_space() {
    let mut mem = FakeMem::new(0x10_0000);
    let files: &[(&str, &[u8])] = &[("etc/acpi/tables", TABLES), ("etc/acpi/rsdp", RSDP)];
    let mut fw = FakeFwCfg::new(&mem, files);
    let mut zone = Zone::new(ACPI_START, ACPI_START + 0x200);
    let r = execute(TABLE_LOADER, &mut fw, &mut mem, &mut zone);
    assert_eq!(r, Err(BootError::LoaderOutOfSpace));
    // Without etc/acpi/tables in fw_cfg, its ALLOCATE (command 1) fails.
    let mut fw = FakeFwCfg::new(&mem, &[("etc/acpi/rsdp", RSDP)]);
    let mut zone = Zone::new(ACPI_START, ACPI_END);
    let r = execute(TABLE_LOADER, &mut fw, &mut mem, &mut zone);
    assert_eq!(r, Err(BootError::LoaderUnknownFile { index: 1 }));
}

/// With the tables where qboot put them during the capture (DSDT at 0xefd00), the patched
/// XSDT matches the addresses Linux printed on that boot:
/// `ACPI: XSDT 0xEFFAE`, `FACP 0xEFE50`, `DSDT 0xEFD00`, `APIC 0xEFF5C`.
#[test]
fn table_loader_matches_linux_log_under_qboot() {
    let mut mem = FakeMem::new(0x10_0000);
    let files: &[(&str, &[u8])] = &[("etc/acpi/tables", TABLES), ("etc/acpi/rsdp", RSDP)];
    let mut fw = FakeFwCfg::new(&mem, files);
    // RSDP (36 bytes) at 0xefcc0, so the 64-byte-aligned tables start at 0xefd00.
    let mut zone = Zone::new(0xe_fcc0, 0xf_0000);
    let rsdp = execute(TABLE_LOADER, &mut fw, &mut mem, &mut zone)
        .unwrap()
        .rsdp
        .unwrap();
    assert_eq!(rsdp, 0xe_fcc0);
    let xsdt = mem.u64(rsdp + 24);
    assert_eq!(xsdt, 0xe_ffae);
    assert_eq!(mem.u32(xsdt + 4), 0x34);
    assert_eq!(mem.u64(xsdt + 36), 0xe_fe50); // FACP
    assert_eq!(mem.u64(xsdt + 44), 0xe_ff5c); // APIC
    assert_eq!(mem.u64(0xe_fe50 + 140), 0xe_fd00); // FACP.X_DSDT
    assert_eq!(sum8(&mem.bytes(xsdt, 0x34)), 0);
}
