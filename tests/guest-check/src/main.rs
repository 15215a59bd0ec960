//! `guest-check`: the `/init` of the boot-test initramfs.
//!
//! It reports what the guest kernel received, one `GUEST-CHECK` line each, in this order:
//!
//! ```text
//! GUEST-CHECK cmdline=<exact /proc/cmdline>
//! GUEST-CHECK initrd-file sha=<sha256 hex of /payload> size=<bytes>
//! GUEST-CHECK acpi=<yes|no>                 (/sys/firmware/acpi/tables/DSDT exists)
//! GUEST-CHECK mem_total_kb=<MemTotal>
//! GUEST-CHECK cpus=<online CPUs>
//! GUEST-CHECK done
//! ```
//!
//! and then leaves: `reboot(RB_POWER_OFF)`, or `reboot(RB_AUTOBOOT)` when the command
//! line has `check.exit=reboot` (without ACPI a power-off cannot end QEMU; tests then
//! pass `check.exit=reboot` and run QEMU with `-no-reboot`).
//!
//! It is PID 1, so it never panics and never exits: every failure is printed as
//! `GUEST-CHECK error=<what>` and the check still ends by powering off.

use std::fs;
use std::io::Write;
use std::path::Path;

mod sys;

/// The file the host put into the initramfs to prove the initrd arrived intact.
const PAYLOAD: &str = "/payload";

fn main() {
    sys::ensure_console();
    for (source, target, fstype) in [("proc", "/proc", "proc"), ("sysfs", "/sys", "sysfs")] {
        if let Err(e) = sys::mount(source, target, fstype) {
            say(&format!("error=mount {target}: {e}"));
        }
    }
    // Kernel messages printed from now on (the clocksource switch comes late, from a work
    // item) would land in the middle of a report line: keep only emergencies on the console.
    if let Err(e) = fs::write("/proc/sys/kernel/printk", "1") {
        say(&format!(
            "error=quiet the console (/proc/sys/kernel/printk): {e}"
        ));
    }
    let cmdline = match fs::read_to_string("/proc/cmdline") {
        Ok(s) => s.trim_end_matches('\n').to_owned(),
        Err(e) => {
            say(&format!("error=read /proc/cmdline: {e}"));
            String::new()
        }
    };
    say(&format!("cmdline={cmdline}"));
    match fs::read(PAYLOAD) {
        Ok(data) => say(&format!(
            "initrd-file sha={} size={}",
            sha256_hex(&data),
            data.len()
        )),
        Err(e) => say(&format!("error=read {PAYLOAD}: {e}")),
    }
    let acpi = Path::new("/sys/firmware/acpi/tables/DSDT").exists();
    say(if acpi { "acpi=yes" } else { "acpi=no" });
    match fs::read_to_string("/proc/meminfo")
        .ok()
        .as_deref()
        .and_then(mem_total_kb)
    {
        Some(kb) => say(&format!("mem_total_kb={kb}")),
        None => say("error=no MemTotal in /proc/meminfo"),
    }
    match online_cpus() {
        Some(n) => say(&format!("cpus={n}")),
        None => say("error=cannot count online CPUs"),
    }
    say("done");
    let reboot = cmdline
        .split_ascii_whitespace()
        .any(|w| w == "check.exit=reboot");
    sys::leave(reboot);
}

/// Print `GUEST-CHECK <text>` on its own line; errors are ignored (nowhere to report).
fn say(text: &str) {
    let line = format!("GUEST-CHECK {text}\n");
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.flush();
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `MemTotal:  123456 kB` from `/proc/meminfo`.
fn mem_total_kb(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    line.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// The number of CPUs in `/sys/devices/system/cpu/online` (e.g. `0-1,3`), falling
/// back to the scheduler's view when sysfs is missing.
fn online_cpus() -> Option<usize> {
    match fs::read_to_string("/sys/devices/system/cpu/online") {
        Ok(list) => count_cpu_list(list.trim()),
        Err(_) => std::thread::available_parallelism().ok().map(|n| n.get()),
    }
}

/// Count the CPUs in a kernel CPU list such as `0-3,5`.
fn count_cpu_list(list: &str) -> Option<usize> {
    let mut n = 0usize;
    for part in list.split(',').filter(|p| !p.is_empty()) {
        n += match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                b.checked_sub(a)?.checked_add(1)?
            }
            None => part.parse::<usize>().map(|_| 1).ok()?,
        };
    }
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_meminfo() {
        let m = "MemTotal:         120432 kB\nMemFree:          100000 kB\n";
        assert_eq!(mem_total_kb(m), Some(120_432));
        assert_eq!(mem_total_kb("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn counts_cpu_lists() {
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("0-1"), Some(2));
        assert_eq!(count_cpu_list("0-3,5,7-8"), Some(7));
        assert_eq!(count_cpu_list(""), None);
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list("x"), None);
    }

    #[test]
    fn sha256_known_answer() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
