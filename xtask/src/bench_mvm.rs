//! `cargo xtask bench-mvm [--runs N]`: wall time of `mvm run -- true` with fw.rom, qboot
//! and SeaBIOS, interleaved, plus the phase breakdown `mvm run --timings` reports.
//!
//! Each round runs every firmware once, in turn, after one unrecorded warm-up round. With
//! stdin, stdout and stderr on `/dev/null`, `--stdio auto` picks the console (as in a terminal
//! or a CI log); one more row forces `--stdio split`.
//! When `vng` (virtme-ng) is on PATH, `vng -r <same kernel> --disable-kvm -- true` joins
//! the rounds as a reference (it needs the Rust virtiofsd first on PATH and udev, see
//! README; `MVM_BENCH_VNG_KERNEL` names a copy of the kernel for it). Results go to stdout
//! and `target/bench/mvm.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::util;

/// One command being timed.
struct Row {
    name: String,
    program: PathBuf,
    argv: Vec<String>,
    samples: Vec<f64>,
}

/// Run the benchmark; `args` may hold `--runs N` (default 10).
pub fn run(args: &[String]) -> Result<(), String> {
    let runs = match args {
        [] => 10,
        [flag, n] if flag == "--runs" => n.parse().map_err(|e| format!("--runs {n}: {e}"))?,
        _ => return Err("usage: cargo xtask bench-mvm [--runs N]".into()),
    };
    crate::rom::build(false)?;
    util::run(util::cargo().args(["build", "--release", "-p", "mvm", "--bin", "mvm"]))?;
    let mvm = util::root().join("target/release/mvm");
    let kernel = crate::kernel::fetch_kernel()?;
    let mut rows: Vec<Row> = ["fw", "qboot", "seabios"]
        .iter()
        .map(|fw| Row {
            name: format!("mvm run --firmware {fw} -- true"),
            program: mvm.clone(),
            argv: ["run", "-q", &format!("--firmware={fw}"), "--", "true"]
                .map(String::from)
                .to_vec(),
            samples: Vec::new(),
        })
        .collect();
    // stdout and stderr apart (what a caller capturing them separately gets): the
    // virtio-serial ports and virtio_console on top of the fw.rom row.
    rows.push(Row {
        name: "mvm run --stdio split -- true".into(),
        program: mvm.clone(),
        argv: ["run", "-q", "--stdio=split", "--", "true"]
            .map(String::from)
            .to_vec(),
        samples: Vec::new(),
    });
    if let Some(vng) = which("vng") {
        // vng runs depmod next to the kernel it boots: MVM_BENCH_VNG_KERNEL can point it at
        // a copy of the cached kernel (with its lib/modules) to keep the cache untouched.
        let image = std::env::var("MVM_BENCH_VNG_KERNEL")
            .unwrap_or_else(|_| kernel.vmlinuz.to_string_lossy().into_owned());
        rows.push(Row {
            name: "vng -r KERNEL --disable-kvm -- true".into(),
            program: vng,
            argv: ["-r", &image, "--disable-kvm", "--", "true"]
                .map(String::from)
                .to_vec(),
            samples: Vec::new(),
        });
    }
    for round in 0..=runs {
        for row in rows.iter_mut() {
            let secs = timed(&row.program, &row.argv)?;
            eprintln!(
                "{} {}: {secs:.3} s",
                if round == 0 { "warm-up" } else { "run" },
                row.name
            );
            if round > 0 {
                row.samples.push(secs);
            }
        }
    }
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| command | median s | min–max s | × fw.rom |\n|---|---|---|---|"
    );
    let base = median(&rows[0].samples);
    for row in &rows {
        let (lo, hi) = range(&row.samples);
        let m = median(&row.samples);
        let _ = writeln!(
            table,
            "| `{}` | {m:.3} | {lo:.3}–{hi:.3} | {:.2} |",
            row.name,
            m / base
        );
    }
    let phases = timings(&mvm)?;
    let _ = writeln!(
        table,
        "\nPhases of one `mvm run --timings -- true` (fw.rom):\n\n```\n{phases}```"
    );
    print!("{table}");
    let dir = util::root().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("mvm.md");
    std::fs::write(&path, &table).map_err(|e| format!("{}: {e}", path.display()))
}

/// Wall time of one successful run of `program argv`.
fn timed(program: &Path, argv: &[String]) -> Result<f64, String> {
    let start = Instant::now();
    let status = Command::new(program)
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let secs = start.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!("{} {argv:?} failed: {status}", program.display()));
    }
    Ok(secs)
}

/// The `--timings` report of one run.
fn timings(mvm: &Path) -> Result<String, String> {
    let out = Command::new(mvm)
        .args(["run", "-q", "--stdio=console", "--timings", "--", "true"])
        .output()
        .map_err(|e| format!("cannot run mvm: {e}"))?;
    Ok(String::from_utf8_lossy(&out.stderr).into_owned())
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 0 => (s[n / 2 - 1] + s[n / 2]) / 2.0,
        n => s[n / 2],
    }
}

fn range(v: &[f64]) -> (f64, f64) {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo, hi)
}
