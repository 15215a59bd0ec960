//! Finding the files a run needs: the firmware, rinit and busybox.
//!
//! Build outputs are looked up relative to the `mvm` executable, which Cargo puts in
//! `target/<profile>/`: `fw.rom` is `target/fw.rom` (`cargo xtask build-fw`) and rinit is
//! `target/x86_64-unknown-linux-musl/release/rinit`. Environment variables override each.

use crate::cli::FirmwareChoice;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Debian's qboot.
pub const QBOOT: &str = "/usr/share/qemu/qboot.rom";
/// Debian's SeaBIOS build for microvm.
pub const SEABIOS: &str = "/usr/share/seabios/bios-microvm.bin";
/// rinit's path inside a Cargo target directory.
const RINIT_IN_TARGET: &str = "x86_64-unknown-linux-musl/release/rinit";
/// How to build rinit.
pub const RINIT_BUILD: &str = "cargo build --release -p rinit --target x86_64-unknown-linux-musl";

/// Directories that may be the Cargo target directory, nearest first: the executable's
/// directory and its ancestors (`target/debug/deps/x` → `target/debug` → `target`).
fn target_dirs() -> Vec<PathBuf> {
    let Ok(exe) = std::env::current_exe() else {
        return Vec::new();
    };
    exe.ancestors()
        .skip(1)
        .take(4)
        .flat_map(|d| [d.to_owned(), d.join("target")])
        .collect()
}

/// The first existing file among `dirs`/`rel`.
fn in_targets(rel: &str) -> Option<PathBuf> {
    target_dirs()
        .into_iter()
        .map(|d| d.join(rel))
        .find(|p| p.is_file())
}

fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The firmware ROM for `choice`; an error names the fix when it is missing.
pub fn firmware(choice: &FirmwareChoice) -> Result<PathBuf> {
    let (path, fix) = match choice {
        FirmwareChoice::Fw => match env_path("MVM_FIRMWARE").or_else(|| in_targets("fw.rom")) {
            Some(p) => (p, ""),
            None => return Err(Error::missing(
                "firmware",
                "target/fw.rom",
                "not found next to mvm; build it with `cargo xtask build-fw` or set MVM_FIRMWARE",
            )),
        },
        FirmwareChoice::Qboot => (QBOOT.into(), "; install qemu-system-x86"),
        FirmwareChoice::Seabios => (SEABIOS.into(), "; install seabios"),
        FirmwareChoice::Path(p) => (p.clone(), ""),
    };
    check_file("firmware", &path, fix)?;
    Ok(path)
}

/// The static rinit binary: `$MVM_RINIT`, else the musl release build next to `mvm`.
pub fn rinit() -> Result<PathBuf> {
    let path = env_path("MVM_RINIT").or_else(|| in_targets(RINIT_IN_TARGET));
    match path {
        Some(p) => {
            check_file("rinit", &p, "")?;
            Ok(p)
        }
        None => Err(Error::missing(
            "rinit",
            format!("target/{RINIT_IN_TARGET}"),
            format!("not found next to mvm; build it with `{RINIT_BUILD}` or set MVM_RINIT"),
        )),
    }
}

/// A static busybox for the built-in root: `$MVM_BUSYBOX`, else Debian's busybox-static.
pub fn busybox() -> Result<PathBuf> {
    let fix = "the built-in root needs a static busybox: `apt-get install busybox-static`, \
               set MVM_BUSYBOX, or give --root DIR / --disk IMG";
    let candidates: Vec<PathBuf> = match env_path("MVM_BUSYBOX") {
        Some(p) => vec![p],
        None => vec!["/bin/busybox".into(), "/usr/bin/busybox".into()],
    };
    for p in &candidates {
        if p.is_file() && crate::initramfs::is_static_elf(p).unwrap_or(false) {
            return Ok(p.clone());
        }
    }
    Err(Error::missing("busybox", &candidates[0], fix))
}

fn check_file(what: &'static str, path: &Path, fix: &str) -> Result<()> {
    match std::fs::File::open(path) {
        Ok(_) if path.is_file() => Ok(()),
        Ok(_) => Err(Error::missing(what, path, "not a regular file")),
        Err(e) => Err(Error::missing(what, path, format!("{e}{fix}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_firmware_path_is_checked() {
        let err = firmware(&FirmwareChoice::Path("/nonexistent/rom".into())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "firmware /nonexistent/rom: No such file or directory (os error 2)"
        );
        assert!(firmware(&FirmwareChoice::Path("/".into())).is_err());
    }

    #[test]
    fn target_dirs_include_the_executables_ancestors() {
        let dirs = target_dirs();
        let exe = std::env::current_exe().unwrap();
        assert_eq!(dirs[0], exe.parent().unwrap());
    }
}
