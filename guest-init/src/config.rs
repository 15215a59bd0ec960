//! rinit's configuration: one setter shared by the kernel command line (`rinit.KEY=VALUE`) and the
//! spec file (`KEY VALUE`), so both accept exactly the same keys.
//!
//! | key | value | default | meaning |
//! |---|---|---|---|
//! | *(argv)* | after `--` on the command line; `arg` lines in the spec | — (required) | the workload; a name without `/` is looked up in `PATH` |
//! | `env` | `NAME=VALUE`, repeatable | `PATH`, `HOME=/`, `TERM=linux` | an environment variable of the workload (overrides the defaults) |
//! | `cwd` | absolute path | `/` | the workload's working directory |
//! | `uid`, `gid` | decimal number | 0 | the workload's user and group (supplementary groups are cleared) |
//! | `hostname` | ≤ 64 bytes | `mvm` | set with `sethostname` |
//! | `modules` | `a,b,c`, repeatable | none | modules to load with their `modules.dep` dependencies |
//! | `root` | `virtiofs:TAG` or a block device path (`/dev/vda`) | none | the real root (initramfs mode); without it the workload runs in the initramfs |
//! | `rootfstype` | filesystem type | `ext4` | type of a block-device root |
//! | `rootflags` | mount data string | none | e.g. `data=ordered` for a block root |
//! | `ro` | flag | off | mount the root read-only |
//! | `overlay` | flag | off | with `root`: put a tmpfs overlay on it, so the mount points it lacks (rinit's own and each `mount` path) can be created; the real root stays read-only under it, and with `ro` the overlay is made read-only once they exist (without `ro`, writes go to the tmpfs and are lost at the end) |
//! | `mount` | `TAG:/path[:ro]`, repeatable | none | an extra virtiofs mount |
//! | `console` | `ttyS0`, `/dev/hvc0`, … | the preferred console of `/proc/consoles` | the workload's stdio and controlling terminal |
//! | `term` | terminal type, ≤ 64 bytes of `[A-Za-z0-9._+-]` | `linux` | the workload's `TERM` (an explicit `env TERM=` wins) |
//! | `cols`, `rows` | 1–65535 | the console's own (0×0 on a serial port) | the console's window size (`TIOCSWINSZ`), set before the workload starts |
//! | `stdin`, `stdout`, `stderr` | `console`, `null` or a virtio-serial port name | `console` | where the workload's stream goes: the console tty, `/dev/null`, or a port (bytes unchanged, found by name through sysfs; waits `waitport` for it) |
//! | `hold` | milliseconds | 0 | with an output stream on a port: after reporting, how long to wait for the host to stop the VM before powering off |
//! | `resize` | virtio-serial port name | none | a port carrying `ROWS COLS` lines: each becomes the console's window size (the host terminal was resized) |
//! | `debug` | flag | off | print each step with its time |
//! | `nonce` | 1–64 of `[A-Za-z0-9_-]` | `0` | the per-run token of the status record |
//! | `status` | virtio-serial port name | `rinit.status` | the out-of-band status port, used when present |
//! | `waitport` | milliseconds | 0 | how long to wait for the status port to appear |
//! | `debugexit` | flag or I/O port (`0xf4`) | off | also exit QEMU through `isa-debug-exit` |
//! | `reboot` | flag | off | end with `RB_AUTOBOOT` (QEMU `-no-reboot` exits) instead of power-off |
//! | `grace` | milliseconds | 1000 | between SIGTERM and SIGKILL for the workload's leftovers |
//! | `spec` | path | `/rinit.spec`, else fw_cfg `opt/rinit/spec` | the spec file (command-line only; a missing default file is fine) |
//!
//! Flags take no value, or `1`/`0`. Values longer than the limit of their key are an error; unknown
//! keys are a warning. Scalars given twice keep the last value; lists append.

use crate::error::Error;
use rinit_status::Nonce;

/// Where the real root comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootSource {
    /// A virtiofs share, by tag.
    Virtiofs(String),
    /// A block device path such as `/dev/vda`.
    Block(String),
}

/// The real root filesystem (initramfs mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub source: RootSource,
    pub fstype: String,
    pub data: Option<String>,
    pub ro: bool,
    /// Mount an overlay on the root to create missing mount points in (`rinit.overlay`).
    pub overlay: bool,
}

/// An extra virtiofs mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraMount {
    pub tag: String,
    pub path: String,
    pub ro: bool,
}

/// Where one of the workload's standard streams goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stream {
    /// The console, which is also the controlling terminal.
    Console,
    /// `/dev/null`.
    Null,
    /// The virtio-serial port of this name.
    Port(String),
}

impl Stream {
    fn parse(key: &str, value: Option<&str>) -> Result<Stream, Error> {
        Ok(match required(key, value, MAX_NAME)? {
            "console" => Stream::Console,
            "null" => Stream::Null,
            name => Stream::Port(name.to_owned()),
        })
    }
}

/// Everything rinit was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub hostname: String,
    pub modules: Vec<String>,
    pub root: Option<Root>,
    pub mounts: Vec<ExtraMount>,
    pub console: Option<String>,
    pub term: String,
    pub cols: Option<u16>,
    pub rows: Option<u16>,
    /// The port that carries window size changes.
    pub resize_port: Option<String>,
    /// The workload's stdin, stdout and stderr.
    pub stdio: [Stream; 3],
    pub hold_ms: u32,
    pub debug: bool,
    pub nonce: Nonce,
    pub status_port: String,
    pub wait_port_ms: u32,
    pub debug_exit: Option<u16>,
    pub reboot: bool,
    pub grace_ms: u32,
    pub spec: Option<String>,
    /// Non-fatal problems found while parsing (unknown keys), printed once logging is up.
    pub warnings: Vec<String>,
}

/// Path of the spec file when `rinit.spec` is not given.
pub const DEFAULT_SPEC: &str = "/rinit.spec";
/// The spec passed by QEMU as `-fw_cfg name=opt/rinit/spec,file=…`, read when no spec file exists
/// (needs the `qemu_fw_cfg` module, `CONFIG_FW_CFG_SYSFS`).
pub const FW_CFG_SPEC: &str = "/sys/firmware/qemu_fw_cfg/by_name/opt/rinit/spec/raw";
/// The workload's `TERM` unless `rinit.term` says otherwise: what the Linux console and QEMU's
/// serial terminal emulation understand.
pub const DEFAULT_TERM: &str = "linux";
/// Longest `arg`/`env` value: the kernel's `MAX_ARG_STRLEN`.
const MAX_ARG: usize = 128 * 1024;
/// Longest path.
const MAX_PATH: usize = 4095;
/// Longest short token (tags, types, names).
const MAX_NAME: usize = 255;

impl Default for Config {
    fn default() -> Config {
        Config {
            argv: Vec::new(),
            env: Vec::new(),
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            hostname: "mvm".into(),
            modules: Vec::new(),
            root: None,
            mounts: Vec::new(),
            console: None,
            term: DEFAULT_TERM.into(),
            cols: None,
            rows: None,
            resize_port: None,
            stdio: [Stream::Console, Stream::Console, Stream::Console],
            hold_ms: 0,
            debug: false,
            nonce: Nonce::default(),
            status_port: rinit_status::STATUS_PORT_NAME.into(),
            wait_port_ms: 0,
            debug_exit: None,
            reboot: false,
            grace_ms: 1000,
            spec: None,
            warnings: Vec::new(),
        }
    }
}

/// Checks a value against its length limit and returns it.
fn limited<'a>(key: &str, value: &'a str, max: usize) -> Result<&'a str, Error> {
    if value.len() > max {
        return Err(Error::msg(format!(
            "rinit.{key}: value is {} bytes, the limit is {max}",
            value.len()
        )));
    }
    Ok(value)
}

fn required<'a>(key: &str, value: Option<&'a str>, max: usize) -> Result<&'a str, Error> {
    match value {
        Some(v) if !v.is_empty() => limited(key, v, max),
        _ => Err(Error::msg(format!("rinit.{key} needs a value"))),
    }
}

fn flag(key: &str, value: Option<&str>) -> Result<bool, Error> {
    match value {
        None | Some("1") => Ok(true),
        Some("0") => Ok(false),
        Some(v) => Err(Error::msg(format!(
            "rinit.{key}: expected no value, 1 or 0, got {v:?}"
        ))),
    }
}

fn number<T: std::str::FromStr>(key: &str, value: Option<&str>) -> Result<T, Error> {
    let v = required(key, value, 20)?;
    v.parse()
        .map_err(|_| Error::msg(format!("rinit.{key}: {v:?} is not a valid number")))
}

fn absolute(key: &str, value: Option<&str>) -> Result<String, Error> {
    let v = required(key, value, MAX_PATH)?;
    if !v.starts_with('/') {
        return Err(Error::msg(format!(
            "rinit.{key}: {v:?} is not an absolute path"
        )));
    }
    Ok(v.to_owned())
}

impl Config {
    /// Applies one `key` (without the `rinit.` prefix) with its value, if any.
    pub fn set(&mut self, key: &str, value: Option<&str>) -> Result<(), Error> {
        match key {
            "arg" => self.argv.push(value.unwrap_or("").to_owned()),
            "env" => self
                .env
                .push(parse_env(limited(key, value.unwrap_or(""), MAX_ARG)?)?),
            "cwd" => self.cwd = absolute(key, value)?,
            "uid" => self.uid = number(key, value)?,
            "gid" => self.gid = number(key, value)?,
            "hostname" => self.hostname = required(key, value, 64)?.to_owned(),
            "modules" => self.add_modules(required(key, value, MAX_PATH)?)?,
            "root" => self.set_root(required(key, value, MAX_PATH)?)?,
            "rootfstype" => self.root_mut().fstype = required(key, value, MAX_NAME)?.to_owned(),
            "rootflags" => self.root_mut().data = Some(required(key, value, MAX_PATH)?.to_owned()),
            "ro" => self.root_mut().ro = flag(key, value)?,
            "overlay" => self.root_mut().overlay = flag(key, value)?,
            "mount" => self
                .mounts
                .push(parse_mount(required(key, value, MAX_PATH)?)?),
            "console" => self.console = Some(required(key, value, MAX_PATH)?.to_owned()),
            "term" => self.term = parse_term(required(key, value, 64)?)?,
            "cols" => self.cols = Some(window_size(key, value)?),
            "rows" => self.rows = Some(window_size(key, value)?),
            "resize" => self.resize_port = Some(required(key, value, MAX_NAME)?.to_owned()),
            "stdin" => self.stdio[0] = Stream::parse(key, value)?,
            "stdout" => self.stdio[1] = Stream::parse(key, value)?,
            "stderr" => self.stdio[2] = Stream::parse(key, value)?,
            "hold" => self.hold_ms = number(key, value)?,
            "debug" => self.debug = flag(key, value)?,
            "nonce" => {
                let v = required(key, value, Nonce::MAX_LEN)?;
                self.nonce = Nonce::new(v).map_err(|e| Error::msg(format!("rinit.nonce: {e}")))?;
            }
            "status" => self.status_port = required(key, value, MAX_NAME)?.to_owned(),
            "waitport" => self.wait_port_ms = number(key, value)?,
            "debugexit" => self.debug_exit = parse_debug_exit(value)?,
            "reboot" => self.reboot = flag(key, value)?,
            "grace" => self.grace_ms = number(key, value)?,
            "spec" => self.spec = Some(absolute(key, value)?),
            _ => self
                .warnings
                .push(format!("unknown key rinit.{key} ignored")),
        }
        Ok(())
    }

    /// The root settings, created on first use so `rootfstype`/`ro` may precede `root`.
    fn root_mut(&mut self) -> &mut Root {
        self.root.get_or_insert_with(|| Root {
            source: RootSource::Block(String::new()),
            fstype: "ext4".into(),
            data: None,
            ro: false,
            overlay: false,
        })
    }

    fn set_root(&mut self, v: &str) -> Result<(), Error> {
        let source = match v.strip_prefix("virtiofs:") {
            Some(tag) if !tag.is_empty() && tag.len() <= 36 => RootSource::Virtiofs(tag.to_owned()),
            Some(_) => return Err(Error::msg("rinit.root: virtiofs tag must be 1 to 36 bytes")),
            None if v.starts_with("/dev/") => RootSource::Block(v.to_owned()),
            None => {
                return Err(Error::msg(format!(
                    "rinit.root: {v:?} is neither virtiofs:TAG nor a /dev/ path"
                )))
            }
        };
        let root = self.root_mut();
        if let RootSource::Virtiofs(_) = source {
            root.fstype = "virtiofs".into();
        }
        root.source = source;
        Ok(())
    }

    fn add_modules(&mut self, list: &str) -> Result<(), Error> {
        for name in list.split(',').filter(|n| !n.is_empty()) {
            let name = limited("modules", name, 55)?;
            if name.contains('/') {
                return Err(Error::msg(format!(
                    "rinit.modules: {name:?} is a path, not a module name"
                )));
            }
            self.modules.push(name.to_owned());
        }
        Ok(())
    }

    /// Checks what can only be checked once everything is read.
    pub fn validate(&self) -> Result<(), Error> {
        if self.argv.is_empty() {
            return Err(Error::msg("no workload: give its argv after `--` on the kernel command line or as `arg` lines in the spec"));
        }
        if let Some(Root {
            source: RootSource::Block(dev),
            ..
        }) = &self.root
        {
            if dev.is_empty() {
                return Err(Error::msg(
                    "rinit.rootfstype/rootflags/ro/overlay given without rinit.root",
                ));
            }
        }
        if let [_, Stream::Port(a), Stream::Port(b)] = &self.stdio {
            if a == b {
                return Err(Error::msg(format!(
                    "rinit.stdout and rinit.stderr are the same port {a:?}: a port admits one opener"
                )));
            }
        }
        Ok(())
    }
}

fn parse_env(v: &str) -> Result<String, Error> {
    match v.split_once('=') {
        Some((name, _)) if !name.is_empty() && !name.contains('\0') => Ok(v.to_owned()),
        _ => Err(Error::msg(format!("rinit.env: {v:?} is not NAME=VALUE"))),
    }
}

/// A terminal name as terminfo spells them (`xterm-256color`, `screen.linux`, `rxvt+pcfkeys`).
fn parse_term(v: &str) -> Result<String, Error> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "._+-".contains(c);
    if !v.chars().all(ok) {
        return Err(Error::msg(format!(
            "rinit.term: {v:?} is not a terminal name"
        )));
    }
    Ok(v.to_owned())
}

/// A window dimension: 1 to 65535 cells.
fn window_size(key: &str, value: Option<&str>) -> Result<u16, Error> {
    match number::<u16>(key, value)? {
        0 => Err(Error::msg(format!("rinit.{key}: must be at least 1"))),
        n => Ok(n),
    }
}

fn parse_mount(v: &str) -> Result<ExtraMount, Error> {
    let bad = || Error::msg(format!("rinit.mount: {v:?} is not TAG:/path[:ro]"));
    let (tag, rest) = v.split_once(':').ok_or_else(bad)?;
    let (path, ro) = match rest.strip_suffix(":ro") {
        Some(path) => (path, true),
        None => (rest.strip_suffix(":rw").unwrap_or(rest), false),
    };
    if tag.is_empty() || tag.len() > 36 || !path.starts_with('/') || path == "/" {
        return Err(bad());
    }
    Ok(ExtraMount {
        tag: tag.to_owned(),
        path: path.to_owned(),
        ro,
    })
}

fn parse_debug_exit(value: Option<&str>) -> Result<Option<u16>, Error> {
    let port = match value {
        None | Some("1") => rinit_status::DEBUG_EXIT_PORT,
        Some("0") => return Ok(None),
        Some(v) => {
            let digits = v.strip_prefix("0x").unwrap_or(v);
            u16::from_str_radix(digits, 16)
                .map_err(|_| Error::msg(format!("rinit.debugexit: {v:?} is not a hex I/O port")))?
        }
    };
    Ok(Some(port))
}
