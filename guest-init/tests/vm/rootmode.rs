//! Root mode: rinit as the init of a root filesystem that something else mounted.
//!
//! The Debian cloud kernel has the virtio drivers only as modules, so it cannot mount a virtio-blk
//! root by itself (`root=/dev/vda init=/sbin/rinit`). These tests boot it the way distributions do:
//! an initramfs whose `/init` is a busybox shell script that loads the modules, mounts the ext4
//! image (built with `mkfs.ext4 -d`) on `/newroot`, moves `/dev`, `/proc` and `/sys` into it as
//! initramfs-tools does, and `exec switch_root /newroot /sbin/rinit`. rinit then finds `/` on ext4,
//! runs in root mode and must still mount what is missing, run the workload and report.

use super::{assert_printed, expect_record, log, probe_values};
use crate::assets::{assert_clean, assets, ext4_image, read, vm, with_disk};
use mvm::cpio::{Archive, DeviceKind};
use rinit_status::Outcome;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The initramfs's `/init`. Like initramfs-tools it mounts the root read-only when the kernel
/// command line has the word `ro`. If anything fails the script exits, the kernel panics
/// (`panic=-1` reboots, QEMU exits) and the test fails for want of a record.
const INIT: &str = r#"#!/bin/busybox sh
B=/bin/busybox
$B mount -t devtmpfs -o mode=0755 devtmpfs /dev
$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
for m in virtio_ring virtio virtio_mmio virtio_blk; do
    $B insmod /modules/$m.ko || exit 1
done
n=0
while [ ! -b /dev/vda ] && [ $n -lt 500 ]; do $B sleep 0.01; n=$((n + 1)); done
mode=rw
for word in $($B cat /proc/cmdline); do
    case "$word" in ro|rw) mode=$word ;; --) break ;; esac
done
$B mount -t ext4 -o $mode /dev/vda /newroot || exit 1
for d in dev proc sys; do $B mount --move /$d /newroot/$d || exit 1; done
exec $B switch_root /newroot /sbin/rinit
"#;

/// Modules the script loads, dependencies first (paths under the kernel's `kernel/`).
const MODULES: &[&str] = &[
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_mmio.ko",
    "drivers/block/virtio_blk.ko",
];

/// The busybox initramfs, built once.
fn initramfs() -> &'static PathBuf {
    static CPIO: OnceLock<PathBuf> = OnceLock::new();
    CPIO.get_or_init(|| {
        let a = assets();
        let busybox = mvm::locate::busybox().unwrap_or_else(|e| panic!("{e}"));
        let mut cpio = Archive::new();
        cpio.file("init", 0o755, INIT.as_bytes().to_vec()).unwrap();
        cpio.file("bin/busybox", 0o755, read(&busybox)).unwrap();
        cpio.device("dev/console", 0o600, DeviceKind::Char, 5, 1)
            .unwrap();
        for dir in ["proc", "sys", "newroot"] {
            cpio.dir(dir, 0o755).unwrap();
        }
        for m in MODULES {
            let name = m.rsplit('/').next().unwrap();
            let data = read(&a.kernel.modules.join("kernel").join(m));
            cpio.file(&format!("modules/{name}"), 0o644, data).unwrap();
        }
        let out = a.scratch.join("rootmode.cpio");
        std::fs::write(&out, cpio.to_bytes().unwrap()).unwrap();
        out
    })
}

/// An ext4 root with rinit as `/sbin/rinit`, the probe and a file to open.
fn root_image(name: &str) -> PathBuf {
    let rinit = read(&assets().rinit);
    ext4_image(
        name,
        &[
            ("sbin/rinit", 0o755, rinit),
            ("etc/marker", 0o644, b"root mode\n".to_vec()),
        ],
    )
}

/// Everything rinit mounts, as the probe prints it (`<target> <type>`).
const MOUNTS: &[&str] = &[
    "/proc proc",
    "/sys sysfs",
    "/dev devtmpfs",
    "/dev/pts devpts",
    "/dev/shm tmpfs",
    "/run tmpfs",
    "/tmp tmpfs",
    "/sys/fs/cgroup cgroup2",
];

/// Asserts that every row of [`MOUNTS`] is mounted.
fn assert_mounted(exit: &mvm_tests::Exit) {
    let v = probe_values(exit);
    for want in MOUNTS {
        let found = v.iter().any(|l| {
            l.strip_prefix("mount ")
                .is_some_and(|m| m.starts_with(want))
        });
        assert!(found, "{want} not mounted:\n{}", log(exit));
    }
}

#[test]
fn root_mode_read_write() {
    let img = root_image("rootmode-rw");
    let append =
        "rinit.nonce=root-rw rinit.debug -- /bin/probe mounts + open /etc/marker + exit 42";
    let (rec, exit) = expect_record(&with_disk(vm(initramfs(), append), &img), "root-rw");
    assert_eq!(rec.outcome, Outcome::Exited(42));
    assert!(exit.serial.contains("rinit in Root mode"), "{}", log(&exit));
    assert_mounted(&exit);
    assert_printed(&exit, &["mount / ext4 rw", "open=ok"]);
    // rinit remounted the root read-only before powering off: the image is clean.
    assert_clean(&img);
}

#[test]
fn root_mode_read_only() {
    let img = root_image("rootmode-ro");
    let append = "ro rinit.nonce=root-ro -- /bin/probe mounts + open /etc/marker + exit 3";
    let (rec, exit) = expect_record(&with_disk(vm(initramfs(), append), &img), "root-ro");
    assert_eq!(rec.outcome, Outcome::Exited(3));
    assert_mounted(&exit);
    // EROFS
    assert_printed(&exit, &["mount / ext4 ro", "open=30"]);
    assert_clean(&img);
}
