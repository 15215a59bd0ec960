//! The workload's standard streams: split onto ports (stdout and stderr apart, stdin forwarded,
//! byte-exact), the console (merged, a tty), the choice `auto` makes, and an interactive run on
//! a pseudo-terminal.

use crate::options::expected_mib;
use crate::util::{finish, mvm_run, nonce_from, processes_with, run, Mvm, RUN_LIMIT};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Stdio;
use std::time::Instant;

#[test]
fn stderr_is_kept_apart() {
    let out = run(&[
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; echo again > /dev/stderr; [ -t 1 ] || echo 'not a tty'",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout_text(), "out\nnot a tty\n");
    // Reopening /dev/stderr works (the workload has pipes, not the one-opener ports).
    assert_eq!(out.stderr, "err\nagain\n");
}

/// `mvm run -q ARGS…` with `input` on stdin.
fn run_with_input(args: &[&str], input: Vec<u8>) -> crate::util::Out {
    let mut cmd = mvm_run(args);
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().expect("start mvm");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = finish(Mvm(child), RUN_LIMIT);
    writer.join().unwrap();
    out
}

#[test]
fn stdin_reaches_the_workload_byte_exact() {
    // Every byte value, NULs and a lone end-mark prefix included, then end-of-file.
    let mut input: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    input.extend_from_slice(b"\0RINIT-END");
    let out = run_with_input(&["--", "cat"], input.clone());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.len(), input.len());
    assert!(out.stdout == input, "stdout differs from stdin");
    // The workload sees end-of-file and goes on.
    let out = run_with_input(&["--", "sh", "-c", "wc -c; echo after"], b"12345".to_vec());
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout_text().split_whitespace().collect::<Vec<_>>(),
        ["5", "after"]
    );
}

#[test]
fn a_forged_end_mark_is_output() {
    // The workload can read the nonce and print rinit's end mark itself; the real one follows
    // it, so the host shows the forged one as output.
    let script = r#"n=$(sed 's/.*rinit.nonce=\([A-Za-z0-9_-]*\).*/\1/' /proc/cmdline); printf 'x\0RINIT-END %s\0' "$n""#;
    let out = run(&["--", "sh", "-c", script]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.starts_with(b"x\0RINIT-END "), "{:?}", out.stdout);
    assert_eq!(out.stdout.last(), Some(&0));
}

#[test]
fn console_mode_merges_in_order_and_stdin_is_empty() {
    let out = run(&[
        "--stdio",
        "console",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; echo out2; cat; [ -t 1 ] && echo tty",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout_text(), "out\nerr\nout2\ntty\n");
}

#[test]
fn console_mode_carries_1_mib_byte_exact() {
    let out = run(&[
        "--stdio",
        "console",
        "--",
        "sh",
        "-c",
        "yes abcdefghijklmnopqrstuvwxyz0123456789 | head -c 1048576",
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout == expected_mib(), "stdout differs");
}

#[test]
fn auto_uses_the_console_when_stdout_and_stderr_are_one_pipe() {
    let (mut reader, writer) = std::io::pipe().unwrap();
    let mut cmd = mvm_run(&[
        "--",
        "sh",
        "-c",
        "echo one; echo two >&2; [ -t 1 ] && echo tty",
    ]);
    cmd.stdout(writer.try_clone().unwrap()).stderr(writer);
    let mut child = cmd.spawn().expect("start mvm");
    drop(cmd);
    let mut text = String::new();
    reader.read_to_string(&mut text).unwrap();
    let st = child.wait().unwrap();
    assert_eq!(st.code(), Some(0), "{text}");
    assert_eq!(text, "one\ntwo\ntty\n");
}

/// A pseudo-terminal pair: (master, slave).
fn pty() -> (OwnedFd, OwnedFd) {
    // SAFETY: posix_openpt returns a new descriptor or -1.
    let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
    assert!(master >= 0, "{}", std::io::Error::last_os_error());
    // SAFETY: `master` is a new descriptor owned by nothing else.
    let master = unsafe { OwnedFd::from_raw_fd(master) };
    let mut name = [0 as libc::c_char; 64];
    // SAFETY: `master` is a pty master; `name` has room for the path and its NUL.
    let ok = unsafe {
        libc::grantpt(master.as_raw_fd()) == 0
            && libc::unlockpt(master.as_raw_fd()) == 0
            && libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) == 0
    };
    assert!(ok, "{}", std::io::Error::last_os_error());
    // SAFETY: ptsname_r wrote a NUL-terminated path.
    let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags_noctty()
        .open(path.to_str().unwrap())
        .unwrap();
    let slave = OwnedFd::from(slave);
    set_size(&slave, 33, 101);
    (master, slave)
}

fn set_size(tty: &OwnedFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `ws` is a valid winsize for TIOCSWINSZ.
    let r = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
}

trait NoCtty {
    fn custom_flags_noctty(&mut self) -> &mut Self;
}

impl NoCtty for std::fs::OpenOptions {
    fn custom_flags_noctty(&mut self) -> &mut Self {
        std::os::unix::fs::OpenOptionsExt::custom_flags(self, libc::O_NOCTTY)
    }
}

fn lflag(fd: &OwnedFd) -> libc::tcflag_t {
    // SAFETY: an all-zero termios is valid for tcgetattr to overwrite.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `t` is writable; `fd` is a terminal.
    assert_eq!(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) }, 0);
    t.c_lflag
}

/// Reads the terminal's output into `seen` until it contains `want`; false when the time is up
/// or the terminal closed first.
fn read_until(master: &mut std::fs::File, seen: &mut Vec<u8>, want: &str) -> bool {
    let end = Instant::now() + RUN_LIMIT;
    let mut buf = [0u8; 4096];
    loop {
        if String::from_utf8_lossy(seen).contains(want) {
            return true;
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut pfd = libc::pollfd {
            fd: master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = left.as_millis().min(1000) as libc::c_int;
        // SAFETY: one valid pollfd for the duration of the call.
        if unsafe { libc::poll(&mut pfd, 1, ms) } <= 0 {
            continue;
        }
        match master.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// A run of `mvm run -q ARGS…` with a new pseudo-terminal as stdin, stdout and stderr.
struct OnTerminal {
    mvm: Mvm,
    master: std::fs::File,
    slave: OwnedFd,
    /// The terminal's local modes before mvm started.
    before: libc::tcflag_t,
    /// What the terminal showed since the last [`OnTerminal::expect`] began.
    seen: Vec<u8>,
}

impl OnTerminal {
    fn start(args: &[&str]) -> OnTerminal {
        let (master, slave) = pty();
        let before = lflag(&slave);
        let mut cmd = mvm_run(args);
        cmd.env("TERM", "xterm-256color")
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave.try_clone().unwrap());
        OnTerminal {
            mvm: Mvm(cmd.spawn().expect("start mvm")),
            master: std::fs::File::from(master),
            slave,
            before,
            seen: Vec::new(),
        }
    }

    fn type_keys(&mut self, keys: &[u8]) {
        self.master.write_all(keys).unwrap();
    }

    /// Reads the terminal until `want` shows, failing with what it showed if it never does.
    fn expect(&mut self, want: &str) {
        self.seen.clear();
        assert!(
            read_until(&mut self.master, &mut self.seen, want),
            "no {want:?} in: {}",
            self.shown()
        );
    }

    fn shown(&self) -> String {
        String::from_utf8_lossy(&self.seen).into_owned()
    }
}

#[test]
fn interactive_shell_on_a_terminal() {
    let mut t = OnTerminal::start(&["--", "sh"]);
    t.expect("# ");
    // Keys reach the guest raw (the host terminal echoes nothing itself); the guest's terminal
    // has the host's size and type.
    t.type_keys(b"echo \"$((6*7)) $TERM $(stty size)\"; sleep 100\r");
    t.expect("42 xterm-256color 33 101");
    // Ctrl-C goes to the workload's foreground job, not to mvm; the shell prompts again.
    t.type_keys(b"\x03");
    t.expect("# ");
    // A resized terminal reaches the guest: the size changes, mvm gets SIGWINCH (sent by hand:
    // the pseudo-terminal is not mvm's controlling terminal) and the guest's terminal follows.
    set_size(&t.slave, 50, 160);
    // SAFETY: kill has no memory effects; the pid is our unreaped child.
    unsafe { libc::kill(t.mvm.id() as libc::pid_t, libc::SIGWINCH) };
    let deadline = Instant::now() + RUN_LIMIT;
    loop {
        t.type_keys(b"stty size\r");
        t.expect("# ");
        if t.shown().contains("50 160") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "size never followed: {}",
            t.shown()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    t.type_keys(b"echo back; exit 7\r");
    t.expect("\nback");
    let OnTerminal {
        mvm, slave, before, ..
    } = t;
    let out = finish(mvm, RUN_LIMIT);
    assert_eq!(out.code, 7);
    assert_eq!(lflag(&slave), before, "terminal settings restored");
}

#[test]
fn detach_key_stops_an_interactive_run() {
    let mut t = OnTerminal::start(&["--print-cmd", "--", "sh", "-c", "echo ready; sleep 1000"]);
    t.expect("ready");
    let nonce = nonce_from(&t.shown()).expect("nonce in --print-cmd");
    t.type_keys(b"\x1d");
    t.expect("detached");
    let out = finish(t.mvm, RUN_LIMIT);
    assert_eq!(out.code, 130);
    assert!(processes_with(&nonce).is_empty(), "QEMU left running");
}
