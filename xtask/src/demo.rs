//! `cargo xtask demo`: the main job on its default — build fw.rom, fetch the default
//! kernel, and boot it on QEMU microvm with the test initramfs, showing the console.

use std::process::Command;
use std::time::Instant;

use crate::{kernel, rom};

/// Boot the cached Debian cloud kernel (bzImage, then PVH `vmlinux`) with fw.rom.
pub fn run() -> Result<(), String> {
    let rom = rom::build(false)?;
    let k = kernel::fetch_kernel()?;
    let initramfs = kernel::test_initramfs()?;
    let khz = mvm::host::tsc_khz().map_err(|e| e.to_string())?;
    for (protocol, image) in [("bzImage", &k.vmlinuz), ("PVH", &k.vmlinux)] {
        let mut qemu = Command::new("qemu-system-x86_64");
        qemu.args(["-M", "microvm,accel=tcg", "-m", "512M", "-no-reboot"])
            .args(["-nodefaults", "-no-user-config", "-display", "none"])
            .args(["-serial", "stdio", "-bios"])
            .arg(&rom)
            .arg("-kernel")
            .arg(image)
            .arg("-initrd")
            .arg(&initramfs.cpio)
            .args([
                "-append",
                &format!("console=ttyS0 quiet tsc_early_khz={khz}"),
            ]);
        println!("== {protocol}: {} with {}", image.display(), rom.display());
        let start = Instant::now();
        let status = qemu
            .status()
            .map_err(|e| format!("cannot run qemu-system-x86_64: {e}"))?;
        println!(
            "== {protocol}: QEMU exited ({status}) after {:.2} s",
            start.elapsed().as_secs_f64()
        );
        if !status.success() {
            return Err(format!("QEMU failed booting the {protocol} kernel"));
        }
    }
    Ok(())
}
