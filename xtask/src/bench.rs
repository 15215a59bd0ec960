//! `cargo xtask bench-fw [--runs N]`: boot time of `fw.rom` against qboot and SeaBIOS.
//!
//! Boots the Debian cloud kernel (bzImage and PVH `vmlinux`) with the boot-test
//! initramfs (`guest-check` as `/init`, which powers off at once) under TCG `microvm`,
//! once per firmware × kernel in turn, `N` rounds after one unrecorded warm-up round.
//! Runs are strictly sequential; before each one the bench waits (up to 20 s) until no
//! other QEMU runs on the host and records whether one still did.
//!
//! Per boot it measures host wall time from spawning QEMU to (a) the first
//! `GUEST-CHECK` line on the serial console (userspace is running) and (b) QEMU's exit.
//! It prints a markdown table (median, min–max, ratio to qboot + bzImage in the same
//! run) and writes it to `target/bench/fw.md`.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{kernel, util};

const QBOOT: &str = "/usr/share/qemu/qboot.rom";
const SEABIOS: &str = "/usr/share/seabios/bios-microvm.bin";
/// A boot that takes longer is stopped and counted as failed (hung).
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait for other engineers' QEMU processes before measuring anyway.
const QUIET_WAIT: Duration = Duration::from_secs(20);

/// One firmware × kernel configuration and its samples.
struct Config {
    firmware: &'static str,
    bios: PathBuf,
    kernel: &'static str,
    image: PathBuf,
    to_init: Vec<f64>,
    to_exit: Vec<f64>,
    failed: usize,
}

/// What one boot measured.
struct Sample {
    to_init: Option<Duration>,
    to_exit: Option<Duration>,
    done: bool,
}

/// Run the benchmark; `args` are the task's arguments (`--runs N`).
pub fn run(args: &[String]) -> Result<(), String> {
    let runs = parse_runs(args)?;
    let fw = firmware();
    let k = kernel::fetch_kernel()?;
    let initramfs = kernel::test_initramfs()?.cpio;
    let khz = mvm::host::tsc_khz().map_err(|e| e.to_string())?;
    let append = format!("console=ttyS0 tsc_early_khz={khz}");
    let mut configs = Vec::new();
    let firmwares = [
        ("fw.rom", fw),
        ("qboot", Some(QBOOT.into())),
        ("SeaBIOS", Some(SEABIOS.into())),
    ];
    for (firmware, bios) in firmwares.into_iter().filter_map(|(n, b)| Some((n, b?))) {
        for (kernel, image) in [("bzImage", &k.vmlinuz), ("PVH vmlinux", &k.vmlinux)] {
            let image = image.clone();
            let bios = bios.clone();
            let (to_init, to_exit) = (Vec::new(), Vec::new());
            configs.push(Config {
                firmware,
                bios,
                kernel,
                image,
                to_init,
                to_exit,
                failed: 0,
            });
        }
    }
    let load_start = load1();
    let mut overlapped = 0;
    for round in 0..=runs {
        for c in &mut configs {
            overlapped += usize::from(!wait_for_quiet_host() && round > 0);
            let s = boot(&c.bios, &c.image, &initramfs, &append)?;
            eprintln!(
                "{} {:8} {:12} init {:>7} exit {:>7}{}",
                if round == 0 { "warm-up " } else { "run" },
                c.firmware,
                c.kernel,
                secs(s.to_init),
                secs(s.to_exit),
                if s.done {
                    ""
                } else {
                    "  (no `GUEST-CHECK done`: failed)"
                }
            );
            if round == 0 {
                continue;
            }
            match (s.done, s.to_init, s.to_exit) {
                (true, Some(i), Some(e)) => {
                    c.to_init.push(i.as_secs_f64());
                    c.to_exit.push(e.as_secs_f64());
                }
                _ => c.failed += 1,
            }
        }
    }
    let host = format!(
        "Host TSC {khz} kHz; 1-minute load average {load_start} at the start, {} at the end \
         (2 cores: other work on the host inflates the times); runs that overlapped \
         another QEMU: {overlapped}.",
        load1()
    );
    let table = report(&configs, runs, &k.kver, &append, &host);
    print!("{table}");
    let out = util::root().join("target/bench");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    let path = out.join("fw.md");
    std::fs::write(&path, &table).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// `target/fw.rom`, rebuilt first. If the build fails, an existing image is used; if
/// there is none the fw.rom rows are left out (the other firmwares still get measured).
fn firmware() -> Option<PathBuf> {
    match crate::rom::build(false) {
        Ok(path) => Some(path),
        Err(e) => {
            let path = util::root().join("target/fw.rom");
            let what = if path.is_file() {
                "using the existing image"
            } else {
                "leaving it out"
            };
            eprintln!("warning: building fw.rom failed ({e}); {what}");
            path.is_file().then_some(path)
        }
    }
}

fn parse_runs(args: &[String]) -> Result<usize, String> {
    match args {
        [] => Ok(10),
        [flag, n] if flag == "--runs" => match n.parse() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!("--runs needs a positive number, got `{n}`")),
        },
        _ => Err("usage: cargo xtask bench-fw [--runs N]".into()),
    }
}

/// Boot once; measure spawn → first `GUEST-CHECK` line and spawn → QEMU exit.
fn boot(bios: &Path, image: &Path, initrd: &Path, append: &str) -> Result<Sample, String> {
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-M", "microvm,accel=tcg", "-m", "256M", "-smp", "1"])
        .args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-serial",
            "stdio",
        ])
        .arg("-bios")
        .arg(bios)
        .arg("-kernel")
        .arg(image)
        .arg("-initrd")
        .arg(initrd)
        .args(["-append", append])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run qemu-system-x86_64: {e}"))?;
    let lines = serial_lines(&mut child)?;
    let deadline = start + BOOT_TIMEOUT;
    let mut sample = Sample {
        to_init: None,
        to_exit: None,
        done: false,
    };
    // Read the console until it closes (QEMU exited) or the deadline passes.
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok((at, line)) if line.starts_with("GUEST-CHECK ") => {
                sample.to_init.get_or_insert(at - start);
                sample.done |= line.trim_end() == "GUEST-CHECK done";
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            sample.to_exit = Some(start.elapsed());
            return Ok(sample);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(sample)
}

/// Stream the child's stdout as `(arrival time, line)` from a reader thread; the
/// channel closes when QEMU closes its stdout (at exit).
fn serial_lines(child: &mut Child) -> Result<mpsc::Receiver<(Instant, String)>, String> {
    let stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).into_owned();
                    if tx.send((Instant::now(), line)).is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok(rx)
}

/// Wait until no `qemu-system-*` process runs on the host (at most [`QUIET_WAIT`]).
/// Returns false if one was still running.
fn wait_for_quiet_host() -> bool {
    let start = Instant::now();
    while foreign_qemu() {
        if start.elapsed() > QUIET_WAIT {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    true
}

fn foreign_qemu() -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        std::fs::read_to_string(e.path().join("comm"))
            .map(|c| c.starts_with("qemu-system"))
            .unwrap_or(false)
    })
}

/// The 1-minute load average from `/proc/loadavg`.
fn load1() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn secs(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{:.3}s", d.as_secs_f64()))
}

/// Median, minimum and maximum of `v` (None when empty).
fn stats(v: &[f64]) -> Option<(f64, f64, f64)> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let (min, max) = (*s.first()?, *s.last()?);
    let mid = s.len() / 2;
    let median = if s.len().is_multiple_of(2) {
        (s[mid - 1] + s[mid]) / 2.0
    } else {
        s[mid]
    };
    Some((median, min, max))
}

/// One "median [min–max] (ratio)" cell.
fn cell(v: &[f64], base: Option<f64>) -> String {
    match (stats(v), base) {
        (Some((m, lo, hi)), Some(b)) => format!("{m:.3} [{lo:.3}–{hi:.3}] | {:.2}×", m / b),
        (Some((m, lo, hi)), None) => format!("{m:.3} [{lo:.3}–{hi:.3}] | –"),
        (None, _) => "– | –".into(),
    }
}

fn report(c: &[Config], runs: usize, kver: &str, append: &str, host: &str) -> String {
    let base = c
        .iter()
        .find(|c| c.firmware == "qboot" && c.kernel == "bzImage");
    let base_init = base.and_then(|b| stats(&b.to_init)).map(|s| s.0);
    let base_exit = base.and_then(|b| stats(&b.to_exit)).map(|s| s.0);
    let mut t = String::new();
    let _ = writeln!(t, "# Firmware boot benchmark (QEMU microvm, TCG)\n");
    let _ = writeln!(
        t,
        "Kernel `{kver}`, test initramfs (`guest-check`), `-m 256M -smp 1`, \
         `-append '{append}'`. {runs} interleaved runs per row after one warm-up round; \
         host wall time in seconds from QEMU spawn; median [min–max]; ratio = median / \
         median of qboot + bzImage."
    );
    let _ = writeln!(t, "{host}\n");
    let _ = writeln!(
        t,
        "| firmware | kernel | ok/runs | spawn → userspace | ratio | spawn → QEMU exit | ratio |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|");
    for c in c {
        let _ = writeln!(
            t,
            "| {} | {} | {}/{} | {} | {} |",
            c.firmware,
            c.kernel,
            c.to_init.len(),
            c.to_init.len() + c.failed,
            cell(&c.to_init, base_init),
            cell(&c.to_exit, base_exit),
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_are_median_min_max() {
        assert_eq!(stats(&[3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(stats(&[4.0, 1.0, 2.0, 3.0]), Some((2.5, 1.0, 4.0)));
        assert_eq!(stats(&[]), None);
    }

    #[test]
    fn parses_runs() {
        assert_eq!(parse_runs(&[]), Ok(10));
        assert_eq!(parse_runs(&["--runs".into(), "3".into()]), Ok(3));
        assert!(parse_runs(&["--runs".into(), "0".into()]).is_err());
        assert!(parse_runs(&["--fast".into()]).is_err());
    }
}
