//! The console: rinit's own stdio, the terminal the workload gets (from `/proc/consoles`,
//! `Documentation/filesystems/proc.rst`), and its window size (`TIOCSWINSZ`, `tty_ioctl(4)`).

use crate::error::{Error, Result};
use crate::log::{self, step};
use crate::sys;
use std::os::fd::{AsFd, IntoRawFd};
use std::os::unix::fs::OpenOptionsExt;

/// Makes sure fds 0, 1 and 2 are open. The kernel opens `/dev/console` for init only if the node
/// exists in the root it started from; otherwise rinit opens it once devtmpfs is mounted.
pub fn ensure_stdio() {
    if (0..=2).all(sys::fd_is_open) {
        return;
    }
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/console")
    {
        Ok(f) => f,
        Err(e) => {
            log::warn(&format!("open /dev/console: {e}"));
            return;
        }
    };
    let fd = file.into_raw_fd();
    for target in 0..=2 {
        if target != fd && !sys::fd_is_open(target) {
            let _ = sys::dup2(fd, target);
        }
    }
    if fd > 2 {
        // SAFETY: `fd` was just opened by us and is owned by nothing else.
        let _ = unsafe { libc::close(fd) };
    }
}

/// The preferred console device of a `/proc/consoles` text, as a `/dev` path.
///
/// Lines look like `ttyS0                -W- (EC p a)    4:64`; `C` among the flags marks the
/// preferred console (the last `console=` of the command line). Without one, the first line wins.
pub fn parse_consoles(text: &str) -> Option<String> {
    let devices: Vec<(&str, bool)> = text
        .lines()
        .filter_map(|l| {
            let name = l.split_whitespace().next()?;
            let flags = l
                .split_once('(')
                .and_then(|(_, r)| r.split_once(')'))
                .map_or("", |(f, _)| f);
            Some((name, flags.contains('C')))
        })
        .collect();
    let pick = devices
        .iter()
        .find(|(_, preferred)| *preferred)
        .or(devices.first())?;
    Some(format!("/dev/{}", pick.0))
}

/// The workload's terminal: `rinit.console` (a name like `ttyS0` or a path), else the preferred
/// console, else `/dev/console`.
pub fn workload_console(configured: Option<&str>) -> String {
    match configured {
        Some(path) if path.starts_with('/') => path.to_owned(),
        Some(name) => format!("/dev/{name}"),
        None => std::fs::read_to_string("/proc/consoles")
            .ok()
            .and_then(|t| parse_consoles(&t))
            .unwrap_or_else(|| "/dev/console".into()),
    }
}

/// The window size after applying the configured `rows` and `cols` to the `current` one: a
/// dimension that is not configured keeps its value.
pub fn merged_size(current: (u16, u16), rows: Option<u16>, cols: Option<u16>) -> (u16, u16) {
    (rows.unwrap_or(current.0), cols.unwrap_or(current.1))
}

/// Gives the terminal `console` the configured window size, so that full-screen programs of the
/// workload lay out for the host's terminal (a serial port has no size of its own: 0×0).
pub fn set_window_size(console: &str, rows: Option<u16>, cols: Option<u16>) -> Result<()> {
    if rows.is_none() && cols.is_none() {
        return Ok(());
    }
    let what = || format!("set the window size of {console}");
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(console)
        .map_err(|e| Error::io(what(), e))?;
    let current = sys::window_size(tty.as_fd()).map_err(|e| Error::io(what(), e))?;
    let (r, c) = merged_size(current, rows, cols);
    sys::set_window_size(tty.as_fd(), r, c).map_err(|e| Error::io(what(), e))?;
    step!("{console} is {c}x{r}");
    Ok(())
}

/// A window size line from the host: `ROWS COLS`, both 1–65535.
pub fn parse_size(line: &str) -> Option<(u16, u16)> {
    let mut words = line.split_ascii_whitespace();
    let rows: u16 = words.next()?.parse().ok()?;
    let cols: u16 = words.next()?.parse().ok()?;
    (words.next().is_none() && rows > 0 && cols > 0).then_some((rows, cols))
}

/// Follows the host terminal's size for the rest of the run, on a thread of its own: each
/// `ROWS COLS` line on the port `port` becomes the window size of `console` (the kernel then sends
/// SIGWINCH to the terminal's foreground process group). Waits up to `wait` for the port.
pub fn follow_window_size(port: String, console: String, wait: std::time::Duration) {
    let spawned = std::thread::Builder::new()
        .name("resize".into())
        .spawn(move || {
            let Some(dev) = crate::stdio::wait_port(&port, wait) else {
                log::warn(&format!("resize port {port:?} not found"));
                return;
            };
            let open = |path: &str, write: bool| {
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(write)
                    .custom_flags(libc::O_NOCTTY)
                    .open(path)
            };
            let (source, tty) = match (open(&dev, false), open(&console, true)) {
                (Ok(s), Ok(t)) => (s, t),
                (Err(e), _) | (_, Err(e)) => {
                    log::warn(&format!("follow the window size through {dev}: {e}"));
                    return;
                }
            };
            for line in std::io::BufRead::lines(std::io::BufReader::new(source)) {
                let Ok(line) = line else { return };
                match parse_size(&line) {
                    Some((rows, cols)) => {
                        if let Err(e) = sys::set_window_size(tty.as_fd(), rows, cols) {
                            log::warn(&format!("set the window size of {console}: {e}"));
                        }
                        step!("{console} is now {cols}x{rows}");
                    }
                    None => log::warn(&format!("bad window size {line:?} on {dev}")),
                }
            }
        });
    if let Err(e) = spawned {
        log::warn(&format!("start the resize thread: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_lines() {
        assert_eq!(parse_size("40 120"), Some((40, 120)));
        assert_eq!(parse_size(" 1\t1 \r"), Some((1, 1)));
        for bad in ["", "40", "0 80", "40 80 1", "x 80", "70000 80"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn window_size_is_merged() {
        assert_eq!(merged_size((24, 80), None, None), (24, 80));
        assert_eq!(merged_size((0, 0), Some(43), None), (43, 0));
        assert_eq!(merged_size((24, 80), Some(50), Some(200)), (50, 200));
    }

    #[test]
    fn window_size_reaches_a_terminal() {
        // A pseudo-terminal of the host stands in for the serial console.
        // SAFETY: posix_openpt returns a new descriptor or -1; the checks below handle both.
        let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
        assert!(master >= 0, "{}", std::io::Error::last_os_error());
        let mut name = [0 as libc::c_char; 64];
        // SAFETY: `master` is a pty master; `name` has room for the path and its NUL.
        let ok = unsafe {
            libc::grantpt(master) == 0
                && libc::unlockpt(master) == 0
                && libc::ptsname_r(master, name.as_mut_ptr(), name.len()) == 0
        };
        assert!(ok, "{}", std::io::Error::last_os_error());
        // SAFETY: ptsname_r wrote a NUL-terminated path into `name`.
        let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        set_window_size(&path, Some(43), Some(132)).unwrap();
        set_window_size(&path, None, Some(100)).unwrap();
        // SAFETY: `master` is open and owned by this test.
        let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(master) };
        assert_eq!(sys::window_size(fd).unwrap(), (43, 100));
        // SAFETY: closing the descriptor this test opened.
        unsafe { libc::close(master) };
    }

    #[test]
    fn preferred_console_wins() {
        let text =
            "tty0                 -WU (E  p  )    4:1\nttyS0                -W- (EC p a)    4:64\n";
        assert_eq!(parse_consoles(text).as_deref(), Some("/dev/ttyS0"));
    }

    #[test]
    fn first_console_without_preference() {
        let text =
            "hvc0                 -W- (E  p  )  229:0\nttyS0                -W- (E  p a)    4:64\n";
        assert_eq!(parse_consoles(text).as_deref(), Some("/dev/hvc0"));
        assert_eq!(parse_consoles(""), None);
    }

    #[test]
    fn configured_console() {
        assert_eq!(workload_console(Some("hvc0")), "/dev/hvc0");
        assert_eq!(workload_console(Some("/dev/ttyS1")), "/dev/ttyS1");
    }
}
