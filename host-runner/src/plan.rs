//! From `mvm run` options to everything a run needs, before anything is started: the kernel,
//! firmware, accelerator, shares, disks, modules, initramfs, rinit's settings and the QEMU
//! command line. `--dry-run` stops after this step.

use crate::accel;
use crate::bootkernel::{self, BootKernel};
use crate::cli::{FirmwareChoice, RunArgs};
use crate::error::{Error, Result};
use crate::guest::{GuestConfig, GuestMount, GuestRoot};
use crate::initramfs::{self, Inputs, ModuleSet};
use crate::locate;
use crate::modules::ModuleDb;
use crate::qemu::{Disk, DiskFormat, FsDevice, Port, PortBackend, QemuCmd};
use crate::stdio::{self, HostFds, Mode};
use crate::virtiofsd::{Share, Virtiofsd};
use rinit_status::Nonce;
use std::path::{Path, PathBuf};

/// The descriptor QEMU gets the console pipe on.
pub const CONSOLE_FD: i32 = 3;
/// The descriptor QEMU gets the status port pipe on (`--status-port`).
pub const STATUS_FD: i32 = 4;
/// The descriptor QEMU gets the stdout port's pipe on (split mode).
pub const STDOUT_FD: i32 = 5;
/// The descriptor QEMU gets the stderr port's pipe on (split mode).
pub const STDERR_FD: i32 = 6;
/// The descriptor QEMU gets its end of the stdin port's socket on (split mode with input).
pub const STDIN_FD: i32 = 7;
/// The descriptor QEMU gets its end of the resize port's socket on (interactive runs).
pub const RESIZE_FD: i32 = 8;
/// How long rinit waits for the host to stop the VM once it has reported (split mode); the host
/// does so as soon as it has read every output port to its end.
const HOLD_MS: u32 = 5000;
/// How long rinit waits for the status port to be named by the host (virtio-console control
/// messages arrive after the driver has bound).
const STATUS_PORT_WAIT_MS: u32 = 2000;
/// The virtiofs tag of the `--root` share.
const ROOT_TAG: &str = "mvmroot";

/// A virtiofs daemon to start.
#[derive(Debug, Clone)]
pub struct DaemonPlan {
    pub share: Share,
    pub socket: PathBuf,
    pub log: PathBuf,
}

/// Everything needed to start the run.
#[derive(Debug)]
pub struct Plan {
    pub qemu: QemuCmd,
    pub virtiofsd: Option<Virtiofsd>,
    pub daemons: Vec<DaemonPlan>,
    pub kernel: BootKernel,
    pub nonce: Nonce,
    /// The per-run spec file, when the settings do not fit on the kernel command line; the
    /// initrd in `qemu` is then the per-run copy to write with [`initramfs::with_spec`].
    pub spec: Option<(PathBuf, String)>,
    /// The cached base initramfs.
    pub base_initrd: PathBuf,
    /// Things to tell the user (`--verbose`), and the accelerator note (always, unless `-q`).
    pub notes: Vec<String>,
    pub accel_note: Option<String>,
    /// How the workload's streams travel.
    pub stdio: Mode,
}

/// Builds the plan; `rundir` holds the sockets, logs and per-run files.
pub fn build(args: &RunArgs, rundir: &Path, progress: &dyn Fn(&str)) -> Result<Plan> {
    let argv = utf8_argv(args)?;
    if let Some(cwd) = args.workdir.as_deref().filter(|c| !c.starts_with('/')) {
        return Err(Error::Usage(format!("-w {cwd}: must be an absolute path")));
    }
    let firmware = locate::firmware(&args.firmware)?;
    let mut notes = Vec::new();
    let kernel = choose_kernel(args, progress, &mut notes)?;
    let decision = choose_accel(args, &firmware);
    notes.push(format!("accelerator {}", decision.accel.name()));
    let mut devices = Devices::from_args(args, rundir)?;
    let virtiofsd = if devices.daemons.is_empty() {
        None
    } else {
        let d = crate::virtiofsd::find(crate::kernel::cache_dir().ok().as_deref())?;
        notes.push(format!("virtiofsd {} ({:?})", d.path.display(), d.flavour));
        Some(d)
    };
    let mode = stdio::decide(args.stdio, HostFds::probe());
    notes.push(format!("standard streams: {mode:?}"));
    let interactive = mode == (Mode::Console { interactive: true });
    let ports = args.status_port || mode.needs_ports() || interactive;
    let (base_initrd, modules) = initramfs_for(&kernel, &devices, ports)?;
    let nonce = new_nonce();
    let guest_streams = guest_streams(mode);
    let guest = GuestConfig {
        argv,
        env: args.env.clone(),
        cwd: args.workdir.clone(),
        root: devices.root.clone(),
        mounts: std::mem::take(&mut devices.mounts),
        modules,
        nonce: nonce.clone(),
        debug: args.console,
        debug_exit: true,
        wait_port_ms: if ports { STATUS_PORT_WAIT_MS } else { 0 },
        stdio: guest_streams,
        hold_ms: if mode.needs_ports() { HOLD_MS } else { 0 },
        term: interactive_term(mode),
        resize_port: interactive.then(|| rinit_status::RESIZE_PORT_NAME.into()),
        winsize: match mode {
            Mode::Console { interactive: true } => stdio::window_size(1),
            _ => None,
        },
    };
    let encoded = guest.encode();
    let (initrd, spec) = match encoded.spec {
        None => (base_initrd.clone(), None),
        Some(text) => (rundir.join("initrd"), Some((rundir.join("initrd"), text))),
    };
    let qemu = QemuCmd {
        binary: args.qemu.clone(),
        accel: decision.accel,
        cpu: args.cpu.clone().or(decision.cpu),
        memory_mib: args.memory_mib,
        cpus: args.cpus,
        firmware: Some(firmware),
        kernel: kernel.image.clone(),
        initrd,
        append: kernel_cmdline(args.console, args.append.as_deref(), &encoded.cmdline)?,
        console: format!("/proc/self/fd/{CONSOLE_FD}"),
        console_socket: matches!(mode, Mode::Console { interactive: true }).then_some(CONSOLE_FD),
        shares: devices.fs_devices(),
        disks: std::mem::take(&mut devices.disks),
        status_port: args
            .status_port
            .then(|| format!("/proc/self/fd/{STATUS_FD}")),
        ports: qemu_ports(mode),
        debug_exit: true,
    };
    Ok(Plan {
        qemu,
        virtiofsd,
        daemons: devices.daemons,
        kernel,
        nonce,
        spec,
        base_initrd,
        notes,
        accel_note: decision.note,
        stdio: mode,
    })
}

/// rinit's `stdin`/`stdout`/`stderr` settings for `mode` (`None`: the console).
fn guest_streams(mode: Mode) -> [Option<String>; 3] {
    match mode {
        Mode::Console { interactive: true } => [None, None, None],
        Mode::Console { interactive: false } => [Some("null".into()), None, None],
        Mode::Split { stdin_port } => [
            Some(if stdin_port {
                rinit_status::STDIN_PORT_NAME.into()
            } else {
                "null".into()
            }),
            Some(rinit_status::STDOUT_PORT_NAME.into()),
            Some(rinit_status::STDERR_PORT_NAME.into()),
        ],
    }
}

/// The virtio-serial ports of `mode`, with the descriptors QEMU gets them on.
fn qemu_ports(mode: Mode) -> Vec<Port> {
    let stdin_port = match mode {
        Mode::Split { stdin_port } => stdin_port,
        Mode::Console { interactive: true } => {
            return vec![Port {
                name: rinit_status::RESIZE_PORT_NAME.into(),
                backend: PortBackend::Socket(RESIZE_FD),
            }]
        }
        Mode::Console { interactive: false } => return Vec::new(),
    };
    let mut ports = Vec::new();
    if stdin_port {
        ports.push(Port {
            name: rinit_status::STDIN_PORT_NAME.into(),
            backend: PortBackend::Socket(STDIN_FD),
        });
    }
    for (name, fd) in [
        (rinit_status::STDOUT_PORT_NAME, STDOUT_FD),
        (rinit_status::STDERR_PORT_NAME, STDERR_FD),
    ] {
        ports.push(Port {
            name: name.into(),
            backend: PortBackend::File(format!("/proc/self/fd/{fd}")),
        });
    }
    ports
}

/// The host's `TERM` for an interactive console, when rinit would accept it.
fn interactive_term(mode: Mode) -> Option<String> {
    if mode != (Mode::Console { interactive: true }) {
        return None;
    }
    let term = std::env::var("TERM").ok()?;
    let ok = |c: char| c.is_ascii_alphanumeric() || "._+-".contains(c);
    (!term.is_empty() && term.len() <= 64 && term.chars().all(ok)).then_some(term)
}

/// `--kernel`, else the default kernel (noting why the host's was not used).
fn choose_kernel(
    args: &RunArgs,
    progress: &dyn Fn(&str),
    notes: &mut Vec<String>,
) -> Result<BootKernel> {
    let kernel = match &args.kernel {
        Some(k) => bootkernel::given(k, args.modules.as_deref())?,
        None => {
            let (k, skipped) = bootkernel::default(progress)?;
            if let Some(why) = skipped {
                notes.push(format!("not using the host kernel: {why}"));
            }
            k
        }
    };
    notes.push(kernel.describe());
    Ok(kernel)
}

/// The accelerator; the KVM probe boots this project's fw.rom, whichever firmware the run uses.
fn choose_accel(args: &RunArgs, firmware: &Path) -> accel::Decision {
    let fw_for_probe = match args.firmware {
        FirmwareChoice::Fw => Some(firmware.to_owned()),
        _ => locate::firmware(&FirmwareChoice::Fw).ok(),
    };
    accel::decide(args.accel, &args.qemu, fw_for_probe.as_deref())
}

/// The cached initramfs for the devices in use (`ports`: the virtio-serial device), and the
/// modules rinit must load.
fn initramfs_for(
    kernel: &BootKernel,
    devices: &Devices,
    ports: bool,
) -> Result<(PathBuf, Vec<String>)> {
    let mut modules = devices.modules();
    if ports {
        for m in ["virtio_mmio", "virtio_console"] {
            if !modules.iter().any(|x| x == m) {
                modules.push(m.to_owned());
            }
        }
    }
    let rinit = locate::rinit()?;
    let busybox = match devices.root {
        GuestRoot::Initramfs => Some(locate::busybox()?),
        _ => None,
    };
    build_initramfs(kernel, &rinit, &modules, busybox.as_deref())
}

/// The kernel command line: console, speed and failure settings, then rinit's words.
fn kernel_cmdline(console: bool, extra: Option<&str>, rinit: &str) -> Result<String> {
    let khz = crate::host::tsc_khz()?;
    // `quiet` still shows KERN_ERR lines such as "PCI: Fatal: No config space access function
    // found" (microvm has no PCI) in the workload's output; loglevel=3 keeps panics (KERN_EMERG).
    let quiet = if console { "" } else { " quiet loglevel=3" };
    // Crypto self-tests run at boot cost ~0.4 s under TCG; they check the kernel's own
    // implementations, not the workload.
    let extra = extra.map(|e| format!(" {e}")).unwrap_or_default();
    Ok(format!(
        "console=ttyS0{quiet} tsc_early_khz={khz} cryptomgr.notests panic=-1 rdinit=/init{extra} {rinit}"
    ))
}

/// A fresh per-run nonce: 16 hex digits from the kernel's random source.
fn new_nonce() -> Nonce {
    let mut bytes = [0u8; 8];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    if !ok {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes = (t ^ u64::from(std::process::id()).rotate_left(32)).to_le_bytes();
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Nonce::new(&hex).unwrap_or_default()
}

fn utf8_argv(args: &RunArgs) -> Result<Vec<String>> {
    args.command
        .iter()
        .map(|a| {
            a.to_str()
                .map(str::to_owned)
                .ok_or_else(|| Error::Usage(format!("argument {a:?} is not valid UTF-8")))
        })
        .collect()
}

/// The cached initramfs, and the modules rinit must load (the wanted ones not built in).
fn build_initramfs(
    kernel: &BootKernel,
    rinit: &Path,
    modules: &[String],
    busybox: Option<&Path>,
) -> Result<(PathBuf, Vec<String>)> {
    let db;
    let mut load = Vec::new();
    let set = if modules.is_empty() {
        None
    } else {
        let dir = kernel.modules.as_deref().ok_or_else(|| {
            Error::Module(format!(
                "the devices need modules ({}) but no modules directory was found for {}; give --modules DIR",
                modules.join(", "),
                kernel.image.display()
            ))
        })?;
        db = ModuleDb::open(dir)?;
        load = modules
            .iter()
            .filter(|m| !db.is_builtin(m))
            .cloned()
            .collect();
        let wanted: Vec<&str> = modules.iter().map(String::as_str).collect();
        Some(ModuleSet {
            db: &db,
            kver: kernel.kver.as_deref().unwrap_or("unknown"),
            modules: db.resolve(&wanted)?,
        })
    };
    let inputs = Inputs {
        rinit,
        modules: set,
        busybox,
    };
    Ok((
        initramfs::build(&inputs, &crate::kernel::cache_dir()?)?,
        load,
    ))
}

/// Directories rinit mounts on in the root (proc, sysfs, devtmpfs, tmpfs).
const ROOT_MOUNT_POINTS: [&str; 5] = ["dev", "proc", "sys", "run", "tmp"];
/// Of those, the ones with a writable file system (devtmpfs, tmpfs): rinit creates a `-v` guest
/// path below them there, whatever the root holds.
const WRITABLE_MOUNTS: [&str; 3] = ["dev", "run", "tmp"];

/// Whether a read-only `--root` needs an overlay: it cannot gain directories, so when a place
/// rinit mounts on (its own, the `-v` guest paths) is missing, rinit creates it in a tmpfs
/// overlay (`rinit.overlay`, one more module and a few mounts at boot; none when nothing is
/// missing). A path blocked by a file cannot be mounted on either way: say so before booting, not
/// as a guest failure.
fn check_mount_points(root: &Path, volumes: &[&Path]) -> Result<bool> {
    let own = ROOT_MOUNT_POINTS.iter().map(Path::new);
    let mut missing = false;
    for point in own.chain(volumes.iter().copied()) {
        let rel = point.strip_prefix("/").unwrap_or(point);
        let mut at = root.to_path_buf();
        for part in rel.components() {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                // A symbolic link resolves in the guest, against the guest's root: trust it.
                Ok(m) if m.is_symlink() => break,
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(Error::Usage(format!(
                        "--root {}: {} is not a directory, but the guest mounts a file system \
                         on /{}",
                        root.display(),
                        at.display(),
                        rel.display()
                    )))
                }
                Err(_) => {
                    missing |= !below_writable_mount(rel);
                    break;
                }
            }
        }
    }
    Ok(missing)
}

/// Whether rinit mounts a writable file system on a parent of `rel` (a plain relative path).
fn below_writable_mount(rel: &Path) -> bool {
    let plain = rel
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    plain && rel.components().count() > 1 && WRITABLE_MOUNTS.iter().any(|w| rel.starts_with(w))
}

/// Shares and disks from the options.
#[derive(Debug)]
struct Devices {
    root: GuestRoot,
    daemons: Vec<DaemonPlan>,
    mounts: Vec<GuestMount>,
    disks: Vec<Disk>,
}

impl Devices {
    fn from_args(args: &RunArgs, rundir: &Path) -> Result<Devices> {
        let mut d = Devices {
            root: GuestRoot::Initramfs,
            daemons: Vec::new(),
            mounts: Vec::new(),
            disks: Vec::new(),
        };
        if let Some(dir) = &args.root {
            let overlay = if args.rw {
                false
            } else {
                let guest: Vec<&Path> = args
                    .volumes
                    .iter()
                    .map(|v| Path::new(v.guest.as_str()))
                    .collect();
                check_mount_points(dir, &guest)?
            };
            d.add_share(dir, ROOT_TAG, !args.rw, rundir)?;
            d.root = GuestRoot::Virtiofs {
                tag: ROOT_TAG.into(),
                ro: !args.rw,
                overlay,
            };
        }
        if let Some(img) = &args.disk {
            d.disks.push(disk(img, !args.rw)?);
            d.root = GuestRoot::Block {
                device: "/dev/vda".into(),
                fstype: args.disk_fstype.clone(),
                ro: !args.rw,
            };
        }
        for (i, v) in args.volumes.iter().enumerate() {
            let tag = format!("mvmvol{i}");
            d.add_share(&v.host, &tag, v.readonly, rundir)?;
            d.mounts.push(GuestMount {
                tag,
                path: v.guest.clone(),
                ro: v.readonly,
            });
        }
        Ok(d)
    }

    fn add_share(&mut self, host: &Path, tag: &str, readonly: bool, rundir: &Path) -> Result<()> {
        let host = std::fs::canonicalize(host)
            .map_err(|e| Error::missing("shared directory", host, e.to_string()))?;
        if !host.is_dir() {
            return Err(Error::missing("shared directory", host, "not a directory"));
        }
        self.daemons.push(DaemonPlan {
            share: Share {
                host,
                tag: tag.into(),
                readonly,
            },
            socket: rundir.join(format!("{tag}.sock")),
            log: rundir.join(format!("{tag}.log")),
        });
        Ok(())
    }

    /// The modules the devices need (the kernel may have some built in).
    fn modules(&self) -> Vec<String> {
        let mut m = Vec::new();
        if !self.daemons.is_empty() || !self.disks.is_empty() {
            m.push("virtio_mmio".to_owned());
        }
        if !self.daemons.is_empty() {
            m.extend(["fuse".to_owned(), "virtiofs".to_owned()]);
        }
        if !self.disks.is_empty() {
            m.push("virtio_blk".to_owned());
        }
        if let GuestRoot::Virtiofs { overlay: true, .. } = self.root {
            m.push("overlay".to_owned());
        }
        m
    }

    fn fs_devices(&self) -> Vec<FsDevice> {
        self.daemons
            .iter()
            .map(|d| FsDevice {
                socket: d.socket.clone(),
                tag: d.share.tag.clone(),
            })
            .collect()
    }
}

fn disk(path: &Path, readonly: bool) -> Result<Disk> {
    let mut head = [0u8; 4];
    let mut f =
        std::fs::File::open(path).map_err(|e| Error::missing("disk", path, e.to_string()))?;
    let n = std::io::Read::read(&mut f, &mut head).map_err(|e| Error::io("read", path, e))?;
    Ok(Disk {
        path: std::fs::canonicalize(path).map_err(|e| Error::io("resolve", path, e))?,
        format: DiskFormat::detect(&head[..n]),
        readonly,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(dirs: &[&str]) -> PathBuf {
        let root = std::env::temp_dir().join(format!(
            "mvm-plan-test-{}-{}",
            std::process::id(),
            dirs.len()
        ));
        let _ = std::fs::remove_dir_all(&root);
        for d in dirs {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::create_dir_all(&root).unwrap();
        root
    }

    #[test]
    fn read_only_root_missing_mount_points_need_the_overlay() {
        let full = root_with(&["dev", "proc", "sys", "run", "tmp", "data/x"]);
        assert!(!check_mount_points(&full, &[Path::new("/data/x")]).unwrap());
        assert!(check_mount_points(&full, &[Path::new("/srv")]).unwrap());
        // Below /tmp, /run or /dev rinit creates it in a writable file system.
        assert!(!check_mount_points(&full, &[Path::new("/tmp/a/b")]).unwrap());
        assert!(check_mount_points(&full, &[Path::new("/tmp/../srv")]).unwrap());
        std::fs::write(full.join("data/file"), "").unwrap();
        let err = check_mount_points(&full, &[Path::new("/data/file/sub")]).unwrap_err();
        assert!(err.to_string().contains("is not a directory"), "{err}");
        let partial = root_with(&["dev", "proc", "sys", "tmp"]);
        assert!(check_mount_points(&partial, &[]).unwrap());
        let _ = std::fs::remove_dir_all(full);
        let _ = std::fs::remove_dir_all(partial);
    }
}
