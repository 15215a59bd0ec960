//! `mvm-tests`: the QEMU harness shared by the boot tests and the benchmarks.
//!
//! A [`Vm`] is a typed QEMU `-M microvm` command line (never a shell string); [`Vm::spawn`]
//! starts it with the serial port on a pipe, and the returned [`Running`] waits for serial
//! tokens or for QEMU's exit with a timeout, never a fixed sleep. QEMU is killed when the
//! [`Running`] is dropped, also when a test panics. Exit statuses from `isa-debug-exit`
//! (QEMU `hw/misc/debugexit.c` exits with `(value << 1) | 1`) are decoded
//! by [`debug_exit_code`].
//!
//! The probe kernel's protocol (exit codes, `probe.*` options, FNV-1a) is re-exported as
//! [`probe`] from the `mvm-probe` library.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

mod run;

pub use mvm_probe as probe;
pub use run::{Exit, Failure, FailureKind, Running};

/// Default timeout for one boot under TCG on a loaded 2-core machine.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(30);

/// The workspace root (the parent of `tests/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives inside the workspace")
        .to_path_buf()
}

/// `target/fw.rom`. Panics if it has not been built.
pub fn fw_rom() -> PathBuf {
    let rom = workspace_root().join("target/fw.rom");
    assert!(
        rom.is_file(),
        "{} is missing: run `cargo xtask build-fw` first",
        rom.display()
    );
    rom
}

/// `target/probe/`, where `cargo xtask build-probe` puts the probe images.
pub fn probe_dir() -> PathBuf {
    workspace_root().join("target/probe")
}

/// `target/probe/<name>`. Panics if it has not been built.
pub fn probe_image(name: &str) -> PathBuf {
    let path = probe_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo xtask build-probe` first",
        path.display()
    );
    path
}

/// Debian's qboot (`/usr/share/qemu/qboot.rom`), if installed: the baseline firmware.
pub fn qboot_rom() -> Option<PathBuf> {
    let path = PathBuf::from("/usr/share/qemu/qboot.rom");
    path.is_file().then_some(path)
}

/// A scratch directory for generated test inputs (`target/tmp/mvm-tests`).
pub fn scratch_dir() -> PathBuf {
    let dir = workspace_root().join("target/tmp/mvm-tests");
    std::fs::create_dir_all(&dir).expect("create target/tmp/mvm-tests");
    dir
}

/// `len` deterministic pseudo-random bytes (xorshift64*) for test inputs.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

/// Write `data` to `scratch_dir()/name` (atomically, so parallel tests may share names).
pub fn scratch_file(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch_dir().join(name);
    let tmp = scratch_dir().join(format!("{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, data).expect("write scratch file");
    std::fs::rename(&tmp, &path).expect("rename scratch file");
    path
}

/// The value a guest wrote to `isa-debug-exit`, from QEMU's exit status `(value << 1) | 1`.
///
/// Ambiguity: QEMU also exits with 1 when it fails to start, which reads as value 0, and
/// only values below 0x80 survive the 8-bit exit status.
pub fn debug_exit_code(status: ExitStatus) -> Option<u8> {
    let code = status.code()?;
    (code & 1 == 1).then_some((code >> 1) as u8)
}

/// A QEMU `microvm` command line under construction.
#[derive(Clone, Debug)]
pub struct Vm {
    qemu: OsString,
    firmware: Option<PathBuf>,
    machine: Vec<String>,
    memory: String,
    smp: u32,
    kernel: Option<PathBuf>,
    initrd: Option<PathBuf>,
    append: Option<OsString>,
    extra: Vec<OsString>,
    debug_exit: bool,
    no_reboot: bool,
    serial_stdio: bool,
}

impl Default for Vm {
    fn default() -> Vm {
        Vm::new()
    }
}

impl Vm {
    /// 128 MiB, one CPU, TCG, no firmware given (QEMU's default), serial on stdio,
    /// `-no-reboot`. The QEMU binary is `$MVM_QEMU` or `qemu-system-x86_64`.
    pub fn new() -> Vm {
        Vm {
            qemu: std::env::var_os("MVM_QEMU").unwrap_or_else(|| "qemu-system-x86_64".into()),
            firmware: None,
            machine: Vec::new(),
            memory: "128M".into(),
            smp: 1,
            kernel: None,
            initrd: None,
            append: None,
            extra: Vec::new(),
            debug_exit: false,
            no_reboot: true,
            serial_stdio: true,
        }
    }

    /// The QEMU binary.
    pub fn qemu(mut self, qemu: impl Into<OsString>) -> Vm {
        self.qemu = qemu.into();
        self
    }

    /// `-bios <path>` (the firmware image).
    pub fn firmware(mut self, path: impl Into<PathBuf>) -> Vm {
        self.firmware = Some(path.into());
        self
    }

    /// Machine options appended to `-M microvm,accel=tcg` (e.g. `"acpi=off,rtc=off"`);
    /// repeated calls accumulate.
    pub fn machine(mut self, options: &str) -> Vm {
        if !options.is_empty() {
            self.machine.push(options.to_owned());
        }
        self
    }

    /// `-m <size>` (QEMU syntax: `128M`, `4G`).
    pub fn memory(mut self, size: &str) -> Vm {
        self.memory = size.to_owned();
        self
    }

    /// `-smp <n>`.
    pub fn smp(mut self, cpus: u32) -> Vm {
        self.smp = cpus;
        self
    }

    /// `-kernel <path>`.
    pub fn kernel(mut self, path: impl Into<PathBuf>) -> Vm {
        self.kernel = Some(path.into());
        self
    }

    /// `-initrd <path>`.
    pub fn initrd(mut self, path: impl Into<PathBuf>) -> Vm {
        self.initrd = Some(path.into());
        self
    }

    /// `-append <cmdline>`.
    pub fn append(mut self, cmdline: impl Into<OsString>) -> Vm {
        self.append = Some(cmdline.into());
        self
    }

    /// One more argument, after the ones the builder generates.
    pub fn arg(mut self, arg: impl Into<OsString>) -> Vm {
        self.extra.push(arg.into());
        self
    }

    /// More arguments, after the ones the builder generates.
    pub fn extra_args<I, S>(mut self, args: I) -> Vm
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.extra.extend(args.into_iter().map(Into::into));
        self
    }

    /// Add `-device isa-debug-exit,iobase=0xf4,iosize=4`.
    pub fn debug_exit(mut self, on: bool) -> Vm {
        self.debug_exit = on;
        self
    }

    /// Pass `-no-reboot` (default on): a guest reset makes QEMU exit.
    pub fn no_reboot(mut self, on: bool) -> Vm {
        self.no_reboot = on;
        self
    }

    /// Pass `-serial stdio` (default on), captured by [`Running`].
    pub fn serial_stdio(mut self, on: bool) -> Vm {
        self.serial_stdio = on;
        self
    }

    /// The QEMU binary this VM runs.
    pub fn program(&self) -> &OsStr {
        &self.qemu
    }

    /// The argument vector (without the program name).
    pub fn args(&self) -> Vec<OsString> {
        let mut machine = String::from("microvm,accel=tcg");
        for options in &self.machine {
            machine.push(',');
            machine.push_str(options);
        }
        let mut argv: Vec<OsString> = Vec::new();
        let mut push = |items: &[&OsStr]| argv.extend(items.iter().map(|s| s.to_os_string()));
        push(&["-M".as_ref(), machine.as_ref()]);
        push(&["-m".as_ref(), self.memory.as_ref()]);
        push(&["-smp".as_ref(), self.smp.to_string().as_ref()]);
        push(&["-nodefaults".as_ref(), "-no-user-config".as_ref()]);
        push(&["-display".as_ref(), "none".as_ref()]);
        if self.no_reboot {
            push(&["-no-reboot".as_ref()]);
        }
        if self.serial_stdio {
            push(&["-serial".as_ref(), "stdio".as_ref()]);
        }
        if let Some(fw) = &self.firmware {
            push(&["-bios".as_ref(), fw.as_os_str()]);
        }
        if let Some(kernel) = &self.kernel {
            push(&["-kernel".as_ref(), kernel.as_os_str()]);
        }
        if let Some(initrd) = &self.initrd {
            push(&["-initrd".as_ref(), initrd.as_os_str()]);
        }
        if let Some(append) = &self.append {
            push(&["-append".as_ref(), append.as_os_str()]);
        }
        if self.debug_exit {
            push(&[
                "-device".as_ref(),
                "isa-debug-exit,iobase=0xf4,iosize=4".as_ref(),
            ]);
        }
        argv.extend(self.extra.iter().cloned());
        argv
    }

    /// Start QEMU. Panics (with the command) if QEMU cannot be started at all.
    ///
    /// On Linux QEMU also gets `PR_SET_PDEATHSIG = SIGKILL`, so it dies with the thread
    /// that spawned it even if this process is killed: keep a [`Running`] on the thread
    /// that created it.
    pub fn spawn(&self) -> Running {
        Running::start(self.program(), self.args())
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", self.program()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &Vm) -> Vec<String> {
        v.args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn default_argv() {
        assert_eq!(
            strings(&Vm::new()),
            [
                "-M",
                "microvm,accel=tcg",
                "-m",
                "128M",
                "-smp",
                "1",
                "-nodefaults",
                "-no-user-config",
                "-display",
                "none",
                "-no-reboot",
                "-serial",
                "stdio",
            ]
        );
    }

    #[test]
    fn full_argv() {
        let vm = Vm::new()
            .qemu("/opt/qemu")
            .firmware("/fw.rom")
            .machine("acpi=off")
            .machine("pit=off,pic=off")
            .memory("4G")
            .smp(2)
            .kernel("/k")
            .initrd("/i")
            .append("console=ttyS0  a='b c'")
            .debug_exit(true)
            .no_reboot(false)
            .extra_args(["-global", "fw_cfg_io.dma_enabled=off"]);
        assert_eq!(vm.program(), "/opt/qemu");
        assert_eq!(
            strings(&vm),
            [
                "-M",
                "microvm,accel=tcg,acpi=off,pit=off,pic=off",
                "-m",
                "4G",
                "-smp",
                "2",
                "-nodefaults",
                "-no-user-config",
                "-display",
                "none",
                "-serial",
                "stdio",
                "-bios",
                "/fw.rom",
                "-kernel",
                "/k",
                "-initrd",
                "/i",
                "-append",
                "console=ttyS0  a='b c'",
                "-device",
                "isa-debug-exit,iobase=0xf4,iosize=4",
                "-global",
                "fw_cfg_io.dma_enabled=off",
            ]
        );
    }

    #[test]
    fn serial_can_be_left_out() {
        let argv = strings(&Vm::new().serial_stdio(false).machine(""));
        assert!(!argv.iter().any(|a| a == "-serial"));
        assert_eq!(argv[1], "microvm,accel=tcg");
    }

    #[test]
    fn random_bytes_are_deterministic() {
        let a = pseudo_random_bytes(1000, 7);
        assert_eq!(a, pseudo_random_bytes(1000, 7));
        assert_ne!(a, pseudo_random_bytes(1000, 8));
        assert!(a.iter().any(|&b| b != a[0]));
    }
}
