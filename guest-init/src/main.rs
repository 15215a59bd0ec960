//! rinit: a static PID 1 for microVM guests.
//!
//! It mounts the pseudo filesystems, loads modules, mounts the real root (initramfs mode) and
//! switches to it, runs one workload as a session leader on the console, forwards signals to it and
//! reaps every orphan, then stops what is left, reports the exit status to the host (the protocol of
//! the `rinit_status` crate) and powers off. It never exits and never panics on purpose: every error
//! ends the run with status 125 and a clean power-off, since PID 1 exiting is a kernel panic.
//!
//! Configuration: the kernel command line and an optional spec file, documented in [`config`].
//! Two modes, detected by the filesystem at `/` ([`root::detect_mode`]): initramfs mode (`/init`)
//! and root mode (`init=/sbin/rinit`).

mod cmdline;
mod config;
mod console;
mod error;
mod log;
mod modinfo;
mod modules;
mod mounts;
mod net;
mod report;
mod root;
mod spawn;
mod spec;
mod supervise;
mod sys;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::log::step;
use crate::root::Mode;
use rinit_status::Outcome;

fn main() {
    let start = sys::boottime_us();
    if sys::getpid() != 1 {
        sys::write_all_fd(2, b"rinit: must run as PID 1 (the kernel's init)\n");
        std::process::exit(i32::from(Outcome::SETUP_FAILED));
    }
    supervise::block_signals();
    report::mark_start(start);
    std::panic::set_hook(Box::new(|info| {
        log::error(&format!("internal error: {info}"));
        report::finish(Outcome::SetupFailed)
    }));
    let outcome = run().unwrap_or_else(|e| {
        log::error(&e.to_string());
        Outcome::SetupFailed
    });
    report::finish(outcome)
}

/// The boot script, in order. Returns how the workload ended.
fn run() -> Result<Outcome> {
    let mode = root::detect_mode();
    mounts::mount_all(mounts::EARLY)?;
    console::ensure_stdio();
    log::open_kmsg();
    let cfg = load_config()?;
    step!("rinit in {mode:?} mode");
    modules::load(&cfg.modules)?;
    report::mark(|m| &mut m.modules);
    mount_root(mode, &cfg)?;
    root::late_mounts()?;
    root::extra_mounts(&cfg.mounts)?;
    report::mark(|m| &mut m.mounts);
    identity(&cfg);
    report::open_port(&cfg);
    let console = console::workload_console(cfg.console.as_deref());
    let workload = spawn::Workload::prepare(&cfg, &console)?;
    report::mark(|m| &mut m.exec);
    step!("starting {:?} on {console}", cfg.argv);
    let outcome = match workload.spawn() {
        Ok(pid) => supervise::wait_workload(pid),
        Err((outcome, err)) => {
            log::error(&err.to_string());
            outcome
        }
    };
    report::mark(|m| &mut m.exit);
    step!("workload ended: {outcome:?} (status {})", outcome.code());
    Ok(outcome)
}

/// Reads the command line and the spec file into a checked [`Config`], and applies its logging and
/// reporting options.
fn load_config() -> Result<Config> {
    let text =
        std::fs::read_to_string("/proc/cmdline").map_err(|e| Error::io("read /proc/cmdline", e))?;
    let line = cmdline::parse(&text);
    let mut cfg = Config::default();
    let spec_path = line.spec_path().unwrap_or(config::DEFAULT_SPEC);
    match std::fs::read_to_string(spec_path) {
        Ok(text) => {
            spec::apply(&text, &mut cfg).map_err(|e| Error::msg(format!("{spec_path}: {e}")))?
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && line.spec_path().is_none() => {}
        Err(e) => return Err(Error::io(format_args!("read spec {spec_path}"), e)),
    }
    line.apply(&mut cfg)?;
    log::set_debug(cfg.debug);
    report::configure(&cfg);
    for w in &cfg.warnings {
        log::warn(w);
    }
    cfg.validate()?;
    Ok(cfg)
}

/// Mounts the real root and switches to it (initramfs mode with `rinit.root`).
fn mount_root(mode: Mode, cfg: &Config) -> Result<()> {
    match (mode, &cfg.root) {
        (Mode::Initramfs, Some(root)) => {
            root::mount_root(root)?;
            root::switch_root()
        }
        (Mode::Root, Some(_)) => {
            log::warn("rinit.root ignored: the kernel already mounted the root");
            Ok(())
        }
        (_, None) => Ok(()),
    }
}

/// Loopback and hostname: a failure is worth a warning, not the run.
fn identity(cfg: &Config) {
    if let Err(e) = net::loopback_up() {
        log::warn(&e.to_string());
    }
    if let Err(e) = net::set_hostname(&cfg.hostname) {
        log::warn(&e.to_string());
    }
    step!("lo up, hostname {}", cfg.hostname);
}
