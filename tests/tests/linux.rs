//! Boot the real Debian cloud kernel under TCG `microvm` with the mvm firmware and
//! check what the guest saw, through the `GUEST-CHECK` lines that `guest-check`
//! (the test initramfs's `/init`) prints on the serial console.
//!
//! Needs `target/fw.rom` (`cargo xtask build-fw`), the cached kernel and
//! `target/test-initramfs/` (`cargo xtask fetch-kernel`). `MVM_TEST_FIRMWARE=<path>`
//! boots another firmware instead of `fw.rom`, e.g. `/usr/share/qemu/qboot.rom`.
//!
//! Every boot passes `tsc_early_khz=<host kHz>`: without it ~15% of TCG microvm boots
//! hang in TSC calibration (`shared/research/baseline.md` §7). Tests wait for serial
//! tokens with timeouts and never sleep.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use mvm_tests::Vm;

/// From QEMU spawn to `GUEST-CHECK done` (a boot takes 2–5 s; `rtc=off` adds 2 s,
/// and the host may be running other TCG guests at the same time).
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
/// From `GUEST-CHECK done` to QEMU's exit (power-off or reset with `-no-reboot`).
const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// Everything a boot needs from outside the test.
struct Assets {
    firmware: PathBuf,
    bzimage: PathBuf,
    vmlinux: PathBuf,
    initramfs: PathBuf,
    payload_sha256: String,
    tsc_khz: u32,
}

fn assets() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let firmware = match std::env::var_os("MVM_TEST_FIRMWARE") {
            Some(f) => PathBuf::from(f),
            None => root.join("target/fw.rom"),
        };
        assert!(
            firmware.is_file(),
            "{} not found: run `cargo xtask build-fw` (or set MVM_TEST_FIRMWARE=/usr/share/qemu/qboot.rom)",
            firmware.display()
        );
        let fetch = "run `cargo xtask fetch-kernel`";
        let cache = mvm::kernel::cache_dir().unwrap_or_else(|e| panic!("{e}"));
        let kernel = mvm::kernel::cached(&cache)
            .unwrap_or_else(|e| panic!("kernel cache {}: {e}", cache.display()))
            .unwrap_or_else(|| panic!("no kernel in {}: {fetch}", cache.display()));
        let dir = root.join("target/test-initramfs");
        let initramfs = dir.join("initramfs.cpio");
        let sha = std::fs::read_to_string(dir.join("payload.sha256"));
        let payload_sha256 = match (initramfs.is_file(), sha) {
            (true, Ok(sha)) => sha.trim().to_owned(),
            _ => panic!("no test initramfs in {}: {fetch}", dir.display()),
        };
        let tsc_khz = mvm::host::tsc_khz().unwrap_or_else(|e| panic!("{e}"));
        Assets {
            firmware,
            bzimage: kernel.vmlinuz,
            vmlinux: kernel.vmlinux,
            initramfs,
            payload_sha256,
            tsc_khz,
        }
    })
}

/// Which kernel image to boot.
#[derive(Clone, Copy, Debug)]
enum Image {
    /// The bzImage, entered through the 64-bit boot protocol.
    BzImage,
    /// The extracted ELF `vmlinux`, entered through PVH.
    Pvh,
}

/// One boot: the VM's shape and what the guest must report.
struct Boot {
    image: Image,
    /// Extra `-M microvm,...` options, e.g. `"acpi=off"`.
    machine: &'static str,
    /// `-m` value and its size in MiB.
    mem: (&'static str, u64),
    smp: u32,
    /// Kernel parameters after `console=ttyS0 tsc_early_khz=<khz>`.
    extra_append: &'static str,
    /// Run QEMU with `-no-reboot` (a guest reset ends QEMU).
    no_reboot: bool,
    /// The guest must see ACPI tables.
    acpi: bool,
}

const DEFAULT: Boot = Boot {
    image: Image::BzImage,
    machine: "",
    mem: ("256M", 256),
    smp: 1,
    extra_append: "",
    no_reboot: false,
    acpi: true,
};

/// The `GUEST-CHECK key=value` lines of one boot.
type Report = BTreeMap<String, String>;

/// Boot `b`, wait for `GUEST-CHECK done` and for QEMU to exit; check every line.
fn boot(b: &Boot) -> Report {
    let a = assets();
    let mut append = format!("console=ttyS0 tsc_early_khz={}", a.tsc_khz);
    if !b.extra_append.is_empty() {
        append = format!("{append} {}", b.extra_append);
    }
    let image = match b.image {
        Image::BzImage => &a.bzimage,
        Image::Pvh => &a.vmlinux,
    };
    let mut running = Vm::new()
        .firmware(&a.firmware)
        .machine(b.machine)
        .kernel(image)
        .initrd(&a.initramfs)
        .append(&append)
        .memory(b.mem.0)
        .smp(b.smp)
        .no_reboot(b.no_reboot)
        .spawn();
    if let Err(e) = running.wait_for("GUEST-CHECK done", BOOT_TIMEOUT) {
        panic!("no `GUEST-CHECK done`: {e}");
    }
    let exit = running
        .wait_exit(EXIT_TIMEOUT)
        .unwrap_or_else(|e| panic!("QEMU did not exit after `GUEST-CHECK done`: {e}"));
    let output = exit.serial;
    assert!(
        exit.status.success(),
        "QEMU exited with {}\n{output}",
        exit.status
    );
    let report = parse_report(&output);
    check(b, &append, &report, &output);
    report
}

/// Collect `GUEST-CHECK key=value` lines (`initrd-file sha=..` becomes `initrd-file`).
fn parse_report(output: &str) -> Report {
    let mut r = Report::new();
    for line in output
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("GUEST-CHECK "))
    {
        match line.split_once('=') {
            Some((k, v)) if !k.contains(' ') => r.insert(k.to_owned(), v.to_owned()),
            _ => match line.split_once(' ') {
                Some((k, v)) => r.insert(k.to_owned(), v.to_owned()),
                None => r.insert(line.to_owned(), String::new()),
            },
        };
    }
    r
}

/// The checks every boot must pass.
fn check(b: &Boot, append: &str, r: &Report, output: &str) {
    let get = |k: &str| {
        r.get(k)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {k}\n{output}"))
    };
    assert!(
        !r.contains_key("error"),
        "guest-check error: {}\n{output}",
        get("error")
    );
    assert_eq!(
        get("cmdline"),
        append,
        "/proc/cmdline differs from -append\n{output}"
    );
    let want_sha = format!("sha={} size=1048576", assets().payload_sha256);
    assert_eq!(
        get("initrd-file"),
        want_sha,
        "initrd payload differs\n{output}"
    );
    let acpi = if b.acpi { "yes" } else { "no" };
    assert_eq!(get("acpi"), acpi, "ACPI tables\n{output}");
    assert_eq!(get("cpus"), b.smp.to_string(), "online CPUs\n{output}");
    // MemTotal is RAM minus what the kernel reserves for itself at boot: at most
    // ~30 MiB for this kernel (plus struct pages for large guests), never more than -m.
    let mem_kb: u64 = get("mem_total_kb")
        .parse()
        .expect("mem_total_kb is a number");
    let ram_kb = b.mem.1 * 1024;
    let slack_kb = 48 * 1024 + ram_kb / 32;
    assert!(
        mem_kb <= ram_kb && mem_kb + slack_kb >= ram_kb,
        "MemTotal {mem_kb} kB for -m {} is outside [{}, {ram_kb}] kB\n{output}",
        b.mem.0,
        ram_kb - slack_kb
    );
    assert!(r.contains_key("done"), "{output}");
}

#[test]
fn bzimage_acpi_on() {
    boot(&DEFAULT);
}

#[test]
fn bzimage_acpi_off() {
    // Without ACPI, power-off cannot end QEMU: reboot with -no-reboot instead.
    // `reboot=t` (triple fault) keeps this test about ACPI, not about reset paths.
    boot(&Boot {
        machine: "acpi=off",
        extra_append: "check.exit=reboot reboot=t",
        no_reboot: true,
        acpi: false,
        ..DEFAULT
    });
}

#[test]
fn pvh_acpi_on() {
    boot(&Boot {
        image: Image::Pvh,
        ..DEFAULT
    });
}

#[test]
fn pvh_acpi_off() {
    boot(&Boot {
        image: Image::Pvh,
        machine: "acpi=off",
        extra_append: "check.exit=reboot reboot=t",
        no_reboot: true,
        acpi: false,
        ..DEFAULT
    });
}

#[test]
fn memory_128m() {
    boot(&Boot {
        mem: ("128M", 128),
        ..DEFAULT
    });
}

#[test]
fn memory_1g() {
    boot(&Boot {
        mem: ("1G", 1024),
        ..DEFAULT
    });
}

#[test]
fn memory_4g_above_the_pci_hole() {
    // microvm maps 3 GiB below 4 GiB and the rest above: the e820 map must have both.
    boot(&Boot {
        mem: ("4G", 4096),
        ..DEFAULT
    });
}

#[test]
fn smp_2() {
    boot(&Boot { smp: 2, ..DEFAULT });
}

#[test]
fn pvh_smp_2() {
    boot(&Boot {
        image: Image::Pvh,
        smp: 2,
        ..DEFAULT
    });
}

#[test]
fn rtc_on() {
    boot(&Boot {
        machine: "rtc=on",
        ..DEFAULT
    });
}

#[test]
fn rtc_off() {
    boot(&Boot {
        machine: "rtc=off",
        ..DEFAULT
    });
}

#[test]
fn pit_off_pic_off() {
    boot(&Boot {
        machine: "pit=off,pic=off",
        ..DEFAULT
    });
}

#[test]
fn guest_reboot_ends_qemu_with_no_reboot() {
    // Linux's default reboot ends in the firmware's reset vector without a platform
    // reset; the firmware must force a real reset so that -no-reboot ends QEMU.
    boot(&Boot {
        extra_append: "check.exit=reboot",
        no_reboot: true,
        ..DEFAULT
    });
}

#[test]
fn guest_bios_reboot_ends_qemu_with_no_reboot() {
    // `reboot=b` jumps straight to the reset vector (no ACPI reset attempt first).
    boot(&Boot {
        extra_append: "check.exit=reboot reboot=b",
        no_reboot: true,
        ..DEFAULT
    });
}

#[test]
fn report_parser() {
    let out = "noise\nGUEST-CHECK cmdline=a b=c\r\nGUEST-CHECK initrd-file sha=ab size=1\n\
               GUEST-CHECK acpi=yes\nGUEST-CHECK done\n";
    let r = parse_report(out);
    assert_eq!(r["cmdline"], "a b=c");
    assert_eq!(r["initrd-file"], "sha=ab size=1");
    assert_eq!(r["acpi"], "yes");
    assert!(r.contains_key("done"));
}
