//! Helpers for the end-to-end tests: run the `mvm` binary, build small root trees and images,
//! and look for leftover processes and run directories.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest a single `mvm run` may take in these tests (TCG on a loaded 2-core machine).
pub const RUN_LIMIT: Duration = Duration::from_secs(120);

/// What a finished `mvm` printed and returned.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Out {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Fails with the setup step when something the guest runs needs is missing.
pub fn require_artefacts() {
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
    let fw = target.join("fw.rom");
    assert!(
        fw.is_file(),
        "{} is missing: run `cargo xtask build-fw` first",
        fw.display()
    );
    let rinit = target.join("x86_64-unknown-linux-musl/release/rinit");
    assert!(
        rinit.is_file() || std::env::var_os("MVM_RINIT").is_some(),
        "{} is missing: run `{}` first",
        rinit.display(),
        mvm::locate::RINIT_BUILD
    );
    assert!(
        Path::new("/bin/busybox").is_file(),
        "/bin/busybox is missing: run `./x.sh setup` (installs busybox-static)"
    );
}

/// Fails with the setup step when no virtiofsd is installed.
pub fn require_virtiofsd() {
    if let Err(e) = mvm::virtiofsd::find(mvm::kernel::cache_dir().ok().as_deref()) {
        panic!("{e}");
    }
}

/// `mvm run -q ARGS…` as a command.
pub fn mvm_run(args: &[&str]) -> Command {
    require_artefacts();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mvm"));
    cmd.arg("run").arg("-q").args(args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A running `mvm`, interrupted (SIGINT, then SIGKILL) if a test fails while it runs, so a
/// failed test leaves no VM behind.
#[derive(Debug)]
pub struct Mvm(pub Child);

impl Mvm {
    /// Starts `mvm run -q ARGS…`.
    pub fn start(args: &[&str]) -> Mvm {
        Mvm(mvm_run(args).spawn().expect("start mvm"))
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Mvm {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            // SAFETY: kill has no memory effects; the pid is our unreaped child.
            unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGINT) };
            let end = Instant::now() + Duration::from_secs(10);
            while matches!(self.0.try_wait(), Ok(None)) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Runs `mvm run -q ARGS…` to the end (killing it after [`RUN_LIMIT`]).
pub fn run(args: &[&str]) -> Out {
    finish(Mvm::start(args), RUN_LIMIT)
}

/// Collects a child's output and status, stopping it after `limit`.
pub fn finish(mut mvm: Mvm, limit: Duration) -> Out {
    let child = &mut mvm.0;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let out_thread = std::thread::spawn(move || {
        let mut v = Vec::new();
        if let Some(mut s) = stdout {
            let _ = s.read_to_end(&mut v);
        }
        v
    });
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(mut e) = stderr {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait for mvm") {
            break st;
        }
        if start.elapsed() > limit {
            panic!("mvm did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Out {
        code: status.code().unwrap_or(-1),
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
    }
}

/// A scratch directory under Cargo's per-target temp dir, emptied first.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("e2e-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// A minimal root tree: static busybox with a few applets, the usual mount points, a marker.
pub fn busybox_root(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "run", "mnt"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "cat", "echo", "touch", "ls", "sleep", "pwd", "true", "mkdir",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    std::fs::write(root.join("etc/marker"), "root-from-host\n").unwrap();
    root
}

/// The nonce of a run from its `--print-cmd` output (unique per run, in QEMU's command line).
pub fn nonce_from(stderr: &str) -> Option<String> {
    let at = stderr.find("rinit.nonce=")? + "rinit.nonce=".len();
    Some(
        stderr[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect(),
    )
}

/// Pids of processes whose command line contains `needle`.
pub fn processes_with(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// Run directories `mvm-<pid>-*` of the mvm process `pid` that still exist.
pub fn run_dirs_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("mvm-{pid}-");
    std::fs::read_dir(std::env::temp_dir())
        .map(|it| {
            it.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Reads stdout lines of a running mvm on a thread; returns a receiver of the lines.
pub fn stream_lines(mvm: &mut Mvm) -> std::sync::mpsc::Receiver<String> {
    let stdout = mvm.0.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits until a line equal to `want` arrives.
pub fn wait_for_line(rx: &std::sync::mpsc::Receiver<String>, want: &str) {
    let deadline = Instant::now() + RUN_LIMIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line == want => return,
            Ok(_) => {}
            Err(e) => panic!("no line {want:?} from the guest: {e}"),
        }
    }
}

/// Sends `sig` to `pid` (a child of this test).
pub fn signal(pid: u32, sig: i32) {
    // SAFETY: kill has no memory effects; the pid is our own child or a process we found.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill {pid}");
}
