//! Child processes and the per-run directory, with teardown on every exit path.
//!
//! - [`Guard`] owns a child (QEMU or a virtiofsd): dropping it stops the child (SIGTERM, a short
//!   grace period, then SIGKILL) and reaps it, so an error, a timeout or a signal that unwinds
//!   the run leaves no process behind.
//! - Children run in their own process group, so a Ctrl-C at the terminal reaches `mvm` alone and
//!   `mvm` stops the VM in order; and with `PR_SET_PDEATHSIG` = SIGKILL, so they die with `mvm`
//!   even if `mvm` itself is killed with SIGKILL.
//! - [`RunDir`] is a private (0700) directory for sockets, logs and per-run files, removed on
//!   drop; directories left by a killed `mvm` are removed by the next run.

use crate::error::{Error, Result};
use std::os::fd::RawFd;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// How long a child gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_millis(500);

/// A running child that is stopped and reaped when dropped.
#[derive(Debug)]
pub struct Guard {
    child: Child,
    name: String,
    status: Option<ExitStatus>,
}

impl Guard {
    /// Starts `cmd` in its own process group with `PR_SET_PDEATHSIG`, giving it the open
    /// descriptors `fds` as `(ours, its number)`.
    pub fn spawn(mut cmd: Command, name: &str, fds: Vec<(RawFd, RawFd)>) -> Result<Guard> {
        cmd.process_group(0);
        let parent = std::process::id();
        // SAFETY: the closure runs in the forked child before exec and only makes
        // async-signal-safe system calls (prctl, getppid, dup2, fcntl, _exit) on integers.
        unsafe {
            cmd.pre_exec(move || child_setup(parent, &fds));
        }
        let child = cmd.spawn().map_err(|e| Error::Program {
            program: cmd.get_program().to_string_lossy().into_owned(),
            detail: format!("cannot start it: {e}"),
        })?;
        Ok(Guard {
            child,
            name: name.to_owned(),
            status: None,
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the child is (for messages).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its exit status if it has ended (reaping it).
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self
                .child
                .try_wait()
                .map_err(|e| Error::io("wait for", &self.name, e))?;
        }
        Ok(self.status)
    }

    /// Waits up to `limit` for the child to end on its own.
    pub fn wait_for(&mut self, limit: Duration) -> Result<Option<ExitStatus>> {
        let end = Instant::now() + limit;
        loop {
            if let Some(st) = self.try_wait()? {
                return Ok(Some(st));
            }
            if Instant::now() >= end {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits for the child to end.
    pub fn wait(&mut self) -> Result<ExitStatus> {
        if let Some(st) = self.status {
            return Ok(st);
        }
        let st = self
            .child
            .wait()
            .map_err(|e| Error::io("wait for", &self.name, e))?;
        self.status = Some(st);
        Ok(st)
    }

    /// Stops the child if it still runs (SIGTERM, then SIGKILL after `GRACE`) and reaps it.
    pub fn stop(&mut self) {
        if matches!(self.try_wait(), Ok(Some(_))) {
            return;
        }
        signal(self.child.id(), libc::SIGTERM);
        if matches!(self.wait_for(GRACE), Ok(Some(_))) {
            return;
        }
        let _ = self.child.kill();
        if let Ok(st) = self.child.wait() {
            self.status = Some(st);
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal(pid: u32, sig: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill has no memory effects; the pid is our unreaped child, so it cannot have
        // been reused by another process.
        unsafe { libc::kill(pid, sig) };
    }
}

/// In the child, after fork: die with the parent, and move descriptors into place.
fn child_setup(parent: u32, fds: &[(RawFd, RawFd)]) -> std::io::Result<()> {
    // SAFETY: plain system calls on integers, allowed between fork and exec.
    unsafe {
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if u32::try_from(libc::getppid()).ok() != Some(parent) {
            // The parent died before prctl took effect.
            libc::_exit(1);
        }
        for &(from, to) in fds {
            if from == to {
                // dup2 would be a no-op and keep close-on-exec set.
                let flags = libc::fcntl(from, libc::F_GETFD);
                if flags < 0 || libc::fcntl(from, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(from, to) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// A private directory for one run, removed when dropped.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
}

/// Prefix of run directories: `mvm-<pid>-<nanos>`.
const RUN_PREFIX: &str = "mvm-";

impl RunDir {
    /// Creates `$TMPDIR/mvm-<pid>-<nanos>` with mode 0700, after removing the directories of
    /// runs whose `mvm` process no longer exists.
    pub fn create() -> Result<RunDir> {
        let base = std::env::temp_dir();
        remove_stale(&base);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = base.join(format!("{RUN_PREFIX}{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| Error::io("create", &path, e))?;
        Ok(RunDir { path })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The pid in a run directory's name, if it is one.
fn run_dir_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(RUN_PREFIX)?;
    let (pid, nanos) = rest.split_once('-')?;
    nanos.bytes().all(|b| b.is_ascii_digit()).then_some(())?;
    pid.parse().ok()
}

fn remove_stale(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = run_dir_pid(&name.to_string_lossy()) else {
            continue;
        };
        let alive = Path::new("/proc").join(pid.to_string()).exists();
        let ours = entry.metadata().is_ok_and(|m| {
            use std::os::unix::fs::MetadataExt;
            // SAFETY: geteuid has no preconditions.
            m.is_dir() && m.uid() == unsafe { libc::geteuid() }
        });
        if !alive && ours {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dir_names() {
        assert_eq!(run_dir_pid("mvm-123-456"), Some(123));
        assert_eq!(run_dir_pid("mvm-123-x"), None);
        assert_eq!(run_dir_pid("mvm-tests"), None);
        assert_eq!(run_dir_pid("other-1-2"), None);
    }

    #[test]
    fn run_dir_is_private_and_removed() {
        let dir = RunDir::create().unwrap();
        let path = dir.path().to_owned();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::write(path.join("f"), b"x").unwrap();
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn guard_stops_and_reaps() {
        let mut cmd = Command::new("sleep");
        cmd.arg("60");
        let mut g = Guard::spawn(cmd, "sleep", Vec::new()).unwrap();
        let pid = g.pid();
        assert!(g.try_wait().unwrap().is_none());
        let start = Instant::now();
        drop(g);
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(!Path::new(&format!("/proc/{pid}")).exists());
    }
}
