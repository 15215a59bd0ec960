//! Golden argv for representative option sets.

use super::*;

fn base() -> QemuCmd {
    QemuCmd {
        binary: "qemu-system-x86_64".into(),
        accel: Accel::Tcg,
        cpu: None,
        memory_mib: 256,
        cpus: 1,
        firmware: Some("/w/target/fw.rom".into()),
        kernel: "/c/vmlinux".into(),
        initrd: "/run/mvm-1/initrd".into(),
        append: "console=ttyS0 quiet tsc_early_khz=2445404 panic=-1".into(),
        console: "/proc/self/fd/3".into(),
        console_socket: None,
        shares: Vec::new(),
        disks: Vec::new(),
        status_port: None,
        ports: Vec::new(),
        debug_exit: true,
    }
}

fn words(argv: &[OsString]) -> Vec<String> {
    argv.iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect()
}

const HEAD: &[&str] = &[
    "qemu-system-x86_64",
    "-M",
    "microvm,accel=tcg,rtc=on",
    "-m",
    "256M",
    "-smp",
    "1",
    "-bios",
    "/w/target/fw.rom",
    "-no-reboot",
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-chardev",
    "file,id=con,path=/proc/self/fd/3",
    "-serial",
    "chardev:con",
    "-device",
    "isa-debug-exit,iobase=0xf4,iosize=4",
];

const TAIL: &[&str] = &[
    "-kernel",
    "/c/vmlinux",
    "-initrd",
    "/run/mvm-1/initrd",
    "-append",
    "console=ttyS0 quiet tsc_early_khz=2445404 panic=-1",
];

#[test]
fn plain_tcg_boot() {
    let want: Vec<&str> = HEAD.iter().chain(TAIL).copied().collect();
    assert_eq!(words(&base().argv()), want);
}

#[test]
fn kvm_with_cpu_model_and_default_firmware() {
    let cmd = QemuCmd {
        accel: Accel::Kvm,
        cpu: Some("host".into()),
        firmware: None,
        cpus: 2,
        memory_mib: 1024,
        debug_exit: false,
        ..base()
    };
    let got = words(&cmd.argv());
    assert_eq!(
        got[..11],
        [
            "qemu-system-x86_64",
            "-M",
            "microvm,accel=kvm,rtc=on",
            "-cpu",
            "host",
            "-m",
            "1024M",
            "-smp",
            "2",
            "-no-reboot",
            "-nodefaults"
        ]
    );
    assert!(!got.iter().any(|w| w.contains("isa-debug-exit")));
}

#[test]
fn virtiofs_root_and_extra_share() {
    let cmd = QemuCmd {
        shares: vec![
            FsDevice {
                socket: "/tmp/mvm-1/root.sock".into(),
                tag: "root".into(),
            },
            FsDevice {
                socket: "/tmp/mvm-1/v1.sock".into(),
                tag: "v1".into(),
            },
        ],
        ..base()
    };
    let mut want: Vec<&str> = HEAD.to_vec();
    want[2] = "microvm,accel=tcg,rtc=on,memory-backend=mem";
    want.extend([
        "-object",
        "memory-backend-memfd,id=mem,size=256M,share=on",
        "-global",
        "virtio-mmio.force-legacy=false",
        "-chardev",
        "socket,id=fs0,path=/tmp/mvm-1/root.sock",
        "-device",
        "vhost-user-fs-device,chardev=fs0,tag=root",
        "-chardev",
        "socket,id=fs1,path=/tmp/mvm-1/v1.sock",
        "-device",
        "vhost-user-fs-device,chardev=fs1,tag=v1",
    ]);
    want.extend(TAIL);
    assert_eq!(words(&cmd.argv()), want);
}

#[test]
fn disk_root_and_status_port() {
    let cmd = QemuCmd {
        disks: vec![Disk {
            path: "/img/root.qcow2".into(),
            format: DiskFormat::Qcow2,
            readonly: true,
        }],
        status_port: Some("/proc/self/fd/4".into()),
        ..base()
    };
    let mut want: Vec<&str> = HEAD.to_vec();
    want.extend([
        "-drive",
        "id=disk0,file=/img/root.qcow2,format=qcow2,if=none,readonly=on",
        "-device",
        "virtio-blk-device,drive=disk0",
        "-device",
        "virtio-serial-device",
        "-chardev",
        "file,id=status,path=/proc/self/fd/4",
        "-device",
        "virtserialport,chardev=status,name=rinit.status",
    ]);
    want.extend(TAIL);
    assert_eq!(words(&cmd.argv()), want);
}

#[test]
fn stream_ports_and_an_interactive_console() {
    let cmd = QemuCmd {
        console_socket: Some(3),
        ports: vec![
            Port {
                name: "rinit.stdin".into(),
                backend: PortBackend::Socket(7),
            },
            Port {
                name: "rinit.stdout".into(),
                backend: PortBackend::File("/proc/self/fd/5".into()),
            },
        ],
        ..base()
    };
    let got = words(&cmd.argv());
    let pos = |w: &str| got.iter().position(|g| g == w).unwrap();
    assert_eq!(got[pos("-serial") - 1], "socket,id=con,fd=3");
    let want = [
        "-device",
        "virtio-serial-device",
        "-chardev",
        "socket,id=port0,fd=7",
        "-device",
        "virtserialport,chardev=port0,name=rinit.stdin",
        "-chardev",
        "file,id=port1,path=/proc/self/fd/5",
        "-device",
        "virtserialport,chardev=port1,name=rinit.stdout",
    ];
    let at = pos("virtio-serial-device") - 1;
    assert_eq!(got[at..at + want.len()], want);
}

#[test]
fn commas_in_paths_are_escaped() {
    let cmd = QemuCmd {
        disks: vec![Disk {
            path: "/img/a,b.raw".into(),
            format: DiskFormat::Raw,
            readonly: false,
        }],
        ..base()
    };
    let got = words(&cmd.argv());
    assert!(got.contains(&"id=disk0,file=/img/a,,b.raw,format=raw,if=none".to_string()));
}

#[test]
fn disk_format_detection() {
    assert_eq!(DiskFormat::detect(b"QFI\xfb\0\0\0\x03"), DiskFormat::Qcow2);
    assert_eq!(DiskFormat::detect(&[0u8; 512]), DiskFormat::Raw);
    assert_eq!(DiskFormat::detect(b""), DiskFormat::Raw);
}

#[test]
fn shell_line_quotes_only_when_needed() {
    let argv: Vec<OsString> = ["qemu", "-append", "console=ttyS0 quiet", "it's"]
        .iter()
        .map(OsString::from)
        .collect();
    assert_eq!(
        shell_line(&argv),
        r"qemu -append 'console=ttyS0 quiet' 'it'\''s'"
    );
}
