//! virtiofsd: finding it, telling its two flavours apart, and starting one daemon per share.
//!
//! - The Rust daemon (gitlab.com/virtio-fs/virtiofsd; `cargo install virtiofsd`) takes
//!   `--shared-dir`, `--cache`, `--sandbox`, `--readonly`.
//! - QEMU's C daemon (QEMU ≤ 7.2, `/usr/lib/qemu/virtiofsd`) takes `-o source=…,cache=…` and has
//!   no read-only mode (the guest then mounts the share read-only).
//!
//! The flavour is read from `--help`. Both accept `--fd=N`, a socket that is already listening:
//! `mvm` binds and listens on the socket itself and hands it over, so the socket accepts
//! connections before the daemon even starts and there is nothing to poll (virtme-ng waited on a
//! pidfile and could hang, virtme-ng #418). `mvm` closes its own copy, so if the daemon dies QEMU's
//! connection is refused instead of hanging. A daemon serves one connection and exits when QEMU
//! disconnects, hence one daemon per share per run.

use crate::error::{Error, Result};
use crate::process::Guard;
use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The descriptor number the daemon gets the listening socket on.
const DAEMON_FD: i32 = 3;

/// Which virtiofsd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// The Rust daemon.
    Rust,
    /// QEMU's C daemon.
    C,
}

/// A virtiofsd binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Virtiofsd {
    pub path: PathBuf,
    pub flavour: Flavour,
}

/// One shared directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub host: PathBuf,
    pub tag: String,
    pub readonly: bool,
}

/// Where to look, in order: `PATH`, the tools directories that `x.sh` installs
/// into (`/usr/local/bin` as root, else `~/.cache/mvm/tools/bin`; also under `$MVM_CACHE_DIR`),
/// and the distributions' usual places.
fn candidates(cache_dir: Option<&Path>) -> Vec<PathBuf> {
    let mut c = Vec::new();
    if let Some(path) = std::env::var_os("PATH") {
        c.extend(std::env::split_paths(&path).map(|d| d.join("virtiofsd")));
    }
    if let Some(cache) = cache_dir {
        c.push(cache.join("tools/bin/virtiofsd"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        c.push(PathBuf::from(home).join(".cache/mvm/tools/bin/virtiofsd"));
    }
    for p in [
        "/usr/local/bin/virtiofsd",
        "/usr/libexec/virtiofsd",
        "/usr/lib/virtiofsd",
        "/usr/lib/qemu/virtiofsd",
    ] {
        c.push(p.into());
    }
    c
}

/// Finds a usable virtiofsd: `$MVM_VIRTIOFSD` as given, else the first Rust one, else a C one.
pub fn find(cache_dir: Option<&Path>) -> Result<Virtiofsd> {
    if let Some(path) = std::env::var_os("MVM_VIRTIOFSD").map(PathBuf::from) {
        let flavour = detect(&path).ok_or_else(|| {
            Error::missing("virtiofsd", &path, "($MVM_VIRTIOFSD) is not a virtiofsd")
        })?;
        return Ok(Virtiofsd { path, flavour });
    }
    let mut found_c = None;
    for path in candidates(cache_dir) {
        if !path.is_file() {
            continue;
        }
        match detect(&path) {
            Some(Flavour::Rust) => {
                return Ok(Virtiofsd {
                    path,
                    flavour: Flavour::Rust,
                })
            }
            Some(Flavour::C) if found_c.is_none() => found_c = Some(path),
            _ => {}
        }
    }
    found_c
        .map(|path| Virtiofsd {
            path,
            flavour: Flavour::C,
        })
        .ok_or_else(|| {
            Error::missing(
                "virtiofsd",
                "(PATH, ~/.cache/mvm/tools/bin, /usr/lib/qemu)",
                "not found; install it with `./x.sh setup` (cargo install virtiofsd) or set MVM_VIRTIOFSD",
            )
        })
}

/// The flavour of the daemon at `path`, from its `--help`; `None` if it is neither.
pub fn detect(path: &Path) -> Option<Flavour> {
    let out = Command::new(path)
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = [out.stdout, out.stderr].concat();
    flavour_from_help(&String::from_utf8_lossy(&text))
}

/// The flavour from `--help` text.
pub fn flavour_from_help(help: &str) -> Option<Flavour> {
    if help.contains("--shared-dir") {
        Some(Flavour::Rust)
    } else if help.contains("source=PATH") {
        Some(Flavour::C)
    } else {
        None
    }
}

impl Virtiofsd {
    /// The daemon's arguments for `share` with the listening socket on descriptor `fd`.
    ///
    /// Cache: `always` for read-only shares (nothing changes under the guest; `auto` gave ESTALE
    /// to virtme-ng users), `auto` when the guest writes.
    pub fn args(&self, share: &Share, fd: i32, root: bool) -> Vec<OsString> {
        let cache = if share.readonly { "always" } else { "auto" };
        let mut a: Vec<OsString> = Vec::new();
        match self.flavour {
            Flavour::Rust => {
                a.push(format!("--fd={fd}").into());
                let mut dir = OsString::from("--shared-dir=");
                dir.push(&share.host);
                a.push(dir);
                a.push(format!("--cache={cache}").into());
                let sandbox = if root { "namespace" } else { "none" };
                a.push(format!("--sandbox={sandbox}").into());
                a.push("--log-level=error".into());
                if share.readonly {
                    a.push("--readonly".into());
                }
            }
            Flavour::C => {
                a.push(format!("--fd={fd}").into());
                let mut src = OsString::from("source=");
                src.push(&share.host);
                a.extend(["-o".into(), src]);
                a.extend(["-o".into(), format!("cache={cache}").into()]);
                a.extend(["-o".into(), "log_level=err".into()]);
            }
        }
        a
    }

    /// Starts a daemon for `share` listening on `socket`; its stderr goes to `log`.
    pub fn start(&self, share: &Share, socket: &Path, log: &Path) -> Result<Guard> {
        let listener = UnixListener::bind(socket).map_err(|e| Error::io("listen on", socket, e))?;
        let log_file = std::fs::File::create(log).map_err(|e| Error::io("create", log, e))?;
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let mut cmd = Command::new(&self.path);
        cmd.args(self.args(share, DAEMON_FD, root))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        let guard = Guard::spawn(
            cmd,
            &format!("virtiofsd ({})", share.host.display()),
            vec![(listener.as_raw_fd(), DAEMON_FD)],
        )?;
        // Our copy closes here: only the daemon holds the socket from now on.
        drop(listener);
        Ok(guard)
    }
}

/// The last non-empty line of a daemon's log, for error messages.
pub fn last_log_line(log: &Path) -> Option<String> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
#[path = "virtiofsd_tests.rs"]
mod tests;
