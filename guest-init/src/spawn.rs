//! Starting the workload: `fork`, then in the child `setsid` + the console as controlling terminal
//! (`TIOCSCTTY`, `tty_ioctl(4)`), user and group, working directory and `execve`, with a `PATH`
//! search like `execvp(3)`. A close-on-exec pipe tells the parent which step failed and its errno.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::sys::cstr;
use rinit_status::Outcome;
use std::ffi::CString;
use std::io;

/// `PATH` of the workload unless `rinit.env=PATH=…` says otherwise.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The child's steps, as reported through the pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
enum Stage {
    Session = 1,
    Console = 2,
    Identity = 3,
    Cwd = 4,
    Exec = 5,
}

impl Stage {
    fn from_i32(v: i32) -> Option<Stage> {
        [
            Stage::Session,
            Stage::Console,
            Stage::Identity,
            Stage::Cwd,
            Stage::Exec,
        ]
        .into_iter()
        .find(|s| *s as i32 == v)
    }
}

/// Everything the child needs, built before `fork` so the child does not allocate.
#[derive(Debug)]
pub struct Workload {
    argv: Vec<CString>,
    candidates: Vec<CString>,
    env: Vec<CString>,
    cwd: CString,
    console: CString,
    /// The fds given as 0, 1 and 2 instead of the console (owned by the caller).
    stdio: [Option<libc::c_int>; 3],
    uid: libc::uid_t,
    gid: libc::gid_t,
    display: String,
}

/// The workload environment: `PATH`, `HOME`, `TERM=term` defaults, then `overrides` (same name
/// replaces).
pub fn build_env(term: &str, overrides: &[String]) -> Vec<String> {
    let mut env: Vec<String> = vec![
        format!("PATH={DEFAULT_PATH}"),
        "HOME=/".into(),
        format!("TERM={term}"),
    ];
    for var in overrides {
        let name = var.split('=').next().unwrap_or(var);
        match env.iter_mut().find(|e| e.split('=').next() == Some(name)) {
            Some(slot) => *slot = var.clone(),
            None => env.push(var.clone()),
        }
    }
    env
}

/// The paths `execve` is tried with: `argv0` itself if it has a `/`, else each `PATH` entry.
pub fn search_path(argv0: &str, path: &str) -> Vec<String> {
    if argv0.contains('/') {
        return vec![argv0.to_owned()];
    }
    path.split(':')
        .map(|dir| if dir.is_empty() { "." } else { dir })
        .map(|dir| format!("{dir}/{argv0}"))
        .collect()
}

fn cstrings(list: &[String], what: &str) -> Result<Vec<CString>> {
    list.iter()
        .map(|s| cstr(s).map_err(|e| Error::io(format_args!("{what} {s:?}"), e)))
        .collect()
}

impl Workload {
    /// Prepares the workload of `cfg` with `console` as its terminal and, where `stdio` has an fd,
    /// that fd as its stdin, stdout or stderr (the caller keeps them open until [`Workload::spawn`]).
    pub fn prepare(
        cfg: &Config,
        console: &str,
        stdio: [Option<libc::c_int>; 3],
    ) -> Result<Workload> {
        let env = build_env(&cfg.term, &cfg.env);
        let path = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH);
        let argv0 = cfg
            .argv
            .first()
            .ok_or_else(|| Error::msg("empty workload argv"))?;
        if argv0.is_empty() {
            return Err(Error::msg("the workload's argv[0] is empty"));
        }
        Ok(Workload {
            argv: cstrings(&cfg.argv, "argument")?,
            candidates: cstrings(&search_path(argv0, path), "program path")?,
            env: cstrings(&env, "environment variable")?,
            cwd: cstr(&cfg.cwd).map_err(|e| Error::io("cwd", e))?,
            console: cstr(console).map_err(|e| Error::io("console", e))?,
            stdio,
            uid: cfg.uid,
            gid: cfg.gid,
            display: cfg.argv.join(" "),
        })
    }

    /// Starts the workload; on failure returns how it failed (125, 126 or 127) and why.
    pub fn spawn(&self) -> std::result::Result<libc::pid_t, (Outcome, Error)> {
        let setup = |e: Error| (Outcome::SetupFailed, e);
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
            return Err(setup(Error::last("pipe for the workload")));
        }
        let argv = ptrs(&self.argv);
        let env = ptrs(&self.env);
        // SAFETY: rinit is single-threaded, so the child may run any code; it only uses the
        // pre-built strings and async-signal-safe calls and ends in execve or _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: `fds[1]` is our pipe; the pointer arrays are NULL-terminated and point into
            // strings owned by `self`, alive in the child's copy of memory.
            unsafe { self.child(fds[1], &argv, &env) }
        }
        // SAFETY: the parent no longer needs the write end.
        unsafe { libc::close(fds[1]) };
        let report = read_report(fds[0]);
        // SAFETY: done with the read end.
        unsafe { libc::close(fds[0]) };
        if pid < 0 {
            return Err(setup(Error::last("fork the workload")));
        }
        match report {
            None => Ok(pid),
            Some((stage, errno)) => Err(self.failure(stage, errno)),
        }
    }

    fn failure(&self, stage: Option<Stage>, errno: i32) -> (Outcome, Error) {
        let err = io::Error::from_raw_os_error(errno);
        let (outcome, what) = match stage {
            Some(Stage::Exec) => (
                Outcome::from_exec_errno(errno),
                format!("execute {}", self.display),
            ),
            Some(Stage::Cwd) => (Outcome::SetupFailed, format!("chdir {:?}", self.cwd)),
            Some(Stage::Identity) => (
                Outcome::SetupFailed,
                format!("set uid {} gid {}", self.uid, self.gid),
            ),
            Some(Stage::Console) => (
                Outcome::SetupFailed,
                format!("open console {:?}", self.console),
            ),
            Some(Stage::Session) | None => (Outcome::SetupFailed, "start a session".into()),
        };
        (outcome, Error::io(what, err))
    }

    /// The child side: never returns.
    ///
    /// # Safety
    /// Must run in a freshly forked child of a single-threaded process; `argv` and `env` must be
    /// NULL-terminated arrays of pointers to NUL-terminated strings.
    unsafe fn child(
        &self,
        report: libc::c_int,
        argv: &[*const libc::c_char],
        env: &[*const libc::c_char],
    ) -> ! {
        let fail = |stage: Stage| -> ! {
            let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
            let msg = [(stage as i32).to_ne_bytes(), errno.to_ne_bytes()].concat();
            crate::sys::write_all_fd(report, &msg);
            // SAFETY: _exit is always safe; it does not run atexit handlers of the parent's copy.
            unsafe { libc::_exit(127) }
        };
        // SAFETY: an empty set is valid; the mask and the disposition only affect this child.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            // Rust's runtime ignores SIGPIPE in rinit; an ignored signal stays ignored across execve.
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
        // SAFETY: plain system calls on valid NUL-terminated strings owned by `self`.
        unsafe {
            if libc::setsid() < 0 {
                fail(Stage::Session);
            }
            let tty = libc::open(self.console.as_ptr(), libc::O_RDWR);
            if tty < 0 {
                fail(Stage::Console);
            }
            // Not fatal: /dev/console cannot become a controlling terminal, the real tty can.
            libc::ioctl(tty, libc::TIOCSCTTY, 1);
            for (fd, given) in (0..=2).zip(self.stdio) {
                libc::dup2(given.unwrap_or(tty), fd);
            }
            if tty > 2 {
                libc::close(tty);
            }
            // As PID 1 rinit is root and always drops supplementary groups; an unprivileged caller
            // (host tests) can only keep its own identity.
            let keep =
                libc::getuid() != 0 && libc::getuid() == self.uid && libc::getgid() == self.gid;
            if !keep
                && (libc::setgroups(0, std::ptr::null()) < 0
                    || libc::setgid(self.gid) < 0
                    || libc::setuid(self.uid) < 0)
            {
                fail(Stage::Identity);
            }
            if libc::chdir(self.cwd.as_ptr()) < 0 {
                fail(Stage::Cwd);
            }
        }
        let mut saw_eacces = false;
        for path in &self.candidates {
            // SAFETY: see the function's contract.
            unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), env.as_ptr()) };
            match io::Error::last_os_error().raw_os_error() {
                Some(libc::ENOENT | libc::ENOTDIR) => {}
                Some(libc::EACCES) => saw_eacces = true,
                _ => fail(Stage::Exec),
            }
        }
        if saw_eacces {
            // SAFETY: errno is thread-local and writable.
            unsafe { *libc::__errno_location() = libc::EACCES };
        }
        fail(Stage::Exec)
    }
}

/// A NULL-terminated pointer array for `execve`.
fn ptrs(list: &[CString]) -> Vec<*const libc::c_char> {
    list.iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Reads the child's failure report: `None` when the pipe closed without one (exec succeeded).
fn read_report(fd: libc::c_int) -> Option<(Option<Stage>, i32)> {
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: the destination range lies within `buf`.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        match n {
            0 => break,
            n if n > 0 => got += n as usize,
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            _ => break,
        }
    }
    if got < buf.len() {
        return None;
    }
    let stage = i32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let errno = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
    Some((Stage::from_i32(stage), errno))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_defaults_and_overrides() {
        let env = build_env(
            "linux",
            &["TERM=vt100".into(), "A=1=2".into(), "PATH=/x".into()],
        );
        assert_eq!(env, ["PATH=/x", "HOME=/", "TERM=vt100", "A=1=2"]);
        let env = build_env("xterm-256color", &[]);
        assert_eq!(env[2], "TERM=xterm-256color");
    }

    #[test]
    fn path_search() {
        assert_eq!(search_path("/bin/sh", "/a:/b"), ["/bin/sh"]);
        assert_eq!(search_path("./x", "/a"), ["./x"]);
        assert_eq!(search_path("sh", "/a::/b"), ["/a/sh", "./sh", "/b/sh"]);
    }

    #[test]
    fn stage_codes_round_trip() {
        for s in [
            Stage::Session,
            Stage::Console,
            Stage::Identity,
            Stage::Cwd,
            Stage::Exec,
        ] {
            assert_eq!(Stage::from_i32(s as i32), Some(s));
        }
        assert_eq!(Stage::from_i32(0), None);
    }

    fn workload(argv: &[&str]) -> Workload {
        let cfg = Config {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            ..Config::default()
        };
        Workload::prepare(&cfg, "/dev/null", [None; 3]).unwrap()
    }

    // These fork real children on the host: the child's stdio goes to /dev/null.
    #[test]
    fn exec_failures_map_to_126_and_127() {
        let (outcome, _) = workload(&["/nonexistent/prog"]).spawn().unwrap_err();
        assert_eq!(outcome, Outcome::NotFound);
        let (outcome, _) = workload(&["no-such-program-anywhere"]).spawn().unwrap_err();
        assert_eq!(outcome, Outcome::NotFound);
        let (outcome, err) = workload(&["/"]).spawn().unwrap_err();
        assert_eq!(outcome, Outcome::NotExecutable, "{err}");
    }

    #[test]
    fn workload_starts_with_default_signal_dispositions() {
        // The test process, like rinit, ignores SIGPIPE (Rust's runtime does); the workload must not.
        // Bit 12 of SigIgn is SIGPIPE (13).
        let script = r#"m=$(sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status); [ $((0x$m & 0x1000)) -eq 0 ]"#;
        let pid = workload(&["/bin/sh", "-c", script]).spawn().unwrap();
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert_eq!(Outcome::from_wait_status(status), Some(Outcome::Exited(0)));
    }

    #[test]
    fn exec_success_is_reported_as_a_pid() {
        let pid = workload(&["/bin/sh", "-c", "exit 42"]).spawn().unwrap();
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert_eq!(Outcome::from_wait_status(status), Some(Outcome::Exited(42)));
    }
}
