//! The console: rinit's own stdio, and the terminal the workload gets (from `/proc/consoles`,
//! `Documentation/filesystems/proc.rst`).

use crate::log;
use crate::sys;
use std::os::fd::IntoRawFd;

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

#[cfg(test)]
mod tests {
    use super::*;

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
