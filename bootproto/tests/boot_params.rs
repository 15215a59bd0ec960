//! `linux::build_boot_params`, and the `boot_params` offsets against `linux-loader`.

mod common;

use bootproto::e820::{self, Entry};
use bootproto::linux::*;
use bootproto::BootError;
use common::setup_blob;

const MIB: u64 = 1 << 20;

fn map() -> e820::Map {
    let etc = Entry {
        addr: 0,
        size: 512 * MIB,
        kind: e820::RAM,
    };
    e820::Map::from_etc_e820(&etc.to_bytes()).unwrap()
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

#[test]
fn build_boot_params_fills_the_zero_page() {
    let setup = setup_blob();
    let map = map();
    let params = Params {
        cmdline: 0x2_0000,
        initrd: Some((0x1ffb_4000, 0x4_c000)),
        rsdp: 0xe_0010,
        e820: map.entries(),
    };
    let mut out = [0xaau8; BOOT_PARAMS_SIZE];
    build_boot_params(&mut out, &setup, &params).unwrap();

    // Header bytes 0x1f1..0x26c copied, nothing else from the setup blob: below the
    // header only the fields set from `params` are non-zero.
    let mut below = out[..offset::HDR].to_vec();
    below[offset::ACPI_RSDP_ADDR..offset::ACPI_RSDP_ADDR + 8].fill(0);
    below[offset::E820_ENTRIES] = 0;
    assert!(below.iter().all(|&b| b == 0));
    assert_eq!(out[offset::SENTINEL], 0);
    let unchanged = |r: std::ops::Range<usize>| assert_eq!(out[r.clone()], setup[r]);
    unchanged(offset::HDR..offset::TYPE_OF_LOADER);
    unchanged(offset::CODE32_START..offset::RAMDISK_IMAGE);
    unchanged(offset::INITRD_ADDR_MAX..0x26c);
    let table_end = offset::E820_TABLE + map.entries().len() * e820::ENTRY_SIZE;
    assert!(out[0x26c..offset::E820_TABLE].iter().all(|&b| b == 0));
    assert!(out[table_end..].iter().all(|&b| b == 0));

    assert_eq!(out[offset::E820_ENTRIES] as usize, map.entries().len());
    for (i, e) in map.entries().iter().enumerate() {
        let at = offset::E820_TABLE + i * e820::ENTRY_SIZE;
        assert_eq!(out[at..at + e820::ENTRY_SIZE], e.to_bytes());
    }
    assert_eq!(u64_at(&out, offset::ACPI_RSDP_ADDR), 0xe_0010);
    assert_eq!(u32_at(&out, offset::CMD_LINE_PTR), 0x2_0000);
    assert_eq!(u32_at(&out, offset::EXT_CMD_LINE_PTR), 0);
    assert_eq!(u32_at(&out, offset::RAMDISK_IMAGE), 0x1ffb_4000);
    assert_eq!(u32_at(&out, offset::RAMDISK_SIZE), 0x4_c000);
    assert_eq!(u32_at(&out, offset::EXT_RAMDISK_IMAGE), 0);
    assert_eq!(u32_at(&out, offset::EXT_RAMDISK_SIZE), 0);
    assert_eq!(out[offset::TYPE_OF_LOADER], 0xb0); // QEMU's value is kept
    assert_eq!(out[offset::LOADFLAGS], LOADED_HIGH | CAN_USE_HEAP);
    assert_eq!(u32_at(&out, offset::HEAP_END_PTR) & 0xffff, 0xfe00);
}

#[test]
fn build_boot_params_high_initrd_no_initrd_and_loader_type() {
    let mut setup = setup_blob();
    setup[offset::TYPE_OF_LOADER] = 0;
    setup[offset::LOADFLAGS] = LOADED_HIGH | CAN_USE_HEAP;
    let mut out = [0u8; BOOT_PARAMS_SIZE];
    let high = Params {
        cmdline: 0x1_2345_6789,
        initrd: Some((0x1_4000_0000, 0x2_0000_1000)),
        rsdp: 0,
        e820: &[],
    };
    build_boot_params(&mut out, &setup, &high).unwrap();
    assert_eq!(out[offset::TYPE_OF_LOADER], LOADER_TYPE_UNDEFINED);
    assert_eq!(out[offset::LOADFLAGS], LOADED_HIGH | CAN_USE_HEAP);
    assert_eq!(u32_at(&out, offset::CMD_LINE_PTR), 0x2345_6789);
    assert_eq!(u32_at(&out, offset::EXT_CMD_LINE_PTR), 1);
    assert_eq!(u32_at(&out, offset::RAMDISK_IMAGE), 0x4000_0000);
    assert_eq!(u32_at(&out, offset::EXT_RAMDISK_IMAGE), 1);
    assert_eq!(u32_at(&out, offset::RAMDISK_SIZE), 0x1000);
    assert_eq!(u32_at(&out, offset::EXT_RAMDISK_SIZE), 2);
    assert_eq!(out[offset::E820_ENTRIES], 0);

    // No initrd: QEMU's ramdisk fields are cleared.
    let none = Params {
        initrd: None,
        ..high
    };
    build_boot_params(&mut out, &setup, &none).unwrap();
    for off in [
        offset::RAMDISK_IMAGE,
        offset::RAMDISK_SIZE,
        offset::EXT_RAMDISK_IMAGE,
        offset::EXT_RAMDISK_SIZE,
    ] {
        assert_eq!(u32_at(&out, off), 0);
    }
}

#[test]
fn build_boot_params_errors() {
    let setup = setup_blob();
    let mut out = [0x55u8; BOOT_PARAMS_SIZE];
    let p = Params {
        cmdline: 0,
        initrd: None,
        rsdp: 0,
        e820: &[],
    };
    for len in [0, 0x201, 0x202, 0x26b] {
        assert_eq!(
            build_boot_params(&mut out, &setup[..len], &p),
            Err(BootError::UnknownKernelFormat),
            "len {len:#x}"
        );
    }
    assert!(build_boot_params(&mut out, &setup[..0x26c], &p).is_ok());
    let many = [Entry::default(); e820::MAX_ENTRIES + 1];
    let p = Params { e820: &many, ..p };
    let mut out = [0x55u8; BOOT_PARAMS_SIZE];
    assert_eq!(
        build_boot_params(&mut out, &setup, &p),
        Err(BootError::E820Overflow)
    );
    assert!(out.iter().all(|&b| b == 0x55), "untouched on error");
    let p = Params {
        e820: &many[..e820::MAX_ENTRIES],
        ..p
    };
    build_boot_params(&mut out, &setup, &p).unwrap();
    assert_eq!(out[offset::E820_ENTRIES], 128);
}

/// Every `offset` constant against `linux-loader`'s bindgen `struct boot_params`.
#[test]
fn offsets_match_linux_loader() {
    use core::mem::{offset_of, size_of};
    use linux_loader::loader::bootparam::{boot_e820_entry, boot_params as bp};
    assert_eq!(size_of::<bp>(), BOOT_PARAMS_SIZE);
    assert_eq!(size_of::<boot_e820_entry>(), e820::ENTRY_SIZE);
    assert_eq!(offset_of!(bp, acpi_rsdp_addr), offset::ACPI_RSDP_ADDR);
    assert_eq!(offset_of!(bp, ext_ramdisk_image), offset::EXT_RAMDISK_IMAGE);
    assert_eq!(offset_of!(bp, ext_ramdisk_size), offset::EXT_RAMDISK_SIZE);
    assert_eq!(offset_of!(bp, ext_cmd_line_ptr), offset::EXT_CMD_LINE_PTR);
    assert_eq!(offset_of!(bp, e820_entries), offset::E820_ENTRIES);
    assert_eq!(offset_of!(bp, sentinel), offset::SENTINEL);
    assert_eq!(offset_of!(bp, hdr), offset::HDR);
    assert_eq!(offset_of!(bp, hdr.setup_sects), offset::HDR);
    assert_eq!(offset_of!(bp, hdr.boot_flag), offset::BOOT_FLAG);
    assert_eq!(offset_of!(bp, hdr.jump), offset::JUMP);
    assert_eq!(offset_of!(bp, hdr.header), offset::HEADER);
    assert_eq!(offset_of!(bp, hdr.version), offset::VERSION);
    assert_eq!(offset_of!(bp, hdr.type_of_loader), offset::TYPE_OF_LOADER);
    assert_eq!(offset_of!(bp, hdr.loadflags), offset::LOADFLAGS);
    assert_eq!(offset_of!(bp, hdr.code32_start), offset::CODE32_START);
    assert_eq!(offset_of!(bp, hdr.ramdisk_image), offset::RAMDISK_IMAGE);
    assert_eq!(offset_of!(bp, hdr.ramdisk_size), offset::RAMDISK_SIZE);
    assert_eq!(offset_of!(bp, hdr.heap_end_ptr), offset::HEAP_END_PTR);
    assert_eq!(offset_of!(bp, hdr.cmd_line_ptr), offset::CMD_LINE_PTR);
    assert_eq!(offset_of!(bp, hdr.initrd_addr_max), offset::INITRD_ADDR_MAX);
    assert_eq!(
        offset_of!(bp, hdr.kernel_alignment),
        offset::KERNEL_ALIGNMENT
    );
    assert_eq!(
        offset_of!(bp, hdr.relocatable_kernel),
        offset::RELOCATABLE_KERNEL
    );
    assert_eq!(offset_of!(bp, hdr.xloadflags), offset::XLOADFLAGS);
    assert_eq!(offset_of!(bp, hdr.cmdline_size), offset::CMDLINE_SIZE);
    assert_eq!(offset_of!(bp, hdr.setup_data), offset::SETUP_DATA);
    assert_eq!(offset_of!(bp, hdr.pref_address), offset::PREF_ADDRESS);
    assert_eq!(offset_of!(bp, hdr.init_size), offset::INIT_SIZE);
    assert_eq!(offset_of!(bp, e820_table), offset::E820_TABLE);
    // The header the parser reads ends at `init_size`, inside `struct setup_header`.
    assert!(offset_of!(bp, hdr.init_size) + 4 <= HEADER_END);
    assert!(HEADER_END <= offset::HDR + size_of::<linux_loader::loader::bootparam::setup_header>());
    assert_eq!(
        offset::E820_TABLE + e820::MAX_ENTRIES * e820::ENTRY_SIZE,
        offset_of!(bp, _pad8)
    );
}
