//! Root filesystems: a block-device root (ext4 made by `mkfs.ext4 -d`), a virtiofs root with an extra
//! virtiofs mount, and module loading from an initramfs without `modules.dep`.

use super::{harness, probe, probe_values, record};
use rinit_status::Outcome;
use std::process::{Child, Command};

fn ext4_image(name: &str) -> std::path::PathBuf {
    let a = harness::assets();
    let tree = a.scratch.join(format!("{name}-tree"));
    let _ = std::fs::remove_dir_all(&tree);
    for dir in ["bin", "etc", "proc", "sys", "dev", "tmp", "run"] {
        std::fs::create_dir_all(tree.join(dir)).unwrap();
    }
    std::fs::copy(&a.probe, tree.join("bin/probe")).unwrap();
    std::fs::write(tree.join("etc/marker"), "block root\n").unwrap();
    let img = a.scratch.join(format!("{name}.img"));
    let _ = std::fs::remove_file(&img);
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-d"])
        .arg(&tree)
        .arg(&img)
        .arg("32M")
        .output();
    assert!(out.is_ok_and(|o| o.status.success()), "mkfs.ext4 failed");
    img
}

#[test]
fn block_root_read_only_and_read_write() {
    let img = ext4_image("blockroot");
    let drive = format!("file={},if=none,id=d,format=raw", img.display());
    let extra = ["-drive", &drive, "-device", "virtio-blk-device,drive=d"];
    let base = "rinit.modules=virtio_mmio,virtio_blk rinit.root=/dev/vda";
    let (rec, run) = probe(
        "blk-ro",
        &format!("{base} rinit.ro -- /bin/probe open /etc/marker"),
        &extra,
    );
    assert_eq!(rec.outcome, Outcome::Exited(0));
    assert!(
        probe_values(&run).contains(&"open=30"),
        "EROFS expected:\n{}",
        run.output
    );
    let (_, run) = probe(
        "blk-rw",
        &format!("{base} -- /bin/probe open /etc/marker"),
        &extra,
    );
    assert!(probe_values(&run).contains(&"open=ok"), "{}", run.output);
    // rinit unmounted (or remounted read-only) the root before powering off: the image is clean.
    let fsck = Command::new("e2fsck")
        .arg("-fn")
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
}

/// A C `virtiofsd` (QEMU 7.2) serving `dir` on `socket`; killed on drop.
struct Virtiofsd(Child);

impl Virtiofsd {
    fn start(dir: &std::path::Path, socket: &std::path::Path) -> Virtiofsd {
        let _ = std::fs::remove_file(socket);
        let child = Command::new("/usr/lib/qemu/virtiofsd")
            .arg(format!("--socket-path={}", socket.display()))
            .args([
                "-o",
                &format!("source={}", dir.display()),
                "-o",
                "cache=always",
                "-o",
                "sandbox=chroot",
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // The C daemon binds and listens in one step, and it exits after its first client leaves,
        // so wait for the socket file instead of test-connecting to it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !socket.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "virtiofsd socket {} never appeared",
                socket.display()
            );
            std::thread::yield_now();
        }
        Virtiofsd(child)
    }
}

impl Drop for Virtiofsd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn virtiofs_root_and_extra_mount() {
    // SAFETY: geteuid only reads the caller's credentials.
    if !std::path::Path::new("/usr/lib/qemu/virtiofsd").exists() || unsafe { libc::geteuid() } != 0
    {
        eprintln!("skipped: needs root and /usr/lib/qemu/virtiofsd");
        return;
    }
    let a = harness::assets();
    let root = a.scratch.join("vfs-root");
    let data = a.scratch.join("vfs-data");
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&data);
    for dir in ["bin", "proc", "sys", "dev", "mnt/data"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(&a.probe, root.join("bin/probe")).unwrap();
    std::fs::write(data.join("file"), "data\n").unwrap();
    // The daemon exits when QEMU disconnects, so this test connects once per daemon.
    let (s1, s2) = (
        a.scratch.join("vfs-root.sock"),
        a.scratch.join("vfs-data.sock"),
    );
    let _d1 = Virtiofsd::start(&root, &s1);
    let _d2 = Virtiofsd::start(&data, &s2);
    let (c1, c2) = (
        format!("socket,id=vfs1,path={}", s1.display()),
        format!("socket,id=vfs2,path={}", s2.display()),
    );
    let extra = [
        "-chardev",
        &c1,
        "-device",
        "vhost-user-fs-device,chardev=vfs1,tag=ROOT",
        "-chardev",
        &c2,
        "-device",
        "vhost-user-fs-device,chardev=vfs2,tag=DATA",
        "-object",
        "memory-backend-memfd,id=mem,size=256M,share=on",
        "-machine",
        "memory-backend=mem",
        "-global",
        "virtio-mmio.force-legacy=false",
    ];
    let append = "rinit.modules=virtio_mmio,virtiofs rinit.root=virtiofs:ROOT rinit.mount=DATA:/mnt/data:ro \
                  -- /bin/probe open /mnt/data/file";
    let (rec, run) = probe("vfs", append, &extra);
    assert_eq!(rec.outcome, Outcome::Exited(0));
    assert!(
        probe_values(&run).contains(&"open=30"),
        "read-only extra mount expected:\n{}",
        run.output
    );
}

#[test]
fn modules_without_modules_dep() {
    // Debian's packages ship no modules.dep: rinit reads each module's `depends=` instead.
    let img = ext4_image("nodep");
    let drive = format!("file={},if=none,id=d,format=raw", img.display());
    let extra = ["-drive", &drive, "-device", "virtio-blk-device,drive=d"];
    let append =
        "rinit.nonce=nodep rinit.modules=virtio_mmio,virtio_blk rinit.root=/dev/vda rinit.ro \
                  -- /bin/probe exit 0";
    let run = harness::boot_initramfs(&harness::assets().initramfs_nodep, append, &extra);
    assert_eq!(
        record(&run, "nodep").outcome,
        Outcome::Exited(0),
        "{}",
        run.output
    );
}
