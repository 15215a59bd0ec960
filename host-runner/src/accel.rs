//! Choosing the accelerator: KVM only when a quick probe shows it really runs a guest.
//!
//! `/dev/kvm` existing proves little: on nested hosts QEMU aborts on `-cpu host` ("failed to set
//! MSR 0x10a") or guests hang. The probe opens `/dev/kvm`, checks the API version, then boots
//! `fw.rom` under KVM with `-cpu host` and no kernel: the firmware reaches its fw_cfg check and
//! exits through `isa-debug-exit` with its "no kernel" code (0x20, QEMU status 65) in a few
//! milliseconds. Anything else is the reason to fall back to TCG. The verdict is cached per boot
//! of the host (`/proc/sys/kernel/random/boot_id`) and QEMU binary, so it costs one probe.

use crate::cli::AccelChoice;
use crate::qemu::Accel;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// `KVM_GET_API_VERSION` (`_IO(0xAE, 0x00)`) and the only version there is.
const KVM_GET_API_VERSION: libc::c_ulong = 0xAE00;
const KVM_API_VERSION: libc::c_int = 12;
/// fw.rom's "no kernel given" code as QEMU's exit status: `(0x20 << 1) | 1`.
const FW_NO_KERNEL_STATUS: i32 = 65;
/// How long the QEMU part of the probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The accelerator to use, its CPU model, and a note for the user when `auto` fell back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub accel: Accel,
    pub cpu: Option<String>,
    pub note: Option<String>,
}

/// Decides for `choice`; `fw_rom` is the project firmware used by the probe (if it exists).
pub fn decide(choice: AccelChoice, qemu: &Path, fw_rom: Option<&Path>) -> Decision {
    let kvm = Decision {
        accel: Accel::Kvm,
        cpu: Some("host".into()),
        note: None,
    };
    let tcg = |note| Decision {
        accel: Accel::Tcg,
        cpu: None,
        note,
    };
    match choice {
        AccelChoice::Kvm => kvm,
        AccelChoice::Tcg => tcg(None),
        AccelChoice::Auto => match probe_cached(qemu, fw_rom) {
            Ok(()) => kvm,
            Err(why) => tcg(Some(format!("KVM unusable ({why}); using TCG (slower)"))),
        },
    }
}

/// The probe, or its cached verdict.
pub fn probe_cached(qemu: &Path, fw_rom: Option<&Path>) -> Result<(), String> {
    let key = cache_key(qemu);
    let file = cache_file();
    if let (Some(key), Some(file)) = (&key, &file) {
        if let Some(verdict) = std::fs::read_to_string(file)
            .ok()
            .and_then(|t| t.strip_prefix(key.as_str()).map(str::to_owned))
        {
            return match verdict.trim() {
                "ok" => Ok(()),
                why => Err(why.to_owned()),
            };
        }
    }
    let result = probe(qemu, fw_rom);
    if let (Some(key), Some(file)) = (key, file) {
        let verdict = match &result {
            Ok(()) => "ok".to_owned(),
            Err(why) => why.clone(),
        };
        let _ = std::fs::create_dir_all(file.parent().unwrap_or(Path::new("/")));
        let _ = std::fs::write(&file, format!("{key}{verdict}\n"));
    }
    result
}

fn cache_file() -> Option<PathBuf> {
    crate::kernel::cache_dir().ok().map(|d| d.join("kvm-probe"))
}

/// `<boot id> <qemu path> <qemu mtime> <kvm access> ` — a new boot, a new QEMU, or a change of
/// `/dev/kvm`'s owner or mode (or of who we are) probes again.
fn cache_key(qemu: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let resolved = which(qemu)?;
    let mtime = std::fs::metadata(&resolved).ok()?.modified().ok()?;
    let secs = mtime.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    let kvm = std::fs::metadata("/dev/kvm")
        .map(|m| format!("{:o}:{}:{}", m.mode(), m.uid(), m.gid()))
        .unwrap_or_else(|_| "none".into());
    // SAFETY: geteuid and getegid have no preconditions.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    Some(format!(
        "{} {} {secs} {kvm} {uid}:{gid} ",
        boot.trim(),
        resolved.display()
    ))
}

/// `qemu` as an absolute path (searched in `PATH` when it has no `/`).
pub fn which(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_owned());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Runs the probe (uncached): `Ok` when KVM ran the firmware to its exit.
pub fn probe(qemu: &Path, fw_rom: Option<&Path>) -> Result<(), String> {
    let dev = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| format!("/dev/kvm: {e}"))?;
    // SAFETY: KVM_GET_API_VERSION takes no argument and only returns an integer.
    let version = unsafe { libc::ioctl(dev.as_raw_fd(), KVM_GET_API_VERSION, 0) };
    if version != KVM_API_VERSION {
        return Err(format!("/dev/kvm reports API version {version}, not 12"));
    }
    let Some(fw) = fw_rom else {
        return Ok(());
    };
    let mut child = Command::new(qemu)
        .args([
            "-M",
            "microvm,accel=kvm",
            "-cpu",
            "host",
            "-m",
            "32M",
            "-bios",
        ])
        .arg(fw)
        .args(["-nodefaults", "-no-user-config", "-display", "none"])
        .args(["-device", "isa-debug-exit,iobase=0xf4,iosize=4"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", qemu.display()))?;
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if start.elapsed() > PROBE_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Err("a KVM guest made no progress in 5 s".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if status.code() == Some(FW_NO_KERNEL_STATUS) {
        return Ok(());
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut err);
    }
    Err(format!(
        "qemu -accel kvm -cpu host: {}",
        probe_reason(&err, status)
    ))
}

/// The most telling line of QEMU's stderr: the first `error`/`failed` line, else the last one.
fn probe_reason(stderr: &str, status: std::process::ExitStatus) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let line = lines
        .iter()
        .find(|l| l.contains("error") || l.contains("failed"))
        .or(lines.last());
    match line {
        Some(l) => format!(
            "{} ({status})",
            l.trim_start_matches("qemu-system-x86_64: ")
        ),
        None => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_choices_do_not_probe() {
        let d = decide(AccelChoice::Tcg, Path::new("/nonexistent"), None);
        assert_eq!((d.accel, d.cpu, d.note), (Accel::Tcg, None, None));
        let d = decide(AccelChoice::Kvm, Path::new("/nonexistent"), None);
        assert_eq!((d.accel, d.cpu.as_deref()), (Accel::Kvm, Some("host")));
    }

    #[test]
    fn which_finds_programs_in_path() {
        assert!(which(Path::new("sh")).is_some());
        assert!(which(Path::new("/bin/sh")).is_some());
        assert!(which(Path::new("no-such-program-mvm")).is_none());
    }
}
