//! The end of every run: stop what is left, `sync`, unmount, report the status record on every
//! channel, and power off (protocol in the `rinit_status` crate docs). [`finish`] never returns.
//!
//! What the report needs is kept in one global, filled in as the run goes, so that the panic hook can
//! finish the run as cleanly as the normal path.

use crate::config::{Config, Stream};
use crate::log::{self, step};
use crate::{mounts, supervise, sys};
use rinit_status::{debug_exit_value, Marks, Nonce, Outcome, Record};
use std::fs::File;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

/// What [`finish`] needs.
#[derive(Debug)]
struct State {
    nonce: Option<Nonce>,
    port: Option<File>,
    /// The copiers of the workload's output ports; each returns its port at end-of-file.
    outputs: Vec<JoinHandle<File>>,
    /// Output went to ports, so the host stops the VM (see `rinit.hold`).
    held_output: bool,
    hold_ms: u32,
    debug_exit: Option<u16>,
    reboot: bool,
    grace_ms: u32,
    marks: Marks,
}

static STATE: Mutex<State> = Mutex::new(State {
    nonce: None,
    port: None,
    outputs: Vec::new(),
    held_output: false,
    hold_ms: 0,
    debug_exit: None,
    reboot: false,
    grace_ms: 1000,
    marks: Marks {
        start: None,
        mounts: None,
        modules: None,
        exec: None,
        exit: None,
    },
});
static FINISHING: AtomicBool = AtomicBool::new(false);

fn with_state(f: impl FnOnce(&mut State)) {
    if let Ok(mut st) = STATE.lock() {
        f(&mut st);
    }
}

/// Records the time of a step now.
pub fn mark(pick: fn(&mut Marks) -> &mut Option<u64>) {
    let now = sys::boottime_us();
    with_state(|st| *pick(&mut st.marks) = Some(now));
}

/// Records the start time (taken before anything else ran).
pub fn mark_start(us: u64) {
    with_state(|st| st.marks.start = Some(us));
}

/// Takes the reporting options from the configuration.
pub fn configure(cfg: &Config) {
    with_state(|st| {
        st.nonce = Some(cfg.nonce.clone());
        st.debug_exit = cfg.debug_exit;
        st.reboot = cfg.reboot;
        st.grace_ms = cfg.grace_ms;
        st.hold_ms = cfg.hold_ms;
    });
}

/// Keeps the copier of an output port, to end the port with the end mark when everything has
/// stopped.
pub fn keep_output(copier: JoinHandle<File>) {
    with_state(|st| st.outputs.push(copier));
}

/// Opens the status port now, before the workload starts: a virtio-console port admits one opener,
/// so holding it keeps the workload from writing to it. Waits up to `rinit.waitport` for it.
pub fn open_port(cfg: &Config) {
    // Ports are announced in the order QEMU has them; the host adds the status port first, so
    // once a stream port was found (those are opened first) there is nothing left to wait for.
    let streams_on_ports = cfg.stdio.iter().any(|s| matches!(s, Stream::Port(_)));
    let wait_ms = if streams_on_ports {
        0
    } else {
        cfg.wait_port_ms
    };
    let wait = Duration::from_millis(wait_ms.into());
    let Some(dev) = crate::stdio::wait_port(&cfg.status_port, wait) else {
        if wait_ms > 0 {
            log::warn(&format!("status port {} not found", cfg.status_port));
        }
        return;
    };
    match std::fs::OpenOptions::new().write(true).open(&dev) {
        Ok(f) => {
            step!("status port {} is {dev}", cfg.status_port);
            with_state(|st| st.port = Some(f));
        }
        Err(e) => log::warn(&format!("open status port {dev}: {e}")),
    }
}

/// Ends the run with `outcome`. Never returns.
pub fn finish(outcome: Outcome) -> ! {
    if FINISHING.swap(true, Ordering::SeqCst) {
        // A panic while finishing: skip straight to the power-off.
        power_off(false);
    }
    let now = sys::boottime_us();
    // An early failure (before /dev was mounted) may have left rinit without a console.
    crate::console::ensure_stdio();
    log::open_kmsg();
    let mut state = STATE.lock().ok();
    let grace = state.as_ref().map_or(1000, |st| st.grace_ms);
    supervise::stop_everything(Duration::from_millis(grace.into()));
    if let Some(st) = state.as_deref_mut() {
        end_outputs(st);
    }
    sys::sync();
    unmount_all();
    let reboot = state.as_ref().is_some_and(|st| st.reboot);
    if let Some(st) = state.as_deref_mut() {
        st.marks.exit.get_or_insert(now);
        report(st, outcome);
    } else {
        report_console(
            &Record {
                outcome,
                marks: Marks::default(),
            }
            .encode(&Nonce::default()),
        );
    }
    power_off(reboot)
}

/// Writes the record to every channel.
fn report(st: &mut State, outcome: Outcome) {
    let nonce = st.nonce.clone().unwrap_or_default();
    let line = Record {
        outcome,
        marks: st.marks,
    }
    .encode(&nonce);
    if let Some(port) = st.port.as_mut() {
        if let Err(e) = port
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| port.flush())
        {
            log::warn(&format!("write status port: {e}"));
        }
    }
    report_console(&line);
    if st.held_output && st.hold_ms > 0 {
        // The host stops the VM once it has read every output port to its end mark.
        step!("waiting up to {} ms for the host", st.hold_ms);
        std::thread::sleep(Duration::from_millis(st.hold_ms.into()));
    }
    if let Some(port) = st.debug_exit {
        debug_exit(port, debug_exit_value(outcome.code()));
    }
}

/// Waits for the output copiers (every process is gone, so their pipes have ended) and writes
/// the end mark to each port: nothing is left that could write after it.
fn end_outputs(st: &mut State) {
    let mark = rinit_status::end_mark(&st.nonce.clone().unwrap_or_default());
    st.held_output = !st.outputs.is_empty();
    for copier in st.outputs.drain(..) {
        let Ok(mut port) = copier.join() else {
            continue;
        };
        if let Err(e) = port.write_all(&mark) {
            log::warn(&format!("write the end mark: {e}"));
        }
    }
}

/// The console copy: printed after everything else was drained, on a line of its own.
fn report_console(line: &str) {
    sys::tcdrain(2);
    sys::write_all_fd(2, format!("\n{line}\n").as_bytes());
    sys::tcdrain(2);
}

/// Unmounts everything but `/` in reverse mount order, then remounts `/` read-only. Busy mounts
/// (the console holds `/dev`) stay; after `sync` that is harmless.
fn unmount_all() {
    for target in mounts::mounted().iter().rev().filter(|t| *t != "/") {
        if let Err(e) = sys::umount(target, 0) {
            step!("umount {target}: {e}");
        }
    }
    if let Err(e) = sys::mount("", "/", "", libc::MS_REMOUNT | libc::MS_RDONLY, None) {
        step!("remount / read-only: {e}");
    }
}

/// Writes `value` to QEMU's `isa-debug-exit` at `port`; QEMU exits at once with `(value << 1) | 1`.
fn debug_exit(port: u16, value: u32) {
    // SAFETY: ioperm only changes this process's I/O permission bitmap; PID 1 has CAP_SYS_RAWIO.
    if unsafe { libc::ioperm(port.into(), 4, 1) } != 0 {
        log::warn(&format!(
            "ioperm {port:#x}: {}",
            std::io::Error::last_os_error()
        ));
        return;
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: ioperm granted access to the port; writing isa-debug-exit touches no memory of ours.
    unsafe {
        core::arch::asm!("out dx, eax", in("dx") port, in("eax") value, options(nomem, nostack, preserves_flags));
    }
}

/// Powers off (or reboots, for `-no-reboot`); if the kernel refuses, idles forever, since PID 1
/// must never exit.
fn power_off(reboot: bool) -> ! {
    let cmd = if reboot {
        libc::RB_AUTOBOOT
    } else {
        libc::RB_POWER_OFF
    };
    // SAFETY: reboot has no memory-safety preconditions; filesystems were synced.
    unsafe { libc::reboot(cmd) };
    log::error(&format!("reboot: {}", std::io::Error::last_os_error()));
    loop {
        // SAFETY: pause only sleeps until a signal arrives.
        unsafe { libc::pause() };
    }
}
