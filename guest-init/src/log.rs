//! Logging for PID 1: to the console (fd 2) and, for warnings and errors, to `/dev/kmsg` (which the
//! kernel echoes on the console when the level is below its `console_loglevel`).
//!
//! Quiet by default: only warnings and errors are printed. With `rinit.debug`, [`step`] prints each
//! step with its `CLOCK_BOOTTIME` time. Nothing here can fail or panic: write errors are ignored.

use crate::sys;
use std::fmt;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

static DEBUG: AtomicBool = AtomicBool::new(false);
static KMSG: AtomicI32 = AtomicI32::new(-1);
/// The kernel's `console_loglevel` (first field of `/proc/sys/kernel/printk`): kmsg lines below it
/// are echoed on the console by the kernel itself, so rinit does not print them a second time.
static CONSOLE_LOGLEVEL: AtomicI32 = AtomicI32::new(0);

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
    let printk = std::fs::read_to_string("/proc/sys/kernel/printk").unwrap_or_default();
    let level = printk
        .split_whitespace()
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    CONSOLE_LOGLEVEL.store(level, Ordering::Relaxed);
}

fn console(line: &str) {
    sys::write_all_fd(2, line.as_bytes());
}

/// Logs `msg` at `level` to the kernel log, and to the console unless the kernel echoes it there.
fn kmsg_and_console(level: i32, msg: &str) {
    let fd = KMSG.load(Ordering::Relaxed);
    if fd >= 0 {
        sys::write_all_fd(fd, format!("<{level}>rinit: {msg}\n").as_bytes());
    }
    if fd < 0 || level >= CONSOLE_LOGLEVEL.load(Ordering::Relaxed) {
        console(&format!("rinit: {msg}\n"));
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
    kmsg_and_console(4, &format!("warning: {msg}"));
}

/// An error: always shown, and sent to the kernel log.
pub fn error(msg: &str) {
    kmsg_and_console(3, &format!("error: {msg}"));
}

/// Logs a step with `format!` syntax.
macro_rules! step {
    ($($t:tt)*) => { $crate::log::step_args(format_args!($($t)*)) };
}
pub(crate) use step;
