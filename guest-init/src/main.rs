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
mod stdio;
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
    let cfg = configure()?;
    step!("rinit in {mode:?} mode");
    mount_root(mode, &cfg)?;
    root::late_mounts()?;
    root::extra_mounts(&cfg.mounts)?;
    report::mark(|m| &mut m.mounts);
    identity(&cfg);
    let streams = stdio::open(&cfg)?;
    report::open_port(&cfg);
    let console = console::workload_console(cfg.console.as_deref());
    if let Err(e) = console::set_window_size(&console, cfg.rows, cfg.cols) {
        log::warn(&e.to_string());
    }
    let workload = spawn::Workload::prepare(&cfg, &console, streams.fds())?;
    report::mark(|m| &mut m.exec);
    step!("starting {:?} on {console}", cfg.argv);
    let spawned = workload.spawn();
    streams.start();
    if let Some(port) = &cfg.resize_port {
        let wait = std::time::Duration::from_millis(cfg.wait_port_ms.into());
        console::follow_window_size(port.clone(), console.clone(), wait);
    }
    let outcome = match spawned {
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

/// A spec file: where it came from and its text.
type SpecText = (String, String);

/// Reads the configuration and loads the modules it lists. A spec in fw_cfg
/// (`-fw_cfg name=opt/rinit/spec,file=…`) is read only when no spec file exists, after the modules
/// of the command line are loaded, since its sysfs view needs the `qemu_fw_cfg` module.
fn configure() -> Result<Config> {
    let text =
        std::fs::read_to_string("/proc/cmdline").map_err(|e| Error::io("read /proc/cmdline", e))?;
    let line = cmdline::parse(&text);
    let file = file_spec(&line)?;
    let mut cfg = build_config(&line, file.as_ref())?;
    modules::load(&cfg.modules)?;
    if file.is_none() {
        if let Ok(text) = std::fs::read_to_string(config::FW_CFG_SPEC) {
            step!("spec from {}", config::FW_CFG_SPEC);
            let loaded = std::mem::take(&mut cfg.modules);
            cfg = build_config(&line, Some(&(config::FW_CFG_SPEC.to_owned(), text)))?;
            let more: Vec<String> = cfg
                .modules
                .iter()
                .filter(|m| !loaded.contains(m))
                .cloned()
                .collect();
            modules::load(&more)?;
        }
    }
    report::mark(|m| &mut m.modules);
    for w in &cfg.warnings {
        log::warn(w);
    }
    cfg.validate()?;
    Ok(cfg)
}

/// The spec file named by `rinit.spec`, or [`config::DEFAULT_SPEC`] if it exists.
fn file_spec(line: &cmdline::Cmdline) -> Result<Option<SpecText>> {
    let path = line.spec_path().unwrap_or(config::DEFAULT_SPEC);
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some((path.to_owned(), text))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && line.spec_path().is_none() => {
            Ok(None)
        }
        Err(e) => Err(Error::io(format_args!("read spec {path}"), e)),
    }
}

/// The spec (if any), then the command line; applies the logging and reporting options at once.
fn build_config(line: &cmdline::Cmdline, spec: Option<&SpecText>) -> Result<Config> {
    let mut cfg = Config::default();
    if let Some((path, text)) = spec {
        spec::apply(text, &mut cfg).map_err(|e| Error::msg(format!("{path}: {e}")))?;
    }
    line.apply(&mut cfg)?;
    log::set_debug(cfg.debug);
    report::configure(&cfg);
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
