//! Timeouts, signals and a dying virtiofsd end the run cleanly: the documented code, and no QEMU,
//! no virtiofsd and no run directory left behind.

use crate::util::{
    busybox_root, finish, nonce_from, processes_with, require_virtiofsd, run, run_dirs_of, scratch,
    signal, stream_lines, wait_for_line, Mvm, RUN_LIMIT,
};
use std::time::{Duration, Instant};

/// Nothing of the run with `nonce` (QEMU), the share `share` (virtiofsd) or mvm `pid` remains.
fn assert_nothing_left(nonce: &str, share: Option<&str>, pid: u32) {
    assert!(processes_with(nonce).is_empty(), "QEMU still running");
    if let Some(share) = share {
        let needle = format!("--shared-dir={share}");
        assert!(
            processes_with(&needle).is_empty(),
            "virtiofsd still running"
        );
    }
    assert!(run_dirs_of(pid).is_empty(), "run directory left behind");
}

/// Starts `mvm run --print-cmd [--root ROOT] -- sh -c 'echo started; sleep 1000'` and waits
/// until the workload runs. Returns mvm, its pid and the receiver of its stdout lines (keep
/// it alive so the reader thread keeps draining stdout).
fn start_sleeper(root: Option<&str>) -> (Mvm, u32, std::sync::mpsc::Receiver<String>) {
    let mut args = vec!["--print-cmd"];
    if let Some(root) = root {
        args.extend(["--root", root]);
    }
    args.extend(["--", "sh", "-c", "echo started; sleep 1000"]);
    let mut child = Mvm::start(&args);
    let pid = child.id();
    let lines = stream_lines(&mut child);
    wait_for_line(&lines, "started");
    (child, pid, lines)
}

#[test]
fn timeout_is_124_and_leaves_nothing() {
    let start = Instant::now();
    let child = Mvm::start(&["--print-cmd", "--timeout", "4s", "--", "sleep", "1000"]);
    let pid = child.id();
    let out = finish(child, RUN_LIMIT);
    assert_eq!(out.code, 124, "{}", out.stderr);
    assert!(out.stderr.contains("timed out after 4s"), "{}", out.stderr);
    assert!(start.elapsed() < Duration::from_secs(60));
    let nonce = nonce_from(&out.stderr).expect("nonce in --print-cmd output");
    assert_nothing_left(&nonce, None, pid);
}

#[test]
fn sigint_stops_the_vm_and_virtiofsd() {
    require_virtiofsd();
    let dir = scratch("sigint");
    let root = busybox_root(&dir);
    let root_s = root.to_str().unwrap();
    let (child, pid, _lines) = start_sleeper(Some(root_s));
    signal(pid, libc::SIGINT);
    let out = finish(child, Duration::from_secs(30));
    assert_eq!(out.code, 130, "{}", out.stderr);
    assert!(
        out.stderr.contains("interrupted by signal 2"),
        "{}",
        out.stderr
    );
    let nonce = nonce_from(&out.stderr).expect("nonce");
    assert_nothing_left(&nonce, Some(root_s), pid);
}

#[test]
fn sigterm_is_143() {
    let (child, pid, _lines) = start_sleeper(None);
    signal(pid, libc::SIGTERM);
    let out = finish(child, Duration::from_secs(30));
    assert_eq!(out.code, 143, "{}", out.stderr);
    let nonce = nonce_from(&out.stderr).expect("nonce");
    assert_nothing_left(&nonce, None, pid);
}

#[test]
fn killed_virtiofsd_is_a_clear_error_not_a_hang() {
    require_virtiofsd();
    let dir = scratch("vfs-killed");
    let root = busybox_root(&dir);
    let root_s = root.to_str().unwrap();
    let (child, pid, _lines) = start_sleeper(Some(root_s));
    let daemons = processes_with(&format!("--shared-dir={root_s}"));
    assert!(!daemons.is_empty(), "virtiofsd not found");
    for d in daemons {
        signal(d, libc::SIGKILL);
    }
    let start = Instant::now();
    let out = finish(child, Duration::from_secs(30));
    assert!(start.elapsed() < Duration::from_secs(10), "mvm hung");
    assert_eq!(out.code, 125, "{}", out.stderr);
    assert!(
        out.stderr.contains("virtiofsd for")
            && out.stderr.contains("exited while the VM was running"),
        "{}",
        out.stderr
    );
    let nonce = nonce_from(&out.stderr).expect("nonce");
    assert_nothing_left(&nonce, Some(root_s), pid);
}

#[test]
fn guest_without_record_is_255() {
    // A kernel that cannot find its init panics (panic=-1 + -no-reboot ends QEMU with status 0):
    // the runner must not take that for success.
    let out = run(&[
        "--append",
        "rdinit=/nonexistent init=/nonexistent",
        "--",
        "true",
    ]);
    assert_eq!(out.code, 255, "{}", out.stderr);
    assert!(
        out.stderr.contains("without a status record"),
        "{}",
        out.stderr
    );
}
