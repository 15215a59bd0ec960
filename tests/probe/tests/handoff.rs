//! Host tests of the probe's checks on fake guest memory: `boot_params` and
//! `hvm_start_info` parsing, the initrd check and the ACPI walk.

use mvm_probe::args::Initrd;
use mvm_probe::handoff::{start_info, zero_page, Handoff, Kind};
use mvm_probe::{acpi, Fail, Memory};

const BOOT_PARAMS: u64 = 0x7000;
const CMDLINE: u64 = 0x20000;
const RSDP: u64 = 0xe0000;
const INITRD: u64 = 0x200000;

/// 4 MiB of guest memory; address 0 reads as unmapped like in the probe.
struct Fake(Vec<u8>);

impl Memory for Fake {
    fn read(&self, addr: u64, len: usize) -> Option<&[u8]> {
        let start = usize::try_from(addr).ok().filter(|&a| a != 0)?;
        self.0.get(start..start.checked_add(len)?)
    }
}

impl Fake {
    fn new() -> Fake {
        Fake(vec![0; 4 << 20])
    }

    fn put(&mut self, addr: u64, bytes: &[u8]) {
        self.0[addr as usize..addr as usize + bytes.len()].copy_from_slice(bytes);
    }

    /// Make the byte sum of `[addr, addr + len)` zero by adjusting the byte at `at`.
    fn checksum(&mut self, addr: u64, len: usize, at: u64) {
        self.0[at as usize] = 0;
        let sum = self.0[addr as usize..addr as usize + len]
            .iter()
            .fold(0u8, |s, &b| s.wrapping_add(b));
        self.0[at as usize] = sum.wrapping_neg();
    }

    /// A table with `signature`, `body` after the 36-byte header, checksummed.
    fn table(&mut self, addr: u64, signature: &[u8; 4], body: &[u8]) {
        let len = 36 + body.len();
        self.put(addr, signature);
        self.put(addr + 4, &(len as u32).to_le_bytes());
        self.put(addr + 36, body);
        self.checksum(addr, len, addr + 9);
    }

    /// RSDP v2 -> XSDT -> FACP -> DSDT in the 0xE0000 area.
    fn acpi(&mut self) {
        let (xsdt, facp, dsdt) = (RSDP + 0x40, RSDP + 0x100, RSDP + 0x300);
        self.table(dsdt, b"DSDT", &[0x10; 20]);
        let mut fadt = vec![0u8; 276 - 36];
        fadt[40 - 36..44 - 36].copy_from_slice(&(dsdt as u32).to_le_bytes());
        fadt[140 - 36..148 - 36].copy_from_slice(&dsdt.to_le_bytes());
        self.table(facp, b"FACP", &fadt);
        self.table(xsdt, b"XSDT", &facp.to_le_bytes());
        self.put(RSDP, b"RSD PTR ");
        self.put(RSDP + 15, &[2]);
        self.put(RSDP + 20, &36u32.to_le_bytes());
        self.put(RSDP + 24, &xsdt.to_le_bytes());
        self.checksum(RSDP, 20, RSDP + 8);
        self.checksum(RSDP, 36, RSDP + 32);
    }

    /// A zero page as fw.rom builds it, with a 3-entry map of 4 MiB.
    fn boot_params(&mut self, cmdline: &[u8]) {
        let bp = BOOT_PARAMS;
        self.put(bp + zero_page::BOOT_FLAG as u64, &0xaa55u16.to_le_bytes());
        self.put(bp + zero_page::HEADER as u64, b"HdrS");
        self.put(bp + zero_page::VERSION as u64, &0x020fu16.to_le_bytes());
        self.put(bp + zero_page::TYPE_OF_LOADER as u64, &[0xff]);
        self.put(
            bp + zero_page::CMD_LINE_PTR as u64,
            &(CMDLINE as u32).to_le_bytes(),
        );
        self.put(CMDLINE, cmdline);
        self.put(CMDLINE + cmdline.len() as u64, &[0]);
        let map: [(u64, u64, u32); 3] = [
            (0, 0x9fc00, 1),
            (0xe0000, 0x20000, 2),
            (1 << 20, 3 << 20, 1),
        ];
        self.put(bp + zero_page::E820_ENTRIES as u64, &[map.len() as u8]);
        for (i, (addr, size, kind)) in map.into_iter().enumerate() {
            let at = bp + zero_page::E820_TABLE as u64 + 20 * i as u64;
            self.put(at, &addr.to_le_bytes());
            self.put(at + 8, &size.to_le_bytes());
            self.put(at + 16, &kind.to_le_bytes());
        }
    }

    fn initrd(&mut self, data: &[u8]) {
        self.put(INITRD, data);
        let bp = BOOT_PARAMS;
        self.put(
            bp + zero_page::RAMDISK_IMAGE as u64,
            &(INITRD as u32).to_le_bytes(),
        );
        self.put(
            bp + zero_page::RAMDISK_SIZE as u64,
            &(data.len() as u32).to_le_bytes(),
        );
    }
}

#[test]
fn boot_params_round_trip() {
    let mut mem = Fake::new();
    mem.boot_params(b"console=ttyS0 probe.acpi=1");
    mem.initrd(b"initrd bytes");
    mem.acpi();
    mem.put(
        BOOT_PARAMS + zero_page::ACPI_RSDP_ADDR as u64,
        &RSDP.to_le_bytes(),
    );
    let h = Handoff::from_boot_params(&mem, BOOT_PARAMS).unwrap();
    assert_eq!(h.kind, Kind::BzImage64);
    assert_eq!(h.cmdline, b"console=ttyS0 probe.acpi=1");
    assert_eq!(h.initrd, Some((INITRD, 12)));
    assert_eq!(h.memmap.entries().len(), 3);
    h.memmap.check(Some(4 << 20), 1 << 20, 2 << 20).unwrap();
    h.check_initrd(&mem, Some(Initrd::of(b"initrd bytes")))
        .unwrap();
    assert!(matches!(
        h.check_initrd(&mem, Some(Initrd::of(b"initrd bytez"))),
        Err(Fail::InitrdHash { .. })
    ));
    assert!(matches!(
        h.check_initrd(&mem, None),
        Err(Fail::InitrdUnexpected { .. })
    ));
    let s = acpi::check(&mem, h.rsdp, Some(true), &h.memmap).unwrap();
    assert_eq!((s.rsdp, s.revision, s.tables), (RSDP, 2, 3));
}

#[test]
fn boot_params_errors() {
    let mut mem = Fake::new();
    mem.boot_params(b"x");
    mem.put(BOOT_PARAMS + zero_page::TYPE_OF_LOADER as u64, &[0]);
    assert_eq!(
        Handoff::from_boot_params(&mem, BOOT_PARAMS).unwrap_err(),
        Fail::NoLoaderType
    );
    mem.boot_params(b"x");
    mem.put(BOOT_PARAMS + zero_page::E820_ENTRIES as u64, &[1]);
    assert_eq!(
        Handoff::from_boot_params(&mem, BOOT_PARAMS).unwrap_err(),
        Fail::MapEntries { count: 1 }
    );
    mem.boot_params(&[b'a'; 3000]);
    assert!(matches!(
        Handoff::from_boot_params(&mem, BOOT_PARAMS),
        Err(Fail::CmdlineUnterminated { limit: 2049, .. })
    ));
    assert!(matches!(
        Handoff::from_boot_params(&mem, 0),
        Err(Fail::NoBootInfo { .. })
    ));
}

#[test]
fn acpi_errors() {
    let mut mem = Fake::new();
    mem.boot_params(b"x");
    mem.acpi();
    let map = Handoff::from_boot_params(&mem, BOOT_PARAMS).unwrap().memmap;
    assert_eq!(
        acpi::check(&mem, 0, Some(true), &map),
        Err(Fail::RsdpMissing)
    );
    assert_eq!(acpi::check(&mem, 0, None, &map).unwrap().tables, 0);
    assert_eq!(
        acpi::check(&mem, RSDP, Some(false), &map),
        Err(Fail::RsdpUnexpected { addr: RSDP })
    );
    mem.0[RSDP as usize + 30] ^= 1; // breaks only the extended checksum
    assert_eq!(
        acpi::check(&mem, RSDP, None, &map),
        Err(Fail::RsdpChecksum {
            addr: RSDP,
            extended: true
        })
    );
    mem.acpi();
    mem.0[RSDP as usize + 0x300 + 40] ^= 1; // DSDT body
    assert_eq!(
        acpi::check(&mem, RSDP, None, &map),
        Err(Fail::Table {
            signature: *b"DSDT",
            addr: RSDP + 0x300
        })
    );
    mem.acpi();
    mem.put(RSDP + 0x40 + 36, &0x300000u64.to_le_bytes()); // XSDT entry into RAM
    mem.checksum(RSDP + 0x40, 44, RSDP + 0x40 + 9);
    assert!(matches!(
        acpi::check(&mem, RSDP, None, &map),
        Err(Fail::Table { .. })
    ));
}

#[test]
fn start_info_round_trip() {
    let mut mem = Fake::new();
    let si = 0x6000u64;
    mem.put(si, &start_info::MAGIC_VALUE.to_le_bytes());
    mem.put(si + start_info::VERSION as u64, &1u32.to_le_bytes());
    mem.put(si + start_info::NR_MODULES as u64, &1u32.to_le_bytes());
    mem.put(
        si + start_info::MODLIST_PADDR as u64,
        &(si + 0x100).to_le_bytes(),
    );
    mem.put(si + 0x100, &INITRD.to_le_bytes());
    mem.put(si + 0x108, &5u64.to_le_bytes());
    mem.put(
        si + start_info::CMDLINE_PADDR as u64,
        &CMDLINE.to_le_bytes(),
    );
    mem.put(CMDLINE, b"a b\0");
    mem.put(
        si + start_info::MEMMAP_PADDR as u64,
        &(si + 0x200).to_le_bytes(),
    );
    mem.put(si + start_info::MEMMAP_ENTRIES as u64, &2u32.to_le_bytes());
    for (i, (addr, size)) in [(0u64, 0x9fc00u64), (1 << 20, 3 << 20)]
        .into_iter()
        .enumerate()
    {
        let at = si + 0x200 + 24 * i as u64;
        mem.put(at, &addr.to_le_bytes());
        mem.put(at + 8, &size.to_le_bytes());
        mem.put(at + 16, &1u32.to_le_bytes());
    }
    mem.put(INITRD, b"hello");
    let h = Handoff::from_start_info(&mem, si).unwrap();
    assert_eq!(h.kind, Kind::Pvh);
    assert_eq!(h.cmdline, b"a b");
    assert_eq!(h.initrd, Some((INITRD, 5)));
    assert_eq!(h.rsdp, 0);
    h.check_initrd(&mem, Some(Initrd::of(b"hello"))).unwrap();
    mem.put(si, &0u32.to_le_bytes());
    assert_eq!(
        Handoff::from_start_info(&mem, si).unwrap_err(),
        Fail::StartInfoMagic { found: 0 }
    );
}
