//! The firmware's own cost, reset → first kernel instruction, measured with the probe
//! kernel (`tests/probe`), which reads the time-stamp counter as its first instruction.
//!
//! Two measures per firmware × image, both in the same run:
//! - **instructions**, under `-icount shift=0,sleep=off` (the TSC then counts guest
//!   instructions: deterministic, the same figure every run, so 3 runs are checked equal);
//! - **time** under plain TCG (the guest TSC runs at the host TSC rate, so TSC / kHz is
//!   the time since reset), median and min–max over `runs` interleaved boots.
//!
//! qboot and SeaBIOS enter a bzImage through its 16-bit setup code (`PROBE TSC16`);
//! fw.rom enters at the 64-bit entry (`PROBE TSC`). Every firmware enters PVH the same way.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{probe, rom};

/// Result rows: firmware, image, instructions, TCG milliseconds per run.
struct Row {
    firmware: &'static str,
    image: &'static str,
    instructions: u64,
    millis: Vec<f64>,
}

/// Run the measurement and return the markdown table.
pub fn run(runs: usize) -> Result<String, String> {
    let fw = rom::build(false)?;
    let dir = probe::build()?;
    let khz = mvm::host::tsc_khz().map_err(|e| e.to_string())?;
    let firmwares: [(&'static str, PathBuf); 3] = [
        ("fw.rom", fw),
        ("qboot", "/usr/share/qemu/qboot.rom".into()),
        ("SeaBIOS", "/usr/share/seabios/bios-microvm.bin".into()),
    ];
    let images: [(&'static str, PathBuf); 2] = [
        ("bzImage", dir.join("probe.bzImage")),
        ("PVH", dir.join("probe-pvh.elf")),
    ];
    let mut rows = Vec::new();
    for (firmware, bios) in &firmwares {
        for (image, kernel) in &images {
            let counts: Vec<u64> = (0..3)
                .map(|_| entry_tsc(bios, kernel, true))
                .collect::<Result<_, _>>()?;
            if counts.iter().any(|&c| c != counts[0]) {
                return Err(format!(
                    "{firmware} {image}: icount runs differ: {counts:?}"
                ));
            }
            rows.push(Row {
                firmware,
                image,
                instructions: counts[0],
                millis: Vec::new(),
            });
        }
    }
    for _ in 0..runs {
        for row in rows.iter_mut() {
            let bios = &firmwares
                .iter()
                .find(|f| f.0 == row.firmware)
                .expect("listed")
                .1;
            let kernel = &images.iter().find(|i| i.0 == row.image).expect("listed").1;
            let tsc = entry_tsc(bios, kernel, false)?;
            row.millis.push(tsc as f64 / f64::from(khz));
        }
    }
    Ok(table(&rows, runs))
}

/// Boot the probe once and return the TSC it read at its first instruction.
fn entry_tsc(bios: &Path, kernel: &Path, icount: bool) -> Result<u64, String> {
    let mut qemu = Command::new("qemu-system-x86_64");
    qemu.args(["-M", "microvm,accel=tcg", "-m", "128M", "-no-reboot"])
        .args([
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-serial",
            "stdio",
        ])
        .args([
            "-device",
            "isa-debug-exit,iobase=0xf4,iosize=4",
            "-append",
            "bench",
        ])
        .arg("-bios")
        .arg(bios)
        .arg("-kernel")
        .arg(kernel);
    if icount {
        qemu.args(["-icount", "shift=0,sleep=off"]);
    }
    let out = qemu.output().map_err(|e| format!("cannot run QEMU: {e}"))?;
    let serial = String::from_utf8_lossy(&out.stdout);
    for line in serial.lines() {
        if let Some(n) = line.strip_prefix("PROBE TSC ") {
            return n
                .trim()
                .parse()
                .map_err(|e| format!("bad PROBE TSC line {line:?}: {e}"));
        }
        if let Some(hex) = line.strip_prefix("PROBE TSC16 0x") {
            return u64::from_str_radix(hex.trim(), 16)
                .map_err(|e| format!("bad line {line:?}: {e}"));
        }
    }
    Err(format!(
        "{}: the probe printed no TSC:\n{serial}",
        bios.display()
    ))
}

fn table(rows: &[Row], runs: usize) -> String {
    let base = rows
        .iter()
        .find(|r| r.firmware == "qboot" && r.image == "bzImage")
        .map_or(1, |r| r.instructions);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| firmware | image | instructions, reset → kernel entry | × qboot bzImage | TCG ms, median [min–max] of {runs} |"
    );
    let _ = writeln!(t, "|---|---|---|---|---|");
    for r in rows {
        let (median, min, max) = stats(&r.millis);
        let _ = writeln!(
            t,
            "| {} | {} | {} | {:.2} | {:.2} [{:.2}–{:.2}] |",
            r.firmware,
            r.image,
            r.instructions,
            r.instructions as f64 / base as f64,
            median,
            min,
            max
        );
    }
    t
}

/// Median, minimum and maximum (0s for no samples).
fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let (Some(&min), Some(&max)) = (s.first(), s.last()) else {
        return (0.0, 0.0, 0.0);
    };
    let mid = s.len() / 2;
    let median = if s.len().is_multiple_of(2) {
        (s[mid - 1] + s[mid]) / 2.0
    } else {
        s[mid]
    };
    (median, min, max)
}

/// `cargo xtask bench-fw`'s first part: print the table and save it to
/// `target/bench/fw-cost.md`.
pub fn report(runs: usize) -> Result<(), String> {
    let table = run(runs)?;
    println!("Firmware cost, probe kernel (reset → kernel entry):\n\n{table}");
    let dir = crate::util::root().join("target/bench");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("fw-cost.md");
    std::fs::write(&path, &table).map_err(|e| format!("{}: {e}", path.display()))
}
