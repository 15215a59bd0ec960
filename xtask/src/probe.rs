//! `cargo xtask build-probe`: build the probe kernel (`tests/probe`) and turn its ELF into
//! the test images under `target/probe/`:
//!
//! | file | what |
//! |---|---|
//! | `probe.bzImage` | Linux boot protocol 2.15 image (`Documentation/arch/x86/boot.rst`): setup sectors with the header and a real-mode stub that reports "16-bit setup code was run", then the protected-mode part linked at 0x100000 (64-bit entry at +0x200) |
//! | `probe-pvh.elf` | the linked ELF itself: one PT_LOAD at 1 MiB and a 4-aligned PT_NOTE with `XEN_ELFNOTE_PHYS32_ENTRY` |
//! | `bad-version.bzImage` | `version` = 0x0200 (older than the 64-bit entry's 2.12) |
//! | `no64.bzImage` | `xloadflags` without `XLF_KERNEL_64` |
//! | `huge.bzImage` | `init_size` = 0x7000_0000 (cannot fit in 128 MiB) |
//! | `garbage.bin` | 64 KiB that is neither bzImage, ELF nor multiboot; QEMU 7.2 loads it as an ancient zImage (protocol 0) |

use std::fs;
use std::path::{Path, PathBuf};

use goblin::elf::{program_header, Elf};
use mvm_probe::{CMDLINE_SIZE, ENTRY64_OFFSET, LOAD_ADDR, PROTOCOL_VERSION};

use crate::util;

/// Where the header's `jump` leads: the real-mode stub's offset in the setup sectors.
const SETUP_STUB: usize = 0x280;
/// `loadflags`: protected-mode code at 1 MiB.
const LOADED_HIGH: u8 = 1 << 0;
/// `xloadflags`: 64-bit entry at load address + 0x200.
const XLF_KERNEL_64: u16 = 1 << 0;
/// `XEN_ELFNOTE_PHYS32_ENTRY`.
const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// Header offsets patched by the bad-input variants.
const VERSION: usize = 0x206;
const XLOADFLAGS: usize = 0x236;
const INIT_SIZE: usize = 0x260;

/// What the linked probe ELF provides.
#[derive(Debug)]
struct Probe {
    /// The loadable bytes from `LOAD_ADDR` (`.bss` excluded).
    flat: Vec<u8>,
    /// Bytes the probe occupies once running (`.bss` included), page-rounded.
    init_size: u32,
    /// The real-mode stub (`probe_setup16_start..probe_setup16_end`).
    setup16: Vec<u8>,
    /// `probe_kernel_info - LOAD_ADDR`.
    kernel_info_offset: u32,
}

/// Build the probe and write every image; returns `target/probe`.
pub fn build() -> Result<PathBuf, String> {
    let target = "x86_64-unknown-none";
    util::run(util::cargo().args([
        "build",
        "--release",
        "-p",
        "mvm-probe",
        "--bin",
        "probe",
        "--target",
        target,
    ]))?;
    let elf_path = util::root()
        .join("target")
        .join(target)
        .join("release/probe");
    let bytes = read(&elf_path)?;
    let probe = Probe::from_elf(&bytes)?;
    let out = util::root().join("target/probe");
    fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let bz = bzimage(&probe)?;
    let mut images: Vec<(&str, Vec<u8>)> = vec![("probe-pvh.elf", bytes.clone())];
    images.push((
        "bad-version.bzImage",
        patched(&bz, VERSION, &0x0200u16.to_le_bytes()),
    ));
    let xlf = u16::from_le_bytes([bz[XLOADFLAGS], bz[XLOADFLAGS + 1]]) & !XLF_KERNEL_64;
    images.push(("no64.bzImage", patched(&bz, XLOADFLAGS, &xlf.to_le_bytes())));
    images.push((
        "huge.bzImage",
        patched(&bz, INIT_SIZE, &0x7000_0000u32.to_le_bytes()),
    ));
    images.push(("garbage.bin", garbage()));
    images.push(("probe.bzImage", bz));
    for (name, data) in &images {
        let path = out.join(name);
        fs::write(&path, data).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("{}: {} bytes", path.display(), data.len());
    }
    Ok(out)
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn symbol(elf: &Elf<'_>, name: &str) -> Result<u64, String> {
    elf.syms
        .iter()
        .find(|s| elf.strtab.get_at(s.st_name) == Some(name))
        .map(|s| s.st_value)
        .ok_or_else(|| format!("probe ELF has no symbol `{name}`"))
}

impl Probe {
    /// Check the ELF's layout (one PT_LOAD at 1 MiB, entries where the boot protocols want
    /// them, a PVH note QEMU can read) and extract what the images need.
    fn from_elf(bytes: &[u8]) -> Result<Probe, String> {
        let elf = Elf::parse(bytes).map_err(|e| format!("probe ELF: {e}"))?;
        let loads: Vec<_> = elf
            .program_headers
            .iter()
            .filter(|p| p.p_type == program_header::PT_LOAD)
            .collect();
        let [load] = loads[..] else {
            return Err(format!(
                "probe ELF has {} PT_LOAD segments, want 1",
                loads.len()
            ));
        };
        if load.p_paddr != LOAD_ADDR || load.p_vaddr != LOAD_ADDR {
            return Err(format!(
                "probe PT_LOAD at {:#x}, want {LOAD_ADDR:#x}",
                load.p_paddr
            ));
        }
        let file = usize::try_from(load.p_offset)
            .ok()
            .zip(usize::try_from(load.p_filesz).ok())
            .and_then(|(off, len)| bytes.get(off..off.checked_add(len)?))
            .ok_or("probe PT_LOAD reaches past the end of the file")?;
        let init_size = u32::try_from(load.p_memsz.next_multiple_of(4096))
            .map_err(|_| "probe image larger than 4 GiB")?;
        let entry64 = symbol(&elf, "probe_entry64")?;
        if entry64 != LOAD_ADDR + ENTRY64_OFFSET {
            return Err(format!(
                "probe_entry64 at {entry64:#x}, want load address + 0x200"
            ));
        }
        check_pvh_note(&elf, bytes)?;
        let offset = |name: &str| -> Result<usize, String> {
            let addr = symbol(&elf, name)?;
            addr.checked_sub(LOAD_ADDR)
                .and_then(|o| usize::try_from(o).ok())
                .filter(|&o| o <= file.len())
                .ok_or_else(|| format!("`{name}` ({addr:#x}) lies outside the loaded bytes"))
        };
        let setup16 = file[offset("probe_setup16_start")?..offset("probe_setup16_end")?].to_vec();
        Ok(Probe {
            flat: file.to_vec(),
            init_size,
            setup16,
            kernel_info_offset: offset("probe_kernel_info")? as u32,
        })
    }
}

/// QEMU (`hw/i386/x86.c`, `read_pvh_start_addr`) pads the note name to the segment's
/// `p_align` and reads a pointer-sized entry, so insist on p_align 4 and an 8-byte desc.
fn check_pvh_note(elf: &Elf<'_>, bytes: &[u8]) -> Result<(), String> {
    let entry = symbol(elf, "probe_pvh_entry")?;
    let note_ph = elf
        .program_headers
        .iter()
        .find(|p| p.p_type == program_header::PT_NOTE)
        .ok_or("probe ELF has no PT_NOTE")?;
    if note_ph.p_align != 4 {
        return Err(format!(
            "PT_NOTE p_align is {}, QEMU needs 4",
            note_ph.p_align
        ));
    }
    let found = elf
        .iter_note_headers(bytes)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .find(|n| n.n_type == XEN_ELFNOTE_PHYS32_ENTRY && n.name == "Xen")
        .ok_or("probe ELF has no Xen PHYS32_ENTRY note")?;
    let desc: [u8; 8] = found
        .desc
        .try_into()
        .map_err(|_| "PHYS32_ENTRY note must hold 8 bytes")?;
    if u64::from_le_bytes(desc) != entry || elf.entry != entry {
        return Err(format!(
            "PVH note/ELF entry do not name probe_pvh_entry ({entry:#x})"
        ));
    }
    Ok(())
}

/// The setup header fields the probe declares (`Documentation/arch/x86/boot.rst`).
#[derive(Debug)]
struct Header {
    setup_sects: u8,
    syssize: u32,
    init_size: u32,
    kernel_info_offset: u32,
}

impl Header {
    /// Write the header into the setup sectors `s` (at least 0x26c bytes).
    fn write(&self, s: &mut [u8]) {
        let mut put = |off: usize, bytes: &[u8]| s[off..off + bytes.len()].copy_from_slice(bytes);
        put(0x1f1, &[self.setup_sects]);
        put(0x1f4, &self.syssize.to_le_bytes());
        put(0x1fe, &0xaa55u16.to_le_bytes()); // boot_flag
        put(0x200, &[0xeb, (SETUP_STUB - 0x202) as u8]); // jump: short jmp to the stub
        put(0x202, b"HdrS");
        put(VERSION, &PROTOCOL_VERSION.to_le_bytes());
        put(0x211, &[LOADED_HIGH]); // loadflags
        put(0x214, &(LOAD_ADDR as u32).to_le_bytes()); // code32_start
        put(0x22c, &0x7fff_ffffu32.to_le_bytes()); // initrd_addr_max
        put(0x230, &(LOAD_ADDR as u32).to_le_bytes()); // kernel_alignment: 1 MiB
        put(0x234, &[1, 20]); // relocatable_kernel, min_alignment (2^20)
        put(XLOADFLAGS, &XLF_KERNEL_64.to_le_bytes());
        put(0x238, &CMDLINE_SIZE.to_le_bytes());
        put(0x258, &LOAD_ADDR.to_le_bytes()); // pref_address
        put(INIT_SIZE, &self.init_size.to_le_bytes());
        put(0x268, &self.kernel_info_offset.to_le_bytes());
    }
}

/// Setup sectors (boot sector + header + real-mode stub) followed by the protected-mode
/// part.
fn bzimage(probe: &Probe) -> Result<Vec<u8>, String> {
    let stub_end = SETUP_STUB + probe.setup16.len();
    let setup_sects = stub_end.div_ceil(512).saturating_sub(1).max(1);
    let header = Header {
        setup_sects: u8::try_from(setup_sects).map_err(|_| "real-mode stub too large")?,
        syssize: u32::try_from(probe.flat.len().div_ceil(16)).map_err(|_| "probe too large")?,
        init_size: probe.init_size,
        kernel_info_offset: probe.kernel_info_offset,
    };
    let mut image = vec![0u8; (setup_sects + 1) * 512];
    header.write(&mut image);
    image[SETUP_STUB..stub_end].copy_from_slice(&probe.setup16);
    image.extend_from_slice(&probe.flat);
    Ok(image)
}

fn patched(image: &[u8], offset: usize, bytes: &[u8]) -> Vec<u8> {
    let mut out = image.to_vec();
    out[offset..offset + bytes.len()].copy_from_slice(bytes);
    out
}

/// 64 KiB of pseudo-random bytes that QEMU's `x86_load_linux` takes as an ancient zImage:
/// no "HdrS", no ELF magic, no multiboot magic in the first 8 KiB, and `setup_sects` small
/// enough that the setup part fits in the file (else QEMU refuses it itself).
fn garbage() -> Vec<u8> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut data: Vec<u8> = (0..0x10000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    data[0] = 0; // not "\x7fELF"
    data[0x1f1] = 8; // setup_sects: 4.5 KiB of setup
    data[0x202] = 0; // not "HdrS"
    for word in data[..8192].chunks_exact_mut(4) {
        if word == 0x1bad_b002u32.to_le_bytes() {
            word[0] = 0;
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_probe() -> Probe {
        Probe {
            flat: vec![0x90; 0x1234],
            init_size: 0x9000,
            setup16: vec![0xfa, 0xfc, 0xf4],
            kernel_info_offset: 0x1c0,
        }
    }

    #[test]
    fn bzimage_header() {
        let image = bzimage(&fake_probe()).unwrap();
        let u16_at = |o: usize| u16::from_le_bytes([image[o], image[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes(image[o..o + 4].try_into().unwrap());
        assert_eq!(image[0x1f1], 1);
        assert_eq!(image.len(), 1024 + 0x1234);
        assert_eq!(u16_at(0x1fe), 0xaa55);
        assert_eq!(&image[0x202..0x206], b"HdrS");
        assert_eq!(u16_at(VERSION), 0x020f);
        assert_eq!(0x202 + usize::from(image[0x201]), SETUP_STUB);
        assert_eq!(image[0x200], 0xeb);
        assert_eq!(&image[SETUP_STUB..SETUP_STUB + 3], &[0xfa, 0xfc, 0xf4]);
        assert_eq!(u32_at(0x1f4), 0x124);
        assert_eq!(u32_at(0x238), 2048);
        assert_eq!(u32_at(INIT_SIZE), 0x9000);
        assert_eq!(u16_at(XLOADFLAGS), 1);
        assert_eq!(image[0x211], 1);
        assert_eq!(u32_at(0x268), 0x1c0);
        assert_eq!(&image[1024..], &[0x90; 0x1234][..]);
    }

    #[test]
    fn garbage_is_no_known_format() {
        let g = garbage();
        assert_eq!(g.len(), 65536);
        assert_ne!(&g[..4], b"\x7fELF");
        assert_ne!(&g[0x202..0x206], b"HdrS");
        assert!((usize::from(g[0x1f1]) + 1) * 512 < g.len());
        assert!(!g[..8192]
            .chunks_exact(4)
            .any(|w| w == 0x1bad_b002u32.to_le_bytes()));
        assert_eq!(g, garbage(), "deterministic");
    }

    #[test]
    fn patching_touches_only_the_field() {
        let image = bzimage(&fake_probe()).unwrap();
        let p = patched(&image, VERSION, &0x0200u16.to_le_bytes());
        let diff: Vec<_> = (0..image.len()).filter(|&i| image[i] != p[i]).collect();
        assert_eq!(diff, [VERSION]);
    }
}
