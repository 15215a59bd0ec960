//! The few system calls PID 1 needs: console set-up, `mount(2)` and `reboot(2)`.

use std::ffi::CString;
use std::io;

use crate::say;

/// Make sure fds 0–2 are open. The kernel opens `/dev/console` for init when the
/// initramfs has that node; if it did not, mount devtmpfs and open it ourselves.
pub fn ensure_console() {
    // SAFETY: F_GETFD on a plain integer fd only queries the descriptor table.
    if unsafe { libc::fcntl(1, libc::F_GETFD) } >= 0 {
        return;
    }
    let _ = mount("devtmpfs", "/dev", "devtmpfs");
    let Ok(path) = CString::new("/dev/console") else {
        return;
    };
    // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_NOCTTY) };
    if fd < 0 {
        return;
    }
    for target in 0..3 {
        if fd != target {
            // SAFETY: dup2 between two integer fds; `fd` is open, `target` is 0..=2.
            unsafe { libc::dup2(fd, target) };
        }
    }
    if fd > 2 {
        // SAFETY: `fd` is ours and no longer needed after the dup2 calls.
        unsafe { libc::close(fd) };
    }
}

/// Mount a pseudo file system `fstype` from `source` on `target` (created if needed).
/// A target that is already mounted counts as success.
pub fn mount(source: &str, target: &str, fstype: &str) -> io::Result<()> {
    let _ = std::fs::create_dir_all(target);
    let c = |s: &str| CString::new(s).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e));
    let (src, tgt, fs) = (c(source)?, c(target)?, c(fstype)?);
    // SAFETY: the three strings are valid NUL-terminated C strings that outlive the
    // call; a null `data` pointer is allowed for these file systems.
    let rc = unsafe { libc::mount(src.as_ptr(), tgt.as_ptr(), fs.as_ptr(), 0, std::ptr::null()) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EBUSY) {
        Ok(())
    } else {
        Err(err)
    }
}

/// Flush file systems and power off (or reboot). Never returns: PID 1 must not exit.
pub fn leave(reboot: bool) -> ! {
    // SAFETY: sync(2) has no arguments and cannot fail.
    unsafe { libc::sync() };
    let how = if reboot {
        libc::RB_AUTOBOOT
    } else {
        libc::RB_POWER_OFF
    };
    // SAFETY: reboot(2) with a valid command; as PID 1 we hold CAP_SYS_BOOT. On
    // success it does not return.
    let rc = unsafe { libc::reboot(how) };
    say(&format!(
        "error=reboot({how:#x}) returned {rc}: {}",
        io::Error::last_os_error()
    ));
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
