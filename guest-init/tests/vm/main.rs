//! rinit in a real VM: the Debian cloud kernel under QEMU TCG `microvm`, rinit as `/init` of an
//! initramfs (or, in [`rootmode`], started by a busybox initramfs's `switch_root`), `rinit-probe`
//! as the workload. Each test boots once and checks the status record that the host reads back
//! (`rinit_status::find_last`), and what the probe printed. QEMU runs on the shared `mvm-tests`
//! harness; [`assets`] builds what it boots.
//!
//! Needs the kernel in the `mvm` cache (`cargo xtask fetch-kernel`), `qemu-system-x86_64`,
//! `depmod`, `mkfs.ext4`, `e2fsck` and a static busybox (`busybox-static`); the virtiofs test also
//! needs root and the C `virtiofsd` of QEMU 7.2.

mod assets;
mod rootmode;
mod roots;

use assets::{assets, run, vm};
use mvm_tests::{Exit, Vm};
use rinit_status::{find_last, Nonce, Outcome, Record};

/// The console and QEMU's own messages, for assertion messages.
fn log(exit: &Exit) -> String {
    format!("{}\n--- qemu stderr ---\n{}", exit.serial, exit.stderr)
}

fn record(exit: &Exit, nonce: &str) -> Record {
    let nonce = Nonce::new(nonce).unwrap();
    match find_last(&exit.serial, &nonce) {
        Ok(Some(r)) => r,
        other => panic!(
            "no valid record for {nonce:?} ({other:?}); console:\n{}",
            log(exit)
        ),
    }
}

/// Every run that started its workload has all timing marks, in order.
fn check_marks(rec: &Record, exit: &Exit) {
    if rec.outcome == Outcome::SetupFailed {
        return;
    }
    let m = rec.marks;
    let all = [m.start, m.modules, m.mounts, m.exec, m.exit];
    assert!(
        all.iter().all(Option::is_some),
        "marks missing: {m:?}\n{}",
        log(exit)
    );
    assert!(
        m.start <= m.modules && m.modules <= m.mounts && m.mounts <= m.exec && m.exec <= m.exit,
        "marks out of order: {m:?}"
    );
}

/// Runs `vm` with `rinit.nonce=<nonce>` known to be on its command line; expects QEMU to exit
/// cleanly (power-off or reset) and returns the record and the run.
fn expect_record(vm: &Vm, nonce: &str) -> (Record, Exit) {
    let exit = run(vm);
    assert!(
        exit.status.success(),
        "QEMU exited with {}:\n{}",
        exit.status,
        log(&exit)
    );
    let rec = record(&exit, nonce);
    check_marks(&rec, &exit);
    (rec, exit)
}

/// Boots the test initramfs with `rinit.nonce=<nonce> <append>`, the VM adjusted by `more`.
fn probe_with(nonce: &str, append: &str, more: impl FnOnce(Vm) -> Vm) -> (Record, Exit) {
    let base = vm(
        &assets().initramfs,
        &format!("rinit.nonce={nonce} {append}"),
    );
    expect_record(&more(base), nonce)
}

/// [`probe_with`] on the plain VM.
fn probe(nonce: &str, append: &str) -> (Record, Exit) {
    probe_with(nonce, append, |vm| vm)
}

fn outcome(nonce: &str, workload: &str) -> Outcome {
    probe(nonce, &format!("-- {workload}")).0.outcome
}

/// The probe's `PROBE …` lines, without the prefix.
fn probe_values(exit: &Exit) -> Vec<&str> {
    exit.lines()
        .filter_map(|l| l.strip_prefix("PROBE "))
        .collect()
}

/// Asserts that the probe printed each of `want`.
fn assert_printed(exit: &Exit, want: &[&str]) {
    let v = probe_values(exit);
    for w in want {
        assert!(v.contains(w), "missing PROBE {w}:\n{}", log(exit));
    }
}

#[test]
fn exit_codes() {
    assert_eq!(outcome("exit0", "/bin/probe exit 0"), Outcome::Exited(0));
    assert_eq!(outcome("exit1", "/bin/probe exit 1"), Outcome::Exited(1));
    assert_eq!(outcome("exit42", "/bin/probe exit 42"), Outcome::Exited(42));
}

#[test]
fn not_found_and_not_executable() {
    assert_eq!(outcome("nf", "/bin/nonexistent"), Outcome::NotFound);
    assert_eq!(outcome("nf-path", "nonexistent"), Outcome::NotFound);
    assert_eq!(outcome("noexec", "/notexec"), Outcome::NotExecutable);
}

#[test]
fn killed_by_a_signal() {
    let o = outcome("sig", "/bin/probe signal 9");
    assert_eq!((o, o.code()), (Outcome::Signaled(9), 137));
}

#[test]
fn setup_failure_is_125() {
    // No virtiofs module loaded: the kernel does not know the filesystem.
    let (rec, exit) = probe("badroot", "rinit.root=virtiofs:nope -- /bin/probe exit 0");
    assert_eq!(rec.outcome, Outcome::SetupFailed);
    assert_eq!(rec.marks.exec, None);
    assert!(exit.serial.contains("mount root nope"), "{}", log(&exit));
    let (rec, _) = probe("badcwd", "rinit.cwd=/nonexistent -- /bin/probe exit 0");
    assert_eq!(rec.outcome, Outcome::SetupFailed);
}

#[test]
fn orphans_and_zombies_are_reaped() {
    let (rec, exit) = probe("zombies", "-- /bin/probe zombies 100");
    assert_eq!(rec.outcome, Outcome::Exited(0));
    assert_printed(&exit, &["forked 200"]);
}

#[test]
fn leftovers_are_killed_after_the_grace_period() {
    let (rec, _) = probe("linger", "rinit.grace=200 -- /bin/probe linger");
    assert_eq!(rec.outcome, Outcome::Exited(3));
}

#[test]
fn sigterm_reaches_the_workload() {
    let (rec, exit) = probe("term", "-- /bin/probe wait-term via-init");
    assert_printed(&exit, &["got SIGTERM"]);
    assert_eq!(rec.outcome, Outcome::Exited(7));
}

#[test]
fn environment_identity_and_terminal() {
    let append = "rinit.uid=1000 rinit.gid=100 rinit.cwd=/tmp \"rinit.env=FOO=a b\" \
                  rinit.hostname=box rinit.term=xterm-256color rinit.cols=132 rinit.rows=43 \
                  -- /bin/probe report";
    let (rec, exit) = probe("report", append);
    assert_eq!(rec.outcome, Outcome::Exited(0));
    assert_printed(
        &exit,
        &[
            "env FOO=a b",
            "env TERM=xterm-256color",
            "cwd=/tmp",
            "uid=1000 gid=100",
            "hostname=box",
            "session_leader=true",
            "foreground=true",
            "stdin=/dev/ttyS0",
            "winsize=43x132",
            "lo_flags=0x9",
        ],
    );
}

#[test]
fn spec_file() {
    let (rec, exit) = probe("spec", "rinit.spec=/spec/report.spec");
    assert_eq!(rec.outcome, Outcome::Exited(0));
    assert_printed(
        &exit,
        &[
            r#"argv=["report", "two words", "\"quoted\" 'and single'"]"#,
            "env GREETING=hello,  world",
            "env MULTI=a\tb",
            "cwd=/tmp",
            "uid=1000 gid=100",
            "hostname=spec-host",
            // Defaults: rinit's TERM, and the serial port's own size (none).
            "env TERM=linux",
            "winsize=0x0",
        ],
    );
}

#[test]
fn spec_from_fw_cfg() {
    let file = assets().scratch.join("fw_cfg.spec");
    std::fs::write(&file, "arg /bin/probe\narg exit\narg 9\n").unwrap();
    let fw_cfg = format!("name=opt/rinit/spec,file={}", file.display());
    let (rec, exit) = probe_with("fwcfg", "rinit.modules=qemu_fw_cfg", |vm| {
        vm.extra_args(["-fw_cfg", &fw_cfg])
    });
    assert_eq!(rec.outcome, Outcome::Exited(9), "{}", log(&exit));
}

#[test]
fn output_order_is_intact() {
    let (rec, exit) = probe("order", "-- /bin/probe count 200");
    assert_eq!(rec.outcome, Outcome::Exited(0));
    let lines: Vec<&str> = probe_values(&exit)
        .into_iter()
        .filter_map(|l| l.strip_prefix("line "))
        .collect();
    let want: Vec<String> = (1..=200).map(|i| i.to_string()).collect();
    assert_eq!(lines, want, "{}", log(&exit));
}

#[test]
fn the_workload_cannot_forge_the_record() {
    let (rec, exit) = probe("forged", "-- /bin/probe forge forged");
    // The probe printed a valid record claiming 0, then exited 1: the host must see 1.
    let forged = exit.serial.matches("RINIT-STATUS forged ").count();
    assert_eq!(forged, 2, "{}", log(&exit));
    assert_eq!(rec.outcome, Outcome::Exited(1));
}

#[test]
fn status_port_is_exclusive_and_carries_the_record() {
    let file = assets().scratch.join("status-port.txt");
    let _ = std::fs::remove_file(&file);
    let chardev = format!("file,id=st,path={}", file.display());
    let append = "rinit.modules=virtio_mmio,virtio_console rinit.waitport=5000 \
                  -- /bin/probe open /dev/vport0p1";
    let (rec, exit) = probe_with("port", append, |vm| {
        vm.extra_args(["-device", "virtio-serial-device", "-chardev", &chardev])
            .extra_args(["-device", "virtserialport,chardev=st,name=rinit.status"])
    });
    // EBUSY: rinit holds the port open, so the workload cannot write to it.
    assert_printed(&exit, &["open=16"]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        find_last(&text, &Nonce::new("port").unwrap()),
        Ok(Some(rec))
    );
}

#[test]
fn isa_debug_exit() {
    let append = "rinit.nonce=dbg rinit.debugexit -- /bin/probe exit 42";
    let exit = run(&vm(&assets().initramfs, append).debug_exit(true));
    assert_eq!(exit.status.code(), Some((42 << 1) | 1), "{}", log(&exit));
    assert_eq!(
        rinit_status::code_from_debug_exit(exit.status.code().unwrap()),
        Some(42)
    );
    assert_eq!(exit.debug_exit_code(), Some(42));
    let rec = record(&exit, "dbg");
    check_marks(&rec, &exit);
    assert_eq!(rec.outcome, Outcome::Exited(42));
}

#[test]
fn reboot_without_acpi() {
    let append = "rinit.reboot reboot=t -- /bin/probe exit 4";
    let (rec, _) = probe_with("reboot", append, |vm| vm.machine("acpi=off"));
    assert_eq!(rec.outcome, Outcome::Exited(4));
}
