//! `cargo xtask build-fw`: build the firmware ELF and turn it into the flat `fw.rom`.
//!
//! The ELF is linked at the image's low alias (`linker/firmware.ld`); its loadable
//! segments are copied into a 64 KiB image whose first byte is guest address 0xF0000. The
//! build fails unless the image is exactly 64 KiB, every segment lies inside it, the
//! reset vector occupies the last 16 bytes, and the ELF is a static executable with no
//! dynamic relocations left to apply.

use std::fs;
use std::path::PathBuf;

use goblin::elf::{header, program_header, Elf};

use crate::util;

/// Guest address of the first byte of the image (the low alias below 1 MiB).
const BASE: u64 = 0xf0000;
/// Image size: QEMU needs a multiple of 64 KiB; we fill exactly one.
const SIZE: usize = 0x10000;

/// Build `target/fw.rom` (or `target/fw-log.rom` with the milestone log) and return its path.
pub fn build(log: bool) -> Result<PathBuf, String> {
    let mut cargo = util::cargo();
    cargo.args([
        "build",
        "--release",
        "-p",
        "mvm-firmware",
        "--target",
        "x86_64-unknown-none",
    ]);
    if log {
        cargo.args(["--features", "log"]);
    }
    util::run(&mut cargo)?;
    let target = util::root().join("target");
    let elf_path = target.join("x86_64-unknown-none/release/fw");
    let bytes = fs::read(&elf_path).map_err(|e| format!("{}: {e}", elf_path.display()))?;
    let (image, used) = flatten(&bytes)?;
    let out = target.join(if log { "fw-log.rom" } else { "fw.rom" });
    fs::write(&out, &image).map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!(
        "{}: {} bytes ({} used by code, data and page tables, {} free)",
        out.display(),
        image.len(),
        used,
        SIZE - 16 - used
    );
    Ok(out)
}

/// Turn the firmware ELF into the flat image; also return the bytes in use below the
/// reset vector.
pub fn flatten(bytes: &[u8]) -> Result<(Vec<u8>, usize), String> {
    let elf = Elf::parse(bytes).map_err(|e| format!("firmware ELF: {e}"))?;
    if elf.header.e_type != header::ET_EXEC {
        return Err("firmware is not a static executable (ET_EXEC): was it linked as PIE?".into());
    }
    if elf.dynamic.is_some() || !elf.dynrelas.is_empty() || !elf.dynrels.is_empty() {
        return Err("firmware has dynamic relocations: nothing would apply them".into());
    }
    let mut image = vec![0u8; SIZE];
    let mut used = 0usize;
    for ph in elf
        .program_headers
        .iter()
        .filter(|p| p.p_type == program_header::PT_LOAD)
    {
        let start = ph
            .p_paddr
            .checked_sub(BASE)
            .ok_or("segment below 0xF0000")? as usize;
        let end = start
            .checked_add(ph.p_memsz as usize)
            .ok_or("segment size overflows")?;
        if end > SIZE {
            return Err(format!("segment at {:#x} ends past 1 MiB", ph.p_paddr));
        }
        let file = ph.file_range();
        let src = bytes
            .get(file.clone())
            .ok_or("segment outside the ELF file")?;
        image[start..start + src.len()].copy_from_slice(src);
        if start < SIZE - 16 {
            used = used.max(end);
        }
    }
    // 16-bit far jump opcode at the reset vector, and the reset vector is the last 16 bytes.
    if image[SIZE - 16] != 0xea {
        return Err("no far jump at the reset vector (offset 0xFFF0)".into());
    }
    Ok((image, used))
}
