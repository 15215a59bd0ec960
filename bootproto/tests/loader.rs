//! `loader::execute` and `loader::Zone` on synthetic `etc/table-loader` scripts.

mod common;

use bootproto::loader::{execute, Outcome, Zone, MAX_FILES, ZONE_FSEG, ZONE_HIGH};
use bootproto::BootError;
use common::*;

const MEM: usize = 0x10_0000;

/// Run `script` over fresh fakes holding `files`, with the zone `[zone_start, MEM)`.
fn run(
    files: &[(&str, &[u8])],
    script: &[Vec<u8>],
    zone_start: u64,
) -> (Result<Outcome, BootError>, FakeMem, FakeFwCfg) {
    let mut mem = FakeMem::new(MEM);
    let mut fw = FakeFwCfg::new(&mem, files);
    let mut zone = Zone::new(zone_start, MEM as u64);
    let r = execute(&script.concat(), &mut fw, &mut mem, &mut zone);
    (r, mem, fw)
}

#[test]
fn zone_alloc_aligns_and_bumps() {
    let mut z = Zone::new(0xe0001, 0xe1000);
    assert_eq!(z.alloc(0x10, 16), Ok(0xe0010));
    assert_eq!(z.next, 0xe0020);
    assert_eq!(z.alloc(1, 0), Ok(0xe0020)); // 0 means 1
    assert_eq!(z.alloc(1, 1), Ok(0xe0021));
    assert_eq!(z.alloc(0x20, 0x100), Ok(0xe0100));
    assert_eq!(z.alloc(0, 64), Ok(0xe0140));
    assert_eq!(z.next, 0xe0140);
}

#[test]
fn zone_alloc_out_of_space_leaves_zone_unchanged() {
    let mut z = Zone::new(0xe0000, 0xe1000);
    assert_eq!(z.alloc(0x1000, 16), Ok(0xe0000));
    assert_eq!(z.alloc(1, 1), Err(BootError::LoaderOutOfSpace));
    let mut z = Zone::new(0xe0010, 0xe1000);
    assert_eq!(z.alloc(0xff0, 0x1000), Err(BootError::LoaderOutOfSpace));
    assert_eq!(z.next, 0xe0010);
    assert_eq!(z.alloc(u64::MAX, 1), Err(BootError::LoaderOutOfSpace));
    let mut z = Zone::new(u64::MAX - 1, u64::MAX);
    assert_eq!(z.alloc(1, 16), Err(BootError::LoaderOutOfSpace));
    assert_eq!(z.alloc(2, 1), Err(BootError::LoaderOutOfSpace));
    assert_eq!(z.next, u64::MAX - 1);
    assert_eq!(z.alloc(1, 1), Ok(u64::MAX - 1));
}

#[test]
fn allocate_reads_files_in_order_and_reports_rsdp() {
    let tables = [0xabu8; 0x30];
    let rsdp = [0xcdu8; 20];
    let files: &[(&str, &[u8])] = &[("etc/acpi/tables", &tables), ("etc/acpi/rsdp", &rsdp)];
    let script = [
        allocate("etc/acpi/rsdp", 16, ZONE_FSEG),
        allocate("etc/acpi/tables", 64, ZONE_HIGH),
    ];
    let (r, mem, fw) = run(files, &script, 0xe0008);
    assert_eq!(
        r,
        Ok(Outcome {
            rsdp: Some(0xe0010),
            commands: 2
        })
    );
    assert_eq!(fw.reads, vec![(0x21, 0xe0010, 20), (0x20, 0xe0040, 0x30)]);
    assert_eq!(mem.bytes(0xe0010, 20), rsdp);
    assert_eq!(mem.bytes(0xe0040, 0x30), tables);
    // Without an etc/acpi/rsdp ALLOCATE there is no RSDP.
    let (r, _, _) = run(files, &script[1..], 0xe0000);
    assert_eq!(r.unwrap().rsdp, None);
}

#[test]
fn add_pointer_all_sizes() {
    let src = [0u8; 0x20];
    let mut dst = [0u8; 0x20];
    dst[0] = 0x05; // 1-byte pointer: offset 5 into src
    dst[2..4].copy_from_slice(&0x0102u16.to_le_bytes());
    dst[4..8].copy_from_slice(&0x0102_0304u32.to_le_bytes());
    dst[8..16].copy_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
    dst[16] = 0x77; // untouched neighbour
    let files: &[(&str, &[u8])] = &[("src", &src), ("dst", &dst)];
    let script = [
        allocate("src", 16, ZONE_HIGH), // at 0x40
        allocate("dst", 16, ZONE_HIGH), // at 0x60
        add_pointer("dst", "src", 0, 1),
        add_pointer("dst", "src", 2, 2),
        add_pointer("dst", "src", 4, 4),
        add_pointer("dst", "src", 8, 8),
    ];
    let (r, mem, _) = run(files, &script, 0x40);
    assert_eq!(r.unwrap().commands, 6);
    let d = mem.bytes(0x60, 0x20);
    assert_eq!(d[0], 0x45);
    assert_eq!(u16::from_le_bytes([d[2], d[3]]), 0x0142);
    assert_eq!(mem.u32(0x64), 0x0102_0344);
    assert_eq!(mem.u64(0x68), 0x0102_0304_0506_0748);
    assert_eq!(d[1], 0);
    assert_eq!(d[16], 0x77);
}

#[test]
fn add_pointer_that_no_longer_fits_its_size_is_bad() {
    let src = [0u8; 0x10];
    let dst = [0xf0u8; 0x10];
    let files: &[(&str, &[u8])] = &[("src", &src), ("dst", &dst)];
    let script = [
        allocate("src", 16, ZONE_HIGH), // at 0x20: 0xf0 + 0x20 > 0xff
        allocate("dst", 16, ZONE_HIGH),
        add_pointer("dst", "src", 0, 1),
    ];
    let (r, _, _) = run(files, &script, 0x20);
    assert_eq!(r, Err(BootError::LoaderBadCommand { index: 2 }));
}

#[test]
fn add_checksum_zeroes_the_sum() {
    let mut file: Vec<u8> = (0u8..100).map(|i| i.wrapping_mul(37)).collect();
    file[10] = 0;
    let files: &[(&str, &[u8])] = &[("t", &file)];
    // A range longer than the implementation's read buffer, checksum byte inside it.
    let script = [allocate("t", 4, ZONE_HIGH), add_checksum("t", 10, 3, 90)];
    let (r, mem, _) = run(files, &script, 0xe0000);
    assert_eq!(r.unwrap().commands, 2);
    let t = mem.bytes(0xe0000, 100);
    assert_eq!(sum8(&t[3..93]), 0);
    assert_eq!(t[..10], file[..10]);
    assert_eq!(t[11..], file[11..]);
    // A checksum byte outside the range, and an empty range.
    let script = [
        allocate("t", 4, ZONE_HIGH),
        add_checksum("t", 0, 1, 20),
        add_checksum("t", 99, 0, 0),
    ];
    let (r, mem, _) = run(files, &script, 0xe0000);
    assert!(r.is_ok());
    let t = mem.bytes(0xe0000, 100);
    assert_eq!(t[0], 0u8.wrapping_sub(sum8(&file[1..21])));
    assert_eq!(t[99], file[99]);
}

#[test]
fn out_of_bounds_offsets() {
    let f = [0u8; 16];
    let files: &[(&str, &[u8])] = &[("a", &f), ("b", &f)];
    let oob = |index| Err(BootError::LoaderOutOfBounds { index });
    let cases = [
        add_pointer("a", "b", 13, 4),
        add_pointer("a", "b", 9, 8),
        add_pointer("a", "b", 16, 1),
        add_pointer("a", "b", u32::MAX, 8),
        add_checksum("a", 16, 0, 16),
        add_checksum("a", 0, 0, 17),
        add_checksum("a", 0, 8, 9),
        add_checksum("a", 0, u32::MAX, u32::MAX),
        add_checksum("a", u32::MAX, 0, 1),
    ];
    for case in cases {
        let script = [allocate("a", 1, 1), allocate("b", 1, 1), case];
        assert_eq!(run(files, &script, 0x1000).0, oob(2));
    }
    // The limits themselves are fine.
    let script = [
        allocate("a", 1, 1),
        allocate("b", 1, 1),
        add_pointer("a", "b", 8, 8),
        add_checksum("a", 15, 0, 16),
    ];
    assert!(run(files, &script, 0x1000).0.is_ok());
}

#[test]
fn unknown_files() {
    let f = [0u8; 16];
    let files: &[(&str, &[u8])] = &[("a", &f), ("b", &f)];
    let unknown = |index| Err(BootError::LoaderUnknownFile { index });
    let (r, _, fw) = run(files, &[allocate("nope", 1, 1)], 0x1000);
    assert_eq!(r, unknown(0));
    assert!(fw.reads.is_empty());
    // "b" exists in fw_cfg but was never allocated.
    let (r, _, _) = run(
        files,
        &[allocate("a", 1, 1), add_pointer("a", "b", 0, 4)],
        0x1000,
    );
    assert_eq!(r, unknown(1));
    let (r, _, _) = run(
        files,
        &[allocate("a", 1, 1), add_pointer("b", "a", 0, 4)],
        0x1000,
    );
    assert_eq!(r, unknown(1));
    let (r, _, _) = run(files, &[add_checksum("a", 0, 0, 1)], 0x1000);
    assert_eq!(r, unknown(0));
    // Names are compared up to the NUL: "a" is not "ab" nor a prefix of it.
    let (r, _, _) = run(files, &[allocate("ab", 1, 1)], 0x1000);
    assert_eq!(r, unknown(0));
}

#[test]
fn bad_commands() {
    let f = [0u8; 16];
    let files: &[(&str, &[u8])] = &[("a", &f), ("b", &f)];
    let bad = |index| Err(BootError::LoaderBadCommand { index });
    for size in [0u8, 3, 5, 7, 9, 16, 255] {
        let script = [
            allocate("a", 1, 1),
            allocate("b", 1, 1),
            add_pointer("a", "b", 0, size),
        ];
        assert_eq!(run(files, &script, 0x1000).0, bad(2), "size {size}");
    }
    for align in [3u32, 6, 24, 0x8000_0001, u32::MAX] {
        let script = [allocate("a", 1, 1), allocate("b", align, 1)];
        assert_eq!(run(files, &script, 0x1000).0, bad(1), "align {align}");
    }
    for zone in [0u8, 3, 255] {
        assert_eq!(
            run(files, &[allocate("a", 1, zone)], 0x1000).0,
            bad(0),
            "zone {zone}"
        );
    }
    // Allocating the same file twice.
    let script = [allocate("a", 1, 1), allocate("a", 1, 1)];
    assert_eq!(run(files, &script, 0x1000).0, bad(1));
    // Alignment 0 is accepted as 1.
    assert!(run(files, &[allocate("a", 0, 1)], 0x1001).0.is_ok());
}

#[test]
fn write_pointer_is_refused() {
    let f = [0u8; 16];
    let files: &[(&str, &[u8])] = &[("a", &f)];
    let script = [
        allocate("a", 1, 1),
        write_pointer("etc/vmgenid_addr", "a", 0, 0, 8),
    ];
    assert_eq!(
        run(files, &script, 0x1000).0,
        Err(BootError::LoaderWritePointer)
    );
}

#[test]
fn too_many_files() {
    let names: Vec<String> = (0..=MAX_FILES).map(|i| format!("f{i}")).collect();
    let data = [1u8; 8];
    let files: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &data[..])).collect();
    let script: Vec<Vec<u8>> = names.iter().map(|n| allocate(n, 8, 1)).collect();
    let (r, _, fw) = run(&files, &script[..MAX_FILES], 0x1000);
    assert_eq!(r.unwrap().commands, MAX_FILES as u16);
    assert_eq!(fw.reads.len(), MAX_FILES);
    let (r, _, fw) = run(&files, &script, 0x1000);
    assert_eq!(r, Err(BootError::LoaderTooManyFiles));
    assert_eq!(fw.reads.len(), MAX_FILES);
}

#[test]
fn truncated_script_is_rejected_before_running() {
    let f = [0u8; 16];
    let files: &[(&str, &[u8])] = &[("a", &f)];
    let mut script = [allocate("a", 1, 1), allocate("a", 1, 1)].concat();
    script.extend_from_slice(&[1, 0, 0]);
    let mut mem = FakeMem::new(MEM);
    let mut fw = FakeFwCfg::new(&mem, files);
    let mut zone = Zone::new(0x1000, 0x2000);
    let r = execute(&script, &mut fw, &mut mem, &mut zone);
    assert_eq!(r, Err(BootError::LoaderBadCommand { index: 2 }));
    assert!(fw.reads.is_empty());
    assert_eq!(zone, Zone::new(0x1000, 0x2000));
    let r = execute(&script[..100], &mut fw, &mut mem, &mut zone);
    assert_eq!(r, Err(BootError::LoaderBadCommand { index: 0 }));
}

#[test]
fn empty_script_and_unknown_commands_are_ignored() {
    let f = [0u8; 16];
    let files: &[(&str, &[u8])] = &[("etc/acpi/tables", &f)];
    let (r, _, _) = run(files, &[], 0x1000);
    assert_eq!(
        r,
        Ok(Outcome {
            rsdp: None,
            commands: 0
        })
    );
    let script = [
        other(0),
        allocate("etc/acpi/tables", 1, 1),
        other(5),
        other(0x8000_0001),
        other(u32::MAX),
        add_checksum("etc/acpi/tables", 0, 0, 16),
    ];
    let (r, _, _) = run(files, &script, 0x1000);
    assert_eq!(r.unwrap().commands, 2);
}

#[test]
fn memory_errors_propagate() {
    let f = [0u8; 16];
    let files: &[(&str, &[u8])] = &[("a", &f)];
    // The zone lies beyond the fake memory: the DMA fails.
    let mut mem = FakeMem::new(0x1000);
    let mut fw = FakeFwCfg::new(&mem, files);
    let mut zone = Zone::new(0x2000, 0x3000);
    let r = execute(&allocate("a", 1, 1), &mut fw, &mut mem, &mut zone);
    assert_eq!(r, Err(BootError::BadAddress { addr: 0x2000 }));
}
