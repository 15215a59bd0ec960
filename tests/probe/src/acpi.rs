//! ACPI checks (ACPI 6.x §5.2.5 RSDP, §5.2.6 table header, §5.2.7 RSDT, §5.2.8 XSDT,
//! §5.2.9 FADT): the RSDP's checksums, and every table reachable from it summing to 0,
//! which is what QEMU's `etc/table-loader` ADD_POINTER and ADD_CHECKSUM commands
//! (`hw/acpi/bios-linker-loader.c`) must have produced. The RSDP and the tables must not
//! lie in usable RAM.

use crate::memmap::MemMap;
use crate::{Fail, Memory};

/// Size of the ACPI 1.0 part of the RSDP (covered by the first checksum).
const RSDP_V1_SIZE: usize = 20;
/// Size of the ACPI 2.0 RSDP.
const RSDP_V2_SIZE: usize = 36;
/// Size of the common table header.
const HEADER_SIZE: usize = 36;
/// Largest table the probe reads (sanity bound on `length`).
const MAX_TABLE: u32 = 1 << 20;
/// Most tables the probe follows from the root table.
const MAX_TABLES: usize = 64;

fn sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b))
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from(u32_at(b, off)) | (u64::from(u32_at(b, off + 4)) << 32)
}

/// What the ACPI check found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// RSDP address (0: none).
    pub rsdp: u64,
    /// RSDP revision.
    pub revision: u8,
    /// Tables checked (root table, its entries, and the DSDT).
    pub tables: u32,
}

/// Check the RSDP at `rsdp` (0: none) against `expect` (`probe.acpi`), then the tables.
pub fn check<M: Memory>(
    mem: &M,
    rsdp: u64,
    expect: Option<bool>,
    map: &MemMap,
) -> Result<Summary, Fail> {
    match (rsdp, expect) {
        (0, Some(true)) => return Err(Fail::RsdpMissing),
        (0, _) => return Ok(Summary::default()),
        (addr, Some(false)) => return Err(Fail::RsdpUnexpected { addr }),
        _ => {}
    }
    let addr = rsdp;
    let v1 = mem
        .read(addr, RSDP_V1_SIZE)
        .filter(|b| &b[..8] == b"RSD PTR ")
        .ok_or(Fail::RsdpSignature { addr })?;
    if sum(v1) != 0 {
        return Err(Fail::RsdpChecksum {
            addr,
            extended: false,
        });
    }
    let revision = v1[15];
    let rsdt = u64::from(u32_at(v1, 16));
    let (len, xsdt) = if revision >= 2 {
        let v2 = mem
            .read(addr, RSDP_V2_SIZE)
            .ok_or(Fail::RsdpSignature { addr })?;
        let len = u32_at(v2, 20) as usize;
        let full = mem
            .read(addr, len.max(RSDP_V2_SIZE))
            .filter(|_| len >= RSDP_V2_SIZE)
            .ok_or(Fail::RsdpChecksum {
                addr,
                extended: true,
            })?;
        if sum(full) != 0 {
            return Err(Fail::RsdpChecksum {
                addr,
                extended: true,
            });
        }
        (len, u64_at(v2, 24))
    } else {
        (RSDP_V1_SIZE, 0)
    };
    if map.ram_overlaps(addr, addr + len as u64) {
        return Err(Fail::RsdpInRam { addr });
    }
    let mut summary = Summary {
        rsdp,
        revision,
        tables: 0,
    };
    let (root, signature, width) = if xsdt != 0 {
        (xsdt, *b"XSDT", 8)
    } else {
        (rsdt, *b"RSDT", 4)
    };
    let body = table(mem, map, root, Some(signature))?;
    summary.tables += 1;
    for entry in body[HEADER_SIZE..].chunks_exact(width).take(MAX_TABLES) {
        let addr = if width == 8 {
            u64_at(entry, 0)
        } else {
            u64::from(u32_at(entry, 0))
        };
        let t = table(mem, map, addr, None)?;
        summary.tables += 1;
        if &t[..4] == b"FACP" {
            summary.tables += check_dsdt(mem, map, t)?;
        }
    }
    Ok(summary)
}

/// The FADT's DSDT (X_DSDT at 140 if present and non-zero, else DSDT at 40).
fn check_dsdt<M: Memory>(mem: &M, map: &MemMap, fadt: &[u8]) -> Result<u32, Fail> {
    let x_dsdt = if fadt.len() >= 148 {
        u64_at(fadt, 140)
    } else {
        0
    };
    let dsdt = match x_dsdt {
        0 if fadt.len() >= 44 => u64::from(u32_at(fadt, 40)),
        0 => 0,
        x => x,
    };
    if dsdt == 0 {
        return Ok(0);
    }
    table(mem, map, dsdt, Some(*b"DSDT"))?;
    Ok(1)
}

/// The whole table at `addr` after checking its signature (if given), length, checksum,
/// and that it is not in RAM.
fn table<'m, M: Memory>(
    mem: &'m M,
    map: &MemMap,
    addr: u64,
    signature: Option<[u8; 4]>,
) -> Result<&'m [u8], Fail> {
    let bad = |found: Option<&[u8]>| Fail::Table {
        signature: found
            .map(|h| [h[0], h[1], h[2], h[3]])
            .or(signature)
            .unwrap_or(*b"????"),
        addr,
    };
    let header = mem.read(addr, HEADER_SIZE).ok_or(bad(None))?;
    if signature.is_some_and(|s| header[..4] != s) {
        return Err(bad(Some(header)));
    }
    let len = u32_at(header, 4);
    if !(HEADER_SIZE as u32..=MAX_TABLE).contains(&len) {
        return Err(bad(Some(header)));
    }
    let body = mem.read(addr, len as usize).ok_or(bad(Some(header)))?;
    if sum(body) != 0 || map.ram_overlaps(addr, addr + u64::from(len)) {
        return Err(bad(Some(header)));
    }
    Ok(body)
}
