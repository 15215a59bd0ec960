//! Fetch and cache the Debian cloud kernel for microvm guests.
//!
//! The meta package `linux-image-cloud-amd64` depends on one versioned package
//! `linux-image-<kver>`. [`fetch`] resolves that dependency with `apt-cache depends`,
//! downloads the `.deb` with `apt-get download`, unpacks it with `dpkg -x` and extracts
//! the ELF `vmlinux` from the bzImage for PVH boots. The cache looks like:
//!
//! ```text
//! <cache>/debs/linux-image-<kver>_<version>_amd64.deb
//! <cache>/kernels/<kver>/vmlinuz              bzImage
//! <cache>/kernels/<kver>/vmlinux              ELF with a PVH entry note
//! <cache>/kernels/<kver>/lib/modules/<kver>/  modules
//! <cache>/kernels/latest                      the kver the last fetch resolved
//! <cache>/kernels/.lock                       serialises fetches across processes
//! ```
//!
//! Every step writes to a temporary name and renames it into place while holding the
//! lock, so a reader never sees a half-written kernel and concurrent fetches do not race.

pub mod bzimage;
pub mod pvh;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

pub use bzimage::BzImageError;
pub use pvh::PvhError;

/// The meta package that follows the current Debian cloud kernel.
pub const DEFAULT_PACKAGE: &str = "linux-image-cloud-amd64";
/// Prefix of the versioned kernel packages.
const IMAGE_PREFIX: &str = "linux-image-";

/// Errors from fetching or locating a cached kernel.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// None of `$MVM_CACHE_DIR`, `$XDG_CACHE_HOME` and `$HOME` is set.
    #[error("no cache directory: set MVM_CACHE_DIR, XDG_CACHE_HOME or HOME")]
    NoCacheDir,
    /// A file system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// An external command could not be run or failed.
    #[error("`{cmd}` failed: {detail}")]
    Command { cmd: String, detail: String },
    /// `apt-cache depends` failed or named no `linux-image-*` dependency.
    #[error("cannot resolve the kernel behind `{package}` ({detail}); try `apt-get update`")]
    Resolve { package: String, detail: String },
    /// The unpacked package lacks a file every kernel package has.
    #[error("unexpected kernel package layout: {0}")]
    Layout(String),
    /// The bzImage payload could not be turned into a `vmlinux`.
    #[error("extracting vmlinux: {0}")]
    BzImage(#[from] BzImageError),
    /// The extracted `vmlinux` cannot be booted through PVH.
    #[error("checking vmlinux: {0}")]
    Pvh(#[from] PvhError),
}

/// A kernel unpacked in the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kernel {
    /// Kernel release, e.g. `6.1.0-56-cloud-amd64` (what `uname -r` prints).
    pub kver: String,
    /// `<cache>/kernels/<kver>`.
    pub dir: PathBuf,
    /// The bzImage.
    pub vmlinuz: PathBuf,
    /// The uncompressed ELF with a PVH entry note.
    pub vmlinux: PathBuf,
    /// `lib/modules/<kver>` inside `dir`.
    pub modules: PathBuf,
}

impl Kernel {
    fn at(kernels: &Path, kver: &str) -> Self {
        let dir = kernels.join(kver);
        Self {
            kver: kver.to_owned(),
            vmlinuz: dir.join("vmlinuz"),
            vmlinux: dir.join("vmlinux"),
            modules: dir.join("lib/modules").join(kver),
            dir,
        }
    }

    fn is_complete(&self) -> bool {
        self.vmlinuz.is_file() && self.vmlinux.is_file() && self.modules.is_dir()
    }
}

/// What to fetch and where to keep it.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    /// The cache root (see [`cache_dir`]).
    pub cache_dir: PathBuf,
    /// The meta package whose `linux-image-*` dependency is fetched.
    pub package: String,
    /// Use this kernel release instead of resolving `package`.
    pub kver: Option<String>,
}

impl FetchOptions {
    /// The default meta package in the default cache directory.
    pub fn new() -> Result<Self, KernelError> {
        Ok(Self {
            cache_dir: cache_dir()?,
            package: DEFAULT_PACKAGE.into(),
            kver: None,
        })
    }
}

/// The cache root: `$MVM_CACHE_DIR`, else `$XDG_CACHE_HOME/mvm`, else `~/.cache/mvm`.
pub fn cache_dir() -> Result<PathBuf, KernelError> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("MVM_CACHE_DIR") {
        return Ok(dir);
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return Ok(dir.join("mvm"));
    }
    var("HOME")
        .map(|h| h.join(".cache/mvm"))
        .ok_or(KernelError::NoCacheDir)
}

/// The kernel the last [`fetch`] into `cache_dir` produced, if it is complete.
/// Never downloads anything.
pub fn cached(cache_dir: &Path) -> Result<Option<Kernel>, KernelError> {
    let kernels = cache_dir.join("kernels");
    let latest = kernels.join("latest");
    let kver = match fs::read_to_string(&latest) {
        Ok(s) => s.trim().to_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(KernelError::Io {
                op: "read",
                path: latest,
                source,
            })
        }
    };
    let kernel = Kernel::at(&kernels, &kver);
    Ok(kernel.is_complete().then_some(kernel))
}

/// Make sure the kernel is in the cache (downloading it if needed) and return it.
///
/// Without a pinned `kver`, the meta package is resolved through apt. If apt cannot
/// answer (no index, no `apt-cache`) but a complete kernel is cached, that one is
/// returned, so a warm cache works offline.
pub fn fetch(opts: &FetchOptions) -> Result<Kernel, KernelError> {
    let kver = match &opts.kver {
        Some(k) => k.clone(),
        None => match resolve_kver(&opts.package) {
            Ok(kver) => kver,
            Err(e) => return cached(&opts.cache_dir)?.ok_or(e),
        },
    };
    check_kver(&kver)?;
    let kernels = opts.cache_dir.join("kernels");
    mkdir(&kernels)?;
    let _lock = lock(&kernels.join(".lock"))?;
    remove_stale_temps(&kernels)?;

    let kernel = Kernel::at(&kernels, &kver);
    if kernel.vmlinuz.is_file() && kernel.modules.is_dir() {
        if !kernel.vmlinux.is_file() {
            let tmp = kernel.dir.join(".tmp-vmlinux");
            write_vmlinux(&kernel.vmlinuz, &tmp)?;
            rename(&tmp, &kernel.vmlinux)?;
        }
    } else {
        if kernel.dir.exists() {
            remove_dir(&kernel.dir)?;
        }
        let deb = download(&opts.cache_dir.join("debs"), &kver)?;
        let tmp = kernels.join(format!(".tmp-{kver}-{}", std::process::id()));
        unpack(&deb, &kver, &tmp)?;
        rename(&tmp, &kernel.dir)?;
    }
    let latest = kernels.join(format!(".tmp-latest-{}", std::process::id()));
    fs::write(&latest, format!("{kver}\n")).map_err(|source| KernelError::Io {
        op: "write",
        path: latest.clone(),
        source,
    })?;
    rename(&latest, &kernels.join("latest"))?;
    Ok(kernel)
}

/// Resolve `package` (a meta package) to the kernel release it depends on.
pub fn resolve_kver(package: &str) -> Result<String, KernelError> {
    let resolve = |detail: String| KernelError::Resolve {
        package: package.to_owned(),
        detail,
    };
    let out = run(Command::new("apt-cache").arg("depends").arg(package))
        .map_err(|e| resolve(e.to_string()))?;
    parse_depends(&out, package).ok_or_else(|| resolve("no linux-image-* dependency".into()))
}

/// Find the first `Depends: linux-image-<kver>` line in `apt-cache depends` output.
pub fn parse_depends(output: &str, package: &str) -> Option<String> {
    output.lines().find_map(|line| {
        let dep = line
            .trim()
            .trim_start_matches('|')
            .strip_prefix("Depends:")?
            .trim();
        let kver = dep.strip_prefix(IMAGE_PREFIX)?;
        (dep != package && !kver.is_empty() && !dep.starts_with('<')).then(|| kver.to_owned())
    })
}

/// A kernel release must be a plain file name: it becomes a path component.
fn check_kver(kver: &str) -> Result<(), KernelError> {
    let ok = !kver.is_empty()
        && !kver.starts_with('.')
        && kver
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'));
    if ok {
        Ok(())
    } else {
        Err(KernelError::Resolve {
            package: format!("{IMAGE_PREFIX}{kver}"),
            detail: "not a valid kernel release name".into(),
        })
    }
}

/// The `.deb` of `linux-image-<kver>` in `debs`, downloaded if absent.
fn download(debs: &Path, kver: &str) -> Result<PathBuf, KernelError> {
    let prefix = format!("{IMAGE_PREFIX}{kver}_");
    let find = |dir: &Path| -> Result<Option<PathBuf>, KernelError> {
        let entries = fs::read_dir(dir).map_err(|source| KernelError::Io {
            op: "list",
            path: dir.to_owned(),
            source,
        })?;
        Ok(entries.flatten().map(|e| e.path()).find(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with(&prefix) && name.ends_with(".deb")
        }))
    };
    mkdir(debs)?;
    if let Some(deb) = find(debs)? {
        return Ok(deb);
    }
    let tmp = debs.join(format!(".tmp-{}", std::process::id()));
    mkdir(&tmp)?;
    let package = format!("{IMAGE_PREFIX}{kver}");
    run(Command::new("apt-get")
        .arg("download")
        .arg(&package)
        .current_dir(&tmp))?;
    let got = find(&tmp)?.ok_or_else(|| {
        KernelError::Layout(format!("apt-get download {package} produced no .deb"))
    })?;
    let deb = debs.join(got.file_name().unwrap_or_default());
    rename(&got, &deb)?;
    remove_dir(&tmp)?;
    Ok(deb)
}

/// Unpack `deb` into `dir`, put the bzImage at `dir/vmlinuz` and extract `dir/vmlinux`.
fn unpack(deb: &Path, kver: &str, dir: &Path) -> Result<(), KernelError> {
    mkdir(dir)?;
    run(Command::new("dpkg").arg("-x").arg(deb).arg(dir))?;
    let boot = dir.join("boot").join(format!("vmlinuz-{kver}"));
    if !boot.is_file() {
        return Err(KernelError::Layout(format!(
            "{} has no boot/vmlinuz-{kver}",
            deb.display()
        )));
    }
    if !dir.join("lib/modules").join(kver).is_dir() {
        return Err(KernelError::Layout(format!(
            "{} has no lib/modules/{kver}",
            deb.display()
        )));
    }
    let vmlinuz = dir.join("vmlinuz");
    rename(&boot, &vmlinuz)?;
    write_vmlinux(&vmlinuz, &dir.join("vmlinux")).map(|_| ())
}

/// Extract the ELF from the bzImage `vmlinuz`, check its PVH note and write it to `out`.
pub fn write_vmlinux(vmlinuz: &Path, out: &Path) -> Result<u64, KernelError> {
    let image = fs::read(vmlinuz).map_err(|source| KernelError::Io {
        op: "read",
        path: vmlinuz.to_owned(),
        source,
    })?;
    let elf = bzimage::extract_vmlinux(&image)?;
    let entry = pvh::pvh_entry(&elf)?;
    fs::write(out, &elf).map_err(|source| KernelError::Io {
        op: "write",
        path: out.to_owned(),
        source,
    })?;
    Ok(entry)
}

/// Take the exclusive lock on `path` (created if needed); released when dropped.
fn lock(path: &Path) -> Result<File, KernelError> {
    let io = |op, source| KernelError::Io {
        op,
        path: path.to_owned(),
        source,
    };
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| io("open", e))?;
    file.lock().map_err(|e| io("lock", e))?;
    Ok(file)
}

/// Remove leftovers of interrupted fetches. Only called with the lock held, so no
/// other process is writing them.
fn remove_stale_temps(kernels: &Path) -> Result<(), KernelError> {
    let entries = fs::read_dir(kernels).map_err(|source| KernelError::Io {
        op: "list",
        path: kernels.to_owned(),
        source,
    })?;
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(".tmp-") {
            let path = entry.path();
            if path.is_dir() {
                remove_dir(&path)?;
            } else {
                fs::remove_file(&path).map_err(|source| KernelError::Io {
                    op: "remove",
                    path,
                    source,
                })?;
            }
        }
    }
    Ok(())
}

/// Run `cmd`; return its stdout, or its stderr in the error.
fn run(cmd: &mut Command) -> Result<String, KernelError> {
    let text = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| KernelError::Command {
        cmd: text.clone(),
        detail: e.to_string(),
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(KernelError::Command {
            cmd: text,
            detail: format!("{}: {}", out.status, err.trim()),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn mkdir(path: &Path) -> Result<(), KernelError> {
    fs::create_dir_all(path).map_err(|source| KernelError::Io {
        op: "create",
        path: path.to_owned(),
        source,
    })
}

fn remove_dir(path: &Path) -> Result<(), KernelError> {
    fs::remove_dir_all(path).map_err(|source| KernelError::Io {
        op: "remove",
        path: path.to_owned(),
        source,
    })
}

fn rename(from: &Path, to: &Path) -> Result<(), KernelError> {
    fs::rename(from, to).map_err(|source| KernelError::Io {
        op: "rename",
        path: format!("{} -> {}", from.display(), to.display()).into(),
        source,
    })
}

#[cfg(test)]
mod tests;
