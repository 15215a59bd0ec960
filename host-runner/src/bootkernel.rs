//! Which kernel boots, how (bzImage or PVH `vmlinux`), and where its modules are.
//!
//! Default: the host's `/boot/vmlinuz-$(uname -r)` when it is readable, a bzImage, and its
//! config shows it can run a microvm guest (8250 serial console, virtio-mmio, ACPI); else the
//! Debian cloud kernel from the cache ([`crate::kernel`]), fetched on first use, booted through
//! PVH (its `vmlinux` is extracted at fetch time: no in-guest decompression, ~0.3 s faster under
//! TCG).

use crate::error::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The boot protocol QEMU and the firmware use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Linux x86 boot protocol (compressed kernel, decompressed in the guest).
    BzImage,
    /// ELF `vmlinux` with a Xen PVH entry note (loaded uncompressed by QEMU).
    Pvh,
}

impl Protocol {
    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::BzImage => "bzImage",
            Protocol::Pvh => "PVH vmlinux",
        }
    }
}

/// Where the kernel came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `--kernel`.
    Given,
    /// The host's `/boot`.
    Host,
    /// The cached Debian cloud kernel.
    Cache,
}

/// The kernel to boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootKernel {
    pub image: PathBuf,
    pub protocol: Protocol,
    pub origin: Origin,
    /// The kernel release, when known.
    pub kver: Option<String>,
    /// Its `lib/modules/<release>` directory, when found.
    pub modules: Option<PathBuf>,
}

impl BootKernel {
    /// One line for `--verbose` and `doctor`.
    pub fn describe(&self) -> String {
        let origin = match self.origin {
            Origin::Given => "--kernel",
            Origin::Host => "host kernel",
            Origin::Cache => "cached Debian cloud kernel",
        };
        format!(
            "kernel {} ({origin}, {}, {})",
            self.image.display(),
            self.kver.as_deref().unwrap_or("release unknown"),
            self.protocol.name()
        )
    }
}

/// Reads the first bytes of a kernel image and tells its protocol and, for a bzImage, its
/// release (the first word of the `kernel_version` string the header points to).
pub fn inspect(path: &Path) -> Result<(Protocol, Option<String>)> {
    let mut f =
        std::fs::File::open(path).map_err(|e| Error::missing("kernel", path, e.to_string()))?;
    let mut head = vec![0u8; 64 * 1024];
    let n = read_up_to(&mut f, &mut head).map_err(|e| Error::io("read", path, e))?;
    head.truncate(n);
    if head.starts_with(b"\x7fELF") {
        return Ok((Protocol::Pvh, None));
    }
    if head.get(0x202..0x206) == Some(b"HdrS") {
        return Ok((Protocol::BzImage, bzimage_release(&head)));
    }
    Err(Error::missing(
        "kernel",
        path,
        "neither a bzImage nor an ELF vmlinux",
    ))
}

fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The release from a bzImage header: `kernel_version` (u16 at 0x20e) + 0x200 points to
/// `"6.1.0-56-cloud-amd64 (debian-kernel@…) #1 SMP …"`.
pub fn bzimage_release(head: &[u8]) -> Option<String> {
    let ptr = u16::from_le_bytes([*head.get(0x20e)?, *head.get(0x20f)?]);
    let start = usize::from(ptr).checked_add(0x200)?;
    let text = head.get(start..)?;
    let end = text.iter().position(|&b| b == 0 || b == b' ')?;
    let s = std::str::from_utf8(&text[..end]).ok()?;
    (!s.is_empty()).then(|| s.to_owned())
}

/// `--kernel PATH`, with `--modules DIR` or a modules directory found next to it.
pub fn given(path: &Path, modules: Option<&Path>) -> Result<BootKernel> {
    let (protocol, kver) = inspect(path)?;
    let modules = match modules {
        Some(m) => Some(m.to_owned()),
        None => kver.as_deref().and_then(|k| modules_near(path, k)),
    };
    Ok(BootKernel {
        image: path.to_owned(),
        protocol,
        origin: Origin::Given,
        kver,
        modules,
    })
}

/// `lib/modules/<kver>` in an ancestor of `image` (an unpacked package or build tree), else
/// the host's `/lib/modules/<kver>`.
fn modules_near(image: &Path, kver: &str) -> Option<PathBuf> {
    image
        .ancestors()
        .skip(1)
        .map(|d| d.join("lib/modules").join(kver))
        .chain(std::iter::once(Path::new("/lib/modules").join(kver)))
        .find(|d| d.is_dir())
}

/// The PVH `vmlinux` of a bzImage, extracted once into `<cache>/pvh/` (named by the image's
/// release, size and mtime). `None` when the image cannot be booted through PVH (no PVH note,
/// a compression without a tool on the host): the caller keeps the bzImage.
pub fn pvh_cached(image: &Path, release: &str, cache_dir: &Path) -> Option<PathBuf> {
    let meta = std::fs::metadata(image).ok()?;
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    let dir = cache_dir.join("pvh");
    let out = dir.join(format!("{release}-{}-{mtime}.vmlinux", meta.len()));
    if out.is_file() {
        return Some(out);
    }
    std::fs::create_dir_all(&dir).ok()?;
    let tmp = dir.join(format!(".tmp-{}", std::process::id()));
    let made =
        crate::kernel::write_vmlinux(image, &tmp).is_ok() && std::fs::rename(&tmp, &out).is_ok();
    let _ = std::fs::remove_file(&tmp);
    made.then_some(out)
}

/// The host's kernel if it suits a microvm guest, with the reason when it does not.
pub fn host() -> std::result::Result<BootKernel, String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_err(|e| format!("cannot read the host's release: {e}"))?;
    host_in(
        Path::new("/boot"),
        Path::new("/lib/modules"),
        release.trim(),
    )
}

/// [`host`] with the directories and release given: `<boot>/vmlinuz-<release>` must be a
/// kernel image and `<boot>/config-<release>` must set every [`REQUIRED`] option; the modules
/// are `<lib_modules>/<release>` when that is a directory.
pub fn host_in(
    boot: &Path,
    lib_modules: &Path,
    release: &str,
) -> std::result::Result<BootKernel, String> {
    let image = boot.join(format!("vmlinuz-{release}"));
    let (protocol, _) = inspect(&image).map_err(|e| e.to_string())?;
    let config_path = boot.join(format!("config-{release}"));
    let config = std::fs::read_to_string(&config_path).map_err(|e| {
        let path = config_path.display();
        format!("{path}: {e} (cannot check the kernel's drivers)")
    })?;
    for (option, why) in REQUIRED {
        if config_value(&config, option).is_none() {
            return Err(format!("host kernel lacks {option} ({why})"));
        }
    }
    let modules = lib_modules.join(release);
    Ok(BootKernel {
        image,
        protocol,
        origin: Origin::Host,
        kver: Some(release.to_owned()),
        modules: modules.is_dir().then_some(modules),
    })
}

/// Options a kernel needs on microvm: `y` or `m`.
const REQUIRED: [(&str, &str); 4] = [
    ("CONFIG_SERIAL_8250_CONSOLE", "console on ttyS0"),
    ("CONFIG_ACPI", "microvm device discovery"),
    ("CONFIG_VIRTIO_MMIO", "virtio devices on microvm"),
    ("CONFIG_DEVTMPFS", "device nodes without udev"),
];

/// The value of `option` in a kernel `.config` text (`y`, `m`, a string), if set.
pub fn config_value<'a>(config: &'a str, option: &str) -> Option<&'a str> {
    config.lines().find_map(|l| {
        l.strip_prefix(option)
            .and_then(|r| r.strip_prefix('='))
            .filter(|v| *v != "n")
    })
}

/// The cached Debian cloud kernel (PVH), fetching it first when the cache is empty; `progress`
/// is told before a download starts.
pub fn cached(progress: &dyn Fn(&str)) -> Result<BootKernel> {
    let cache = crate::kernel::cache_dir()?;
    let kernel = match crate::kernel::cached(&cache)? {
        Some(k) => k,
        None => {
            progress(&format!(
                "fetching the Debian cloud kernel into {} (once)",
                cache.display()
            ));
            crate::kernel::fetch(&crate::kernel::FetchOptions::new()?)?
        }
    };
    Ok(BootKernel {
        image: kernel.vmlinux,
        protocol: Protocol::Pvh,
        origin: Origin::Cache,
        kver: Some(kernel.kver),
        modules: Some(kernel.modules),
    })
}

/// The default kernel: the host's when suitable (booted through PVH when its `vmlinux` can be
/// extracted), else the cached one. Returns the reason the host kernel was skipped.
pub fn default(progress: &dyn Fn(&str)) -> Result<(BootKernel, Option<String>)> {
    match host() {
        Ok(k) => Ok((with_pvh(k, &crate::kernel::cache_dir()?), None)),
        Err(why) => Ok((cached(progress)?, Some(why))),
    }
}

/// `kernel` booted through its PVH `vmlinux` from [`pvh_cached`] under `cache_dir`, or
/// unchanged when none can be extracted.
fn with_pvh(mut kernel: BootKernel, cache_dir: &Path) -> BootKernel {
    let release = kernel.kver.clone().unwrap_or_default();
    if let Some(vmlinux) = pvh_cached(&kernel.image, &release, cache_dir) {
        kernel.image = vmlinux;
        kernel.protocol = Protocol::Pvh;
    }
    kernel
}

#[cfg(test)]
#[path = "bootkernel_tests.rs"]
mod tests;
