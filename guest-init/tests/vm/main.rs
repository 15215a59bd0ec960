//! rinit in a real VM: the Debian cloud kernel under QEMU TCG `microvm`, rinit as `/init` of an
//! initramfs, `rinit-probe` as the workload. Each test boots once and checks the status record that
//! the host reads back (`rinit_status::find_last`), and what the probe printed.
//!
//! Needs the kernel in the `mvm` cache (`cargo xtask fetch-kernel`), `qemu-system-x86_64`, `depmod`
//! and `mkfs.ext4`; the virtiofs test also needs root and the C `virtiofsd` of QEMU 7.2.

mod harness;

use harness::{boot, Run};
use rinit_status::{find_last, Nonce, Outcome, Record};
use std::process::{Child, Command};

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

fn ext4_image(name: &str) -> std::path::PathBuf {
    let a = harness::assets();
    let tree = a.scratch.join(format!("{name}-tree"));
    let _ = std::fs::remove_dir_all(&tree);
    for dir in ["bin", "etc", "proc", "sys", "dev", "tmp", "run"] {
        std::fs::create_dir_all(tree.join(dir)).unwrap();
    }
    std::fs::copy(&a.probe, tree.join("bin/probe")).unwrap();
    std::fs::write(tree.join("etc/marker"), "block root\n").unwrap();
    let img = a.scratch.join(format!("{name}.img"));
    let _ = std::fs::remove_file(&img);
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-d"])
        .arg(&tree)
        .arg(&img)
        .arg("32M")
        .output();
    assert!(out.is_ok_and(|o| o.status.success()), "mkfs.ext4 failed");
    img
}

#[test]
fn block_root_read_only_and_read_write() {
    let img = ext4_image("blockroot");
    let drive = format!("file={},if=none,id=d,format=raw", img.display());
    let extra = ["-drive", &drive, "-device", "virtio-blk-device,drive=d"];
    let base = "rinit.modules=virtio_mmio,virtio_blk rinit.root=/dev/vda";
    let (rec, run) = probe(
        "blk-ro",
        &format!("{base} rinit.ro -- /bin/probe open /etc/marker"),
        &extra,
    );
    assert_eq!(rec.outcome, Outcome::Exited(0));
    assert!(
        probe_values(&run).contains(&"open=30"),
        "EROFS expected:\n{}",
        run.output
    );
    let (_, run) = probe(
        "blk-rw",
        &format!("{base} -- /bin/probe open /etc/marker"),
        &extra,
    );
    assert!(probe_values(&run).contains(&"open=ok"), "{}", run.output);
    // rinit unmounted (or remounted read-only) the root before powering off: the image is clean.
    let fsck = Command::new("e2fsck")
        .arg("-fn")
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        fsck.status.success(),
        "{}",
        String::from_utf8_lossy(&fsck.stdout)
    );
}

/// A C `virtiofsd` (QEMU 7.2) serving `dir` on `socket`; killed on drop.
struct Virtiofsd(Child);

impl Virtiofsd {
    fn start(dir: &std::path::Path, socket: &std::path::Path) -> Virtiofsd {
        let _ = std::fs::remove_file(socket);
        let child = Command::new("/usr/lib/qemu/virtiofsd")
            .arg(format!("--socket-path={}", socket.display()))
            .args([
                "-o",
                &format!("source={}", dir.display()),
                "-o",
                "cache=always",
                "-o",
                "sandbox=chroot",
            ])
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        // The C daemon binds and listens in one step, and it exits after its first client leaves,
        // so wait for the socket file instead of test-connecting to it.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !socket.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "virtiofsd socket {} never appeared",
                socket.display()
            );
            std::thread::yield_now();
        }
        Virtiofsd(child)
    }
}

impl Drop for Virtiofsd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn virtiofs_root_and_extra_mount() {
    // SAFETY: geteuid only reads the caller's credentials.
    if !std::path::Path::new("/usr/lib/qemu/virtiofsd").exists() || unsafe { libc::geteuid() } != 0
    {
        eprintln!("skipped: needs root and /usr/lib/qemu/virtiofsd");
        return;
    }
    let a = harness::assets();
    let root = a.scratch.join("vfs-root");
    let data = a.scratch.join("vfs-data");
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&data);
    for dir in ["bin", "proc", "sys", "dev", "mnt/data"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(&a.probe, root.join("bin/probe")).unwrap();
    std::fs::write(data.join("file"), "data\n").unwrap();
    // The daemon exits when QEMU disconnects, so this test connects once per daemon.
    let (s1, s2) = (
        a.scratch.join("vfs-root.sock"),
        a.scratch.join("vfs-data.sock"),
    );
    let _d1 = Virtiofsd::start(&root, &s1);
    let _d2 = Virtiofsd::start(&data, &s2);
    let (c1, c2) = (
        format!("socket,id=vfs1,path={}", s1.display()),
        format!("socket,id=vfs2,path={}", s2.display()),
    );
    let extra = [
        "-chardev",
        &c1,
        "-device",
        "vhost-user-fs-device,chardev=vfs1,tag=ROOT",
        "-chardev",
        &c2,
        "-device",
        "vhost-user-fs-device,chardev=vfs2,tag=DATA",
        "-object",
        "memory-backend-memfd,id=mem,size=256M,share=on",
        "-machine",
        "memory-backend=mem",
        "-global",
        "virtio-mmio.force-legacy=false",
    ];
    let append = "rinit.modules=virtio_mmio,virtiofs rinit.root=virtiofs:ROOT rinit.mount=DATA:/mnt/data:ro \
                  -- /bin/probe open /mnt/data/file";
    let (rec, run) = probe("vfs", append, &extra);
    assert_eq!(rec.outcome, Outcome::Exited(0));
    assert!(
        probe_values(&run).contains(&"open=30"),
        "read-only extra mount expected:\n{}",
        run.output
    );
}

#[test]
fn modules_without_modules_dep() {
    // Debian's packages ship no modules.dep: rinit reads each module's `depends=` instead.
    let img = ext4_image("nodep");
    let drive = format!("file={},if=none,id=d,format=raw", img.display());
    let extra = ["-drive", &drive, "-device", "virtio-blk-device,drive=d"];
    let append =
        "rinit.nonce=nodep rinit.modules=virtio_mmio,virtio_blk rinit.root=/dev/vda rinit.ro \
                  -- /bin/probe exit 0";
    let run = harness::boot_initramfs(&harness::assets().initramfs_nodep, append, &extra);
    assert_eq!(
        record(&run, "nodep").outcome,
        Outcome::Exited(0),
        "{}",
        run.output
    );
}
