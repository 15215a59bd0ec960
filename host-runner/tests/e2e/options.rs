//! Output, environment, working directory, disks and timings.

use crate::util::{busybox_root, run, scratch};
use std::process::Command;

/// The 1 MiB the guest prints: `yes` lines cut at 1 MiB (no trailing newline).
pub fn expected_mib() -> Vec<u8> {
    b"abcdefghijklmnopqrstuvwxyz0123456789\n"
        .iter()
        .copied()
        .cycle()
        .take(1 << 20)
        .collect()
}

#[test]
fn stdout_of_1_mib_is_byte_exact() {
    let out = run(&[
        "--",
        "sh",
        "-c",
        "yes abcdefghijklmnopqrstuvwxyz0123456789 | head -c 1048576",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.len(), 1 << 20);
    assert!(out.stdout == expected_mib(), "stdout differs");
}

#[test]
fn env_and_workdir() {
    let out = run(&[
        "-e",
        "A=1",
        "-e",
        "B=two words",
        "-w",
        "/tmp",
        "--",
        "sh",
        "-c",
        "echo \"$A|$B|$(pwd)\"",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout_text(), "1|two words|/tmp\n");
}

#[test]
fn argv_with_quotes_and_newlines_travels_intact() {
    let out = run(&[
        "--",
        "sh",
        "-c",
        "printf '[%s]' \"$@\"",
        "sh",
        "say \"hi\"",
        "a\nb",
        "",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout_text(), "[say \"hi\"][a\nb][]");
}

#[test]
fn timings_are_printed() {
    let out = run(&["--timings", "--", "true"]);
    assert_eq!(out.code, 0);
    for phase in ["kernel (to rinit start)", "workload", "total (wall)"] {
        assert!(out.stderr.contains(phase), "{phase}: {}", out.stderr);
    }
}

#[test]
fn ext4_disk_as_root() {
    let dir = scratch("disk");
    let root = busybox_root(&dir);
    let img = dir.join("root.ext4");
    let made = Command::new("mkfs.ext4")
        .args(["-q", "-d"])
        .arg(&root)
        .arg(&img)
        .arg("16M")
        .stdout(std::process::Stdio::null())
        .status()
        .expect("mkfs.ext4 (e2fsprogs, installed by x.sh)");
    assert!(made.success());
    let img = img.to_str().unwrap();
    let out = run(&[
        "--disk",
        img,
        "--",
        "sh",
        "-c",
        "cat /etc/marker; touch /x 2>/dev/null || echo ro",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout_text(), "root-from-host\nro\n");
    let out = run(&["--disk", img, "--rw", "--", "sh", "-c", "echo w > /written"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let listing = Command::new("debugfs")
        .args(["-R", "ls /"])
        .arg(img)
        .output()
        .expect("debugfs (e2fsprogs)");
    assert!(String::from_utf8_lossy(&listing.stdout).contains("written"));
}

#[test]
fn bzimage_kernel_with_modules_found_next_to_it() {
    let cache = mvm::kernel::cache_dir().unwrap();
    let kernel = mvm::kernel::cached(&cache)
        .unwrap()
        .expect("cached kernel: run `cargo xtask fetch-kernel`");
    let vmlinuz = kernel.vmlinuz.to_str().unwrap();
    let dir = scratch("bzimage");
    let share = dir.to_str().unwrap().to_owned() + ":/mnt/s";
    let out = run(&[
        "--verbose",
        "--kernel",
        vmlinuz,
        "-v",
        &share,
        "--",
        "sh",
        "-c",
        "echo ok > /mnt/s/f",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("(--kernel, "), "{}", out.stderr);
    assert!(out.stderr.contains(", bzImage)"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(dir.join("f")).unwrap(), "ok\n");
}
