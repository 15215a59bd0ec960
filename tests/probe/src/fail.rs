//! Why a check failed: one variant per finding, printed as the detail of
//! `PROBE FAIL <check>: <detail>`.

use core::fmt;

use crate::Check;

/// Up to 32 bytes of a command-line token, kept for error messages (no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Token {
    buf: [u8; 32],
    len: u8,
}

impl Token {
    /// The first 32 bytes of `bytes`.
    pub fn new(bytes: &[u8]) -> Token {
        let mut buf = [0; 32];
        let len = bytes.len().min(buf.len());
        buf[..len].copy_from_slice(&bytes[..len]);
        Token {
            buf,
            len: len as u8,
        }
    }

    /// The kept bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.as_bytes() {
            if b.is_ascii_graphic() {
                write!(f, "{}", b as char)?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token(\"{self}\")")
    }
}

/// A failed check, with what was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fail {
    /// 64-bit entry without EFER.LMA.
    NotLongMode { efer: u64 },
    /// PVH entry with CR0.PE clear or CR0.PG set.
    PvhCr0 { cr0: u64 },
    /// Selectors at the 64-bit entry.
    Selectors { cs: u16, ds: u16, es: u16, ss: u16 },
    /// RFLAGS/EFLAGS.IF was set.
    InterruptsEnabled { flags: u64 },
    /// RSI / EBX was 0 or pointed at unreadable memory.
    NoBootInfo { addr: u64 },
    /// `boot_params.hdr.boot_flag` is not 0xAA55.
    BootFlag { found: u16 },
    /// `boot_params.hdr.header` is not "HdrS".
    HdrS { found: u32 },
    /// `boot_params.hdr.version` differs from the probe's own header.
    Version { found: u16, expected: u16 },
    /// `boot_params.sentinel` is not 0.
    Sentinel { found: u8 },
    /// `type_of_loader` is 0 (Linux then ignores the initrd).
    NoLoaderType,
    /// `hvm_start_info.magic` is wrong.
    StartInfoMagic { found: u32 },
    /// `hvm_start_info.version` is 0 (no memory map).
    StartInfoVersion { found: u32 },
    /// Modules announced but `modlist_paddr` unreadable.
    ModList { addr: u64, count: u32 },
    /// Memory map with fewer than 2 entries (Linux ignores it) or more than 128.
    MapEntries { count: u64 },
    /// Memory map stored at an unreadable address.
    MapUnreadable { addr: u64 },
    /// Two memory-map entries overlap.
    MapOverlap { a: u64, b: u64 },
    /// RAM total differs from `probe.mem` by more than the 1 MiB of low holes.
    RamTotal { found: u64, expected: u64 },
    /// More than 3 GiB of RAM but no RAM entry above 4 GiB.
    NoHighRam { expected: u64 },
    /// `va` does not translate to itself (`pa` is `u64::MAX` when unmapped).
    NotIdentity { va: u64, pa: u64 },
    /// `[start, end)` (the probe image itself) is not inside one RAM entry.
    NotInRam { start: u64, end: u64 },
    /// The command line pointer is unreadable.
    CmdlineUnreadable { addr: u64 },
    /// No NUL within `limit` bytes of the command line.
    CmdlineUnterminated { addr: u64, limit: u64 },
    /// A `probe.*` option the probe does not know.
    UnknownOption(Token),
    /// A `probe.*` option with a malformed value.
    BadValue(Token),
    /// An initrd was handed over although none was expected.
    InitrdUnexpected { addr: u64, size: u64 },
    /// No initrd was handed over although one was expected.
    InitrdMissing { expected: u64 },
    /// The initrd has the wrong size.
    InitrdSize { found: u64, expected: u64 },
    /// The initrd's bytes differ (FNV-1a 64).
    InitrdHash { found: u64, expected: u64 },
    /// The initrd is unreadable or outside RAM.
    InitrdPlacement { addr: u64, size: u64 },
    /// No RSDP although `probe.acpi=1`.
    RsdpMissing,
    /// An RSDP although `probe.acpi=0`.
    RsdpUnexpected { addr: u64 },
    /// RSDP unreadable or without "RSD PTR ".
    RsdpSignature { addr: u64 },
    /// RSDP checksum (first 20 bytes) or extended checksum (revision 2) wrong.
    RsdpChecksum { addr: u64, extended: bool },
    /// The RSDP lies in usable RAM, where the kernel may overwrite it.
    RsdpInRam { addr: u64 },
    /// An ACPI table is unreadable, too short, or has a bad checksum.
    Table { signature: [u8; 4], addr: u64 },
}

impl Fail {
    /// The check this finding belongs to (decides the exit code).
    pub const fn check(&self) -> Check {
        match self {
            Fail::NotLongMode { .. } | Fail::PvhCr0 { .. } => Check::CpuMode,
            Fail::Selectors { .. } => Check::Segments,
            Fail::InterruptsEnabled { .. } => Check::Interrupts,
            Fail::NoBootInfo { .. }
            | Fail::BootFlag { .. }
            | Fail::HdrS { .. }
            | Fail::Version { .. }
            | Fail::Sentinel { .. }
            | Fail::NoLoaderType
            | Fail::StartInfoMagic { .. }
            | Fail::StartInfoVersion { .. }
            | Fail::ModList { .. } => Check::BootInfo,
            Fail::MapEntries { .. }
            | Fail::MapUnreadable { .. }
            | Fail::MapOverlap { .. }
            | Fail::RamTotal { .. }
            | Fail::NoHighRam { .. }
            | Fail::NotInRam { .. } => Check::E820,
            Fail::CmdlineUnreadable { .. } | Fail::CmdlineUnterminated { .. } => Check::Cmdline,
            Fail::UnknownOption(_) | Fail::BadValue(_) => Check::Args,
            Fail::InitrdUnexpected { .. }
            | Fail::InitrdMissing { .. }
            | Fail::InitrdSize { .. }
            | Fail::InitrdHash { .. }
            | Fail::InitrdPlacement { .. } => Check::Initrd,
            Fail::RsdpMissing
            | Fail::RsdpUnexpected { .. }
            | Fail::RsdpSignature { .. }
            | Fail::RsdpChecksum { .. }
            | Fail::RsdpInRam { .. }
            | Fail::Table { .. } => Check::Acpi,
            Fail::NotIdentity { .. } => Check::IdentityMap,
        }
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Fail::NotLongMode { efer } => write!(f, "EFER.LMA is clear (EFER={efer:#x})"),
            Fail::NotIdentity { va, pa: u64::MAX } => write!(f, "{va:#x} is not mapped"),
            Fail::NotIdentity { va, pa } => write!(f, "{va:#x} maps to {pa:#x}, not to itself"),
            Fail::PvhCr0 { cr0 } => write!(f, "CR0={cr0:#x}: PVH needs PE=1 and PG=0"),
            Fail::Selectors { cs, ds, es, ss } => write!(
                f,
                "CS={cs:#x} DS={ds:#x} ES={es:#x} SS={ss:#x}, need CS=0x10 and DS/ES/SS=0x18"
            ),
            Fail::InterruptsEnabled { flags } => write!(f, "IF is set (flags={flags:#x})"),
            Fail::NoBootInfo { addr } => write!(f, "boot info pointer {addr:#x} is unreadable"),
            Fail::BootFlag { found } => write!(f, "boot_flag is {found:#06x}, not 0xaa55"),
            Fail::HdrS { found } => write!(f, "header magic is {found:#010x}, not \"HdrS\""),
            Fail::Version { found, expected } => {
                write!(
                    f,
                    "version is {found:#06x}, the probe's header says {expected:#06x}"
                )
            }
            Fail::Sentinel { found } => write!(f, "sentinel (0x1ef) is {found:#x}, not 0"),
            Fail::NoLoaderType => f.write_str("type_of_loader is 0 (Linux would drop the initrd)"),
            Fail::StartInfoMagic { found } => {
                write!(f, "hvm_start_info magic is {found:#x}, not 0x336ec578")
            }
            Fail::StartInfoVersion { found } => {
                write!(f, "hvm_start_info version is {found}, need >= 1")
            }
            Fail::ModList { addr, count } => {
                write!(
                    f,
                    "{count} modules but modlist_paddr {addr:#x} is unreadable"
                )
            }
            Fail::MapEntries { count } => write!(f, "{count} entries, need 2..=128"),
            Fail::MapUnreadable { addr } => write!(f, "memory map at {addr:#x} is unreadable"),
            Fail::MapOverlap { a, b } => {
                write!(f, "entries at {a:#x} and {b:#x} overlap")
            }
            Fail::RamTotal { found, expected } => write!(
                f,
                "RAM adds up to {found:#x} bytes, expected {expected:#x} minus at most 1 MiB"
            ),
            Fail::NoHighRam { expected } => {
                write!(
                    f,
                    "no RAM above 4 GiB although the machine has {expected:#x} bytes"
                )
            }
            Fail::NotInRam { start, end } => {
                write!(
                    f,
                    "probe image [{start:#x}, {end:#x}) is not inside one RAM entry"
                )
            }
            Fail::CmdlineUnreadable { addr } => {
                write!(f, "command line pointer {addr:#x} is unreadable")
            }
            Fail::CmdlineUnterminated { addr, limit } => {
                write!(
                    f,
                    "command line at {addr:#x} has no NUL within {limit} bytes"
                )
            }
            Fail::UnknownOption(t) => write!(f, "unknown option `{t}`"),
            Fail::BadValue(t) => write!(f, "malformed option `{t}`"),
            Fail::InitrdUnexpected { addr, size } => {
                write!(f, "got {size} bytes at {addr:#x}, expected none")
            }
            Fail::InitrdMissing { expected } => write!(f, "none given, expected {expected} bytes"),
            Fail::InitrdSize { found, expected } => {
                write!(f, "size is {found} bytes, expected {expected}")
            }
            Fail::InitrdHash { found, expected } => {
                write!(f, "FNV-1a is {found:016x}, expected {expected:016x}")
            }
            Fail::InitrdPlacement { addr, size } => {
                write!(f, "{size} bytes at {addr:#x} are unreadable or not in RAM")
            }
            Fail::RsdpMissing => f.write_str("no RSDP, expected one (probe.acpi=1)"),
            Fail::RsdpUnexpected { addr } => {
                write!(f, "RSDP at {addr:#x}, expected none (probe.acpi=0)")
            }
            Fail::RsdpSignature { addr } => write!(f, "no \"RSD PTR \" at {addr:#x}"),
            Fail::RsdpChecksum { addr, extended } => write!(
                f,
                "RSDP at {addr:#x}: {} checksum is wrong",
                if extended { "extended" } else { "ACPI 1.0" }
            ),
            Fail::RsdpInRam { addr } => write!(f, "RSDP at {addr:#x} lies in usable RAM"),
            Fail::Table { signature, addr } => write!(
                f,
                "table {} at {addr:#x} is unreadable or fails its checksum",
                Token::new(&signature)
            ),
        }
    }
}
