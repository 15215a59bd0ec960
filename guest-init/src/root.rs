//! Mode detection, the real root, extra mounts and `switch_root` (as util-linux `switch_root(8)` does
//! it: move the pseudo filesystems, free the initramfs, move the new root onto `/`, `chroot`).
//!
//! With `rinit.overlay` the new root is an overlay (Linux
//! `Documentation/filesystems/overlayfs.rst`): the real root, read-only, is its lower layer and a
//! tmpfs holds its upper and work directories, so a read-only root that lacks `/proc`, `/tmp` or
//! an extra mount's path can still be mounted on. [`mount_root`] creates rinit's own mount points
//! in it, [`extra_mounts`] the extra ones, and then, for `rinit.ro`, makes it read-only again
//! (`MS_REMOUNT | MS_RDONLY`): the workload gets `EROFS` as on a plain read-only root. The remount
//! waits for the extra mounts because each creates its mount point where it mounts, after the
//! mounts before it (a path under `/tmp` is made in that tmpfs, not in the overlay).

use crate::config::{ExtraMount, Root, RootSource};
use crate::error::{Error, Result};
use crate::log::step;
use crate::mounts::{self, ensure_dir, EARLY, LATE};
use crate::sys;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Where the new root is mounted before it becomes `/`.
pub const NEW_ROOT: &str = "/newroot";
/// The overlay's tmpfs, on `/overlay` in the initramfs. It stays mounted there after `switch_root`,
/// out of the workload's sight (outside its root); [`free_initramfs`] does not enter it (another
/// device). No `nosuid`/`nodev`: overlayfs opens the files of its upper layer through this mount.
const OVERLAY_TMPFS: mounts::Mount = mounts::Mount {
    source: "tmpfs",
    target: "/overlay",
    fstype: "tmpfs",
    flags: 0,
    data: Some("mode=0755"),
    on_error: mounts::OnError::Fail,
};
/// The real root under an overlay, and the overlay's upper and work directories (one tmpfs, as
/// overlayfs requires of the last two).
const LOWER: &str = "/overlay/lower";
const UPPER: &str = "/overlay/upper";
const WORK: &str = "/overlay/work";
/// The overlay's mount data.
const OVERLAY_DATA: &str = "lowerdir=/overlay/lower,upperdir=/overlay/upper,workdir=/overlay/work";
/// Set when the root is an overlay to make read-only once the extra mount points exist.
static SEAL_ROOT: AtomicBool = AtomicBool::new(false);
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

/// Mounts the real root on [`NEW_ROOT`], or with `overlay` an overlay of it there, in which it
/// creates the mount points of rinit's own mount table.
pub fn mount_root(root: &Root) -> Result<()> {
    if !root.overlay {
        return mount_real_root(root, NEW_ROOT, root.ro);
    }
    mounts::mount_one(&OVERLAY_TMPFS, "")?;
    for dir in [LOWER, UPPER, WORK] {
        ensure_dir(dir).map_err(|e| Error::io(format_args!("mkdir {dir}"), e))?;
    }
    mount_real_root(root, LOWER, true)?;
    ensure_dir(NEW_ROOT).map_err(|e| Error::io(format_args!("mkdir {NEW_ROOT}"), e))?;
    sys::mount("overlay", NEW_ROOT, "overlay", 0, Some(OVERLAY_DATA)).map_err(|e| {
        Error::io(
            format_args!("mount overlay on {NEW_ROOT}{}", enodev_hint(&e, "overlay")),
            e,
        )
    })?;
    // The top-level targets of the mount tables: the rest (/dev/pts, /sys/fs/cgroup) are inside.
    let own = EARLY.iter().chain(LATE).map(|m| m.target);
    for target in own.filter(|t| t.rfind('/') == Some(0)) {
        let dir = format!("{NEW_ROOT}{target}");
        ensure_dir(&dir).map_err(|e| Error::io(format_args!("mkdir {dir} in the overlay"), e))?;
    }
    SEAL_ROOT.store(root.ro, Ordering::Relaxed);
    step!("mounted an overlay on the root");
    Ok(())
}

/// Mounts the real root on `target`.
fn mount_real_root(root: &Root, target: &str, ro: bool) -> Result<()> {
    ensure_dir(target).map_err(|e| Error::io(format_args!("mkdir {target}"), e))?;
    let flags = if ro { libc::MS_RDONLY } else { 0 };
    let source = match &root.source {
        RootSource::Virtiofs(tag) => tag.as_str(),
        RootSource::Block(dev) => {
            wait_for(dev)?;
            dev.as_str()
        }
    };
    sys::mount(source, target, &root.fstype, flags, root.data.as_deref()).map_err(|e| {
        let hint = enodev_hint(&e, &root.fstype);
        Error::io(
            format_args!("mount root {source} ({}) on {target}{hint}", root.fstype),
            e,
        )
    })?;
    step!(
        "mounted root {source} ({}{})",
        root.fstype,
        if ro { ", ro" } else { "" }
    );
    Ok(())
}

/// What to add to a mount error when the kernel does not know the filesystem type.
fn enodev_hint(e: &std::io::Error, fstype: &str) -> String {
    match e.raw_os_error() {
        Some(libc::ENODEV) => {
            format!(" (the kernel does not know {fstype}: add its module to rinit.modules)")
        }
        _ => String::new(),
    }
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

/// Mounts the extra virtiofs shares, then makes an overlay root read-only when the root was asked
/// read-only (see [`mount_root`]): their mount points are the last ones created in it.
pub fn extra_mounts(list: &[ExtraMount]) -> Result<()> {
    for m in list {
        ensure_dir(&m.path).map_err(|e| Error::io(format_args!("mkdir {}", m.path), e))?;
        let flags = if m.ro { libc::MS_RDONLY } else { 0 };
        sys::mount(&m.tag, &m.path, "virtiofs", flags, None)
            .map_err(|e| Error::io(format_args!("mount virtiofs {} on {}", m.tag, m.path), e))?;
        step!("mounted virtiofs {} on {}", m.tag, m.path);
    }
    if SEAL_ROOT.swap(false, Ordering::Relaxed) {
        sys::mount("overlay", "/", "", libc::MS_REMOUNT | libc::MS_RDONLY, None)
            .map_err(|e| Error::io("remount the overlay root read-only", e))?;
        step!("overlay root read-only");
    }
    Ok(())
}

/// Re-exported for `main`: mount the late table.
pub fn late_mounts() -> Result<()> {
    mounts::mount_all(mounts::LATE)?;
    mounts::dev_links();
    Ok(())
}
