//! virtiofs: `--root DIR` and `-v HOST:GUEST[:ro]` with a real virtiofsd.

use crate::util::{busybox_root, require_virtiofsd, run, scratch, Out};

/// Runs `sh -c SCRIPT` with a fresh busybox tree (in scratch dir `name`) as `--root`, plus
/// `extra` options; returns the tree and the run's output.
fn run_in_root(name: &str, extra: &[&str], script: &str) -> (std::path::PathBuf, Out) {
    require_virtiofsd();
    let root = busybox_root(&scratch(name));
    let mut args = vec!["--root", root.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend(["--", "sh", "-c", script]);
    let out = run(&args);
    (root, out)
}

#[test]
fn root_directory_read_only_by_default() {
    let (root, out) = run_in_root(
        "root-ro",
        &[],
        "cat /etc/marker; touch /new 2>/dev/null || echo ro",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout_text(), "root-from-host\nro\n");
    assert!(!root.join("new").exists());
}

#[test]
fn read_only_root_without_mount_points_gets_an_overlay() {
    require_virtiofsd();
    let dir = scratch("root-bare");
    let root = busybox_root(&dir);
    for d in ["proc", "sys", "dev", "tmp", "run"] {
        std::fs::remove_dir(root.join(d)).unwrap();
    }
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("in"), "shared\n").unwrap();
    let volume = format!("{}:/srv/data", data.display());
    let out = run(&[
        "--root",
        root.to_str().unwrap(),
        "-v",
        &volume,
        "--",
        "sh",
        "-c",
        "test -e /proc/self && echo proc; echo t > /tmp/t && cat /tmp/t; cat /srv/data/in; \
         (echo x > /etc/x) 2>&1; cat /proc/self/mounts",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = out.stdout_text();
    assert!(text.starts_with("proc\nt\nshared\n"), "{text}");
    assert!(text.contains("/etc/x: Read-only file system"), "{text}");
    let mounts: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .filter(|f| f.len() == 6)
        .collect();
    let at = |point: &str| mounts.iter().find(|f| f[1] == point).map(|f| (f[2], f[3]));
    assert!(
        at("/").is_some_and(|(fs, opts)| fs == "overlay" && opts.starts_with("ro,")),
        "{text}"
    );
    assert_eq!(
        at("/srv/data").map(|(fs, _)| fs),
        Some("virtiofs"),
        "{text}"
    );
    // Nothing was created in the shared tree.
    assert!(
        !root.join("etc/x").exists() && !root.join("proc").exists() && !root.join("srv").exists()
    );
}

#[test]
fn read_only_root_with_a_file_on_a_mount_point_is_refused() {
    let root = busybox_root(&scratch("root-file"));
    std::fs::remove_dir(root.join("tmp")).unwrap();
    std::fs::write(root.join("tmp"), "").unwrap();
    let out = run(&["--root", root.to_str().unwrap(), "--", "true"]);
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(
        out.stderr.contains("tmp is not a directory"),
        "{}",
        out.stderr
    );
}

#[test]
fn root_directory_writable_with_rw() {
    let (root, out) = run_in_root("root-rw", &["--rw"], "echo data > /new-file");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(root.join("new-file")).unwrap(),
        "data\n"
    );
}

#[test]
fn extra_shares_honour_read_only() {
    require_virtiofsd();
    let dir = scratch("volumes");
    let ro = dir.join("ro");
    let rw = dir.join("rw");
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::create_dir_all(&rw).unwrap();
    std::fs::write(ro.join("in"), "from host\n").unwrap();
    let ro_spec = format!("{}:/mnt/ro:ro", ro.display());
    let rw_spec = format!("{}:/mnt/rw", rw.display());
    let out = run(&[
        "-v",
        &ro_spec,
        "-v",
        &rw_spec,
        "-w",
        "/mnt/ro",
        "--",
        "sh",
        "-c",
        "cat in; touch x 2>/dev/null || echo ro-refused; echo out > /mnt/rw/out",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout_text(), "from host\nro-refused\n");
    assert!(!ro.join("x").exists());
    assert_eq!(std::fs::read_to_string(rw.join("out")).unwrap(), "out\n");
}

#[test]
fn missing_share_is_125() {
    let out = run(&["-v", "/nonexistent/dir:/mnt/x", "--", "true"]);
    assert_eq!(out.code, 125);
    assert!(out
        .stderr
        .starts_with("mvm: error: shared directory /nonexistent/dir"));
}

#[test]
fn qemu_c_virtiofsd_flavour() {
    let c_daemon = "/usr/lib/qemu/virtiofsd";
    if !std::path::Path::new(c_daemon).is_file() {
        eprintln!("skipped: no {c_daemon} (QEMU 7.2's C daemon; newer QEMU has none)");
        return;
    }
    let dir = scratch("c-virtiofsd");
    let root = busybox_root(&dir);
    let mut cmd = crate::util::mvm_run(&[
        "--root",
        root.to_str().unwrap(),
        "--rw",
        "--",
        "sh",
        "-c",
        "cat /etc/marker; echo c > /from-guest",
    ]);
    cmd.env("MVM_VIRTIOFSD", c_daemon);
    let out = crate::util::finish(
        crate::util::Mvm(cmd.spawn().unwrap()),
        crate::util::RUN_LIMIT,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout_text(), "root-from-host\n");
    assert_eq!(
        std::fs::read_to_string(root.join("from-guest")).unwrap(),
        "c\n"
    );
}
