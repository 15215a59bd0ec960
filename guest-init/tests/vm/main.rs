//! rinit in a real VM: the Debian cloud kernel under QEMU TCG `microvm`, rinit as `/init` of an
//! initramfs, `rinit-probe` as the workload. Each test boots once and checks the status record that
//! the host reads back (`rinit_status::find_last`), and what the probe printed.
//!
//! Needs the kernel in the `mvm` cache (`cargo xtask fetch-kernel`), `qemu-system-x86_64`, `depmod`
//! and `mkfs.ext4`; the virtiofs test also needs root and the C `virtiofsd` of QEMU 7.2.

mod harness;
mod roots;

use harness::{boot, Run};
use rinit_status::{find_last, Nonce, Outcome, Record};

fn record(run: &Run, nonce: &str) -> Record {
    let nonce = Nonce::new(nonce).unwrap();
    match find_last(&run.output, &nonce) {
        Ok(Some(r)) => r,
        other => panic!(
            "no valid record for {nonce:?} ({other:?}); console:\n{}",
            run.output
        ),
    }
}

/// Boots `-- /bin/probe <probe>` (or any `append`) and returns the record and the run.
fn probe(nonce: &str, append: &str, extra: &[&str]) -> (Record, Run) {
    let run = boot(&format!("rinit.nonce={nonce} {append}"), extra);
    assert!(
        run.status.success(),
        "QEMU exited with {}:\n{}",
        run.status,
        run.output
    );
    (record(&run, nonce), run)
}

fn outcome(nonce: &str, workload: &str) -> Outcome {
    let (rec, run) = probe(nonce, &format!("-- {workload}"), &[]);
    let m = rec.marks;
    let all = [m.start, m.modules, m.mounts, m.exec, m.exit];
    if rec.outcome != Outcome::SetupFailed {
        assert!(
            all.iter().all(Option::is_some),
            "marks missing: {m:?}\n{}",
            run.output
        );
        assert!(
            m.start <= m.exec && m.exec <= m.exit,
            "marks out of order: {m:?}"
        );
    }
    rec.outcome
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
    let (rec, run) = probe(
        "badroot",
        "rinit.root=virtiofs:nope -- /bin/probe exit 0",
        &[],
    );
    assert_eq!(rec.outcome, Outcome::SetupFailed);
    assert_eq!(rec.marks.exec, None);
    assert!(run.output.contains("mount root nope"), "{}", run.output);
    let (rec, _) = probe("badcwd", "rinit.cwd=/nonexistent -- /bin/probe exit 0", &[]);
    assert_eq!(rec.outcome, Outcome::SetupFailed);
}

#[test]
fn orphans_and_zombies_are_reaped() {
    let (rec, run) = probe("zombies", "-- /bin/probe zombies 100", &[]);
    assert_eq!(rec.outcome, Outcome::Exited(0));
    assert!(run.output.contains("PROBE forked 200"), "{}", run.output);
}

#[test]
fn leftovers_are_killed_after_the_grace_period() {
    let (rec, _) = probe("linger", "rinit.grace=200 -- /bin/probe linger", &[]);
    assert_eq!(rec.outcome, Outcome::Exited(3));
}

#[test]
fn sigterm_reaches_the_workload() {
    let (rec, run) = probe("term", "-- /bin/probe wait-term via-init", &[]);
    assert!(run.output.contains("PROBE got SIGTERM"), "{}", run.output);
    assert_eq!(rec.outcome, Outcome::Exited(7));
}

fn probe_values(run: &Run) -> Vec<&str> {
    run.output
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("PROBE "))
        .collect()
}

#[test]
fn environment_identity_and_terminal() {
    let append =
        "rinit.uid=1000 rinit.gid=100 rinit.cwd=/tmp \"rinit.env=FOO=a b\" rinit.hostname=box \
                  -- /bin/probe report";
    let (rec, run) = probe("report", append, &[]);
    assert_eq!(rec.outcome, Outcome::Exited(0));
    let v = probe_values(&run);
    for want in [
        "env FOO=a b",
        "env TERM=linux",
        "cwd=/tmp",
        "uid=1000 gid=100",
        "hostname=box",
        "session_leader=true",
        "foreground=true",
        "stdin=/dev/ttyS0",
        "lo_flags=0x9",
    ] {
        assert!(v.contains(&want), "missing PROBE {want}:\n{}", run.output);
    }
}

#[test]
fn spec_file() {
    let (rec, run) = probe("spec", "rinit.spec=/spec/report.spec", &[]);
    assert_eq!(rec.outcome, Outcome::Exited(0));
    let v = probe_values(&run);
    for want in [
        r#"argv=["report", "two words", "\"quoted\" 'and single'"]"#,
        "env GREETING=hello,  world",
        "env MULTI=a\tb",
        "cwd=/tmp",
        "uid=1000 gid=100",
        "hostname=spec-host",
    ] {
        assert!(v.contains(&want), "missing PROBE {want}:\n{}", run.output);
    }
}

#[test]
fn spec_from_fw_cfg() {
    let file = harness::assets().scratch.join("fw_cfg.spec");
    std::fs::write(&file, "arg /bin/probe\narg exit\narg 9\n").unwrap();
    let fw_cfg = format!("name=opt/rinit/spec,file={}", file.display());
    let (rec, run) = probe("fwcfg", "rinit.modules=qemu_fw_cfg", &["-fw_cfg", &fw_cfg]);
    assert_eq!(rec.outcome, Outcome::Exited(9), "{}", run.output);
}

#[test]
fn output_order_is_intact() {
    let (rec, run) = probe("order", "-- /bin/probe count 200", &[]);
    assert_eq!(rec.outcome, Outcome::Exited(0));
    let lines: Vec<&str> = probe_values(&run)
        .into_iter()
        .filter_map(|l| l.strip_prefix("line "))
        .collect();
    let want: Vec<String> = (1..=200).map(|i| i.to_string()).collect();
    assert_eq!(lines, want, "{}", run.output);
}

#[test]
fn the_workload_cannot_forge_the_record() {
    let (rec, run) = probe("forged", "-- /bin/probe forge forged", &[]);
    // The probe printed a valid record claiming 0, then exited 1: the host must see 1.
    assert_eq!(
        run.output.matches("RINIT-STATUS forged ").count(),
        2,
        "{}",
        run.output
    );
    assert_eq!(rec.outcome, Outcome::Exited(1));
}

#[test]
fn status_port_is_exclusive_and_carries_the_record() {
    let file = harness::assets().scratch.join("status-port.txt");
    let _ = std::fs::remove_file(&file);
    let chardev = format!("file,id=st,path={}", file.display());
    let extra = [
        "-device",
        "virtio-serial-device",
        "-chardev",
        &chardev,
        "-device",
        "virtserialport,chardev=st,name=rinit.status",
    ];
    let append = "rinit.modules=virtio_mmio,virtio_console rinit.waitport=5000 -- /bin/probe open /dev/vport0p1";
    let (rec, run) = probe("port", append, &extra);
    // EBUSY: rinit holds the port open, so the workload cannot write to it.
    assert!(probe_values(&run).contains(&"open=16"), "{}", run.output);
    let text = std::fs::read_to_string(&file).unwrap();
    assert_eq!(
        find_last(&text, &Nonce::new("port").unwrap()),
        Ok(Some(rec))
    );
}

#[test]
fn isa_debug_exit() {
    let extra = ["-device", "isa-debug-exit,iobase=0xf4,iosize=4"];
    let run = boot(
        "rinit.nonce=dbg rinit.debugexit -- /bin/probe exit 42",
        &extra,
    );
    assert_eq!(run.status.code(), Some((42 << 1) | 1), "{}", run.output);
    assert_eq!(
        rinit_status::code_from_debug_exit(run.status.code().unwrap()),
        Some(42)
    );
    assert_eq!(record(&run, "dbg").outcome, Outcome::Exited(42));
}

#[test]
fn reboot_without_acpi() {
    let append = "rinit.reboot reboot=t -- /bin/probe exit 4";
    let (rec, _) = probe("reboot", append, &["-M", "microvm,accel=tcg,acpi=off"]);
    assert_eq!(rec.outcome, Outcome::Exited(4));
}
