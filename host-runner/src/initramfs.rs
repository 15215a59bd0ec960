//! The guest's initramfs (cpio newc, [`crate::cpio`]): rinit as `/init`, the kernel modules the
//! devices in use need (with a `modules.dep` of just those, which rinit reads), and, for the
//! built-in root, a static busybox with its applet links.
//!
//! The archive is cached under `<cache>/initramfs/<sha256>.cpio`, named by the SHA-256 of
//! everything that goes into it, so a changed rinit, module or busybox gives a new file and an
//! unchanged set is reused without writing anything. The per-run settings normally travel on the
//! kernel command line; when they need a spec file, [`with_spec`] writes a per-run copy with a
//! second, tiny archive appended (the kernel unpacks concatenated archives in order).

use crate::cpio::{Archive, DeviceKind};
use crate::error::{Error, Result};
use crate::modules::{dep_line, uncompressed_rel, Module, ModuleDb};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Changes whenever the layout below changes, so old cache entries are not reused.
const LAYOUT_VERSION: &[u8] = b"mvm-initramfs-v2";
/// Archives are padded with zeros to a whole number of pages (the kernel skips zero padding
/// between and after archives). QEMU puts a PVH initrd at the top of RAM ending at
/// `0x...f000 + size % 4096`; SeaBIOS keeps its ACPI tables in that last page, and an initrd
/// ending inside them corrupts them (70–90 s boots). Ending on a page boundary avoids it.
const PAD: usize = 4096;
/// Where rinit reads its spec file (its default, `config::DEFAULT_SPEC`).
pub const SPEC_PATH: &str = "rinit.spec";

/// Modules for the initramfs: the database they come from, the kernel release, the list.
#[derive(Debug)]
pub struct ModuleSet<'a> {
    pub db: &'a ModuleDb,
    pub kver: &'a str,
    pub modules: Vec<Module>,
}

/// What goes into the archive.
#[derive(Debug)]
pub struct Inputs<'a> {
    /// The static rinit binary.
    pub rinit: &'a Path,
    /// Kernel modules, if the devices need any.
    pub modules: Option<ModuleSet<'a>>,
    /// A static busybox for the built-in root.
    pub busybox: Option<&'a Path>,
}

/// The loaded contents, hashed before anything is assembled.
struct Loaded {
    rinit: Vec<u8>,
    kver: String,
    dep: String,
    modules: Vec<(String, Vec<u8>)>,
    busybox: Option<(PathBuf, Vec<u8>)>,
}

/// Returns the cached archive for `inputs`, building it on the first use.
pub fn build(inputs: &Inputs, cache_dir: &Path) -> Result<PathBuf> {
    let loaded = load(inputs)?;
    let dir = cache_dir.join("initramfs");
    let path = dir.join(format!("{}.cpio", loaded.key()));
    if path.is_file() {
        return Ok(path);
    }
    let mut bytes = loaded.assemble()?.to_bytes()?;
    pad(&mut bytes);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
    let tmp = dir.join(format!(".tmp-{}", std::process::id()));
    std::fs::write(&tmp, &bytes).map_err(|e| Error::io("write", &tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io("rename", &path, e))?;
    Ok(path)
}

/// Writes `base` followed by an archive holding the spec file to `out`.
pub fn with_spec(base: &Path, spec: &str, out: &Path) -> Result<()> {
    let mut bytes = std::fs::read(base).map_err(|e| Error::io("read", base, e))?;
    let mut extra = Archive::new();
    extra.file(SPEC_PATH, 0o644, spec.as_bytes().to_vec())?;
    bytes.extend(extra.to_bytes()?);
    pad(&mut bytes);
    std::fs::write(out, bytes).map_err(|e| Error::io("write", out, e))
}

fn pad(bytes: &mut Vec<u8>) {
    bytes.resize(bytes.len().next_multiple_of(PAD), 0);
}

fn load(inputs: &Inputs) -> Result<Loaded> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| Error::io("read", p, e));
    let rinit = read(inputs.rinit)?;
    let (kver, dep, modules) = match &inputs.modules {
        None => (String::new(), String::new(), Vec::new()),
        Some(set) => {
            let mut dep = String::new();
            let mut files = Vec::new();
            for m in &set.modules {
                dep.push_str(&dep_line(m, &set.modules));
                dep.push('\n');
                files.push((uncompressed_rel(&m.rel), set.db.read(&m.rel)?));
            }
            (set.kver.to_owned(), dep, files)
        }
    };
    let busybox = match inputs.busybox {
        None => None,
        Some(p) => Some((p.to_owned(), read(p)?)),
    };
    Ok(Loaded {
        rinit,
        kver,
        dep,
        modules,
        busybox,
    })
}

impl Loaded {
    /// SHA-256 over every input, each prefixed by its length so no two sets collide by framing.
    fn key(&self) -> String {
        let mut h = Sha256::new();
        let mut put = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        put(LAYOUT_VERSION);
        put(&self.rinit);
        put(self.kver.as_bytes());
        put(self.dep.as_bytes());
        for (rel, data) in &self.modules {
            put(rel.as_bytes());
            put(data);
        }
        if let Some((_, data)) = &self.busybox {
            put(data);
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn assemble(&self) -> Result<Archive> {
        let mut a = Archive::new();
        for dir in ["dev", "proc", "sys", "run", "root", "newroot"] {
            a.dir(dir, 0o755)?;
        }
        a.dir("tmp", 0o1777)?;
        a.device("dev/console", 0o600, DeviceKind::Char, 5, 1)?;
        a.file("init", 0o755, self.rinit.clone())?;
        if !self.modules.is_empty() {
            let base = format!("lib/modules/{}", self.kver);
            a.file(
                &format!("{base}/modules.dep"),
                0o644,
                self.dep.clone().into_bytes(),
            )?;
            for (rel, data) in &self.modules {
                a.file(&format!("{base}/{rel}"), 0o644, data.clone())?;
            }
        }
        if let Some((path, data)) = &self.busybox {
            add_busybox(&mut a, path, data)?;
        }
        Ok(a)
    }
}

/// busybox at `bin/busybox`, a link for each applet at the place `--list-full` names, and the
/// few files its applets expect in `/etc`.
fn add_busybox(a: &mut Archive, path: &Path, data: &[u8]) -> Result<()> {
    a.file("bin/busybox", 0o755, data.to_vec())?;
    for applet in applets(path)? {
        if applet != "bin/busybox" {
            a.symlink(&applet, "/bin/busybox")?;
        }
    }
    a.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\n".to_vec(),
    )?;
    a.file("etc/group", 0o644, b"root:x:0:\n".to_vec())?;
    a.file("etc/hostname", 0o644, b"mvm\n".to_vec())?;
    Ok(())
}

/// The applet paths of a busybox binary (`busybox --list-full`: `bin/sh`, `usr/bin/env`, …).
fn applets(busybox: &Path) -> Result<Vec<String>> {
    let out = std::process::Command::new(busybox)
        .arg("--list-full")
        .output()
        .map_err(|e| Error::Program {
            program: busybox.display().to_string(),
            detail: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(Error::Program {
            program: busybox.display().to_string(),
            detail: format!("--list-full failed: {}", out.status),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().trim_start_matches('/').to_owned())
        .filter(|l| !l.is_empty() && !l.split('/').any(|c| c == ".." || c.is_empty()))
        .collect())
}

/// Whether an ELF file is statically linked (has no `PT_INTERP`), so it runs in an initramfs.
pub fn is_static_elf(path: &Path) -> Result<bool> {
    let data = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let elf = goblin::elf::Elf::parse(&data)
        .map_err(|e| Error::missing("program", path, format!("not an ELF file: {e}")))?;
    Ok(elf.interpreter.is_none())
}

#[cfg(test)]
#[path = "initramfs_tests.rs"]
mod tests;
