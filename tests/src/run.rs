//! A running QEMU: serial and stderr collected by reader threads, waits with timeouts on a
//! condition variable (no polling, no fixed sleeps), and kill-on-drop.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{self, Read};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Output collected so far.
#[derive(Default)]
struct Output {
    serial: Vec<u8>,
    stderr: Vec<u8>,
    open_pipes: u8,
}

#[derive(Default)]
struct Shared {
    output: Mutex<Output>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Output> {
        self.output.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits for the next change of the output, until `deadline`; `None` once it has passed.
    fn wait<'a>(
        &self,
        out: MutexGuard<'a, Output>,
        deadline: Instant,
    ) -> Option<MutexGuard<'a, Output>> {
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        let (out, _) = self
            .changed
            .wait_timeout(out, deadline - now)
            .unwrap_or_else(|e| e.into_inner());
        Some(out)
    }
}

/// A QEMU process started by [`crate::Vm::spawn`]. Dropping it kills QEMU.
pub struct Running {
    child: Child,
    argv: Vec<OsString>,
    shared: Arc<Shared>,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field("pid", &self.child.id())
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// How QEMU ended, with everything it printed.
#[derive(Clone, Debug)]
pub struct Exit {
    /// QEMU's exit status.
    pub status: ExitStatus,
    /// Everything the guest wrote to the serial port (lossy UTF-8).
    pub serial: String,
    /// QEMU's own messages.
    pub stderr: String,
}

impl Exit {
    /// The value written to `isa-debug-exit`, see [`crate::debug_exit_code`].
    pub fn debug_exit_code(&self) -> Option<u8> {
        crate::debug_exit_code(self.status)
    }

    /// Serial lines, without `\r`.
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.serial.lines().map(|l| l.trim_end_matches('\r'))
    }

    /// The first serial line starting with `prefix`.
    pub fn line_starting(&self, prefix: &str) -> Option<&str> {
        self.lines().find(|l| l.starts_with(prefix))
    }
}

/// What went wrong while waiting.
#[derive(Clone, Debug)]
pub enum FailureKind {
    /// The token (or QEMU's exit) did not come in time.
    Timeout {
        /// What was awaited.
        waiting_for: String,
        /// The timeout.
        after: Duration,
    },
    /// QEMU exited before the token appeared.
    Exited {
        /// The awaited token.
        waiting_for: String,
        /// QEMU's exit status.
        status: Option<ExitStatus>,
    },
    /// Talking to the process failed.
    Io(String),
}

/// A failed wait, with the command line and all output so far. Its `Debug` form is the
/// readable report, so `.unwrap()` in a test prints the serial log.
#[derive(Clone)]
pub struct Failure {
    /// What went wrong.
    pub kind: FailureKind,
    /// The QEMU command line.
    pub argv: Vec<OsString>,
    /// Serial output so far.
    pub serial: String,
    /// QEMU's stderr so far.
    pub stderr: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            FailureKind::Timeout { waiting_for, after } => {
                write!(f, "timed out after {after:?} waiting for {waiting_for:?}")?
            }
            FailureKind::Exited {
                waiting_for,
                status,
            } => write!(
                f,
                "QEMU exited ({status:?}) before printing {waiting_for:?}"
            )?,
            FailureKind::Io(e) => write!(f, "I/O error: {e}")?,
        }
        let argv: Vec<_> = self.argv.iter().map(|a| a.to_string_lossy()).collect();
        write!(f, "\ncommand: {}", argv.join(" "))?;
        write!(f, "\n--- serial ---\n{}", self.serial)?;
        write!(f, "\n--- qemu stderr ---\n{}\n--- end ---", self.stderr)
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Failure {}

fn reader(shared: Arc<Shared>, mut pipe: impl Read, serial: bool) -> impl FnOnce() {
    move || {
        let mut buf = [0u8; 4096];
        loop {
            let n = match pipe.read(&mut buf) {
                Ok(0) | Err(_) => 0,
                Ok(n) => n,
            };
            let mut out = shared.lock();
            if n == 0 {
                out.open_pipes -= 1;
                shared.changed.notify_all();
                return;
            }
            let sink = if serial {
                &mut out.serial
            } else {
                &mut out.stderr
            };
            sink.extend_from_slice(&buf[..n]);
            shared.changed.notify_all();
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

impl Running {
    /// Spawn `program` with `argv`, capturing stdout (the serial port) and stderr.
    pub(crate) fn start(program: &OsStr, argv: Vec<OsString>) -> io::Result<Running> {
        let mut cmd = Command::new(program);
        cmd.args(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: the closure runs in the forked child before exec and only makes
            // one async-signal-safe system call.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = cmd.spawn()?;
        let shared = Arc::new(Shared::default());
        shared.lock().open_pipes = 2;
        let stdout: ChildStdout = child.stdout.take().expect("stdout is piped");
        let stderr: ChildStderr = child.stderr.take().expect("stderr is piped");
        let readers = vec![
            std::thread::spawn(reader(shared.clone(), stdout, true)),
            std::thread::spawn(reader(shared.clone(), stderr, false)),
        ];
        Ok(Running {
            child,
            argv,
            shared,
            readers,
            status: None,
        })
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Serial output so far (lossy UTF-8).
    pub fn serial(&self) -> String {
        String::from_utf8_lossy(&self.shared.lock().serial).into_owned()
    }

    fn failure(&self, kind: FailureKind) -> Failure {
        let out = self.shared.lock();
        Failure {
            kind,
            argv: self.argv.clone(),
            serial: String::from_utf8_lossy(&out.serial).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Wait until the serial output (from the start) contains `token`.
    pub fn wait_for(&mut self, token: &str, timeout: Duration) -> Result<(), Failure> {
        let deadline = Instant::now() + timeout;
        let mut out = self.shared.lock();
        loop {
            if contains(&out.serial, token.as_bytes()) {
                return Ok(());
            }
            if out.open_pipes == 0 {
                drop(out);
                let status = self.child.wait().ok();
                self.status = status;
                return Err(self.failure(FailureKind::Exited {
                    waiting_for: token.to_owned(),
                    status,
                }));
            }
            let Some(next) = self.shared.wait(out, deadline) else {
                return Err(self.failure(FailureKind::Timeout {
                    waiting_for: token.to_owned(),
                    after: timeout,
                }));
            };
            out = next;
        }
    }

    /// Wait for QEMU to exit (its output pipes close), then collect its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Exit, Failure> {
        let deadline = Instant::now() + timeout;
        let mut out = self.shared.lock();
        while out.open_pipes > 0 {
            let Some(next) = self.shared.wait(out, deadline) else {
                return Err(self.failure(FailureKind::Timeout {
                    waiting_for: "QEMU to exit".into(),
                    after: timeout,
                }));
            };
            out = next;
        }
        drop(out);
        let status = match self.status {
            Some(s) => s,
            None => self
                .child
                .wait()
                .map_err(|e| self.failure(FailureKind::Io(e.to_string())))?,
        };
        self.status = Some(status);
        let out = self.shared.lock();
        Ok(Exit {
            status,
            serial: String::from_utf8_lossy(&out.serial).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Kill QEMU now (also done on drop).
    pub fn kill(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
        for handle in self.readers.drain(..) {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Running {
        Running::start("sh".as_ref(), vec!["-c".into(), script.into()]).expect("spawn sh")
    }

    #[test]
    fn waits_for_token_then_times_out() {
        let mut r = sh("echo READY; exec sleep 100");
        r.wait_for("READY", Duration::from_secs(10)).unwrap();
        let e = r.wait_for("NEVER", Duration::from_millis(200)).unwrap_err();
        assert!(matches!(e.kind, FailureKind::Timeout { .. }), "{e}");
        assert!(
            e.to_string().contains("READY"),
            "report shows the serial log"
        );
        let e = r.wait_exit(Duration::from_millis(100)).unwrap_err();
        assert!(matches!(e.kind, FailureKind::Timeout { .. }));
    }

    #[test]
    fn collects_exit_status_and_output() {
        let mut r = sh("echo out; echo err >&2; exit 7");
        let exit = r.wait_exit(Duration::from_secs(10)).unwrap();
        assert_eq!(exit.status.code(), Some(7));
        assert_eq!(exit.debug_exit_code(), Some(3));
        assert_eq!(exit.serial, "out\n");
        assert_eq!(exit.stderr, "err\n");
        assert_eq!(exit.line_starting("ou"), Some("out"));
    }

    #[test]
    fn reports_early_exit() {
        let mut r = sh("echo partial");
        let e = r.wait_for("DONE", Duration::from_secs(10)).unwrap_err();
        assert!(matches!(e.kind, FailureKind::Exited { .. }), "{e}");
        assert_eq!(e.serial, "partial\n");
    }

    #[test]
    fn drop_kills_the_process() {
        let r = sh("exec sleep 100");
        let pid = r.pid() as libc::pid_t;
        drop(r);
        // SAFETY: signal 0 only checks whether the (reaped) pid still exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        assert!(!alive, "process {pid} survived the drop");
    }
}
