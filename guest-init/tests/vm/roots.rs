//! Root filesystems: a block-device root (ext4 made by `mkfs.ext4 -d`), a virtiofs root with an extra
//! virtiofs mount, and module loading from an initramfs without `modules.dep`.

use super::{assert_printed, expect_record, probe_with};
use crate::assets::{assert_clean, assets, ext4_image, vm, with_disk};
use rinit_status::Outcome;
use std::process::{Child, Command};

/// The image of the block-root tests: the probe and a file to open.
fn block_image(name: &str) -> std::path::PathBuf {
    ext4_image(name, &[("etc/marker", 0o644, b"block root\n".to_vec())])
}

#[test]
fn block_root_read_only_and_read_write() {
    let img = block_image("blockroot");
    let base = "rinit.modules=virtio_mmio,virtio_blk rinit.root=/dev/vda";
    let ro = format!("{base} rinit.ro -- /bin/probe open /etc/marker");
    let (rec, exit) = probe_with("blk-ro", &ro, |vm| with_disk(vm, &img));
    assert_eq!(rec.outcome, Outcome::Exited(0));
    // EROFS
    assert_printed(&exit, &["open=30"]);
    let rw = format!("{base} -- /bin/probe open /etc/marker");
    let (_, exit) = probe_with("blk-rw", &rw, |vm| with_disk(vm, &img));
    assert_printed(&exit, &["open=ok"]);
    // rinit unmounted (or remounted read-only) the root before powering off: the image is clean.
    assert_clean(&img);
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
    let a = assets();
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
    let append = "rinit.modules=virtio_mmio,virtiofs rinit.root=virtiofs:ROOT \
                  rinit.mount=DATA:/mnt/data:ro -- /bin/probe open /mnt/data/file";
    let (rec, exit) = probe_with("vfs", append, |vm| {
        vm.machine("memory-backend=mem")
            .extra_args(["-chardev", &c1, "-chardev", &c2])
            .extra_args(["-device", "vhost-user-fs-device,chardev=vfs1,tag=ROOT"])
            .extra_args(["-device", "vhost-user-fs-device,chardev=vfs2,tag=DATA"])
            .extra_args(["-object", "memory-backend-memfd,id=mem,size=256M,share=on"])
            .extra_args(["-global", "virtio-mmio.force-legacy=false"])
    });
    assert_eq!(rec.outcome, Outcome::Exited(0));
    // EROFS: the extra mount is read-only.
    assert_printed(&exit, &["open=30"]);
}

#[test]
fn modules_without_modules_dep() {
    // Debian's packages ship no modules.dep: rinit reads each module's `depends=` instead.
    let img = block_image("nodep");
    let append = "rinit.nonce=nodep rinit.modules=virtio_mmio,virtio_blk rinit.root=/dev/vda \
                  rinit.ro -- /bin/probe exit 0";
    let vm = with_disk(vm(&assets().initramfs_nodep, append), &img);
    let (rec, _) = expect_record(&vm, "nodep");
    assert_eq!(rec.outcome, Outcome::Exited(0));
}
