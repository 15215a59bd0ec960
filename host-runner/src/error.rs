//! The runner's errors and the exit status each one maps to.
//!
//! | status | meaning |
//! |---|---|
//! | the workload's | the guest reported a status record (0–255, see `rinit_status`) |
//! | 124 | `--timeout` expired; the VM was stopped |
//! | 125 | setup error: bad option, QEMU, kernel, firmware, initramfs, virtiofsd |
//! | 130, 143, 129 | `mvm` got SIGINT, SIGTERM or SIGHUP and stopped the VM (128 + signal) |
//! | 255 | the guest ended without a valid status record (crash, panic, killed QEMU) |

use std::path::PathBuf;
use std::time::Duration;

/// Exit status for a setup error (QEMU, kernel, firmware, virtiofsd, bad option).
pub const EXIT_SETUP: u8 = rinit_status::Outcome::SETUP_FAILED;
/// Exit status when `--timeout` expired.
pub const EXIT_TIMEOUT: u8 = rinit_status::HOST_TIMEOUT;
/// Exit status when the guest ended without a status record.
pub const EXIT_NO_RECORD: u8 = rinit_status::HOST_NO_RECORD;

/// Everything that can stop a run before the workload's own status is known.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A command-line value is invalid.
    #[error("{0}")]
    Usage(String),
    /// A file the run needs is missing or unusable.
    #[error("{what} {}: {why}", path.display())]
    Missing {
        what: &'static str,
        path: PathBuf,
        why: String,
    },
    /// A file system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A helper program could not be started or failed.
    #[error("{program}: {detail}")]
    Program { program: String, detail: String },
    /// Fetching or reading a kernel failed.
    #[error(transparent)]
    Kernel(#[from] crate::kernel::KernelError),
    /// Writing the initramfs failed.
    #[error(transparent)]
    Cpio(#[from] crate::cpio::CpioError),
    /// The host TSC frequency is unknown.
    #[error(transparent)]
    Host(#[from] crate::host::HostError),
    /// A kernel module the devices need is unavailable.
    #[error("{0}")]
    Module(String),
    /// A virtiofsd died while the VM was running.
    #[error(
        "virtiofsd for {share} exited while the VM was running ({status}){log}; the VM was stopped"
    )]
    DaemonDied {
        share: String,
        status: String,
        log: String,
    },
    /// QEMU could not be started or failed before the guest ran.
    #[error("qemu: {0}")]
    Qemu(String),
    /// `--timeout` expired.
    #[error("timed out after {}; the VM was stopped", crate::cli::format_duration(*.0))]
    Timeout(Duration),
    /// `mvm` received a signal and stopped the VM.
    #[error("interrupted by signal {0}; the VM was stopped")]
    Interrupted(i32),
    /// The detach key (Ctrl-]) was typed in an interactive run.
    #[error("detached (Ctrl-]); the VM was stopped")]
    Detached,
    /// The guest ended without a valid status record.
    #[error("the guest ended without a status record ({0}){hint}", hint = NO_RECORD_HINT)]
    NoRecord(String),
}

const NO_RECORD_HINT: &str = "; run with --console to see the kernel log";

impl Error {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Timeout(_) => EXIT_TIMEOUT,
            Error::NoRecord(_) => EXIT_NO_RECORD,
            Error::Interrupted(sig) => 128u8.saturating_add(u8::try_from(*sig).unwrap_or(0)),
            Error::Detached => 130,
            _ => EXIT_SETUP,
        }
    }

    /// An [`Error::Io`] for `path`.
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// An [`Error::Missing`] for `path`.
    pub fn missing(what: &'static str, path: impl Into<PathBuf>, why: impl Into<String>) -> Error {
        Error::Missing {
            what,
            path: path.into(),
            why: why.into(),
        }
    }
}

/// Results of the runner.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(Error::Timeout(Duration::from_secs(1)).exit_code(), 124);
        assert_eq!(Error::NoRecord("x".into()).exit_code(), 255);
        assert_eq!(Error::Usage("x".into()).exit_code(), 125);
        assert_eq!(Error::Interrupted(2).exit_code(), 130);
        assert_eq!(Error::Interrupted(15).exit_code(), 143);
        assert_eq!(Error::Detached.exit_code(), 130);
    }

    #[test]
    fn messages_are_one_line() {
        let e = Error::missing("kernel", "/nope", "No such file or directory");
        assert_eq!(e.to_string(), "kernel /nope: No such file or directory");
        assert!(!Error::NoRecord("qemu exited with status 0".into())
            .to_string()
            .contains('\n'));
    }
}
