//! `mvm doctor`: checks what runs depend on and prints each finding with a fix.
//!
//! Exit status 0 when every required piece is there (warnings allowed), 1 otherwise.

use crate::bootkernel::{self, config_value, BootKernel};
use crate::cli::{DoctorArgs, FirmwareChoice};
use crate::locate;
use std::path::Path;
use std::process::{Command, Stdio};

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub what: &'static str,
    pub detail: String,
    pub fix: Option<String>,
}

fn ok(what: &'static str, detail: impl Into<String>) -> Finding {
    Finding {
        level: Level::Ok,
        what,
        detail: detail.into(),
        fix: None,
    }
}

fn bad(level: Level, what: &'static str, detail: impl Into<String>, fix: &str) -> Finding {
    Finding {
        level,
        what,
        detail: detail.into(),
        fix: Some(fix.to_owned()),
    }
}

/// Runs every check, prints the findings, returns the exit status.
pub fn run(args: &DoctorArgs) -> u8 {
    let findings = check_all(&args.qemu);
    for f in &findings {
        let tag = match f.level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        println!("{tag}  {:<10} {}", f.what, f.detail);
        if let Some(fix) = &f.fix {
            println!("            fix: {fix}");
        }
    }
    u8::from(findings.iter().any(|f| f.level == Level::Fail))
}

/// All findings, in a fixed order.
pub fn check_all(qemu: &Path) -> Vec<Finding> {
    let mut v = vec![check_qemu(qemu)];
    let fw = locate::firmware(&FirmwareChoice::Fw);
    v.push(match &fw {
        Ok(p) => ok("fw.rom", p.display().to_string()),
        Err(e) => bad(Level::Fail, "fw.rom", e.to_string(), "cargo xtask build-fw"),
    });
    v.push(match crate::accel::probe(qemu, fw.as_ref().ok().map(|p| p.as_path())) {
        Ok(()) => ok("kvm", "usable (a KVM guest ran fw.rom to its exit)"),
        Err(why) => bad(
            Level::Warn,
            "kvm",
            format!("unusable: {why}; runs use TCG (slower)"),
            "run on a host with working (nested) virtualisation, or add yourself to group kvm; --accel tcg silences the probe",
        ),
    });
    v.push(check_virtiofsd());
    v.push(match locate::rinit() {
        Ok(p) => ok("rinit", p.display().to_string()),
        Err(e) => bad(Level::Fail, "rinit", e.to_string(), locate::RINIT_BUILD),
    });
    v.push(match locate::busybox() {
        Ok(p) => ok("busybox", format!("{} (the built-in root)", p.display())),
        Err(e) => bad(
            Level::Warn,
            "busybox",
            e.to_string(),
            "apt-get install busybox-static",
        ),
    });
    v.extend(check_kernel());
    v.push(match crate::host::tsc_khz() {
        Ok(khz) => ok("tsc", format!("{khz} kHz (passed as tsc_early_khz=)")),
        Err(e) => bad(Level::Warn, "tsc", e.to_string(), "set MVM_TSC_KHZ"),
    });
    v
}

fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.stdin(Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn check_qemu(qemu: &Path) -> Finding {
    let fix = "apt-get install qemu-system-x86 (or set MVM_QEMU)";
    let Some(version) = output(Command::new(qemu).arg("--version")) else {
        return bad(
            Level::Fail,
            "qemu",
            format!("cannot run {}", qemu.display()),
            fix,
        );
    };
    let version = version.lines().next().unwrap_or("").trim().to_owned();
    let devices =
        output(Command::new(qemu).args(["-M", "microvm", "-device", "help"])).unwrap_or_default();
    let missing: Vec<&str> = [
        "isa-debug-exit",
        "vhost-user-fs-device",
        "virtio-blk-device",
    ]
    .into_iter()
    .filter(|d| !devices.contains(&format!("\"{d}\"")))
    .collect();
    if missing.is_empty() {
        ok("qemu", version)
    } else {
        bad(
            Level::Fail,
            "qemu",
            format!("{version}; lacks {}", missing.join(", ")),
            "use the full qemu-system-x86_64 (not the reduced -microvm build)",
        )
    }
}

fn check_virtiofsd() -> Finding {
    let fix = "./x.sh setup (installs the Rust virtiofsd into ~/.cache/mvm/tools)";
    match crate::virtiofsd::find(crate::kernel::cache_dir().ok().as_deref()) {
        Ok(d) => {
            let version = output(Command::new(&d.path).arg("--version"))
                .map(|v| v.lines().next().unwrap_or("").trim().to_owned())
                .unwrap_or_default();
            let detail = format!("{} ({:?} flavour) {version}", d.path.display(), d.flavour);
            match d.flavour {
                crate::virtiofsd::Flavour::Rust => ok("virtiofsd", detail),
                crate::virtiofsd::Flavour::C => bad(
                    Level::Warn,
                    "virtiofsd",
                    format!("{detail}; works, but has no read-only mode"),
                    fix,
                ),
            }
        }
        Err(e) => bad(
            Level::Warn,
            "virtiofsd",
            format!("{e} (needed for --root and -v)"),
            fix,
        ),
    }
}

/// Drivers a run may need, and what needs them.
const DRIVERS: [(&str, &str); 6] = [
    ("CONFIG_VIRTIO_MMIO", "any virtio device"),
    ("CONFIG_VIRTIO_BLK", "--disk"),
    ("CONFIG_FUSE_FS", "--root, -v"),
    ("CONFIG_VIRTIO_FS", "--root, -v"),
    ("CONFIG_VIRTIO_CONSOLE", "--stdio split, --status-port"),
    ("CONFIG_PVH", "PVH boot"),
];

fn check_kernel() -> Vec<Finding> {
    let cached = crate::kernel::cache_dir()
        .ok()
        .and_then(|c| crate::kernel::cached(&c).ok().flatten());
    let (kernel, config) = match bootkernel::host() {
        Ok(k) => {
            let cfg = format!("/boot/config-{}", k.kver.as_deref().unwrap_or(""));
            (k, std::path::PathBuf::from(cfg))
        }
        Err(why) => match cached {
            Some(k) => {
                let cfg = k.dir.join(format!("boot/config-{}", k.kver));
                let boot = BootKernel {
                    image: k.vmlinux,
                    protocol: bootkernel::Protocol::Pvh,
                    origin: bootkernel::Origin::Cache,
                    kver: Some(k.kver),
                    modules: Some(k.modules),
                };
                let mut v = vec![ok("kernel", format!("host kernel not used: {why}"))];
                v.extend(kernel_findings(&boot, &cfg));
                return v;
            }
            None => {
                return vec![bad(
                    Level::Warn,
                    "kernel",
                    format!("host kernel not usable ({why}) and no cached kernel"),
                    "mvm kernel fetch (also done on the first run)",
                )]
            }
        },
    };
    kernel_findings(&kernel, &config)
}

fn kernel_findings(k: &BootKernel, config: &Path) -> Vec<Finding> {
    let mut v = vec![ok("kernel", k.describe())];
    let Ok(text) = std::fs::read_to_string(config) else {
        v.push(bad(
            Level::Warn,
            "drivers",
            format!("{} unreadable", config.display()),
            "cannot tell which drivers are modules",
        ));
        return v;
    };
    let list: Vec<String> = DRIVERS
        .iter()
        .map(|(opt, need)| {
            let state = match config_value(&text, opt) {
                Some("y") => "built in",
                Some("m") => "module",
                _ => "MISSING",
            };
            format!("{}={state} ({need})", opt.trim_start_matches("CONFIG_"))
        })
        .collect();
    v.push(ok("drivers", list.join(", ")));
    v
}
