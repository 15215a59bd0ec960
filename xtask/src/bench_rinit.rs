//! `cargo xtask bench-rinit [--runs N] [--icount]`: rinit's start-up cost against a busybox
//! shell init.
//!
//! Both inits boot the Debian cloud kernel (PVH `vmlinux`, from `mvm::kernel`'s cache) under
//! TCG `microvm` from an initramfs holding the same modules (with a `modules.dep` made by
//! `depmod -b`) and `rinit-probe` as the workload, and do the same work: proc, sysfs, devtmpfs,
//! module loading, devpts, `/dev/shm`, `/run`, `/tmp`, cgroup2, the `/dev` links, `lo` up, the
//! hostname, then exec the workload (`probe exit 0`). Each is measured from inside the guest,
//! from its first instruction to the workload's start, with module loading apart:
//!
//! - rinit: the timing marks of its status record (`t_start`, `t_modules`, `t_exec`, µs of
//!   `CLOCK_BOOTTIME`);
//! - busybox `sh`: the kernel's timestamps of three `/dev/kmsg` lines the script writes
//!   (`bench start`, `bench modules`, `bench exec`).
//!
//! The four cases (each init without and with modules) take turns, `N` rounds after one
//! unrecorded warm-up round. The markdown table (median, min–max, ratio to busybox) is printed
//! and written to `target/bench/rinit.md`, with rinit's stripped size.
//!
//! With `--icount`, QEMU runs `-icount shift=0,sleep=off`: each guest instruction advances the
//! virtual clock by 1 ns and an idle guest jumps straight to its next timer, so the guest's
//! clocks count instructions and the figures repeat from run to run. They are given in millions
//! of guest instructions (virtual ms), written to `target/bench/rinit-icount.md`: a CPU that
//! retires at least one instruction per ns, as any KVM host does, runs N M instructions in at
//! most N ms.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mvm::cpio::{Archive, DeviceKind};

use crate::kernel;
use crate::util::{self, MUSL};

const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// The modules of the "with modules" cases, as given to each init, and their files (with the
/// dependencies `virtio` and `virtio_ring`).
const MODULES: &str = "virtio_mmio,virtio_console";
const MODULE_FILES: &[&str] = &[
    "drivers/virtio/virtio.ko",
    "drivers/virtio/virtio_ring.ko",
    "drivers/virtio/virtio_mmio.ko",
    "drivers/char/virtio_console.ko",
];

/// The baseline: a busybox `sh` `/init` doing rinit's steps as shell commands, timed by kmsg
/// lines. Modules come from the kernel's `MODS=a,b` (an unknown `NAME=value` parameter becomes
/// init's environment).
const BUSYBOX_INIT: &str = include_str!("../../guest-init/bench/busybox-init.sh");

/// What the guest's clocks measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Plain TCG: guest time follows the host's, so the figures are host ms.
    Tcg,
    /// `-icount shift=0,sleep=off`: guest time counts instructions (1 ns each).
    Icount,
}

/// The guest TSC rate under icount. QEMU's TSC then reads the virtual clock in ns, i.e. 1 GHz:
/// Linux's PIT calibration, the PIT also running on the virtual clock, finds 999.993 MHz when
/// `tsc_early_khz=` is left out. (Under plain TCG the TSC is the host's.)
const ICOUNT_TSC_KHZ: u32 = 1_000_000;

impl Mode {
    fn qemu_args(self) -> &'static [&'static str] {
        match self {
            Mode::Tcg => &[],
            Mode::Icount => &["-icount", "shift=0,sleep=off"],
        }
    }

    fn tsc_khz(self) -> Result<u32, String> {
        match self {
            Mode::Tcg => mvm::host::tsc_khz().map_err(|e| e.to_string()),
            Mode::Icount => Ok(ICOUNT_TSC_KHZ),
        }
    }

    /// Rounds when `--runs` is not given: icount figures hardly vary, so fewer suffice.
    fn default_runs(self) -> usize {
        match self {
            Mode::Tcg => 12,
            Mode::Icount => 5,
        }
    }

    /// The unit of a guest duration of `ms` virtual ms, and the decimals shown (1 µs apart).
    fn unit(self) -> (&'static str, usize) {
        match self {
            Mode::Tcg => ("ms", 1),
            Mode::Icount => ("M instr.", 3),
        }
    }

    fn show(self, ms: f64) -> String {
        let (unit, p) = self.unit();
        format!("{ms:.p$} {unit}")
    }

    fn describe(self) -> &'static str {
        match self {
            Mode::Tcg => "TCG",
            Mode::Icount => {
                "TCG with `-icount shift=0,sleep=off` and `tsc_early_khz=1000000`: figures are \
                 millions of guest instructions (virtual ms; any idle time skipped to the next \
                 timer counts too), i.e. at most that many ms on a CPU retiring ≥ 1 instruction \
                 per ns"
            }
        }
    }

    fn report_file(self) -> &'static str {
        match self {
            Mode::Tcg => "target/bench/rinit.md",
            Mode::Icount => "target/bench/rinit-icount.md",
        }
    }
}

/// The task's options.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    runs: usize,
    mode: Mode,
}

/// One init × module choice and its samples (ms of guest time).
#[derive(Default)]
struct Case {
    rinit: bool,
    modules: bool,
    to_modules: Vec<f64>,
    to_exec: Vec<f64>,
    failed: usize,
}

impl Case {
    fn name(&self) -> &'static str {
        if self.rinit {
            "rinit"
        } else {
            "busybox sh"
        }
    }

    /// The command-line words of this case, after the common ones.
    fn append(&self) -> String {
        match (self.rinit, self.modules) {
            (true, false) => "rinit.nonce=bench -- /bin/probe exit 0".into(),
            (true, true) => {
                format!("rinit.nonce=bench rinit.modules={MODULES} -- /bin/probe exit 0")
            }
            (false, false) => String::new(),
            (false, true) => format!("MODS={MODULES}"),
        }
    }

    /// Boots once; keeps the sample unless this is the warm-up round.
    fn measure(&mut self, argv: &[String], warm_up: bool) {
        let parse = if self.rinit {
            rinit_sample
        } else {
            busybox_sample
        };
        let sample = boot(argv).and_then(|serial| parse(&serial));
        eprintln!("{:10} modules={:5} {sample:?}", self.name(), self.modules);
        match sample {
            Some(_) if warm_up => {}
            Some((m, e)) => {
                self.to_modules.push(m);
                self.to_exec.push(e);
            }
            None => self.failed += 1,
        }
    }
}

/// Run the benchmark; `args` are the task's arguments (`--runs N`, `--icount`).
pub fn run(args: &[String]) -> Result<(), String> {
    let Options { runs, mode } = parse_args(args)?;
    let k = kernel::fetch_kernel()?;
    util::build_musl(&["rinit", "rinit-probe"])?;
    let bins = util::root().join("target").join(MUSL).join("release");
    let dir = util::root().join("target/bench/rinit");
    let (rinit_cpio, busybox_cpio) = initramfs_pair(&k, &bins, &dir)?;
    // The firmware does not change what is measured: fw.rom when built, else qboot.
    let fw_rom = util::root().join("target/fw.rom");
    let firmware = match fw_rom.is_file() {
        true => fw_rom,
        false => PathBuf::from("/usr/share/qemu/qboot.rom"),
    };
    let khz = mode.tsc_khz()?;
    let base = format!("console=ttyS0 tsc_early_khz={khz} cryptomgr.notests panic=-1 quiet");
    let mut cases =
        [(true, false), (false, false), (true, true), (false, true)].map(|(rinit, modules)| Case {
            rinit,
            modules,
            ..Case::default()
        });
    let load_before = load1();
    for round in 0..=runs {
        eprintln!(
            "round {round}{}",
            if round == 0 { " (warm-up)" } else { "" }
        );
        for case in cases.iter_mut() {
            let cpio = if case.rinit {
                &rinit_cpio
            } else {
                &busybox_cpio
            };
            let append = format!("{base} {}", case.append());
            let argv = qemu_argv(mode, &firmware, &k.vmlinux, cpio, &append);
            case.measure(&argv, round == 0);
        }
    }
    let context = format!(
        "Kernel `{}` (PVH vmlinux), firmware `{}`, `-m 256M -smp 1`, {}; {runs} rounds after \
         one warm-up round; load average {load_before} before, {} after. {}",
        k.kver,
        firmware.file_name().unwrap_or_default().to_string_lossy(),
        mode.describe(),
        load1(),
        sizes(&bins.join("rinit"), &dir)?,
    );
    let table = report(mode, &cases, &context);
    print!("{table}");
    let out = util::root().join(mode.report_file());
    std::fs::write(&out, &table).map_err(|e| format!("{}: {e}", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let usage = || "usage: cargo xtask bench-rinit [--runs N] [--icount]".to_string();
    let (mut runs, mut mode) = (None, Mode::Tcg);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--icount" => mode = Mode::Icount,
            "--runs" => match args.next().ok_or_else(usage)?.parse() {
                Ok(n) if n > 0 => runs = Some(n),
                _ => return Err("--runs wants a positive number".into()),
            },
            _ => return Err(usage()),
        }
    }
    let runs = runs.unwrap_or(mode.default_runs());
    Ok(Options { runs, mode })
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes the two initramfs images under `dir`: rinit as `/init`, and the busybox script.
fn initramfs_pair(
    k: &mvm::kernel::Kernel,
    bins: &Path,
    dir: &Path,
) -> Result<(PathBuf, PathBuf), String> {
    let staging = dir.join("modules");
    let _ = std::fs::remove_dir_all(&staging);
    let moddir = staging.join("lib/modules").join(&k.kver);
    let mut files: Vec<String> = MODULE_FILES.iter().map(|m| format!("kernel/{m}")).collect();
    files.extend(["modules.builtin".into(), "modules.order".into()]);
    for rel in &files {
        let dst = moddir.join(rel);
        std::fs::create_dir_all(dst.parent().unwrap_or(&moddir)).map_err(|e| e.to_string())?;
        std::fs::copy(k.modules.join(rel), &dst).map_err(|e| format!("copy {rel}: {e}"))?;
    }
    util::run(Command::new("depmod").arg("-b").arg(&staging).arg(&k.kver))?;
    files.push("modules.dep".into());
    let busybox = mvm::locate::busybox().map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for (name, init) in [
        ("rinit.cpio", read(&bins.join("rinit"))?),
        ("busybox.cpio", BUSYBOX_INIT.as_bytes().to_vec()),
    ] {
        let err = |e: mvm::cpio::CpioError| e.to_string();
        let mut a = Archive::new();
        a.file("init", 0o755, init).map_err(err)?;
        a.file("bin/probe", 0o755, read(&bins.join("rinit-probe"))?)
            .map_err(err)?;
        a.file("bin/busybox", 0o755, read(&busybox)?).map_err(err)?;
        a.device("dev/console", 0o600, DeviceKind::Char, 5, 1)
            .map_err(err)?;
        a.device("dev/kmsg", 0o644, DeviceKind::Char, 1, 11)
            .map_err(err)?;
        for dir in ["proc", "sys"] {
            a.dir(dir, 0o555).map_err(err)?;
        }
        for rel in &files {
            let path = format!("lib/modules/{}/{rel}", k.kver);
            a.file(&path, 0o644, read(&moddir.join(rel))?)
                .map_err(err)?;
        }
        let path = dir.join(name);
        std::fs::write(&path, a.to_bytes().map_err(err)?).map_err(|e| e.to_string())?;
        out.push(path);
    }
    Ok((out[0].clone(), out[1].clone()))
}

fn qemu_argv(
    mode: Mode,
    firmware: &Path,
    kernel: &Path,
    initrd: &Path,
    append: &str,
) -> Vec<String> {
    let fixed = "-M microvm,accel=tcg -m 256M -smp 1 -nodefaults -no-user-config -display none \
                 -no-reboot -serial stdio";
    let mut argv: Vec<String> = fixed.split_whitespace().map(String::from).collect();
    argv.extend(mode.qemu_args().iter().map(|a| a.to_string()));
    argv.push("-bios".into());
    let path = |p: &Path| p.display().to_string();
    argv.extend([
        path(firmware),
        "-kernel".into(),
        path(kernel),
        "-initrd".into(),
    ]);
    argv.extend([path(initrd), "-append".into(), append.into()]);
    argv
}

/// Boots QEMU with `argv`; returns the serial console, or `None` if QEMU failed or hung.
fn boot(argv: &[String]) -> Option<String> {
    let mut child = Command::new("qemu-system-x86_64")
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
        text
    });
    let deadline = Instant::now() + BOOT_TIMEOUT;
    // Polling is fine here: what is measured are the guest's own clocks, not this loop.
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let serial = reader.join().ok()?;
    status.filter(|s| s.success()).map(|_| serial)
}

/// `value` of ` key=value` in `line`.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// (start → modules loaded, start → exec) in ms from rinit's status record (exit 0 required).
fn rinit_sample(serial: &str) -> Option<(f64, f64)> {
    let line = serial
        .lines()
        .rev()
        .find(|l| l.starts_with("RINIT-STATUS bench v1 "))?;
    let us = |key| field(line, key)?.parse::<f64>().ok();
    (field(line, "code")? == "0").then_some(())?;
    let (start, modules, exec) = (us("t_start")?, us("t_modules")?, us("t_exec")?);
    Some(((modules - start) / 1e3, (exec - start) / 1e3))
}

/// The timestamp (s) of the kernel log line `[   1.234567] <text>` on the console.
fn kmsg_time(serial: &str, text: &str) -> Option<f64> {
    serial.lines().find_map(|l| {
        let (stamp, rest) = l.strip_prefix('[')?.split_once(']')?;
        (rest.trim() == text).then(|| stamp.trim().parse().ok())?
    })
}

/// (start → modules loaded, start → exec) in ms from the busybox init's kmsg lines.
fn busybox_sample(serial: &str) -> Option<(f64, f64)> {
    kmsg_time(serial, "bench code=0")?;
    let start = kmsg_time(serial, "bench start")?;
    let modules = kmsg_time(serial, "bench modules")?;
    let exec = kmsg_time(serial, "bench exec")?;
    Some(((modules - start) * 1e3, (exec - start) * 1e3))
}

/// rinit's size as built and stripped (`strip` into `dir`), and busybox's for comparison.
fn sizes(rinit: &Path, dir: &Path) -> Result<String, String> {
    let stripped = dir.join("rinit.stripped");
    util::run(Command::new("strip").arg("-o").arg(&stripped).arg(rinit))?;
    let len = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.len())
            .map_err(|e| e.to_string())
    };
    let busybox = mvm::locate::busybox().map_err(|e| e.to_string())?;
    Ok(format!(
        "rinit is {} bytes stripped ({} as built); the static busybox is {} bytes.",
        len(&stripped)?,
        len(rinit)?,
        len(&busybox)?
    ))
}

/// The 1-minute load average from `/proc/loadavg`.
fn load1() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Median, minimum and maximum of `v` (None when empty).
fn stats(v: &[f64]) -> Option<(f64, f64, f64)> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let mid = s.len() / 2;
    let median = if s.len().is_multiple_of(2) {
        (s.get(mid.checked_sub(1)?)? + s[mid]) / 2.0
    } else {
        s[mid]
    };
    Some((median, *s.first()?, *s.last()?))
}

fn report(mode: Mode, cases: &[Case], context: &str) -> String {
    let median = |v: &[f64]| stats(v).map(|s| s.0);
    let (unit, p) = mode.unit();
    let title = match mode {
        Mode::Tcg => "TCG",
        Mode::Icount => "TCG -icount, guest instructions",
    };
    let mut t = String::new();
    let _ = writeln!(
        t,
        "# rinit start-up cost (QEMU microvm, {title})\n\n{context}\n"
    );
    let _ = writeln!(
        t,
        "| init | modules | start → exec, median (min–max) | ratio to busybox | start → modules loaded | modules loaded → exec | ok/runs |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|---|---|");
    for c in cases {
        let base = cases
            .iter()
            .find(|b| !b.rinit && b.modules == c.modules)
            .and_then(|b| median(&b.to_exec));
        let exec = stats(&c.to_exec).map_or("–".into(), |(m, lo, hi)| {
            format!("{m:.p$} {unit} ({lo:.p$}–{hi:.p$})")
        });
        let ratio = match (median(&c.to_exec), base) {
            (Some(m), Some(b)) if b > 0.0 => format!("{:.2}×", m / b),
            _ => "–".into(),
        };
        let zip = c.to_exec.iter().zip(&c.to_modules);
        let rest: Vec<f64> = zip.map(|(e, m)| e - m).collect();
        let ms = |v: Option<f64>| v.map_or("–".into(), |v| mode.show(v));
        let mods = if c.modules { MODULES } else { "none" };
        let ok = c.to_exec.len();
        let _ = writeln!(
            t,
            "| {} | {mods} | {exec} | {ratio} | {} | {} | {ok}/{} |",
            c.name(),
            ms(median(&c.to_modules)),
            ms(median(&rest)),
            ok + c.failed
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_from_the_console() {
        let serial = "x\nRINIT-STATUS bench v1 code=0 how=exit t_start=1000000 t_mounts=1030000 \
                      t_modules=1010000 t_exec=1040000 t_exit=1050000 sum=0\n";
        assert_eq!(rinit_sample(serial), Some((10.0, 40.0)));
        assert_eq!(rinit_sample(&serial.replace("code=0", "code=1")), None);
        let bb = "[    1.500000] bench start\r\n[    1.520000] bench modules\n\
                  [    1.600000] bench exec\n[    1.700000] bench code=0\n";
        let (m, e) = busybox_sample(bb).unwrap();
        assert!(
            (m - 20.0).abs() < 1e-6 && (e - 100.0).abs() < 1e-6,
            "{m} {e}"
        );
        assert_eq!(busybox_sample(&bb.replace("code=0", "code=2")), None);
    }

    #[test]
    fn stats_and_runs() {
        assert_eq!(stats(&[3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(stats(&[4.0, 1.0]), Some((2.5, 1.0, 4.0)));
        assert_eq!(stats(&[]), None);
    }

    #[test]
    fn options() {
        let parse = |a: &[&str]| parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let opts = |runs, mode| Ok(Options { runs, mode });
        assert_eq!(parse(&[]), opts(12, Mode::Tcg));
        assert_eq!(parse(&["--runs", "3"]), opts(3, Mode::Tcg));
        assert_eq!(parse(&["--icount"]), opts(5, Mode::Icount));
        assert_eq!(parse(&["--icount", "--runs", "2"]), opts(2, Mode::Icount));
        assert_eq!(parse(&["--runs", "2", "--icount"]), opts(2, Mode::Icount));
        assert!(parse(&["--runs", "0"]).is_err());
        assert!(parse(&["--runs"]).is_err());
        assert!(parse(&["--help"]).is_err());
    }

    #[test]
    fn icount_argv_and_units() {
        let p = Path::new;
        let argv = qemu_argv(Mode::Icount, p("fw"), p("k"), p("i"), "a b");
        let at = argv.iter().position(|a| a == "-icount").unwrap();
        assert_eq!(argv[at + 1], "shift=0,sleep=off");
        assert_eq!(&argv[argv.len() - 2..], ["-append", "a b"]);
        let tcg = qemu_argv(Mode::Tcg, p("fw"), p("k"), p("i"), "a b");
        assert!(!tcg.iter().any(|a| a == "-icount"));
        assert_eq!(tcg.len() + 2, argv.len());
        assert_eq!(Mode::Icount.tsc_khz(), Ok(1_000_000));
        assert_eq!(Mode::Icount.show(0.98), "0.980 M instr.");
        assert_eq!(Mode::Tcg.show(12.34), "12.3 ms");
    }
}
