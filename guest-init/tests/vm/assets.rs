//! What the VM tests boot, built once per test process, and how they boot it (on the shared
//! `mvm-tests` harness).
//!
//! - `rinit` and `rinit-probe` for `x86_64-unknown-linux-musl`, built by a nested `cargo build`
//!   into `target/rinit-vm` (its own target dir: the outer `cargo test` holds the lock of
//!   `target/` while tests run);
//! - the Debian cloud kernel from the `mvm` cache (`cargo xtask fetch-kernel` puts it there),
//!   booted as its PVH `vmlinux` (a few hundred ms faster under TCG than the bzImage);
//! - initramfs images: `/init` = rinit, `/bin/probe`, a non-executable `/notexec`, spec files under
//!   `/spec`, and the virtio modules with a `modules.dep` made by `depmod -b` (or without it).
//!
//! Everything a test writes goes to a directory of its own process (`target/rinit-vm/run-<pid>`),
//! so two test runs at once (two engineers, or CI and a developer) never share an image or an
//! initramfs: QEMU refuses to open a disk image that another QEMU holds (`Failed to get "write"
//! lock`), and an initramfs rewritten under a booting guest breaks it. Directories of processes
//! that are gone are removed on start.

use mvm::cpio::{Archive, DeviceKind};
use mvm_tests::{Exit, Vm};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// One boot takes 2–5 s under TCG here; allow for a loaded CI machine.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// Modules of the test initramfs (paths under `kernel/`; `depmod` orders them).
pub const MODULES: &[&str] = &[
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio_mmio.ko",
    "drivers/char/virtio_console.ko",
    "drivers/block/virtio_blk.ko",
    "fs/fuse/fuse.ko",
    "fs/fuse/virtiofs.ko",
    "drivers/firmware/qemu_fw_cfg.ko",
];

/// Spec files put under `/spec` in the initramfs: (name, contents).
const SPECS: &[(&str, &str)] = &[(
    "report.spec",
    "# argv words with spaces and quotes, and variables\narg /bin/probe\narg report\narg two words\narg \"quoted\" 'and single'\nenv GREETING=hello,  world\nenv MULTI=a\\tb\ncwd /tmp\nuid 1000\ngid 100\nhostname spec-host\n",
)];

/// Everything a boot needs.
#[derive(Debug)]
pub struct Assets {
    pub firmware: PathBuf,
    pub kernel: mvm::kernel::Kernel,
    pub initramfs: PathBuf,
    /// The same without `modules.dep` (rinit reads `depends=` from the modules).
    pub initramfs_nodep: PathBuf,
    pub tsc_khz: u32,
    /// This process's scratch directory.
    pub scratch: PathBuf,
    /// The static `rinit` binary.
    pub rinit: PathBuf,
    /// The static probe binary (for building root filesystems).
    pub probe: PathBuf,
}

fn workspace_root() -> PathBuf {
    mvm_tests::workspace_root()
}

/// The assets, built on first use.
pub fn assets() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let root = workspace_root();
        let target = root.join("target/rinit-vm");
        let bins = build_binaries(&root, &target);
        let scratch = scratch_dir(&target);
        let cache = mvm::kernel::cache_dir().unwrap_or_else(|e| panic!("kernel cache: {e}"));
        let kernel = mvm::kernel::cached(&cache)
            .unwrap_or_else(|e| panic!("kernel cache {}: {e}", cache.display()))
            .unwrap_or_else(|| {
                panic!(
                    "no kernel in {}: run `cargo xtask fetch-kernel`",
                    cache.display()
                )
            });
        let moddir = stage_modules(&kernel, &scratch);
        let initramfs = scratch.join("initramfs.cpio");
        write_initramfs(&bins, &kernel.kver, &moddir, &initramfs, true);
        let initramfs_nodep = scratch.join("initramfs-nodep.cpio");
        write_initramfs(&bins, &kernel.kver, &moddir, &initramfs_nodep, false);
        let firmware = match std::env::var_os("RINIT_VM_FIRMWARE") {
            Some(f) => PathBuf::from(f),
            None if root.join("target/fw.rom").is_file() => root.join("target/fw.rom"),
            None => mvm_tests::qboot_rom().expect("neither target/fw.rom nor qboot"),
        };
        let tsc_khz = mvm::host::tsc_khz().unwrap_or_else(|e| panic!("host TSC: {e}"));
        Assets {
            firmware,
            kernel,
            initramfs,
            initramfs_nodep,
            tsc_khz,
            scratch,
            rinit: bins.join("rinit"),
            probe: bins.join("rinit-probe"),
        }
    })
}

fn build_binaries(root: &Path, target_dir: &Path) -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["build", "--release", "-p", "rinit", "-p", "rinit-probe"])
        .args(["--target", "x86_64-unknown-linux-musl", "--target-dir"])
        .arg(target_dir)
        .status()
        .unwrap_or_else(|e| panic!("run cargo: {e}"));
    assert!(status.success(), "building rinit for musl failed: {status}");
    target_dir.join("x86_64-unknown-linux-musl/release")
}

/// `target/run-<pid>`, after removing the directories of test processes that have ended.
fn scratch_dir(target: &Path) -> PathBuf {
    let entries = std::fs::read_dir(target).into_iter().flatten().flatten();
    for entry in entries {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix("run-"));
        let Some(pid) = pid.and_then(|p| p.parse::<libc::pid_t>().ok()) else {
            continue;
        };
        // SAFETY: signal 0 only checks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    let dir = target.join(format!("run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    dir
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Copies [`MODULES`] into `scratch/modules/lib/modules/<kver>` and indexes them with
/// `depmod -b`; returns that directory.
fn stage_modules(kernel: &mvm::kernel::Kernel, scratch: &Path) -> PathBuf {
    let staging = scratch.join("modules");
    let moddir = staging.join("lib/modules").join(&kernel.kver);
    for m in MODULES {
        let dst = moddir.join("kernel").join(m);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(kernel.modules.join("kernel").join(m), &dst)
            .unwrap_or_else(|e| panic!("copy module {m}: {e}"));
    }
    for f in [
        "modules.builtin",
        "modules.builtin.modinfo",
        "modules.order",
    ] {
        let _ = std::fs::copy(kernel.modules.join(f), moddir.join(f));
    }
    let status = Command::new("depmod")
        .arg("-b")
        .arg(&staging)
        .arg(&kernel.kver)
        .status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "depmod -b {} failed",
        staging.display()
    );
    moddir
}

fn write_initramfs(bins: &Path, kver: &str, moddir: &Path, out: &Path, dep: bool) {
    let mut a = Archive::new();
    a.file("init", 0o755, read(&bins.join("rinit"))).unwrap();
    a.file("bin/probe", 0o755, read(&bins.join("rinit-probe")))
        .unwrap();
    a.file("notexec", 0o644, b"not a program\n".to_vec())
        .unwrap();
    a.device("dev/console", 0o600, DeviceKind::Char, 5, 1)
        .unwrap();
    for (name, text) in SPECS {
        a.file(&format!("spec/{name}"), 0o644, text.as_bytes().to_vec())
            .unwrap();
    }
    let index: &[&str] = if dep {
        &["modules.dep", "modules.builtin"]
    } else {
        &["modules.builtin"]
    };
    let files = index.iter().map(|f| f.to_string());
    for rel in files.chain(MODULES.iter().map(|m| format!("kernel/{m}"))) {
        a.file(
            &format!("lib/modules/{kver}/{rel}"),
            0o644,
            read(&moddir.join(&rel)),
        )
        .unwrap();
    }
    std::fs::write(out, a.to_bytes().unwrap()).unwrap();
}

/// An ext4 image made by `mkfs.ext4 -d` (no mounting) from a tree holding the probe as
/// `/bin/probe`, the `files` given as (path, mode, contents), and the usual mount points.
pub fn ext4_image(name: &str, files: &[(&str, u32, Vec<u8>)]) -> PathBuf {
    let a = assets();
    let tree = a.scratch.join(format!("{name}-tree"));
    let _ = std::fs::remove_dir_all(&tree);
    for dir in ["bin", "etc", "proc", "sys", "dev", "tmp", "run"] {
        std::fs::create_dir_all(tree.join(dir)).unwrap();
    }
    std::fs::copy(&a.probe, tree.join("bin/probe")).unwrap();
    for (path, mode, data) in files {
        let dst = tree.join(path);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::write(&dst, data).unwrap();
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(*mode)).unwrap();
    }
    let img = a.scratch.join(format!("{name}.img"));
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-d"])
        .arg(&tree)
        .arg(&img)
        .arg("32M")
        .output()
        .expect("run mkfs.ext4");
    assert!(
        out.status.success(),
        "mkfs.ext4 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    img
}

/// Asserts that `img` is a clean ext4 filesystem (`e2fsck -fn`): whoever used it last unmounted
/// it (or remounted it read-only) before the guest powered off.
pub fn assert_clean(img: &Path) {
    let fsck = Command::new("e2fsck")
        .arg("-fn")
        .arg(img)
        .output()
        .expect("run e2fsck");
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
}

/// A VM booting the test kernel with `initramfs` and `append` after the fixed console options.
pub fn vm(initramfs: &Path, append: &str) -> Vm {
    let a = assets();
    Vm::new()
        .firmware(&a.firmware)
        .memory("256M")
        .kernel(&a.kernel.vmlinux)
        .initrd(initramfs)
        .append(format!(
            "console=ttyS0 tsc_early_khz={} cryptomgr.notests panic=-1 quiet {append}",
            a.tsc_khz
        ))
}

/// `vm` with the ext4 image `img` as its virtio-blk disk `/dev/vda`.
pub fn with_disk(vm: Vm, img: &Path) -> Vm {
    let drive = format!("file={},if=none,id=d,format=raw", img.display());
    vm.extra_args(["-drive", &drive, "-device", "virtio-blk-device,drive=d"])
}

/// Boots `vm` until QEMU exits; panics with the console log on a timeout.
pub fn run(vm: &Vm) -> Exit {
    vm.spawn()
        .wait_exit(TIMEOUT)
        .unwrap_or_else(|failure| panic!("{failure}"))
}
