//! The fallback when a kernel's module directory has no `modules.dep` (distribution packages ship
//! none: `depmod` writes it at install time): find `NAME.ko` files under the directory and read
//! each module's dependencies from the `depends=` entry of its `.modinfo` ELF section, which
//! `modpost` writes at build time. The result feeds the same resolver as `modules.dep`.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::path::Path;

/// The `depends=` list of a module's ELF image (64-bit little-endian, as on x86_64).
pub fn depends(elf: &[u8]) -> Result<Vec<String>, &'static str> {
    let u16_at = |o: usize| {
        elf.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let u64_at = |o: usize| {
        let b = elf.get(o..o + 8)?;
        usize::try_from(u64::from_le_bytes([
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
        ]))
        .ok()
    };
    if elf.get(..6) != Some(b"\x7fELF\x02\x01".as_slice()) {
        return Err("not a 64-bit little-endian ELF file");
    }
    let bad = "malformed ELF section headers";
    let shoff = u64_at(0x28).ok_or(bad)?;
    let (entsize, count, strndx) = (
        u16_at(0x3a).ok_or(bad)?,
        u16_at(0x3c).ok_or(bad)?,
        u16_at(0x3e).ok_or(bad)?,
    );
    let section = |i: usize| -> Option<(usize, &[u8])> {
        let h = shoff.checked_add(i.checked_mul(entsize)?)?;
        let (off, size) = (u64_at(h + 0x18)?, u64_at(h + 0x20)?);
        Some((u32_at(h)?, elf.get(off..off.checked_add(size)?)?))
    };
    let (_, names) = section(strndx).ok_or(bad)?;
    let modinfo = (0..count)
        .filter_map(section)
        .find(|(name, _)| {
            names
                .get(*name..)
                .is_some_and(|n| n.starts_with(b".modinfo\0"))
        })
        .map(|(_, data)| data)
        .ok_or("no .modinfo section")?;
    let list = modinfo
        .split(|&b| b == 0)
        .find_map(|e| e.strip_prefix(b"depends="))
        .unwrap_or_default();
    let list = std::str::from_utf8(list).map_err(|_| "depends= is not UTF-8")?;
    Ok(list
        .split(',')
        .filter(|d| !d.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Module name → path (relative to `dir`) of every `.ko` file under `dir`.
pub fn scan(dir: &Path) -> HashMap<String, String> {
    let mut found = HashMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else if let (Some(name), Ok(rel)) = (path.to_str(), path.strip_prefix(dir)) {
                if name.ends_with(".ko") {
                    found.insert(
                        crate::modules::name_of(name),
                        rel.to_string_lossy().into_owned(),
                    );
                }
            }
        }
    }
    found
}

/// A `modules.dep` text for `wanted` and their dependencies, built from the `.ko` files themselves.
pub fn synthesize_dep(dir: &Path, wanted: &[String]) -> Result<String> {
    let files = scan(dir);
    let mut out = String::new();
    let mut todo: Vec<String> = wanted.iter().map(|w| crate::modules::name_of(w)).collect();
    let mut seen = std::collections::HashSet::new();
    while let Some(name) = todo.pop() {
        // Unknown names are left out; the resolver reports them (or finds them built in).
        let Some(rel) = files.get(&name).filter(|_| seen.insert(name.clone())) else {
            continue;
        };
        let path = dir.join(rel);
        let elf = std::fs::read(&path)
            .map_err(|e| Error::io(format_args!("read {}", path.display()), e))?;
        let deps = depends(&elf).map_err(|e| Error::msg(format!("{}: {e}", path.display())))?;
        let dep_paths: Vec<&str> = deps
            .iter()
            .filter_map(|d| files.get(&crate::modules::name_of(d)))
            .map(String::as_str)
            .collect();
        out.push_str(&format!("{rel}: {}\n", dep_paths.join(" ")));
        todo.extend(deps.iter().map(|d| crate::modules::name_of(d)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 with a null section, `.modinfo` and `.shstrtab`.
    fn elf(modinfo: &[u8]) -> Vec<u8> {
        let shstrtab = b"\0.modinfo\0.shstrtab\0";
        let mut f = vec![0u8; 64];
        f[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let modinfo_off = f.len();
        f.extend_from_slice(modinfo);
        let strtab_off = f.len();
        f.extend_from_slice(shstrtab);
        let shoff = f.len();
        f[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        f[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        f[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        f[0x3e..0x40].copy_from_slice(&2u16.to_le_bytes());
        for (name, off, size) in [
            (0u32, 0usize, 0usize),
            (1, modinfo_off, modinfo.len()),
            (10, strtab_off, shstrtab.len()),
        ] {
            let mut h = [0u8; 64];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[0x18..0x20].copy_from_slice(&(off as u64).to_le_bytes());
            h[0x20..0x28].copy_from_slice(&(size as u64).to_le_bytes());
            f.extend_from_slice(&h);
        }
        f
    }

    #[test]
    fn reads_depends() {
        let e = elf(b"license=GPL\0depends=virtio,virtio_ring\0intree=Y\0name=virtio_mmio\0");
        assert_eq!(depends(&e).unwrap(), ["virtio", "virtio_ring"]);
        assert_eq!(depends(&elf(b"depends=\0")).unwrap(), Vec::<String>::new());
        assert_eq!(
            depends(&elf(b"license=GPL\0")).unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(depends(b"not an elf").is_err());
        let mut e = elf(b"depends=a\0");
        let n = e.len();
        e.truncate(n - 40);
        assert!(depends(&e).is_err());
        let mut e = elf(b"depends=a\0");
        e[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(depends(&e).is_err());
    }

    #[test]
    fn synthesizes_modules_dep_from_files() {
        let dir = std::env::temp_dir().join(format!("rinit-modinfo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("kernel/a")).unwrap();
        std::fs::write(dir.join("kernel/a/virtio_ring.ko"), elf(b"depends=\0")).unwrap();
        std::fs::write(
            dir.join("kernel/a/virtio.ko"),
            elf(b"depends=virtio_ring\0"),
        )
        .unwrap();
        std::fs::write(
            dir.join("kernel/a/virtio_mmio.ko"),
            elf(b"depends=virtio,virtio_ring\0"),
        )
        .unwrap();
        let dep = synthesize_dep(&dir, &["virtio-mmio".into()]).unwrap();
        let plan = crate::modules::ModDb::parse(&dep, "")
            .plan(&["virtio_mmio".into()])
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        use crate::modules::Step::Load;
        assert_eq!(
            plan,
            [
                Load("kernel/a/virtio_ring.ko".into()),
                Load("kernel/a/virtio.ko".into()),
                Load("kernel/a/virtio_mmio.ko".into())
            ]
        );
    }
}
