//! `linux`: image detection, setup-header parsing and placement checks.

mod common;

use bootproto::linux::*;
use bootproto::BootError;
use common::setup_blob;

const MIB: u64 = 1 << 20;

fn header() -> SetupHeader {
    SetupHeader::parse(&setup_blob()).unwrap()
}

#[test]
fn detect_kind() {
    assert_eq!(Kind::detect(&setup_blob()), Kind::BzImage);
    assert_eq!(Kind::detect(&setup_blob()[..0x206]), Kind::BzImage);
    assert_eq!(Kind::detect(&setup_blob()[..0x205]), Kind::Unknown);
    let mut elf = vec![0u8; 8192];
    elf[..4].copy_from_slice(b"\x7fELF");
    assert_eq!(Kind::detect(&elf), Kind::Elf);
    assert_eq!(Kind::detect(b"\x7fELF"), Kind::Elf);
    assert_eq!(Kind::detect(b"\x7fEL"), Kind::Unknown);
    assert_eq!(Kind::detect(&[]), Kind::Unknown);
    assert_eq!(Kind::detect(&[0u8; 8192]), Kind::Unknown);
    let mut mb = vec![0u8; 8192]; // a multiboot header is neither
    mb[0x100..0x104].copy_from_slice(&0x1bad_b002u32.to_le_bytes());
    assert_eq!(Kind::detect(&mb), Kind::Unknown);
}

#[test]
fn parse_valid_header() {
    let h = header();
    assert_eq!(
        h,
        SetupHeader {
            version: 0x020f,
            loadflags: LOADED_HIGH,
            xloadflags: 0x7f,
            initrd_addr_max: 0x7fff_ffff,
            kernel_alignment: 0x20_0000,
            relocatable: true,
            cmdline_size: 2047,
            pref_address: 0x100_0000,
            init_size: 0x337_7000,
            setup_data: 0x1_2345,
        }
    );
    // Exactly HEADER_END bytes are enough; 2.12 is the oldest accepted.
    let mut s = setup_blob();
    s.truncate(HEADER_END);
    s[offset::VERSION..offset::VERSION + 2].copy_from_slice(&MIN_VERSION.to_le_bytes());
    s[offset::RELOCATABLE_KERNEL] = 0;
    let h = SetupHeader::parse(&s).unwrap();
    assert_eq!((h.version, h.relocatable), (0x020c, false));
}

#[test]
fn parse_malformed_headers() {
    let unknown = Err(BootError::UnknownKernelFormat);
    let s = setup_blob();
    assert_eq!(SetupHeader::parse(&s[..HEADER_END - 1]), unknown);
    assert_eq!(SetupHeader::parse(&[]), unknown);
    let mut bad_flag = s.clone();
    bad_flag[offset::BOOT_FLAG] = 0x56;
    assert_eq!(SetupHeader::parse(&bad_flag), unknown);
    let mut no_hdrs = s.clone();
    no_hdrs[offset::HEADER + 3] = b's';
    assert_eq!(SetupHeader::parse(&no_hdrs), unknown);
    for version in [0x0200u16, 0x0206, 0x020b] {
        let mut old = s.clone();
        old[offset::VERSION..offset::VERSION + 2].copy_from_slice(&version.to_le_bytes());
        assert_eq!(
            SetupHeader::parse(&old),
            Err(BootError::ProtocolTooOld { version })
        );
    }
    let mut no64 = s.clone();
    no64[offset::XLOADFLAGS..offset::XLOADFLAGS + 2].copy_from_slice(&0x7eu16.to_le_bytes());
    assert_eq!(SetupHeader::parse(&no64), Err(BootError::NoKernel64));
}

/// QEMU's placement for the Debian kernel with -m 512M and a 304 KiB initrd.
fn placement() -> Placement {
    Placement {
        kernel_addr: 0x10_0000,
        kernel_size: 0x7a_0000,
        initrd_addr: 0x1ffb_4000,
        initrd_size: 0x4_c000,
        cmdline_size: 100,
    }
}

#[test]
fn check_fit_accepts_qemus_placement() {
    let h = header();
    assert_eq!(check_fit(&h, &placement(), 512 * MIB), Ok(()));
    let no_initrd = Placement {
        initrd_addr: u64::MAX,
        initrd_size: 0,
        cmdline_size: 0,
        ..placement()
    };
    assert_eq!(check_fit(&h, &no_initrd, 0x437_7000), Ok(()));
}

#[test]
fn check_fit_kernel_too_big() {
    let h = header();
    let need = 0x100_0000 + 0x337_7000;
    assert_eq!(
        check_fit(&h, &placement(), 64 * MIB),
        Err(BootError::KernelTooBig {
            need,
            have: 64 * MIB
        })
    );
    // A kernel image reaching past the decompression area sets `need` itself.
    let p = Placement {
        kernel_size: 100 * MIB,
        ..placement()
    };
    assert_eq!(
        check_fit(&h, &p, 64 * MIB),
        Err(BootError::KernelTooBig {
            need: 101 * MIB,
            have: 64 * MIB
        })
    );
    let p = Placement {
        kernel_size: u64::MAX,
        ..placement()
    };
    assert_eq!(
        check_fit(&h, &p, 512 * MIB),
        Err(BootError::KernelTooBig {
            need: u64::MAX,
            have: 512 * MIB
        })
    );
    let h = SetupHeader {
        pref_address: u64::MAX - 1,
        ..header()
    };
    assert!(matches!(
        check_fit(&h, &placement(), 512 * MIB),
        Err(BootError::KernelTooBig { .. })
    ));
}

#[test]
fn check_fit_initrd() {
    let h = header();
    let too_big = Err(BootError::InitrdTooBig { size: 0x4_c000 });
    let at = |initrd_addr| Placement {
        initrd_addr,
        ..placement()
    };
    // Overlapping the decompression area, or the kernel image itself.
    assert_eq!(check_fit(&h, &at(0x400_0000), 512 * MIB), too_big);
    assert_eq!(check_fit(&h, &at(0x20_0000), 512 * MIB), too_big);
    // Starting right where the kernel's memory ends is fine.
    assert_eq!(check_fit(&h, &at(0x437_7000), 512 * MIB), Ok(()));
    // Ending above low RAM.
    assert_eq!(check_fit(&h, &at(0x1ffb_5000), 512 * MIB), too_big);
    // Above initrd_addr_max (inclusive limit) ...
    let h2 = SetupHeader {
        initrd_addr_max: 0x0fff_ffff,
        xloadflags: XLF_KERNEL_64,
        ..h
    };
    assert_eq!(check_fit(&h2, &placement(), 512 * MIB), too_big);
    assert_eq!(
        check_fit(&h2, &at(0x1000_0000 - 0x4_c000), 512 * MIB),
        Ok(())
    );
    assert_eq!(
        check_fit(&h2, &at(0x1000_0000 - 0x4_b000), 512 * MIB),
        too_big
    );
    // ... unless the kernel takes an initrd anywhere (QEMU 7.2 then puts it at the top
    // of low RAM, above the Debian kernel's initrd_addr_max 0x7fffffff with -m 4G).
    let anywhere = SetupHeader {
        xloadflags: XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G,
        ..h2
    };
    assert_eq!(check_fit(&anywhere, &placement(), 512 * MIB), Ok(()));
    let at_3g = at(0xc000_0000 - 0x4_c000);
    assert_eq!(check_fit(&h, &at_3g, 0xc000_0000), Ok(()));
    assert_eq!(check_fit(&anywhere, &at(0xbfff_5000), 0xc000_0000), too_big);
    // Wrapping.
    let p = Placement {
        initrd_addr: u64::MAX - 10,
        initrd_size: 100,
        ..placement()
    };
    assert_eq!(
        check_fit(&h, &p, u64::MAX),
        Err(BootError::InitrdTooBig { size: 100 })
    );
}

#[test]
fn check_fit_cmdline() {
    let h = header();
    let with = |cmdline_size| Placement {
        cmdline_size,
        ..placement()
    };
    for ok in [0, 1, 2047, 2048] {
        assert_eq!(check_fit(&h, &with(ok), 512 * MIB), Ok(()), "{ok}");
    }
    assert_eq!(
        check_fit(&h, &with(2049), 512 * MIB),
        Err(BootError::CmdlineTooLong {
            len: 2048,
            max: 2047
        })
    );
    assert_eq!(
        check_fit(&h, &with(u64::MAX), 512 * MIB),
        Err(BootError::CmdlineTooLong {
            len: u32::MAX,
            max: 2047
        })
    );
    // A kernel accepting more than the firmware's command-line area is capped by it.
    let big = SetupHeader {
        cmdline_size: u32::MAX,
        ..h
    };
    assert_eq!(check_fit(&big, &with(0x1_0000), 512 * MIB), Ok(()));
    assert_eq!(
        check_fit(&big, &with(0x1_0001), 512 * MIB),
        Err(BootError::CmdlineTooLong {
            len: 0x1_0000,
            max: 0xffff
        })
    );
}
