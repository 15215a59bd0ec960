//! Tests of the newc writer: golden bytes, determinism, and read-back with GNU cpio.

use super::*;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

#[test]
fn golden_single_file() {
    let mut w = Writer::new(Vec::new());
    w.file("/init", 0o755, b"hi").unwrap();
    let bytes = w.finish().unwrap();
    let mut want = String::new();
    want.push_str("070701");
    for f in [1u32, 0o100_755, 0, 0, 1, 0, 2, 0, 0, 0, 0, 5, 0] {
        want.push_str(&format!("{f:08X}").to_lowercase());
    }
    let mut want = want.into_bytes();
    want.extend_from_slice(b"init\0"); // 110 + 5 = 115 -> pad to 116
    want.push(0);
    want.extend_from_slice(b"hi\0\0");
    assert_eq!(&bytes[..want.len()], &want[..]);
    assert_eq!(bytes.len() % 4, 0);
    let trailer = &bytes[want.len()..];
    assert_eq!(&trailer[..6], b"070701");
    assert_eq!(&trailer[110..121], b"TRAILER!!!\0");
}

#[test]
fn archive_is_sorted_and_deterministic() {
    let mut a = Archive::new();
    a.file("bin/tool", 0o755, vec![1, 2, 3]).unwrap();
    a.file("payload", 0o644, vec![9; 10]).unwrap();
    a.symlink("sbin/init", "/bin/tool").unwrap();
    let mut b = Archive::new();
    b.symlink("/sbin/init", "/bin/tool").unwrap();
    b.file("./payload", 0o644, vec![9; 10]).unwrap();
    b.dir("bin", 0o755).unwrap();
    b.file("bin/tool", 0o755, vec![1, 2, 3]).unwrap();
    assert_eq!(a.to_bytes().unwrap(), b.to_bytes().unwrap());
}

#[test]
fn rejects_bad_paths_and_duplicates() {
    let mut a = Archive::new();
    for bad in ["", "/", "a/../b", "a//b", "./", "TRAILER!!!", "x\0y"] {
        assert!(
            matches!(a.file(bad, 0o644, vec![]), Err(CpioError::InvalidPath(_))),
            "{bad:?}"
        );
    }
    a.file("x", 0o644, vec![]).unwrap();
    assert!(matches!(
        a.file("/x", 0o644, vec![]),
        Err(CpioError::Duplicate(_))
    ));
    a.file("d/f", 0o644, vec![]).unwrap();
    a.dir("d", 0o700).unwrap();
    assert!(matches!(
        a.file("d", 0o644, vec![]),
        Err(CpioError::Duplicate(_))
    ));
}

fn sample() -> Archive {
    let mut a = Archive::new();
    let big: Vec<u8> = (0..70_001u32).map(|i| (i * 31 % 251) as u8).collect();
    a.file("init", 0o755, b"#!/bin/sh\n".to_vec()).unwrap();
    a.file("data/big.bin", 0o600, big).unwrap();
    a.file("data/odd", 0o644, b"abc".to_vec()).unwrap();
    a.file("empty", 0o644, Vec::new()).unwrap();
    a.dir("proc", 0o555).unwrap();
    a.symlink("bin/sh", "../init").unwrap();
    a.device("dev/console", 0o600, DeviceKind::Char, 5, 1)
        .unwrap();
    a
}

/// Run GNU cpio with `args`, feeding `input`.
fn cpio(args: &[&str], dir: Option<&PathBuf>, input: &[u8]) -> Option<(bool, String)> {
    let mut cmd = Command::new("cpio");
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    let Ok(mut child) = cmd.spawn() else {
        eprintln!("cpio not installed: skipping read-back test");
        return None;
    };
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Some((out.status.success(), text))
}

#[test]
fn gnu_cpio_lists_every_entry() {
    let bytes = sample().to_bytes().unwrap();
    let Some((ok, text)) = cpio(&["-t", "--quiet"], None, &bytes) else {
        return;
    };
    assert!(ok, "{text}");
    let names: Vec<&str> = text.lines().collect();
    let want = [
        "bin",
        "bin/sh",
        "data",
        "data/big.bin",
        "data/odd",
        "dev",
        "dev/console",
        "empty",
        "init",
        "proc",
    ];
    assert_eq!(names, want);
    let Some((ok, long)) = cpio(&["-tv", "--quiet"], None, &bytes) else {
        return;
    };
    assert!(ok, "{long}");
    assert!(
        long.lines()
            .any(|l| l.starts_with("crw-------") && l.contains("5,")),
        "{long}"
    );
    assert!(long
        .lines()
        .any(|l| l.starts_with("lrwxrwxrwx") && l.contains("bin/sh -> ../init")));
}

#[test]
fn gnu_cpio_extracts_identical_files() {
    let mut a = sample();
    a.nodes.remove("dev/console"); // mknod needs root
    let bytes = a.to_bytes().unwrap();
    let dir = std::env::temp_dir().join(format!("mvm-cpio-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let args = ["-i", "-d", "--quiet", "--no-absolute-filenames"];
    let Some((ok, text)) = cpio(&args, Some(&dir), &bytes) else {
        return;
    };
    assert!(ok, "{text}");
    for (path, node) in &a.nodes {
        let p = dir.join(path);
        let meta = std::fs::symlink_metadata(&p).unwrap();
        match node {
            Node::File { perm, data } => {
                assert_eq!(&std::fs::read(&p).unwrap(), data, "{path}");
                assert_eq!(meta.permissions().mode() & 0o7777, *perm, "{path}");
            }
            Node::Dir { .. } => assert!(meta.is_dir(), "{path}"),
            Node::Symlink { target } => {
                assert_eq!(std::fs::read_link(&p).unwrap(), PathBuf::from(target))
            }
            Node::Device { .. } => unreachable!(),
        }
    }
    // cpio may have restored 0555 on proc/: make it removable.
    let _ = std::fs::set_permissions(dir.join("proc"), std::fs::Permissions::from_mode(0o755));
    std::fs::remove_dir_all(&dir).unwrap();
}
