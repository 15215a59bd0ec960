//! The `mvm` command line (clap derive) and the parsers of its option values.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

const EXAMPLES: &str = "\
Examples:
  mvm run -- uname -a                      run in the built-in root (busybox)
  mvm run -- sh -c 'echo hi; exit 3'       exit status 3 comes back to the host
  mvm run --root /srv/rootfs -- /bin/app   a directory as the root, by virtiofs (read-only)
  mvm run --root ./rootfs --rw -- make      ... writable
  mvm run --disk rootfs.ext4 -- /bin/app   an ext4 image (raw or qcow2) as the root
  mvm run -v $PWD:/src:ro -w /src -- ls    share a host directory, set the working directory
  mvm run -e GREETING=hi -- printenv GREETING
  mvm run --timeout 30s --timings -- true  where the time went
  mvm run --dry-run -- true                print the QEMU command line, do not run it
  mvm run -- sh                            an interactive shell (Ctrl-] stops the VM)
  tar c . | mvm run -- tar t               stdin reaches the workload; stdout/stderr stay apart
  mvm kernel fetch                         download the Debian cloud kernel into the cache
  mvm doctor                               check QEMU, KVM, firmware, virtiofsd, kernel

Exit status of `mvm run`: the workload's own (127 not found, 126 not executable, 128+N
killed by signal N); 124 timeout; 125 setup error (options, QEMU, kernel, virtiofsd);
255 the guest ended without a status record; 130/143 mvm was interrupted (SIGINT/SIGTERM).";

/// Run a command in a QEMU microvm.
#[derive(Debug, Parser)]
#[command(name = "mvm", version, about, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Boot a microVM, run CMD in it, stream its output and exit with its status.
    #[command(after_help = EXAMPLES)]
    Run(Box<RunArgs>),
    /// Manage the cached guest kernel.
    Kernel {
        #[command(subcommand)]
        command: KernelCommand,
    },
    /// Check QEMU, KVM, firmware, virtiofsd, rinit and the kernel; print a fix for each problem.
    Doctor(DoctorArgs),
}

/// `mvm kernel …`
#[derive(Debug, Subcommand)]
pub enum KernelCommand {
    /// Download the Debian cloud kernel into the cache (also done on first use).
    Fetch,
}

/// `mvm doctor` options.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// QEMU binary to check.
    #[arg(long, env = "MVM_QEMU", default_value = "qemu-system-x86_64")]
    pub qemu: PathBuf,
}

/// `mvm run` options.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Firmware: fw (this project's fw.rom), qboot, seabios, or a ROM file.
    #[arg(long, default_value = "fw", value_parser = parse_firmware)]
    pub firmware: FirmwareChoice,
    /// Guest kernel (bzImage or PVH vmlinux); default: the host's when usable, else the cached
    /// Debian cloud kernel.
    #[arg(long, env = "MVM_KERNEL")]
    pub kernel: Option<PathBuf>,
    /// Modules directory of --kernel (lib/modules/RELEASE); default: found next to it.
    #[arg(long)]
    pub modules: Option<PathBuf>,
    /// Directory shared by virtiofs as the guest's root (read-only unless --rw).
    #[arg(long, conflicts_with = "disk")]
    pub root: Option<PathBuf>,
    /// Make the --root directory or --disk image writable.
    #[arg(long)]
    pub rw: bool,
    /// Disk image (raw or qcow2, e.g. ext4) used as the guest's root by virtio-blk.
    #[arg(long)]
    pub disk: Option<PathBuf>,
    /// Filesystem type of --disk.
    #[arg(long, default_value = "ext4")]
    pub disk_fstype: String,
    /// Extra share HOST:GUEST, or HOST:GUEST:ro for read-only, by virtiofs (repeatable).
    #[arg(short = 'v', long = "volume", value_parser = parse_volume)]
    pub volumes: Vec<Volume>,
    /// Working directory of CMD in the guest (absolute).
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Environment variable K=V for CMD, or K to pass the host's value (repeatable).
    #[arg(short = 'e', long = "env", value_parser = parse_env)]
    pub env: Vec<String>,
    /// Guest memory: 256M, 1G, or MiB as a plain number.
    #[arg(short = 'm', long = "memory", default_value = "256M", value_parser = parse_memory)]
    pub memory_mib: u64,
    /// Number of vCPUs.
    #[arg(short = 'c', long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub cpus: u32,
    /// Stop the VM after this long (e.g. 30s, 2m, 1500ms) and exit with 124.
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Accelerator; auto uses KVM only when a quick probe shows that it works.
    #[arg(long, value_enum, default_value = "auto")]
    pub accel: AccelChoice,
    /// Print the QEMU (and virtiofsd) command lines to stderr, then run.
    #[arg(long)]
    pub print_cmd: bool,
    /// Print the command lines and exit without running anything.
    #[arg(long)]
    pub dry_run: bool,
    /// How stdin, stdout and stderr travel: auto picks console when stdout and stderr are the
    /// same file and stdin is a terminal or empty, else split.
    #[arg(long, value_enum, default_value = "auto")]
    pub stdio: StdioChoice,
    /// Also take the status record from a virtio-serial port that the workload cannot write to
    /// (loads virtio_console: a slower boot).
    #[arg(long)]
    pub status_port: bool,
    /// Show the kernel log and rinit's steps (no `quiet`).
    #[arg(long)]
    pub console: bool,
    /// After the run, print where the time went (to stderr).
    #[arg(long)]
    pub timings: bool,
    /// Say what mvm chooses (kernel, protocol, accelerator) and print the timings.
    #[arg(long)]
    pub verbose: bool,
    /// Do not print mvm's own notes (such as the KVM fallback line).
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// QEMU binary.
    #[arg(long, env = "MVM_QEMU", default_value = "qemu-system-x86_64")]
    pub qemu: PathBuf,
    /// QEMU CPU model (default: `host` under KVM, QEMU's default under TCG).
    #[arg(long, value_name = "MODEL")]
    pub cpu: Option<String>,
    /// Extra kernel command-line words (before rinit's).
    #[arg(long, value_name = "KARGS")]
    pub append: Option<String>,
    /// The command to run in the guest and its arguments.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

/// `--firmware`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirmwareChoice {
    /// This project's `fw.rom`.
    Fw,
    /// Debian's qboot (`/usr/share/qemu/qboot.rom`).
    Qboot,
    /// SeaBIOS for microvm (`/usr/share/seabios/bios-microvm.bin`).
    Seabios,
    /// A ROM file.
    Path(PathBuf),
}

/// `--accel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccelChoice {
    /// KVM when a probe shows it works, else TCG.
    Auto,
    /// KVM, without probing.
    Kvm,
    /// TCG (software emulation).
    Tcg,
}

/// `--stdio`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StdioChoice {
    /// console when nothing is lost that way, else split.
    Auto,
    /// All through the serial console: a tty in the guest, stdout and stderr merged (fastest boot).
    Console,
    /// stdout, stderr (and stdin) on virtio-serial ports: apart and byte-exact (loads virtio_console).
    Split,
}

/// One `-v HOST:GUEST[:ro]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub host: PathBuf,
    pub guest: String,
    pub readonly: bool,
}

fn parse_firmware(s: &str) -> Result<FirmwareChoice, String> {
    Ok(match s {
        "fw" => FirmwareChoice::Fw,
        "qboot" => FirmwareChoice::Qboot,
        "seabios" => FirmwareChoice::Seabios,
        "" => return Err("expected fw, qboot, seabios or a ROM path".into()),
        path => FirmwareChoice::Path(path.into()),
    })
}

/// Parses `HOST:GUEST[:ro|:rw]`; GUEST must be absolute and not `/`.
pub fn parse_volume(s: &str) -> Result<Volume, String> {
    let (rest, readonly) = match (s.strip_suffix(":ro"), s.strip_suffix(":rw")) {
        (Some(r), _) => (r, true),
        (_, Some(r)) => (r, false),
        _ => (s, false),
    };
    let (host, guest) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?} is not HOST:GUEST[:ro]"))?;
    if host.is_empty() {
        return Err(format!("{s:?}: empty host path"));
    }
    if !guest.starts_with('/') || guest == "/" || guest.contains(char::is_whitespace) {
        return Err(format!(
            "{s:?}: the guest path must be absolute, not /, and without spaces"
        ));
    }
    Ok(Volume {
        host: host.into(),
        guest: guest.to_owned(),
        readonly,
    })
}

/// Parses `K=V`, or `K` alone to take the host's value (an unset variable is an error).
pub fn parse_env(s: &str) -> Result<String, String> {
    match s.split_once('=') {
        Some((k, _)) if valid_env_name(k) => Ok(s.to_owned()),
        Some(_) => Err(format!("{s:?}: bad variable name")),
        None if valid_env_name(s) => std::env::var(s)
            .map(|v| format!("{s}={v}"))
            .map_err(|_| format!("{s} is not set on the host (write {s}=VALUE)")),
        None => Err(format!("{s:?} is not K=V")),
    }
}

fn valid_env_name(k: &str) -> bool {
    !k.is_empty() && !k.contains(['\0', '\n'])
}

/// Parses a memory size in MiB: `256`, `256M`, `1G`, `1g`, `512MiB`.
pub fn parse_memory(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let (num, mult) = if let Some(n) = lower.strip_suffix("gib").or(lower.strip_suffix('g')) {
        (n, 1024)
    } else if let Some(n) = lower.strip_suffix("mib").or(lower.strip_suffix('m')) {
        (n, 1)
    } else {
        (lower.as_str(), 1)
    };
    let mib = num
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("{s:?} is not a size like 256M or 1G"))?;
    if !(16..=1 << 20).contains(&mib) {
        return Err(format!("{s:?}: memory must be between 16M and 1024G"));
    }
    Ok(mib)
}

/// Parses a duration: `30s`, `2m`, `1500ms`, `1h`, or seconds as a plain (decimal) number.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let bad = || format!("{s:?} is not a duration like 30s, 2m or 1500ms");
    let (num, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let value: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A duration for messages: `1.5s`, `250ms`.
pub fn format_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", (d.as_secs_f64() * 1000.0).round() / 1000.0)
    }
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
