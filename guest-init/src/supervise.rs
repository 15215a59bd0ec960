//! PID 1's duties while the workload runs and after: forward signals to it, reap every process that
//! ends (orphans are re-parented to PID 1), and at the end stop everything that is left.
//!
//! rinit installs no signal handlers: the signals it cares about stay blocked (so the kernel queues
//! them) and are taken with `sigtimedwait(2)`. Signals with the default action are never delivered to
//! PID 1 anyway, so a workload cannot kill rinit.

use crate::log::{self, step};
use crate::sys;
use rinit_status::Outcome;
use std::time::{Duration, Instant};

/// Signals forwarded to the workload. SIGINT also arrives on Ctrl-Alt-Del (`reboot(RB_DISABLE_CAD)`).
pub const FORWARDED: &[libc::c_int] = &[
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGPWR,
    libc::SIGWINCH,
];

fn signal_set(extra: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is a valid value; sigemptyset/sigaddset initialise it.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    for &sig in std::iter::once(&libc::SIGCHLD).chain(extra) {
        // SAFETY: as above; an invalid number only returns an error.
        unsafe { libc::sigaddset(&mut set, sig) };
    }
    set
}

/// Blocks SIGCHLD and the forwarded signals; call first thing, before any child exists.
pub fn block_signals() {
    let set = signal_set(FORWARDED);
    // SAFETY: `set` is a valid sigset_t; the old mask is not needed.
    unsafe { libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    // Ctrl-Alt-Del sends SIGINT to PID 1 instead of rebooting at once.
    // SAFETY: reboot with RB_DISABLE_CAD only changes a kernel flag.
    unsafe { libc::reboot(libc::RB_DISABLE_CAD) };
}

/// Waits up to `timeout` (forever if `None`) for a blocked signal; returns it, or `None` on timeout.
fn wait_signal(set: &libc::sigset_t, timeout: Option<Duration>) -> Option<libc::c_int> {
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs() as _,
        tv_nsec: t.subsec_nanos().into(),
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `set` is valid; a null siginfo pointer is allowed; `ts_ptr` is null or valid.
    let sig = unsafe { libc::sigtimedwait(set, std::ptr::null_mut(), ts_ptr) };
    (sig > 0).then_some(sig)
}

/// What a non-blocking reap pass found.
#[derive(Debug, Default)]
struct Reaped {
    /// The workload's outcome, if it was among the reaped.
    workload: Option<Outcome>,
    /// No children are left at all (`ECHILD`).
    none_left: bool,
}

/// Reaps every child that has ended, without blocking.
fn reap(workload: libc::pid_t) -> Reaped {
    let mut out = Reaped::default();
    loop {
        let mut status = 0;
        // SAFETY: `status` is writable; WNOHANG never blocks.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        match pid {
            0 => return out,
            -1 => {
                out.none_left =
                    std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD);
                return out;
            }
            pid if pid == workload => out.workload = Outcome::from_wait_status(status),
            pid => step!("reaped orphan {pid}"),
        }
    }
}

/// Runs until the workload `pid` ends: forwards signals to it and reaps orphans on the way.
pub fn wait_workload(pid: libc::pid_t) -> Outcome {
    let set = signal_set(FORWARDED);
    loop {
        let reaped = reap(pid);
        if let Some(outcome) = reaped.workload {
            return outcome;
        }
        if reaped.none_left {
            // Cannot happen while the workload lives; do not spin if it somehow does.
            log::error("the workload vanished without a wait status");
            return Outcome::SetupFailed;
        }
        match wait_signal(&set, None) {
            Some(libc::SIGCHLD) | None => {}
            Some(sig) => {
                step!("forwarding signal {sig} to the workload");
                sys::kill(pid, sig);
            }
        }
    }
}

/// Waits until no child is left or `timeout` passes; returns whether all are gone.
fn reap_until_empty(timeout: Duration) -> bool {
    let set = signal_set(&[]);
    let deadline = Instant::now() + timeout;
    loop {
        if reap(0).none_left {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        wait_signal(&set, Some(left));
    }
}

/// Ends every remaining process: SIGTERM, `grace` to exit, then SIGKILL, and reaps them all.
pub fn stop_everything(grace: Duration) {
    if reap_until_empty(Duration::ZERO) {
        return;
    }
    step!("sending SIGTERM to the remaining processes");
    sys::kill(-1, libc::SIGTERM);
    if reap_until_empty(grace) {
        return;
    }
    step!("sending SIGKILL to the remaining processes");
    sys::kill(-1, libc::SIGKILL);
    // Processes in uninterruptible sleep can outlive SIGKILL for a while; do not hang on them.
    if !reap_until_empty(Duration::from_secs(5)) {
        log::warn("some processes did not exit after SIGKILL");
    }
}
