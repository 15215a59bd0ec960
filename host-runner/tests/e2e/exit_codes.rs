//! The workload's exit status comes back as `mvm`'s, and the runner's own codes.

use crate::util::{run, Out};

fn code(args: &[&str]) -> Out {
    let out = run(args);
    eprintln!("stderr: {}", out.stderr);
    out
}

#[test]
fn true_is_0() {
    assert_eq!(code(&["--", "true"]).code, 0);
}

#[test]
fn false_is_1() {
    assert_eq!(code(&["--", "false"]).code, 1);
}

#[test]
fn shell_exit_42() {
    let out = code(&["--", "sh", "-c", "echo hello; exit 42"]);
    assert_eq!(out.code, 42);
    assert_eq!(out.stdout_text(), "hello\n");
}

#[test]
fn missing_command_is_127() {
    let out = code(&["--", "no-such-command-anywhere"]);
    assert_eq!(out.code, 127);
}

#[test]
fn killed_by_signal_is_128_plus_n() {
    let out = code(&["--", "sh", "-c", "kill -9 $$"]);
    assert_eq!(out.code, 137);
}

#[test]
fn missing_kernel_is_125_with_one_line() {
    let out = code(&["--kernel", "/nonexistent/vmlinuz", "--", "true"]);
    assert_eq!(out.code, 125);
    assert_eq!(
        out.stderr,
        "mvm: error: kernel /nonexistent/vmlinuz: No such file or directory (os error 2)\n"
    );
}

#[test]
fn bad_option_is_125() {
    let out = code(&["--memory", "lots", "--", "true"]);
    assert_eq!(out.code, 125);
    assert!(out.stderr.contains("lots"), "{}", out.stderr);
}

#[test]
fn dry_run_prints_the_command_and_runs_nothing() {
    let out = code(&["--dry-run", "--", "true"]);
    assert_eq!(out.code, 0);
    assert!(out.stderr.contains("-M microvm,"), "{}", out.stderr);
    assert!(out.stderr.contains("isa-debug-exit"));
    assert!(out.stdout.is_empty());
}

#[test]
fn status_port_carries_the_code() {
    let out = code(&[
        "--status-port",
        "--",
        "sh",
        "-c",
        "echo RINIT-STATUS fake; exit 3",
    ]);
    assert_eq!(out.code, 3);
    assert_eq!(out.stdout_text(), "RINIT-STATUS fake\n");
}

#[test]
fn qemu_that_fails_to_start_is_125() {
    let out = code(&["--qemu", "false", "--", "true"]);
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert_eq!(out.stderr, "mvm: error: qemu: exit status: 1\n");
    let out = code(&["--qemu", "/nonexistent/qemu", "--", "true"]);
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(out
        .stderr
        .starts_with("mvm: error: /nonexistent/qemu: cannot start it"));
}

#[test]
fn doctor_reports_each_check() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mvm"))
        .arg("doctor")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for what in [
        "qemu",
        "fw.rom",
        "kvm",
        "virtiofsd",
        "rinit",
        "kernel",
        "tsc",
    ] {
        assert!(
            text.lines()
                .any(|l| l.get(6..).is_some_and(|r| r.starts_with(what))),
            "{what} missing:\n{text}"
        );
    }
}
