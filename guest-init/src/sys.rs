//! Thin, safe wrappers over the Linux system calls that `std` does not cover. Each returns an
//! [`io::Error`] from `errno`; callers add what they were doing.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// A C string from a Rust string; an interior NUL is an `InvalidInput` error.
pub fn cstr(s: &str) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "string contains NUL"))
}

/// Maps a C-style `-1` return to the current `errno`.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `mount(2)`.
pub fn mount(
    src: &str,
    target: &str,
    fstype: &str,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> io::Result<()> {
    let (src, target, fstype) = (cstr(src)?, cstr(target)?, cstr(fstype)?);
    let data = data.map(cstr).transpose()?;
    let data_ptr = data
        .as_ref()
        .map_or(std::ptr::null(), |d| d.as_ptr().cast::<libc::c_void>());
    // SAFETY: every pointer is a valid NUL-terminated string (or null for `data`) that outlives the call.
    check(unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            flags,
            data_ptr,
        )
    })?;
    Ok(())
}

/// `umount2(2)`.
pub fn umount(target: &str, flags: libc::c_int) -> io::Result<()> {
    let target = cstr(target)?;
    // SAFETY: `target` is a valid NUL-terminated string.
    check(unsafe { libc::umount2(target.as_ptr(), flags) })?;
    Ok(())
}

/// `CLOCK_BOOTTIME` in microseconds (time since the kernel started, suspend included).
pub fn boottime_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    let _ = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000)
        .saturating_add(ts.tv_nsec as u64 / 1000)
}

/// Writes all of `buf` to a raw descriptor, ignoring errors (used for logging and reports, which must
/// never fail the run).
pub fn write_all_fd(fd: libc::c_int, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: `buf` is valid for reads of `buf.len()` bytes; a bad `fd` only yields an error.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        match n {
            n if n > 0 => buf = &buf[(n as usize).min(buf.len())..],
            -1 if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            _ => return,
        }
    }
}

/// Whether `fd` is an open descriptor.
pub fn fd_is_open(fd: libc::c_int) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    unsafe { libc::fcntl(fd, libc::F_GETFD) != -1 }
}

/// `dup2(2)`.
pub fn dup2(old: libc::c_int, new: libc::c_int) -> io::Result<()> {
    // SAFETY: dup2 only manipulates the descriptor table.
    check(unsafe { libc::dup2(old, new) })?;
    Ok(())
}

/// `finit_module(2)` with an empty parameter string.
pub fn finit_module(file: BorrowedFd<'_>, flags: libc::c_int) -> io::Result<()> {
    let params: &CStr = c"";
    // SAFETY: `file` is an open descriptor and `params` a valid NUL-terminated string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            file.as_raw_fd(),
            params.as_ptr(),
            flags,
        )
    };
    if ret == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `sethostname(2)`.
pub fn sethostname(name: &str) -> io::Result<()> {
    // SAFETY: `name` is valid for reads of `name.len()` bytes.
    check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) })?;
    Ok(())
}

/// `statfs(2)`'s `f_type` of a path.
pub fn fs_type(path: &str) -> io::Result<i64> {
    let path = cstr(path)?;
    // SAFETY: an all-zero statfs is a valid value of this plain C struct.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `st` is writable.
    check(unsafe { libc::statfs(path.as_ptr(), &mut st) })?;
    Ok(st.f_type as i64)
}

/// `tcdrain(3)`: waits until output written to a terminal has been transmitted.
pub fn tcdrain(fd: libc::c_int) {
    // SAFETY: tcdrain only waits on the descriptor; errors (not a tty) are ignored.
    let _ = unsafe { libc::tcdrain(fd) };
}

/// A terminal's window size in cells: `TIOCGWINSZ` (`tty_ioctl(4)`).
pub fn window_size(fd: BorrowedFd<'_>) -> io::Result<(u16, u16)> {
    // SAFETY: an all-zero winsize is a valid value of this plain C struct.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open and TIOCGWINSZ writes one winsize into `ws`.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) })?;
    Ok((ws.ws_row, ws.ws_col))
}

/// Sets a terminal's window size in cells (`TIOCSWINSZ`), leaving the pixel size unknown.
pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: `fd` is open and TIOCSWINSZ only reads the winsize behind the pointer.
    check(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) })?;
    Ok(())
}

/// `sync(2)`.
pub fn sync() {
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() }
}

/// `getpid(2)`.
pub fn getpid() -> libc::pid_t {
    // SAFETY: getpid has no preconditions.
    unsafe { libc::getpid() }
}

/// `kill(2)`, ignoring errors (the target may already be gone).
pub fn kill(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions.
    let _ = unsafe { libc::kill(pid, sig) };
}
