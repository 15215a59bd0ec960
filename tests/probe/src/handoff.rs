//! Reading what the firmware handed over into one [`Handoff`], for both entry paths:
//!
//! - Linux `struct boot_params` (`arch/x86/include/uapi/asm/bootparam.h`, layout in
//!   `Documentation/arch/x86/zero-page.rst` and `boot.rst`);
//! - PVH `struct hvm_start_info` version 1 (Xen `include/public/arch-x86/hvm/start_info.h`).

use crate::args::Initrd;
use crate::memmap::{Entry, MemMap, MAX_ENTRIES};
use crate::{Fail, Memory, CMDLINE_SIZE, PROTOCOL_VERSION};

/// Offsets into `struct boot_params` ("the zero page").
pub mod zero_page {
    /// `u64 acpi_rsdp_addr`.
    pub const ACPI_RSDP_ADDR: usize = 0x070;
    /// `u32 ext_ramdisk_image`.
    pub const EXT_RAMDISK_IMAGE: usize = 0x0c0;
    /// `u32 ext_ramdisk_size`.
    pub const EXT_RAMDISK_SIZE: usize = 0x0c4;
    /// `u32 ext_cmd_line_ptr`.
    pub const EXT_CMD_LINE_PTR: usize = 0x0c8;
    /// `u8 e820_entries`.
    pub const E820_ENTRIES: usize = 0x1e8;
    /// `u8 sentinel`.
    pub const SENTINEL: usize = 0x1ef;
    /// `u16 hdr.boot_flag`.
    pub const BOOT_FLAG: usize = 0x1fe;
    /// `u32 hdr.header` ("HdrS").
    pub const HEADER: usize = 0x202;
    /// `u16 hdr.version`.
    pub const VERSION: usize = 0x206;
    /// `u8 hdr.type_of_loader`.
    pub const TYPE_OF_LOADER: usize = 0x210;
    /// `u32 hdr.ramdisk_image`.
    pub const RAMDISK_IMAGE: usize = 0x218;
    /// `u32 hdr.ramdisk_size`.
    pub const RAMDISK_SIZE: usize = 0x21c;
    /// `u32 hdr.cmd_line_ptr`.
    pub const CMD_LINE_PTR: usize = 0x228;
    /// `struct boot_e820_entry e820_table[128]` (20 bytes each).
    pub const E820_TABLE: usize = 0x2d0;
    /// Size of the zero page.
    pub const SIZE: usize = 4096;
}

/// Offsets into `struct hvm_start_info`.
pub mod start_info {
    /// `u32 magic`.
    pub const MAGIC: usize = 0;
    /// `u32 version`.
    pub const VERSION: usize = 4;
    /// `u32 nr_modules`.
    pub const NR_MODULES: usize = 12;
    /// `u64 modlist_paddr`.
    pub const MODLIST_PADDR: usize = 16;
    /// `u64 cmdline_paddr`.
    pub const CMDLINE_PADDR: usize = 24;
    /// `u64 rsdp_paddr`.
    pub const RSDP_PADDR: usize = 32;
    /// `u64 memmap_paddr`.
    pub const MEMMAP_PADDR: usize = 40;
    /// `u32 memmap_entries`.
    pub const MEMMAP_ENTRIES: usize = 48;
    /// Size of version 1.
    pub const SIZE: usize = 56;
    /// The magic value.
    pub const MAGIC_VALUE: u32 = 0x336e_c578;
    /// Size of `struct hvm_modlist_entry`.
    pub const MODULE_SIZE: usize = 32;
    /// Size of `struct hvm_memmap_table_entry`.
    pub const MEMMAP_ENTRY_SIZE: usize = 24;
    /// Longest command line the probe looks at on the PVH path (the ABI has no limit).
    pub const CMDLINE_LIMIT: u64 = 0x10000;
}

/// Which entry the probe came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Linux 64-bit boot protocol (bzImage).
    BzImage64,
    /// PVH 32-bit entry (ELF).
    Pvh,
}

impl Kind {
    /// The name in `PROBE ENTRY <name>`.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::BzImage64 => "bzImage-64",
            Kind::Pvh => "pvh",
        }
    }
}

/// What the firmware handed over, whichever the entry.
#[derive(Clone, Debug)]
pub struct Handoff<'m> {
    /// The entry path.
    pub kind: Kind,
    /// The command line, NUL excluded (empty if the pointer was 0).
    pub cmdline: &'m [u8],
    /// The initrd as `(address, size)`.
    pub initrd: Option<(u64, u64)>,
    /// The RSDP address, or 0.
    pub rsdp: u64,
    /// The memory map.
    pub memmap: MemMap,
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from(u32_at(b, off)) | (u64::from(u32_at(b, off + 4)) << 32)
}

/// The NUL-terminated string at `addr` (NUL excluded), looking at most `limit` bytes far.
/// Address 0 means an empty command line.
fn read_cstr<M: Memory>(mem: &M, addr: u64, limit: u64) -> Result<&[u8], Fail> {
    if addr == 0 {
        return Ok(&[]);
    }
    const CHUNK: u64 = 256;
    let mut len = 0u64;
    while len < limit {
        let n = CHUNK.min(limit - len);
        let chunk = mem
            .read(addr + len, n as usize)
            .ok_or(Fail::CmdlineUnreadable { addr })?;
        if let Some(nul) = chunk.iter().position(|&b| b == 0) {
            let total = (len + nul as u64) as usize;
            return mem
                .read(addr, total.max(1))
                .map(|s| &s[..total])
                .ok_or(Fail::CmdlineUnreadable { addr });
        }
        len += n;
    }
    Err(Fail::CmdlineUnterminated { addr, limit })
}

impl<'m> Handoff<'m> {
    /// Read `boot_params` at `addr` (RSI at the 64-bit entry) and what it points to.
    pub fn from_boot_params<M: Memory>(mem: &'m M, addr: u64) -> Result<Handoff<'m>, Fail> {
        use zero_page as z;
        let bp = mem.read(addr, z::SIZE).ok_or(Fail::NoBootInfo { addr })?;
        if u16_at(bp, z::BOOT_FLAG) != 0xaa55 {
            return Err(Fail::BootFlag {
                found: u16_at(bp, z::BOOT_FLAG),
            });
        }
        if u32_at(bp, z::HEADER) != u32::from_le_bytes(*b"HdrS") {
            return Err(Fail::HdrS {
                found: u32_at(bp, z::HEADER),
            });
        }
        if u16_at(bp, z::VERSION) != PROTOCOL_VERSION {
            return Err(Fail::Version {
                found: u16_at(bp, z::VERSION),
                expected: PROTOCOL_VERSION,
            });
        }
        if bp[z::SENTINEL] != 0 {
            return Err(Fail::Sentinel {
                found: bp[z::SENTINEL],
            });
        }
        if bp[z::TYPE_OF_LOADER] == 0 {
            return Err(Fail::NoLoaderType);
        }
        let count = bp[z::E820_ENTRIES];
        if !(2..=MAX_ENTRIES as u8).contains(&count) {
            return Err(Fail::MapEntries {
                count: count.into(),
            });
        }
        let mut memmap = MemMap::new();
        for raw in bp[z::E820_TABLE..].chunks_exact(20).take(count.into()) {
            let entry = Entry {
                addr: u64_at(raw, 0),
                size: u64_at(raw, 8),
                kind: u32_at(raw, 16),
            };
            memmap.push(entry).ok_or(Fail::MapEntries {
                count: count.into(),
            })?;
        }
        let join =
            |lo: usize, hi: usize| u64::from(u32_at(bp, lo)) | u64::from(u32_at(bp, hi)) << 32;
        let cmdline_addr = join(z::CMD_LINE_PTR, z::EXT_CMD_LINE_PTR);
        let initrd_size = join(z::RAMDISK_SIZE, z::EXT_RAMDISK_SIZE);
        Ok(Handoff {
            kind: Kind::BzImage64,
            cmdline: read_cstr(mem, cmdline_addr, u64::from(CMDLINE_SIZE) + 1)?,
            initrd: (initrd_size != 0)
                .then(|| (join(z::RAMDISK_IMAGE, z::EXT_RAMDISK_IMAGE), initrd_size)),
            rsdp: u64_at(bp, z::ACPI_RSDP_ADDR),
            memmap,
        })
    }

    /// Read `hvm_start_info` at `addr` (EBX at the PVH entry) and what it points to.
    pub fn from_start_info<M: Memory>(mem: &'m M, addr: u64) -> Result<Handoff<'m>, Fail> {
        use start_info as s;
        let si = mem.read(addr, s::SIZE).ok_or(Fail::NoBootInfo { addr })?;
        if u32_at(si, s::MAGIC) != s::MAGIC_VALUE {
            return Err(Fail::StartInfoMagic {
                found: u32_at(si, s::MAGIC),
            });
        }
        if u32_at(si, s::VERSION) < 1 {
            return Err(Fail::StartInfoVersion {
                found: u32_at(si, s::VERSION),
            });
        }
        let count = u32_at(si, s::MEMMAP_ENTRIES);
        if !(2..=MAX_ENTRIES as u32).contains(&count) {
            return Err(Fail::MapEntries {
                count: count.into(),
            });
        }
        let map_addr = u64_at(si, s::MEMMAP_PADDR);
        let raw = mem
            .read(map_addr, count as usize * s::MEMMAP_ENTRY_SIZE)
            .ok_or(Fail::MapUnreadable { addr: map_addr })?;
        let mut memmap = MemMap::new();
        for e in raw.chunks_exact(s::MEMMAP_ENTRY_SIZE) {
            let entry = Entry {
                addr: u64_at(e, 0),
                size: u64_at(e, 8),
                kind: u32_at(e, 16),
            };
            memmap.push(entry).ok_or(Fail::MapEntries {
                count: count.into(),
            })?;
        }
        let modules = u32_at(si, s::NR_MODULES);
        let initrd = if modules == 0 {
            None
        } else {
            let list = u64_at(si, s::MODLIST_PADDR);
            let m0 = mem.read(list, s::MODULE_SIZE).ok_or(Fail::ModList {
                addr: list,
                count: modules,
            })?;
            Some((u64_at(m0, 0), u64_at(m0, 8)))
        };
        Ok(Handoff {
            kind: Kind::Pvh,
            cmdline: read_cstr(mem, u64_at(si, s::CMDLINE_PADDR), s::CMDLINE_LIMIT)?,
            initrd,
            rsdp: u64_at(si, s::RSDP_PADDR),
            memmap,
        })
    }

    /// Check the initrd against `expect` (`None`: no initrd may be handed over): size,
    /// placement inside RAM, and FNV-1a 64 of its bytes.
    pub fn check_initrd<M: Memory>(&self, mem: &M, expect: Option<Initrd>) -> Result<(), Fail> {
        match (self.initrd, expect) {
            (None, None) => Ok(()),
            (Some((addr, size)), None) => Err(Fail::InitrdUnexpected { addr, size }),
            (None, Some(e)) => Err(Fail::InitrdMissing { expected: e.size }),
            (Some((addr, size)), Some(e)) => {
                if size != e.size {
                    return Err(Fail::InitrdSize {
                        found: size,
                        expected: e.size,
                    });
                }
                let placement = Fail::InitrdPlacement { addr, size };
                let end = addr.checked_add(size).ok_or(placement)?;
                if !self.memmap.ram_contains(addr, end) {
                    return Err(placement);
                }
                let bytes = mem
                    .read(addr, usize::try_from(size).map_err(|_| placement)?)
                    .ok_or(placement)?;
                let found = crate::fnv1a64(bytes);
                if found != e.hash {
                    return Err(Fail::InitrdHash {
                        found,
                        expected: e.hash,
                    });
                }
                Ok(())
            }
        }
    }
}
