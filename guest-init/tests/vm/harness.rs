//! Test assets and a QEMU runner for rinit's VM tests.
//!
//! Assets, built once per test process:
//! - `rinit` and `rinit-probe` for `x86_64-unknown-linux-musl`, built by a nested `cargo build` into
//!   `target/rinit-vm` (its own target dir, so it never waits on the outer build's lock);
//! - the Debian cloud kernel from the `mvm` cache (`cargo xtask fetch-kernel` puts it there);
//! - an initramfs: `/init` = rinit, `/bin/probe`, a non-executable `/notexec`, spec files under
//!   `/spec`, and the virtio modules with a `modules.dep` made by `depmod -b`.
//!
//! QEMU runs `-M microvm,accel=tcg` with the serial console on a pipe; [`run`] waits for its exit
//! with a timeout (a waiter thread and a channel, no fixed sleeps) and kills it on timeout.

use mvm::cpio::{Archive, DeviceKind};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

/// One boot under TCG takes 2–5 s here; other TCG guests may run at the same time.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// Modules of the test initramfs (paths under `kernel/`).
const MODULES: &[&str] = &[
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
pub const SPECS: &[(&str, &str)] = &[(
    "report.spec",
    "# argv words with spaces and quotes, and variables\narg /bin/probe\narg report\narg two words\narg \"quoted\" 'and single'\nenv GREETING=hello,  world\nenv MULTI=a\\tb\ncwd /tmp\nuid 1000\ngid 100\nhostname spec-host\n",
)];

/// Everything a boot needs.
#[derive(Debug)]
pub struct Assets {
    pub firmware: PathBuf,
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    /// The same without `modules.dep` (rinit reads `depends=` from the modules).
    pub initramfs_nodep: PathBuf,
    pub tsc_khz: u32,
    /// Where per-test scratch files go.
    pub scratch: PathBuf,
    /// The static probe binary (for building root filesystems).
    pub probe: PathBuf,
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The assets, built on first use.
pub fn assets() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let root = workspace_root();
        let scratch = root.join("target/rinit-vm");
        let bins = build_binaries(&root, &scratch);
        let cache = mvm::kernel::cache_dir().unwrap_or_else(|e| panic!("kernel cache: {e}"));
        let kernel = mvm::kernel::cached(&cache)
            .unwrap_or_else(|e| panic!("kernel cache {}: {e}", cache.display()))
            .unwrap_or_else(|| {
                panic!(
                    "no kernel in {}: run `cargo xtask fetch-kernel`",
                    cache.display()
                )
            });
        let initramfs = scratch.join("initramfs.cpio");
        write_initramfs(&bins, &kernel, &scratch, &initramfs, true);
        let initramfs_nodep = scratch.join("initramfs-nodep.cpio");
        write_initramfs(&bins, &kernel, &scratch, &initramfs_nodep, false);
        let firmware = match std::env::var_os("RINIT_VM_FIRMWARE") {
            Some(f) => PathBuf::from(f),
            None if root.join("target/fw.rom").is_file() => root.join("target/fw.rom"),
            None => PathBuf::from("/usr/share/qemu/qboot.rom"),
        };
        let tsc_khz = mvm::host::tsc_khz().unwrap_or_else(|e| panic!("host TSC: {e}"));
        Assets {
            firmware,
            kernel: kernel.vmlinuz,
            initramfs,
            initramfs_nodep,
            tsc_khz,
            scratch,
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

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn write_initramfs(
    bins: &Path,
    kernel: &mvm::kernel::Kernel,
    scratch: &Path,
    out: &Path,
    dep: bool,
) {
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
    let kver = &kernel.kver;
    let staging = scratch.join("modules-staging");
    let _ = std::fs::remove_dir_all(&staging);
    let moddir = staging.join("lib/modules").join(kver);
    for m in MODULES {
        let dst = moddir.join("kernel").join(m);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(kernel.modules.join("kernel").join(m), &dst).unwrap();
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
        .arg(kver)
        .status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "depmod -b {} failed",
        staging.display()
    );
    let names: &[&str] = if dep {
        &["modules.dep", "modules.builtin"]
    } else {
        &["modules.builtin"]
    };
    for name in names {
        a.file(
            &format!("lib/modules/{kver}/{name}"),
            0o644,
            read(&moddir.join(name)),
        )
        .unwrap();
    }
    for m in MODULES {
        a.file(
            &format!("lib/modules/{kver}/kernel/{m}"),
            0o644,
            read(&moddir.join("kernel").join(m)),
        )
        .unwrap();
    }
    std::fs::write(out, a.to_bytes().unwrap()).unwrap();
}

/// A finished QEMU run.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    /// The serial console (QEMU's stdout) and QEMU's stderr after it.
    pub output: String,
}

/// Boots the test initramfs with `append` after the fixed console options, plus `extra` QEMU args.
pub fn boot(append: &str, extra: &[&str]) -> Run {
    boot_initramfs(&assets().initramfs, append, extra)
}

/// [`boot`] with another initramfs.
pub fn boot_initramfs(initramfs: &Path, append: &str, extra: &[&str]) -> Run {
    let a = assets();
    let mut args: Vec<OsString> = vec!["-M".into(), "microvm,accel=tcg".into()];
    for arg in [
        "-m",
        "256M",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
    ] {
        args.push(arg.into());
    }
    args.extend([
        "-serial".into(),
        "stdio".into(),
        "-bios".into(),
        a.firmware.clone().into(),
    ]);
    args.extend([
        "-kernel".into(),
        a.kernel.clone().into(),
        "-initrd".into(),
        initramfs.into(),
    ]);
    let cmdline = format!(
        "console=ttyS0 tsc_early_khz={} panic=-1 quiet {append}",
        a.tsc_khz
    );
    args.extend(["-append".into(), cmdline.into()]);
    args.extend(extra.iter().map(OsString::from));
    run(args, TIMEOUT)
}

/// Runs QEMU with `args`; kills it after `timeout` and panics with its output.
pub fn run(args: Vec<OsString>, timeout: Duration) -> Run {
    let qemu = std::env::var_os("MVM_QEMU").unwrap_or_else(|| "qemu-system-x86_64".into());
    let child = Command::new(&qemu)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("start {qemu:?}: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(Ok(out)) => {
            let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
            output.push_str(&String::from_utf8_lossy(&out.stderr));
            Run {
                status: out.status,
                output,
            }
        }
        Ok(Err(e)) => panic!("wait for QEMU: {e}"),
        Err(_) => {
            // SAFETY: kill only sends a signal to our own child process.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            let out = rx.recv().ok().and_then(Result::ok);
            let text = out
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            panic!("QEMU did not exit within {timeout:?}; console:\n{text}");
        }
    }
}
