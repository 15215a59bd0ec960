//! The QEMU `-M microvm` command line as typed data (QEMU `docs/system/i386/microvm.rst`,
//! `docs/system/devices/vhost-user.rst`, `docs/interop/vhost-user.rst`), turned into an argv
//! by [`QemuCmd::argv`]; never a shell string.
//!
//! Choices made for speed and for a trustworthy exit status:
//! - `rtc=on`: without an RTC the kernel waits 2 s (two 1 s timeouts); under KVM QEMU's default
//!   `rtc=auto` means off.
//! - ACPI stays on: this kernel finds virtio-mmio devices only through the DSDT, and power-off
//!   goes through ACPI GED.
//! - `-no-reboot` with `panic=-1` in the guest: a panic or reboot ends QEMU instead of looping.
//! - `isa-debug-exit` at 0xf4: rinit leaves QEMU at once after reporting.
//! - virtiofs needs guest RAM shared with the daemon (a memfd backend of the same size as `-m`)
//!   and modern virtio-mmio (`force-legacy=false`: libvhost-user refuses legacy devices).

use std::ffi::OsString;
use std::path::PathBuf;

/// The accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation.
    Kvm,
    /// Software emulation.
    Tcg,
}

impl Accel {
    /// QEMU's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }
}

/// A virtiofs share served by a vhost-user daemon listening on `socket`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsDevice {
    /// The daemon's socket.
    pub socket: PathBuf,
    /// The mount tag the guest uses.
    pub tag: String,
}

/// Disk image formats QEMU is told about explicitly (no format probing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    Raw,
    Qcow2,
}

impl DiskFormat {
    /// The format of an image from its first bytes: qcow2 has the magic `QFI\xfb`.
    pub fn detect(head: &[u8]) -> DiskFormat {
        if head.starts_with(b"QFI\xfb") {
            DiskFormat::Qcow2
        } else {
            DiskFormat::Raw
        }
    }

    fn name(self) -> &'static str {
        match self {
            DiskFormat::Raw => "raw",
            DiskFormat::Qcow2 => "qcow2",
        }
    }
}

/// A virtio-blk disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub path: PathBuf,
    pub format: DiskFormat,
    pub readonly: bool,
}

/// Where a virtio-serial port's data goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortBackend {
    /// A path QEMU opens for writing (e.g. `/proc/self/fd/5`, a pipe): output only.
    File(String),
    /// A connected socket QEMU gets as this fd: both directions; the port closes when the peer
    /// shuts the socket down, and the guest then reads end-of-file.
    Socket(i32),
}

impl PortBackend {
    fn chardev(&self, id: &str) -> String {
        match self {
            PortBackend::File(path) => format!("file,id={id},path={}", opt(path)),
            PortBackend::Socket(fd) => format!("socket,id={id},fd={fd}"),
        }
    }
}

/// A named virtio-serial port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub name: String,
    pub backend: PortBackend,
}

/// Everything that goes on the QEMU command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuCmd {
    pub binary: PathBuf,
    pub accel: Accel,
    /// `-cpu`; `None` keeps QEMU's default model.
    pub cpu: Option<String>,
    pub memory_mib: u64,
    pub cpus: u32,
    /// `-bios`; `None` keeps QEMU's default (qboot on Debian).
    pub firmware: Option<PathBuf>,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// The kernel command line.
    pub append: String,
    /// Where the serial console goes: a path QEMU opens for writing (e.g. `/proc/self/fd/3`).
    pub console: String,
    /// The console as a connected socket on this fd instead, so it also takes input.
    pub console_socket: Option<i32>,
    /// virtiofs shares, in order (the first gets tag order in the guest's ACPI table).
    pub shares: Vec<FsDevice>,
    pub disks: Vec<Disk>,
    /// A virtio-serial port named `rinit.status` written to this path.
    pub status_port: Option<String>,
    /// More virtio-serial ports (the workload's standard streams), after the status port.
    pub ports: Vec<Port>,
    /// Add `isa-debug-exit` at 0xf4.
    pub debug_exit: bool,
}

impl QemuCmd {
    /// The machine option string.
    fn machine(&self) -> String {
        let mut m = format!("microvm,accel={},rtc=on", self.accel.name());
        if !self.shares.is_empty() {
            m.push_str(",memory-backend=mem");
        }
        m
    }

    /// The full argv, program name first.
    pub fn argv(&self) -> Vec<OsString> {
        let mut a = Argv(vec![self.binary.clone().into()]);
        a.push(["-M", &self.machine()]);
        if let Some(cpu) = &self.cpu {
            a.push(["-cpu", cpu]);
        }
        a.push(["-m", &format!("{}M", self.memory_mib)]);
        a.push(["-smp", &self.cpus.to_string()]);
        if let Some(fw) = &self.firmware {
            a.os("-bios", fw);
        }
        a.push([
            "-no-reboot",
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
        ]);
        let console = match self.console_socket {
            Some(fd) => PortBackend::Socket(fd),
            None => PortBackend::File(self.console.clone()),
        };
        a.push(["-chardev", &console.chardev("con")]);
        a.push(["-serial", "chardev:con"]);
        if self.debug_exit {
            a.push(["-device", "isa-debug-exit,iobase=0xf4,iosize=4"]);
        }
        if !self.shares.is_empty() {
            let mem = format!(
                "memory-backend-memfd,id=mem,size={}M,share=on",
                self.memory_mib
            );
            a.push(["-object", &mem]);
            a.push(["-global", "virtio-mmio.force-legacy=false"]);
        }
        for (i, fs) in self.shares.iter().enumerate() {
            let chardev = format!("socket,id=fs{i},path={}", opt(&fs.socket.to_string_lossy()));
            let device = format!("vhost-user-fs-device,chardev=fs{i},tag={}", fs.tag);
            a.push(["-chardev", &chardev, "-device", &device]);
        }
        for (i, d) in self.disks.iter().enumerate() {
            let ro = if d.readonly { ",readonly=on" } else { "" };
            let drive = format!(
                "id=disk{i},file={},format={},if=none{ro}",
                opt(&d.path.to_string_lossy()),
                d.format.name()
            );
            let device = format!("virtio-blk-device,drive=disk{i}");
            a.push(["-drive", &drive, "-device", &device]);
        }
        if self.status_port.is_some() || !self.ports.is_empty() {
            a.push(["-device", "virtio-serial-device"]);
        }
        if let Some(path) = &self.status_port {
            let chardev = format!("file,id=status,path={}", opt(path));
            let port = format!(
                "virtserialport,chardev=status,name={}",
                rinit_status::STATUS_PORT_NAME
            );
            a.push(["-chardev", &chardev, "-device", &port]);
        }
        for (i, p) in self.ports.iter().enumerate() {
            let id = format!("port{i}");
            let port = format!("virtserialport,chardev={id},name={}", opt(&p.name));
            a.push(["-chardev", &p.backend.chardev(&id), "-device", &port]);
        }
        a.os("-kernel", &self.kernel);
        a.os("-initrd", &self.initrd);
        a.push(["-append", &self.append]);
        a.0
    }
}

/// A value inside a QEMU option string: commas are doubled (QEMU's escape for `,`).
fn opt(value: &str) -> String {
    value.replace(',', ",,")
}

/// An argv under construction.
struct Argv(Vec<OsString>);

impl Argv {
    fn push<const N: usize>(&mut self, words: [&str; N]) {
        self.0.extend(words.iter().map(OsString::from));
    }

    fn os(&mut self, flag: &str, value: &std::path::Path) {
        self.0.push(flag.into());
        self.0.push(value.as_os_str().to_owned());
    }
}

/// An argv as one line a shell would accept (for `--print-cmd`): words quoted only when needed.
pub fn shell_line(argv: &[OsString]) -> String {
    argv.iter()
        .map(|w| shell_quote(&w.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(w: &str) -> String {
    let plain = !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=,:@%+".contains(&b));
    if plain {
        w.to_owned()
    } else {
        format!("'{}'", w.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
#[path = "qemu_tests.rs"]
mod tests;
