//! `cargo xtask fetch-kernel`: put the Debian cloud kernel into the cache (through
//! `mvm::kernel`) and build the boot-test initramfs under `target/test-initramfs/`.
//!
//! The test initramfs is an uncompressed newc archive holding
//!
//! | path | what |
//! |---|---|
//! | `/init` | `guest-check` (static musl build of `tests/guest-check`) |
//! | `/payload` | 1 MiB of deterministic pseudo-random bytes |
//! | `/dev/console` | char 5:1, so init has a console before any mount |
//! | `/proc`, `/sys` | mount points |
//!
//! Next to it, `payload.sha256` holds the SHA-256 of `/payload` (lowercase hex), which
//! the boot tests compare with the `GUEST-CHECK initrd-file sha=` line.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use mvm::cpio::{Archive, DeviceKind};
use mvm::kernel::{FetchOptions, Kernel, KernelError};
use sha2::{Digest, Sha256};

use crate::util;

/// Size of `/payload`.
const PAYLOAD_SIZE: usize = 1 << 20;

/// The files of the boot-test initramfs.
#[derive(Debug, Clone)]
pub struct TestInitramfs {
    /// `target/test-initramfs/initramfs.cpio`.
    pub cpio: PathBuf,
    /// SHA-256 of `/payload`, lowercase hex.
    pub payload_sha256: String,
}

/// Fetch (or find) the kernel, build the test initramfs, print both; return the
/// kernel directory.
pub fn fetch() -> Result<PathBuf, String> {
    let kernel = fetch_kernel()?;
    let initramfs = test_initramfs()?;
    println!("kernel release  {}", kernel.kver);
    println!("bzImage         {}", kernel.vmlinuz.display());
    println!("PVH vmlinux     {}", kernel.vmlinux.display());
    println!("modules         {}", kernel.modules.display());
    println!("test initramfs  {}", initramfs.cpio.display());
    println!("payload sha256  {}", initramfs.payload_sha256);
    Ok(kernel.dir)
}

/// The cached kernel, downloaded and unpacked first if needed. On a fresh machine
/// apt has no package index yet: then `apt-get update` runs once and the fetch is
/// retried.
pub fn fetch_kernel() -> Result<Kernel, String> {
    let opts = FetchOptions::new().map_err(|e| e.to_string())?;
    eprintln!("+ kernel cache {}", opts.cache_dir.display());
    match mvm::kernel::fetch(&opts) {
        Err(KernelError::Resolve { .. }) => {
            util::run(Command::new("apt-get").args(["update", "-qq"]))?;
            mvm::kernel::fetch(&opts).map_err(|e| e.to_string())
        }
        other => other.map_err(|e| e.to_string()),
    }
}

/// Build guest-check for musl and write `target/test-initramfs/`.
pub fn test_initramfs() -> Result<TestInitramfs, String> {
    util::build_musl(&["mvm-guest-check"])?;
    let target = util::root().join("target");
    let init_path = target.join(util::MUSL).join("release/guest-check");
    let init = fs::read(&init_path).map_err(|e| format!("{}: {e}", init_path.display()))?;
    let payload = payload(PAYLOAD_SIZE);
    let payload_sha256 = hex(&Sha256::digest(&payload));

    let mut archive = Archive::new();
    let cpio_err = |e: mvm::cpio::CpioError| e.to_string();
    archive.dir("dev", 0o755).map_err(cpio_err)?;
    archive.dir("proc", 0o555).map_err(cpio_err)?;
    archive.dir("sys", 0o555).map_err(cpio_err)?;
    archive
        .device("dev/console", 0o600, DeviceKind::Char, 5, 1)
        .map_err(cpio_err)?;
    archive.file("init", 0o755, init).map_err(cpio_err)?;
    archive.file("payload", 0o644, payload).map_err(cpio_err)?;
    let bytes = archive.to_bytes().map_err(cpio_err)?;

    let dir = target.join("test-initramfs");
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let cpio = dir.join("initramfs.cpio");
    write_atomic(&cpio, &bytes)?;
    write_atomic(
        &dir.join("payload.sha256"),
        format!("{payload_sha256}\n").as_bytes(),
    )?;
    eprintln!("{}: {} bytes", cpio.display(), bytes.len());
    Ok(TestInitramfs {
        cpio,
        payload_sha256,
    })
}

/// `n` pseudo-random bytes from a fixed-seed xorshift64* generator: the same on
/// every run, and incompressible enough that a truncated or shifted copy shows.
fn payload(n: usize) -> Vec<u8> {
    let mut state: u64 = 0x6d76_6d2d_7465_7374; // "mvm-test"
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(n);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Write `path` through a temporary file and a rename, so readers never see half a file.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}
