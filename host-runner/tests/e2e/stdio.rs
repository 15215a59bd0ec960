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

/// Reads the terminal's output until it contains `want` (or the time is up); returns all of it.
fn read_until(master: &mut std::fs::File, seen: &mut Vec<u8>, want: &str) -> bool {
    let end = Instant::now() + RUN_LIMIT;
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        if String::from_utf8_lossy(seen).contains(want) {
            return true;
        }
        match master.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    false
}

#[test]
fn interactive_shell_on_a_terminal() {
    let (master, slave) = pty();
    let before = lflag(&slave);
    let mut cmd = mvm_run(&["--", "sh"]);
    cmd.env("TERM", "xterm-256color")
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap());
    let mvm = Mvm(cmd.spawn().expect("start mvm"));
    let mut master = std::fs::File::from(master);
    let mut seen = Vec::new();
    assert!(
        read_until(&mut master, &mut seen, "# "),
        "no prompt: {}",
        String::from_utf8_lossy(&seen)
    );
    // Keys reach the guest raw (the host terminal echoes nothing itself); the guest's terminal
    // has the host's size and type.
    master
        .write_all(b"echo \"$((6*7)) $TERM $(stty size)\"; sleep 100\r")
        .unwrap();
    assert!(
        read_until(&mut master, &mut seen, "42 xterm-256color 33 101"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    // A resized terminal reaches the guest: the size changes, mvm gets SIGWINCH (sent by hand:
    // the pseudo-terminal is not mvm's controlling terminal) and the guest's terminal follows.
    master.write_all(b"\x03").unwrap();
    seen.clear();
    assert!(
        read_until(&mut master, &mut seen, "# "),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    set_size(&slave, 50, 160);
    // SAFETY: kill has no memory effects; the pid is our unreaped child.
    unsafe { libc::kill(mvm.id() as libc::pid_t, libc::SIGWINCH) };
    let deadline = Instant::now() + RUN_LIMIT;
    loop {
        master.write_all(b"stty size\r").unwrap();
        seen.clear();
        assert!(
            read_until(&mut master, &mut seen, "# "),
            "{}",
            String::from_utf8_lossy(&seen)
        );
        if String::from_utf8_lossy(&seen).contains("50 160") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "size never followed: {}",
            String::from_utf8_lossy(&seen)
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    master.write_all(b"sleep 100\r").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    // Ctrl-C goes to the workload's foreground job, not to mvm; the shell prompts again.
    master.write_all(b"\x03").unwrap();
    seen.clear();
    assert!(
        read_until(&mut master, &mut seen, "# "),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    master.write_all(b"echo back; exit 7\r").unwrap();
    assert!(
        read_until(&mut master, &mut seen, "\nback"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    let out = finish(mvm, RUN_LIMIT);
    assert_eq!(out.code, 7, "{}", String::from_utf8_lossy(&seen));
    assert_eq!(lflag(&slave), before, "terminal settings restored");
}

#[test]
fn detach_key_stops_an_interactive_run() {
    let (master, slave) = pty();
    let mut cmd = mvm_run(&["--print-cmd", "--", "sh", "-c", "echo ready; sleep 1000"]);
    cmd.stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave.try_clone().unwrap());
    let mvm = Mvm(cmd.spawn().expect("start mvm"));
    let mut master = std::fs::File::from(master);
    let mut seen = Vec::new();
    assert!(
        read_until(&mut master, &mut seen, "ready"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    let nonce = nonce_from(&String::from_utf8_lossy(&seen)).expect("nonce in --print-cmd");
    master.write_all(b"\x1d").unwrap();
    let out = finish(mvm, RUN_LIMIT);
    assert_eq!(out.code, 130);
    assert!(
        read_until(&mut master, &mut seen, "detached"),
        "{}",
        String::from_utf8_lossy(&seen)
    );
    assert!(processes_with(&nonce).is_empty(), "QEMU left running");
}
