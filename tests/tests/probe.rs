//! Boot the probe kernel (`tests/probe`) with `-bios target/fw.rom` and check the
//! firmware's hand-off: Linux 64-bit boot protocol (`Documentation/arch/x86/boot.rst`) for
//! `probe.bzImage`, PVH (Xen `hvm/start_info.h`) for `probe-pvh.elf`, across memory sizes,
//! CPUs, machine options and initrd/no initrd; then bad inputs, each answered by one
//! `fw: error: ` line and the exit code of `bootproto::BootError`; then warm re-entry.
//!
//! Needs `cargo xtask build-fw` and `cargo xtask build-probe` first (tests say so if the
//! files are missing). The `qboot_*` tests check the probe itself against Debian's qboot.

use std::path::PathBuf;
use std::sync::OnceLock;

use bootproto::BootError;
use mvm_tests::probe::args::{Expect, Initrd};
use mvm_tests::probe::{Check, CMDLINE_SIZE, PASS};
use mvm_tests::{fw_rom, probe_image, pseudo_random_bytes, qboot_rom, scratch_file};
use mvm_tests::{Exit, Vm, BOOT_TIMEOUT};
use Image::{BzImage, Pvh};

const MIB: u64 = 1 << 20;
/// microvm without the legacy timer, interrupt controller and clock.
const NO_LEGACY: &str = "pit=off,pic=off,rtc=off";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Image {
    BzImage,
    Pvh,
}

impl Image {
    fn path(self) -> PathBuf {
        probe_image(match self {
            Image::BzImage => "probe.bzImage",
            Image::Pvh => "probe-pvh.elf",
        })
    }

    fn entry_line(self) -> &'static str {
        match self {
            Image::BzImage => "PROBE ENTRY bzImage-64",
            Image::Pvh => "PROBE ENTRY pvh",
        }
    }
}

/// One passing boot: what to run and what the probe is told to expect.
#[derive(Clone, Debug)]
struct Case {
    image: Image,
    /// `-m` and the same in bytes.
    mem: (&'static str, u64),
    smp: u32,
    /// Extra `-M` options.
    machine: &'static str,
    acpi: bool,
    initrd: bool,
    no_dma: bool,
    /// Appended to the command line after the `probe.*` options.
    tail: String,
}

impl Case {
    fn new(image: Image) -> Case {
        Case {
            image,
            mem: ("128M", 128 * MIB),
            smp: 1,
            machine: "",
            acpi: true,
            initrd: true,
            no_dma: false,
            tail: String::new(),
        }
    }

    fn mem(mut self, arg: &'static str, bytes: u64) -> Case {
        self.mem = (arg, bytes);
        self
    }
}

/// The test initrd (odd size, pseudo-random), written once per test process.
fn initrd() -> &'static (PathBuf, Initrd) {
    static INITRD: OnceLock<(PathBuf, Initrd)> = OnceLock::new();
    INITRD.get_or_init(|| {
        let data = pseudo_random_bytes(200_003, 42);
        (scratch_file("probe-initrd.bin", &data), Initrd::of(&data))
    })
}

/// QEMU's status, the probe's verdict and the whole serial log, for assertion messages.
fn describe(exit: &Exit) -> String {
    let verdict = exit
        .debug_exit_code()
        .map(|c| match Check::from_code(c) {
            _ if c == PASS => "probe PASS".to_owned(),
            Some(check) => format!("probe failed {check:?}"),
            None => format!("debug-exit code {c:#x}"),
        })
        .unwrap_or_else(|| "no debug-exit code".into());
    format!(
        "QEMU {} ({verdict})\n--- serial ---\n{}\n--- qemu stderr ---\n{}",
        exit.status, exit.serial, exit.stderr
    )
}

/// The probe started exactly once (no second boot, no loop).
fn assert_entered_once(exit: &Exit) {
    let entries = exit
        .lines()
        .filter(|l| l.starts_with("PROBE ENTRY"))
        .count();
    assert_eq!(
        entries,
        1,
        "probe entered {entries} times\n{}",
        describe(exit)
    );
}

fn run(vm: Vm) -> Exit {
    vm.spawn().wait_exit(BOOT_TIMEOUT).unwrap()
}

/// The VM for `case`, booting `fw.rom`, and its command line.
fn vm(case: &Case, firmware: PathBuf) -> (Vm, String) {
    let (initrd_path, initrd) = initrd();
    let expect = Expect {
        mem: Some(case.mem.1),
        initrd: case.initrd.then_some(*initrd),
        acpi: Some(case.acpi),
        reboot: false,
    };
    let append = format!("console=ttyS0{expect}{}", case.tail);
    let mut vm = Vm::new()
        .firmware(firmware)
        .machine(case.machine)
        .memory(case.mem.0)
        .smp(case.smp)
        .kernel(case.image.path())
        .append(&append)
        .debug_exit(true);
    if !case.acpi {
        vm = vm.machine("acpi=off");
    }
    if case.initrd {
        vm = vm.initrd(initrd_path);
    }
    if case.no_dma {
        vm = vm.extra_args(["-global", "fw_cfg_io.dma_enabled=off"]);
    }
    (vm, append)
}

/// Boot `case` with fw.rom and require PASS, one entry, and the command line echoed
/// byte for byte.
fn pass(case: Case) {
    let (vm, append) = vm(&case, fw_rom());
    let exit = run(vm);
    assert_eq!(
        exit.debug_exit_code(),
        Some(PASS),
        "{case:?}\n{}",
        describe(&exit)
    );
    assert_entered_once(&exit);
    assert!(
        exit.lines().any(|l| l == case.image.entry_line()),
        "wrong entry path\n{}",
        describe(&exit)
    );
    assert_eq!(
        exit.line_starting("PROBE CMDLINE "),
        Some(format!("PROBE CMDLINE {append}").as_str()),
        "command line differs from -append\n{}",
        describe(&exit)
    );
}

/// One `#[test]` per passing case.
macro_rules! pass_tests {
    ($($(#[doc = $doc:literal])* $name:ident: $case:expr;)*) => {
        $($(#[doc = $doc])* #[test] fn $name() { pass($case) })*
    };
}

/// Double spaces, quotes, a tab and UTF-8: all must arrive unchanged.
const ODD_CMDLINE: &str = "  quoted=\"a b\"\tutf8=größe end=";

pass_tests! {
    bzimage_128m: Case::new(BzImage);
    bzimage_1g: Case::new(BzImage).mem("1G", 1 << 30);
    bzimage_4g: Case::new(BzImage).mem("4G", 4 << 30);
    /// Five GiB above 4 GiB: the identity map must reach all of it.
    bzimage_8g: Case::new(BzImage).mem("8G", 8 << 30);
    pvh_128m: Case::new(Pvh);
    pvh_1g: Case::new(Pvh).mem("1G", 1 << 30);
    pvh_4g: Case::new(Pvh).mem("4G", 4 << 30);
    bzimage_smp2: Case { smp: 2, ..Case::new(BzImage) };
    pvh_smp2: Case { smp: 2, ..Case::new(Pvh) };
    bzimage_acpi_off: Case { acpi: false, ..Case::new(BzImage) };
    pvh_acpi_off: Case { acpi: false, ..Case::new(Pvh).mem("1G", 1 << 30) };
    bzimage_without_pit_pic_rtc: Case { machine: NO_LEGACY, ..Case::new(BzImage) };
    pvh_without_pit_pic_rtc: Case { machine: NO_LEGACY, ..Case::new(Pvh) };
    bzimage_without_initrd: Case { initrd: false, ..Case::new(BzImage) };
    pvh_without_initrd: Case { initrd: false, ..Case::new(Pvh) };
    bzimage_cmdline_is_byte_exact: Case { tail: ODD_CMDLINE.into(), ..Case::new(BzImage) };
    pvh_cmdline_is_byte_exact: Case { tail: ODD_CMDLINE.into(), ..Case::new(Pvh) };
    /// PVH has no `cmdline_size`: longer than the bzImage limit still works.
    pvh_long_cmdline: Case { tail: format!(" pad={}", "y".repeat(3000)), ..Case::new(Pvh) };
    /// Without fw_cfg DMA the firmware must fall back to port I/O.
    bzimage_without_fw_cfg_dma: Case { no_dma: true, ..Case::new(BzImage) };
    pvh_without_fw_cfg_dma: Case { no_dma: true, ..Case::new(Pvh) };
}

/// Exactly `cmdline_size` (2048) bytes is allowed.
#[test]
fn bzimage_cmdline_at_limit() {
    let mut case = Case::new(BzImage);
    let (_, append) = vm(&case, PathBuf::new());
    let pad = CMDLINE_SIZE as usize - append.len() - " pad=".len();
    case.tail = format!(" pad={}", "x".repeat(pad));
    assert_eq!(vm(&case, PathBuf::new()).1.len(), CMDLINE_SIZE as usize);
    pass(case);
}

/// Without COM1 (`isa-serial=off`, and no PIT, PIC or RTC either) the firmware still boots
/// both images; the probe's verdict arrives through `isa-debug-exit` alone.
#[test]
fn boots_without_any_legacy_device() {
    for image in [BzImage, Pvh] {
        let case = Case {
            machine: "pit=off,pic=off,rtc=off,isa-serial=off",
            ..Case::new(image)
        };
        let exit = run(vm(&case, fw_rom()).0);
        assert_eq!(
            exit.debug_exit_code(),
            Some(PASS),
            "{image:?}\n{}",
            describe(&exit)
        );
        assert!(exit.serial.is_empty(), "no COM1, yet: {}", describe(&exit));
    }
}

/// Without COM1 a bad input still ends QEMU with the documented code.
#[test]
fn error_without_com1_still_exits() {
    let exit = run(Vm::new()
        .machine("isa-serial=off")
        .firmware(fw_rom())
        .debug_exit(true));
    assert_eq!(
        exit.debug_exit_code(),
        Some(BootError::NoKernel.exit_code()),
        "{}",
        describe(&exit)
    );
}

/// What the firmware's error line must say.
enum Message {
    /// The whole text after `fw: error: `.
    Exact(BootError),
    /// The start of it (for errors whose numbers depend on the firmware's layout).
    Prefix(&'static str),
}

/// Boot `vm` with fw.rom and require `fw: error: <message>` and exit code `code`, and that
/// the probe never ran.
fn fw_error(vm: Vm, code: u8, message: Message) {
    let exit = run(vm.firmware(fw_rom()).debug_exit(true));
    let line = exit
        .line_starting("fw: error: ")
        .map(|l| &l["fw: error: ".len()..]);
    let ok = match (&message, line) {
        (Message::Exact(e), Some(line)) => line == e.to_string(),
        (Message::Prefix(p), Some(line)) => line.starts_with(p),
        (_, None) => false,
    };
    let want = match &message {
        Message::Exact(e) => e.to_string(),
        Message::Prefix(p) => format!("{p}..."),
    };
    assert!(ok, "want `fw: error: {want}`\n{}", describe(&exit));
    assert_eq!(exit.debug_exit_code(), Some(code), "{}", describe(&exit));
    assert!(
        !exit.serial.contains("PROBE ENTRY"),
        "the probe ran\n{}",
        describe(&exit)
    );
}

fn probe_vm(file: &str) -> Vm {
    Vm::new().kernel(probe_image(file)).append("console=ttyS0")
}

#[test]
fn error_no_kernel() {
    let e = BootError::NoKernel;
    fw_error(Vm::new(), e.exit_code(), Message::Exact(e));
}

/// QEMU 7.2 loads a file that is neither bzImage, multiboot nor ELF as an ancient zImage
/// (protocol 0) and passes it on; the firmware must refuse it.
#[test]
fn error_garbage_kernel() {
    let e = BootError::UnknownKernelFormat;
    fw_error(probe_vm("garbage.bin"), e.exit_code(), Message::Exact(e));
}

#[test]
fn error_protocol_too_old() {
    let e = BootError::ProtocolTooOld { version: 0x0200 };
    fw_error(
        probe_vm("bad-version.bzImage"),
        e.exit_code(),
        Message::Exact(e),
    );
}

#[test]
fn error_no_64bit_entry() {
    let e = BootError::NoKernel64;
    fw_error(probe_vm("no64.bzImage"), e.exit_code(), Message::Exact(e));
}

#[test]
fn error_kernel_too_big() {
    let code = BootError::KernelTooBig { need: 0, have: 0 }.exit_code();
    let vm = probe_vm("huge.bzImage").memory("128M");
    fw_error(vm, code, Message::Prefix("kernel does not fit in RAM"));
}

#[test]
fn error_cmdline_too_long() {
    let append = format!("console=ttyS0 pad={}", "z".repeat(3000));
    let e = BootError::CmdlineTooLong {
        len: append.len() as u32,
        max: CMDLINE_SIZE,
    };
    let vm = probe_vm("probe.bzImage").append(append);
    fw_error(vm, e.exit_code(), Message::Exact(e));
}

/// `probe.reboot=1`: after passing, the probe goes back to F000:FFF0 without a platform
/// reset (Linux `reboot=b`). The firmware must notice the re-entry and force a real reset,
/// which `-no-reboot` turns into QEMU exiting; the probe must have run exactly once.
fn warm_reentry(image: Image) {
    let vm = Vm::new()
        .firmware(fw_rom())
        .kernel(image.path())
        .append("console=ttyS0 probe.reboot=1")
        .debug_exit(true)
        .no_reboot(true);
    let exit = run(vm);
    assert_entered_once(&exit);
    assert!(
        exit.lines().any(|l| l == "PROBE REBOOT"),
        "the probe did not reach its reboot\n{}",
        describe(&exit)
    );
    assert!(
        exit.status.success(),
        "QEMU should exit 0 on the reset with -no-reboot\n{}",
        describe(&exit)
    );
}

#[test]
fn bzimage_warm_reentry_resets() {
    warm_reentry(Image::BzImage);
}

#[test]
fn pvh_warm_reentry_resets() {
    warm_reentry(Image::Pvh);
}

/// The probe itself, against qboot: PVH passes all checks.
#[test]
fn qboot_pvh_passes() {
    let Some(qboot) = qboot_rom() else {
        eprintln!("skipped: no /usr/share/qemu/qboot.rom");
        return;
    };
    let (vm, _) = vm(&Case::new(Pvh), qboot);
    let exit = run(vm);
    assert_eq!(exit.debug_exit_code(), Some(PASS), "{}", describe(&exit));
}

/// The probe itself, against qboot: qboot enters a bzImage through its 16-bit setup code,
/// which the probe reports.
#[test]
fn qboot_bzimage_runs_setup_code() {
    let Some(qboot) = qboot_rom() else {
        eprintln!("skipped: no /usr/share/qemu/qboot.rom");
        return;
    };
    let (vm, _) = vm(&Case::new(BzImage), qboot);
    let exit = run(vm);
    assert_eq!(
        exit.debug_exit_code(),
        Some(Check::Entry16.code()),
        "{}",
        describe(&exit)
    );
    assert_eq!(
        exit.line_starting("PROBE FAIL"),
        Some("PROBE FAIL entry: 16-bit setup code was run"),
        "{}",
        describe(&exit)
    );
}
