//! In-process network and identity setup: loopback up (`SIOCSIFFLAGS`, `netdevice(7)`) and the
//! hostname (`sethostname(2)`), so that no helper binary is needed.

use crate::error::{Error, Result};
use crate::sys;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Brings `lo` up.
pub fn loopback_up() -> Result<()> {
    // SAFETY: socket() has no memory preconditions; the result is checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(Error::last("socket for loopback setup"));
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero ifreq is a valid value of this plain C struct.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name from and writes the flags into `req`, which is valid.
    if unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCGIFFLAGS as libc::Ioctl,
            &mut req,
        )
    } < 0
    {
        return Err(Error::last("get flags of lo"));
    }
    // SAFETY: the kernel filled the `ifru_flags` member of the union in SIOCGIFFLAGS.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    // SAFETY: SIOCSIFFLAGS reads `req`, which is valid and names `lo`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as libc::Ioctl, &req) } < 0 {
        return Err(Error::last("bring lo up"));
    }
    Ok(())
}

/// Sets the hostname.
pub fn set_hostname(name: &str) -> Result<()> {
    sys::sethostname(name).map_err(|e| Error::io(format_args!("sethostname {name:?}"), e))
}
