//! Mode detection, the real root, extra mounts and `switch_root` (as util-linux `switch_root(8)` does
//! it: move the pseudo filesystems, free the initramfs, move the new root onto `/`, `chroot`).

use crate::config::{ExtraMount, Root, RootSource};
use crate::error::{Error, Result};
use crate::log::step;
use crate::mounts::{self, ensure_dir, EARLY};
use crate::sys;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

/// Where the new root is mounted before it becomes `/`.
pub const NEW_ROOT: &str = "/newroot";
/// How long to wait for a block device node to appear after its driver loaded.
const DEVICE_WAIT: Duration = Duration::from_secs(5);
/// `RAMFS_MAGIC` and `TMPFS_MAGIC` from `include/uapi/linux/magic.h`.
const RAMFS_MAGIC: i64 = 0x8584_58f6;
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// How rinit was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `/init` of an initramfs: `/` is the kernel's rootfs (ramfs or tmpfs).
    Initramfs,
    /// `init=/sbin/rinit`: the kernel mounted the real root.
    Root,
}

/// Decides the mode from the type of the filesystem at `/`.
pub fn detect_mode() -> Mode {
    match sys::fs_type("/") {
        Ok(RAMFS_MAGIC | TMPFS_MAGIC) => Mode::Initramfs,
        _ => Mode::Root,
    }
}

/// Waits until `path` exists (device nodes appear when their driver probes), up to [`DEVICE_WAIT`].
fn wait_for(path: &str) -> Result<()> {
    let start = Instant::now();
    while !std::path::Path::new(path).exists() {
        if start.elapsed() > DEVICE_WAIT {
            return Err(Error::msg(format!(
                "root device {path} did not appear within {}s (is its driver loaded? rinit.modules=virtio_blk)",
                DEVICE_WAIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// Mounts the real root on [`NEW_ROOT`].
pub fn mount_root(root: &Root) -> Result<()> {
    ensure_dir(NEW_ROOT).map_err(|e| Error::io(format_args!("mkdir {NEW_ROOT}"), e))?;
    let flags = if root.ro { libc::MS_RDONLY } else { 0 };
    let source = match &root.source {
        RootSource::Virtiofs(tag) => tag.as_str(),
        RootSource::Block(dev) => {
            wait_for(dev)?;
            dev.as_str()
        }
    };
    sys::mount(source, NEW_ROOT, &root.fstype, flags, root.data.as_deref()).map_err(|e| {
        let hint = match e.raw_os_error() {
            Some(libc::ENODEV) => format!(
                " (the kernel does not know {}: add its module to rinit.modules)",
                root.fstype
            ),
            _ => String::new(),
        };
        Error::io(
            format_args!("mount root {source} ({}) on {NEW_ROOT}{hint}", root.fstype),
            e,
        )
    })?;
    step!(
        "mounted root {source} ({}{})",
        root.fstype,
        if root.ro { ", ro" } else { "" }
    );
    Ok(())
}

/// Moves the early mounts under the new root, frees the initramfs and makes the new root `/`.
pub fn switch_root() -> Result<()> {
    for m in EARLY {
        let target = format!("{NEW_ROOT}{}", m.target);
        ensure_dir(&target)
            .map_err(|e| Error::io(format_args!("mkdir {target} in the new root"), e))?;
        sys::mount(m.target, &target, "", libc::MS_MOVE, None)
            .map_err(|e| Error::io(format_args!("move {} to {target}", m.target), e))?;
    }
    std::env::set_current_dir(NEW_ROOT)
        .map_err(|e| Error::io(format_args!("chdir {NEW_ROOT}"), e))?;
    free_initramfs();
    sys::mount(".", "/", "", libc::MS_MOVE, None)
        .map_err(|e| Error::io("move the new root to /", e))?;
    std::os::unix::fs::chroot(".").map_err(|e| Error::io("chroot to the new root", e))?;
    std::env::set_current_dir("/").map_err(|e| Error::io("chdir / in the new root", e))?;
    step!("switched root");
    Ok(())
}

/// Deletes everything on the initramfs (it is memory) without crossing into other filesystems.
/// Failures are harmless (they only keep memory in use) and are not reported.
fn free_initramfs() {
    let Ok(root) = std::fs::symlink_metadata("/") else {
        return;
    };
    remove_tree(std::path::Path::new("/"), root.dev());
}

fn remove_tree(dir: &std::path::Path, dev: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.dev() != dev {
            continue;
        }
        if meta.is_dir() {
            remove_tree(&path, dev);
            let _ = std::fs::remove_dir(&path);
        } else {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Mounts the extra virtiofs shares.
pub fn extra_mounts(list: &[ExtraMount]) -> Result<()> {
    for m in list {
        ensure_dir(&m.path).map_err(|e| Error::io(format_args!("mkdir {}", m.path), e))?;
        let flags = if m.ro { libc::MS_RDONLY } else { 0 };
        sys::mount(&m.tag, &m.path, "virtiofs", flags, None)
            .map_err(|e| Error::io(format_args!("mount virtiofs {} on {}", m.tag, m.path), e))?;
        step!("mounted virtiofs {} on {}", m.tag, m.path);
    }
    Ok(())
}

/// Re-exported for `main`: mount the late table.
pub fn late_mounts() -> Result<()> {
    mounts::mount_all(mounts::LATE)?;
    mounts::dev_links();
    Ok(())
}
