//! The workload's standard streams on the host side: which way they travel, and the threads that
//! carry them.
//!
//! Two ways (`--stdio`):
//! - **console**: everything goes through the serial console, a tty in the guest. stdout and
//!   stderr arrive merged, in the order written, with the tty's newline translation (undone by
//!   [`crate::console`]). Needs no extra device, so it is the fastest boot. When `mvm`'s stdin is
//!   a terminal the run is *interactive*: the terminal is put in raw mode and every key goes to
//!   the guest (Ctrl-C reaches the workload as on a local terminal; [`DETACH`], Ctrl-], stops the
//!   VM; a resize reaches the guest through the `rinit.resize` port). Otherwise the workload's
//!   stdin is `/dev/null`.
//! - **split**: stdout and stderr each get a virtio-serial port (`rinit.stdout`, `rinit.stderr`)
//!   piped to `mvm`'s own stdout and stderr: kept apart, byte-exact, not a tty. stdin, unless it is
//!   `/dev/null`, gets a port too (`rinit.stdin`), fed from `mvm`'s stdin until its end-of-file.
//!   Needs the `virtio_console` module: a slower boot.
//!
//! `auto` picks console when that loses nothing: stdout and stderr are the same file (one
//! terminal, `2>&1`, both `/dev/null`) and stdin is a terminal (with stdout one too) or empty
//! (`/dev/null`, closed). Anything else (stdout and stderr going to different places, data on
//! stdin) is split, as `docker run` without `-t` would do. A terminal on stdin counts as empty
//! when `mvm` runs in the background: it may neither read it nor change its modes.
//!
//! In split mode rinit ends each output port with [`rinit_status::end_mark`] once nothing in the
//! guest can write any more; the host stops the VM itself once it has the status record and every
//! end mark, so no output still buffered in QEMU is lost ([`EndFilter`]).

use crate::cli::StdioChoice;
use std::io::{Read, Write};
use std::os::fd::RawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The key that stops an interactive run: Ctrl-] (as in telnet and `virsh console`).
pub const DETACH: u8 = 0x1d;

/// What one of `mvm`'s standard fds is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FdKind {
    Tty,
    /// `/dev/null`.
    Null,
    /// A pipe, file or socket: data.
    Data,
    Closed,
}

/// `mvm`'s standard fds as far as the choice goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFds {
    pub stdin: FdKind,
    pub stdout: FdKind,
    /// stdout and stderr are the same open file, or the same file (both `/dev/null`).
    pub same_output: bool,
}

impl HostFds {
    /// Looks at fds 0, 1 and 2 of this process.
    pub fn probe() -> HostFds {
        let out = stat(1);
        let err = stat(2);
        let same_output = match (out, err) {
            (Some(a), Some(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
            _ => false,
        };
        HostFds {
            stdin: match kind(0) {
                // A job in the background may not read its terminal or change its modes (the
                // kernel would stop it with SIGTTIN or SIGTTOU): its stdin counts as empty.
                FdKind::Tty if !foreground(0) => FdKind::Null,
                k => k,
            },
            stdout: kind(1),
            same_output,
        }
    }
}

/// Opens `/dev/null` on any of fds 0–2 that is closed, so no pipe or socket of the run can take
/// a standard fd's number (and be mistaken for it, or be replaced by `/dev/null` in a child).
pub fn ensure_standard_fds() {
    for fd in 0..=2 {
        // SAFETY: F_GETFD only inspects the descriptor.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 {
            continue;
        }
        // SAFETY: a NUL-terminated path; the lowest free number is `fd` itself, since the
        // lower ones are open by now.
        let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
        if null >= 0 && null != fd {
            // SAFETY: `null` was just opened by us; moving it to `fd` and closing the original.
            unsafe {
                libc::dup2(null, fd);
                libc::close(null);
            }
        }
    }
}

fn stat(fd: RawFd) -> Option<libc::stat> {
    // SAFETY: an all-zero stat is a valid value for fstat to overwrite.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is writable; an invalid fd only returns an error.
    (unsafe { libc::fstat(fd, &mut st) } == 0).then_some(st)
}

/// Whether this process may use the terminal on `fd`: it is in the terminal's foreground job,
/// or the terminal is not its controlling one (job control only guards that one).
fn foreground(fd: RawFd) -> bool {
    // SAFETY: tcgetpgrp and getpgrp only read process state.
    let fg = unsafe { libc::tcgetpgrp(fd) };
    // SAFETY: as above.
    fg < 0 || fg == unsafe { libc::getpgrp() }
}

fn kind(fd: RawFd) -> FdKind {
    let Some(st) = stat(fd) else {
        return FdKind::Closed;
    };
    // SAFETY: isatty only inspects the descriptor.
    if unsafe { libc::isatty(fd) } == 1 {
        return FdKind::Tty;
    }
    let is_char = st.st_mode & libc::S_IFMT == libc::S_IFCHR;
    if is_char && st.st_rdev == libc::makedev(1, 3) {
        return FdKind::Null;
    }
    FdKind::Data
}

/// How the streams travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// All on the console; `interactive`: keys are forwarded and the terminal is raw.
    Console { interactive: bool },
    /// stdout and stderr on ports; `stdin_port`: stdin too (else `/dev/null`).
    Split { stdin_port: bool },
}

impl Mode {
    /// Whether the guest needs the virtio-serial device (and `virtio_console`).
    pub fn needs_ports(self) -> bool {
        matches!(self, Mode::Split { .. })
    }
}

/// The mode for `choice` given what `mvm`'s fds are (rules in the module docs).
pub fn decide(choice: StdioChoice, host: HostFds) -> Mode {
    let stdin_has_data = matches!(host.stdin, FdKind::Tty | FdKind::Data);
    let interactive = host.stdin == FdKind::Tty && host.stdout == FdKind::Tty;
    match choice {
        StdioChoice::Split => Mode::Split {
            stdin_port: stdin_has_data,
        },
        StdioChoice::Console => Mode::Console {
            interactive: host.stdin == FdKind::Tty,
        },
        StdioChoice::Auto if host.same_output && interactive => Mode::Console { interactive: true },
        StdioChoice::Auto if host.same_output && !stdin_has_data => {
            Mode::Console { interactive: false }
        }
        StdioChoice::Auto => Mode::Split {
            stdin_port: stdin_has_data,
        },
    }
}

/// Holds back the end of an output stream while it could be the end mark, and drops the mark
/// when it is the last thing in the stream. A mark followed by more data was not rinit's (only
/// the workload can write before rinit's mark), so it is passed on as output.
#[derive(Debug)]
pub struct EndFilter {
    mark: Vec<u8>,
    held: Vec<u8>,
}

impl EndFilter {
    pub fn new(mark: Vec<u8>) -> EndFilter {
        EndFilter {
            mark,
            held: Vec::new(),
        }
    }

    /// Feeds stream bytes; appends what can be shown to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) {
        self.held.extend_from_slice(data);
        let keep = (1..=self.mark.len().min(self.held.len()))
            .rev()
            .find(|&k| self.held[self.held.len() - k..] == self.mark[..k])
            .unwrap_or(0);
        out.extend(self.held.drain(..self.held.len() - keep));
    }

    /// Whether the stream so far ends with the end mark.
    pub fn complete(&self) -> bool {
        self.held == self.mark
    }

    /// The stream ended: what is still held is output unless it is the end mark.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.complete() {
            out.append(&mut self.held);
        }
        self.held.clear();
    }
}

/// Copies an output port's pipe to `mvm`'s fd `to` (1 or 2) through an [`EndFilter`]; sets
/// `complete` while the stream ends with the end mark and calls `wake` whenever that changes.
pub fn pump_output(
    mut from: impl Read,
    to: RawFd,
    mark: Vec<u8>,
    complete: Arc<AtomicBool>,
    wake: impl Fn(),
) {
    let mut filter = EndFilter::new(mark);
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(buf.len());
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        out.clear();
        filter.feed(&buf[..n], &mut out);
        write_fd(to, &out);
        let now = filter.complete();
        if complete.swap(now, Ordering::SeqCst) != now {
            wake();
        }
    }
    out.clear();
    filter.finish(&mut out);
    write_fd(to, &out);
}

/// Writes all of `bytes` to `mvm`'s stdout (flushed) or, for `fd` 2, stderr; errors (a closed
/// reader) are ignored, so a drain goes on and QEMU never blocks on a full pipe.
pub(crate) fn write_fd(fd: RawFd, bytes: &[u8]) {
    if bytes.is_empty() {
        return;
    }
    let r = if fd == 2 {
        std::io::stderr().lock().write_all(bytes)
    } else {
        let mut lock = std::io::stdout().lock();
        lock.write_all(bytes).and_then(|()| lock.flush())
    };
    let _ = r;
}

/// Reads `mvm`'s stdin (fd 0) without taking ownership of it.
fn read_stdin(buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        // SAFETY: the destination is `buf`, valid for `buf.len()` bytes.
        let n = unsafe { libc::read(0, buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Copies `mvm`'s stdin into the stdin port's socket until end-of-file, then shuts the socket
/// down for writing so the guest reads end-of-file once it has read everything. Runs on a thread
/// of its own that may stay blocked in `read` until `mvm` exits.
///
/// `to` must be a clone: the caller keeps the socket open until QEMU has gone, since QEMU drops
/// the connection, unread data included, as soon as the peer closes it (a hang-up), whereas a
/// shutdown only ends the stream after the data.
pub fn forward_stdin(mut to: UnixStream) {
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = read_stdin(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// Forwards keys from the terminal to the console socket until [`DETACH`] is typed (then calls
/// `detach`) or either side ends.
pub fn forward_keys(mut to: UnixStream, detach: impl FnOnce()) {
    let mut buf = [0u8; 1024];
    while let Ok(n) = read_stdin(&mut buf) {
        if n == 0 {
            return;
        }
        let keys = &buf[..n];
        let (before, detached) = match keys.iter().position(|&b| b == DETACH) {
            Some(i) => (&keys[..i], true),
            None => (keys, false),
        };
        if to.write_all(before).is_err() {
            return;
        }
        if detached {
            detach();
            return;
        }
    }
}

/// The terminal on fd 0 in raw mode; the saved settings come back when this is dropped.
pub struct RawTerminal {
    saved: libc::termios,
}

impl RawTerminal {
    /// Puts the terminal on fd 0 in raw mode (no echo, no line editing, no signals from keys, no
    /// output processing), or `None` when it is not a terminal.
    pub fn enter() -> Option<RawTerminal> {
        // SAFETY: an all-zero termios is a valid value for tcgetattr to overwrite.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `saved` is writable; fd 0 is only inspected.
        if unsafe { libc::tcgetattr(0, &mut saved) } != 0 {
            return None;
        }
        let mut raw = saved;
        // SAFETY: cfmakeraw only edits the struct.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: `raw` is a valid termios.
        if unsafe { libc::tcsetattr(0, libc::TCSADRAIN, &raw) } != 0 {
            return None;
        }
        Some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // SAFETY: restoring the settings read in `enter`.
        unsafe { libc::tcsetattr(0, libc::TCSADRAIN, &self.saved) };
    }
}

impl std::fmt::Debug for RawTerminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawTerminal")
    }
}

/// The window size (rows, columns) of the terminal on `fd`, if it is one with a size.
pub fn window_size(fd: RawFd) -> Option<(u16, u16)> {
    // SAFETY: an all-zero winsize is valid; TIOCGWINSZ writes one.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: `ws` is writable and has the layout TIOCGWINSZ expects.
    let ok = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(stdin: FdKind, stdout: FdKind, same_output: bool) -> HostFds {
        HostFds {
            stdin,
            stdout,
            same_output,
        }
    }

    #[test]
    fn auto_uses_the_console_when_nothing_is_lost() {
        use FdKind::*;
        let auto = |h| decide(StdioChoice::Auto, h);
        // A terminal session.
        assert_eq!(
            auto(host(Tty, Tty, true)),
            Mode::Console { interactive: true }
        );
        // CI: one log for both, no input.
        assert_eq!(
            auto(host(Null, Data, true)),
            Mode::Console { interactive: false }
        );
        assert_eq!(
            auto(host(Closed, Null, true)),
            Mode::Console { interactive: false }
        );
        // Captured apart, or input to forward.
        assert_eq!(
            auto(host(Null, Data, false)),
            Mode::Split { stdin_port: false }
        );
        assert_eq!(
            auto(host(Data, Tty, true)),
            Mode::Split { stdin_port: true }
        );
        assert_eq!(
            auto(host(Tty, Data, true)),
            Mode::Split { stdin_port: true }
        );
    }

    #[test]
    fn forced_modes() {
        use FdKind::*;
        assert_eq!(
            decide(StdioChoice::Split, host(Tty, Tty, true)),
            Mode::Split { stdin_port: true }
        );
        assert_eq!(
            decide(StdioChoice::Console, host(Data, Data, false)),
            Mode::Console { interactive: false }
        );
    }

    fn filter_all(chunks: &[&[u8]]) -> (Vec<u8>, bool) {
        let mut f = EndFilter::new(b"\0END n\0".to_vec());
        let mut out = Vec::new();
        for c in chunks {
            f.feed(c, &mut out);
        }
        let complete = f.complete();
        f.finish(&mut out);
        (out, complete)
    }

    #[test]
    fn end_mark_is_dropped_only_at_the_end() {
        assert_eq!(
            filter_all(&[b"hello\n\0END n\0"]),
            (b"hello\n".to_vec(), true)
        );
        // Split anywhere.
        let text = b"abc\0\0END n\0";
        for cut in 0..text.len() {
            let (a, b) = text.split_at(cut);
            assert_eq!(filter_all(&[a, b]), (b"abc\0".to_vec(), true), "cut {cut}");
        }
        // A mark followed by more output is output; so is a partial one at the end.
        assert_eq!(
            filter_all(&[b"x\0END n\0", b"y"]),
            (b"x\0END n\0y".to_vec(), false)
        );
        assert_eq!(filter_all(&[b"x\0EN"]), (b"x\0EN".to_vec(), false));
        assert_eq!(filter_all(&[b""]), (Vec::new(), false));
    }

    #[test]
    fn text_is_never_held() {
        let mut f = EndFilter::new(b"\0END n\0".to_vec());
        let mut out = Vec::new();
        f.feed(b"no newline yet", &mut out);
        assert_eq!(out, b"no newline yet");
    }
}
