//! Logging for PID 1: to the console (fd 2) and, for warnings and errors, to `/dev/kmsg`.
//!
//! Quiet by default: only warnings and errors are printed. With `rinit.debug`, [`step`] prints each
//! step with its `CLOCK_BOOTTIME` time. Nothing here can fail or panic: write errors are ignored.

use crate::sys;
use std::fmt;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static DEBUG: AtomicBool = AtomicBool::new(false);
static KMSG: AtomicI32 = AtomicI32::new(-1);

/// Turns step logging on or off.
pub fn set_debug(on: bool) {
    DEBUG.store(on, Ordering::Relaxed);
}

/// Whether step logging is on.
pub fn debug() -> bool {
    DEBUG.load(Ordering::Relaxed)
}

/// Opens `/dev/kmsg` for error logging (once devtmpfs is mounted); failure is silent.
pub fn open_kmsg() {
    if KMSG.load(Ordering::Relaxed) >= 0 {
        return;
    }
    if let Ok(f) = std::fs::OpenOptions::new().write(true).open("/dev/kmsg") {
        let fd = f.as_raw_fd();
        std::mem::forget(f);
        KMSG.store(fd, Ordering::Relaxed);
    }
}

fn console(line: &str) {
    sys::write_all_fd(2, line.as_bytes());
}

fn kmsg(level: u8, msg: &str) {
    let fd = KMSG.load(Ordering::Relaxed);
    if fd >= 0 {
        sys::write_all_fd(fd, format!("<{level}>rinit: {msg}\n").as_bytes());
    }
}

fn stamp() -> String {
    let us = sys::boottime_us();
    format!("[{:5}.{:06}]", us / 1_000_000, us % 1_000_000)
}

/// A step, shown only with `rinit.debug`.
pub fn step_args(args: fmt::Arguments<'_>) {
    if debug() {
        console(&format!("rinit: {} {args}\n", stamp()));
    }
}

/// A warning: always shown, and sent to the kernel log.
pub fn warn(msg: &str) {
    console(&format!("rinit: warning: {msg}\n"));
    kmsg(4, &format!("warning: {msg}"));
}

/// An error: always shown, and sent to the kernel log.
pub fn error(msg: &str) {
    console(&format!("rinit: error: {msg}\n"));
    kmsg(3, &format!("error: {msg}"));
}

/// Logs a step with `format!` syntax.
macro_rules! step {
    ($($t:tt)*) => { $crate::log::step_args(format_args!($($t)*)) };
}
pub(crate) use step;
