//! The pseudo filesystems, as a table of data (`Documentation/filesystems/` of Linux for each type).
//!
//! [`EARLY`] is what rinit needs before it can read its configuration or load modules; [`LATE`] is the
//! rest. In root mode both are mounted in place; in initramfs mode [`EARLY`] is mounted in the
//! initramfs and moved under the new root, and [`LATE`] is mounted after `switch_root`.
//!
//! In root mode the [`EARLY`] filesystems may already be there: a distribution-style initramfs
//! moves its `/dev`, `/proc` and `/sys` into the new root before `switch_root`, and a kernel built
//! with `CONFIG_DEVTMPFS_MOUNT` mounts `/dev` itself. Mounting sysfs or devtmpfs again on the same
//! place fails with `EBUSY` (same superblock, same mount point), which counts as done.

use crate::error::{Error, Result};
use crate::log::{self, step};
use crate::sys;
use std::io;
use std::os::unix::fs::symlink;

/// What to do when a mount fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Fail the run (status 125).
    Fail,
    /// `EBUSY` means it is already mounted there (by the kernel or an initramfs): fine. Else fail.
    BusyOk,
    /// Warn and go on (the kernel may lack the filesystem).
    Warn,
}

/// One row of the mount table.
#[derive(Debug, Clone, Copy)]
pub struct Mount {
    pub source: &'static str,
    pub target: &'static str,
    pub fstype: &'static str,
    pub flags: libc::c_ulong,
    pub data: Option<&'static str>,
    pub on_error: OnError,
}

const NOSUID_NODEV: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV;
const NOSUID_NODEV_NOEXEC: libc::c_ulong = NOSUID_NODEV | libc::MS_NOEXEC;

/// Needed first: `/proc/cmdline`, `/sys/class/virtio-ports`, device nodes.
pub const EARLY: &[Mount] = &[
    Mount {
        source: "proc",
        target: "/proc",
        fstype: "proc",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
        on_error: OnError::BusyOk,
    },
    Mount {
        source: "sysfs",
        target: "/sys",
        fstype: "sysfs",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
        on_error: OnError::BusyOk,
    },
    Mount {
        source: "devtmpfs",
        target: "/dev",
        fstype: "devtmpfs",
        flags: libc::MS_NOSUID,
        data: Some("mode=0755"),
        on_error: OnError::BusyOk,
    },
];

/// Everything else a workload expects.
pub const LATE: &[Mount] = &[
    Mount {
        source: "devpts",
        target: "/dev/pts",
        fstype: "devpts",
        flags: libc::MS_NOSUID | libc::MS_NOEXEC,
        data: Some("mode=0620,ptmxmode=0666"),
        on_error: OnError::Fail,
    },
    Mount {
        source: "shm",
        target: "/dev/shm",
        fstype: "tmpfs",
        flags: NOSUID_NODEV,
        data: Some("mode=1777"),
        on_error: OnError::Fail,
    },
    Mount {
        source: "tmpfs",
        target: "/run",
        fstype: "tmpfs",
        flags: NOSUID_NODEV,
        data: Some("mode=0755"),
        on_error: OnError::Warn,
    },
    Mount {
        source: "tmpfs",
        target: "/tmp",
        fstype: "tmpfs",
        flags: NOSUID_NODEV,
        data: Some("mode=1777"),
        on_error: OnError::Warn,
    },
    Mount {
        source: "cgroup2",
        target: "/sys/fs/cgroup",
        fstype: "cgroup2",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
        on_error: OnError::Warn,
    },
];

/// Symlinks under `/dev` that devtmpfs does not create: (link, target).
pub const DEV_LINKS: &[(&str, &str)] = &[
    ("/dev/fd", "/proc/self/fd"),
    ("/dev/stdin", "/proc/self/fd/0"),
    ("/dev/stdout", "/proc/self/fd/1"),
    ("/dev/stderr", "/proc/self/fd/2"),
];

/// Creates `dir` if missing. On a read-only root an existing directory is fine.
pub fn ensure_dir(dir: &str) -> io::Result<()> {
    match std::fs::create_dir_all(dir) {
        Err(_) if std::path::Path::new(dir).is_dir() => Ok(()),
        other => other,
    }
}

/// Mounts one row under `prefix` ("" for `/`), honouring its [`OnError`].
pub fn mount_one(m: &Mount, prefix: &str) -> Result<()> {
    let target = format!("{prefix}{}", m.target);
    let result =
        ensure_dir(&target).and_then(|()| sys::mount(m.source, &target, m.fstype, m.flags, m.data));
    match (result, m.on_error) {
        (Ok(()), _) => step!("mounted {} on {target}", m.fstype),
        (Err(e), OnError::BusyOk) if e.raw_os_error() == Some(libc::EBUSY) => {
            step!("{target} already mounted")
        }
        (Err(e), OnError::Warn) => log::warn(&format!("mount {} on {target}: {e}", m.fstype)),
        (Err(e), _) => return Err(Error::io(format_args!("mount {} on {target}", m.fstype), e)),
    }
    Ok(())
}

/// Mounts every row of `table` in order.
pub fn mount_all(table: &[Mount]) -> Result<()> {
    table.iter().try_for_each(|m| mount_one(m, ""))
}

/// `/dev/ptmx` → `pts/ptmx` (the devpts instance with `ptmxmode=0666`) and the [`DEV_LINKS`].
pub fn dev_links() {
    let _ = std::fs::remove_file("/dev/ptmx");
    let links = std::iter::once(&("/dev/ptmx", "pts/ptmx")).chain(DEV_LINKS);
    for (link, target) in links {
        match symlink(target, link) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                log::warn(&format!("symlink {link}: {e}"))
            }
            _ => {}
        }
    }
}

/// Mount points currently mounted, in mount order (from `/proc/self/mounts`).
pub fn mounted() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mounts")
        .map(|t| parse_mounts(&t))
        .unwrap_or_default()
}

/// The mount points of a `/proc/self/mounts` text, with `\040`-style escapes undone.
pub fn parse_mounts(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split(' ').nth(1))
        .map(unescape_octal)
        .collect()
}

fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match oct {
            Some(d) => {
                out.push(
                    d.iter()
                        .fold(0u8, |acc, c| acc.wrapping_mul(8).wrapping_add(c - b'0')),
                );
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_ordered_and_absolute() {
        for m in EARLY.iter().chain(LATE) {
            assert!(m.target.starts_with('/'));
        }
        // devpts and shm need /dev; cgroup2 needs /sys.
        assert_eq!(
            EARLY.iter().map(|m| m.target).collect::<Vec<_>>(),
            ["/proc", "/sys", "/dev"]
        );
        assert!(LATE
            .iter()
            .any(|m| m.data.is_some_and(|d| d.contains("ptmxmode=0666"))));
    }

    #[test]
    fn proc_mounts_parsing() {
        let text = "rootfs / rootfs rw 0 0\nproc /proc proc rw 0 0\nshare /mnt/my\\040dir virtiofs rw 0 0\n";
        assert_eq!(parse_mounts(text), ["/", "/proc", "/mnt/my dir"]);
        assert_eq!(unescape_octal("a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape_octal("trailing\\04"), "trailing\\04");
    }
}
