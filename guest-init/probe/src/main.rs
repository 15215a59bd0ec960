//! `rinit-probe`: the workload of rinit's VM tests (built static for `x86_64-unknown-linux-musl` and
//! put into the test initramfs). Commands, several per run when separated by a `+` word
//! (`probe mounts + exit 42`); the exit code is the last command's:
//!
//! | command | does |
//! |---|---|
//! | `exit N` | exits with N |
//! | `signal N` | kills itself with signal N |
//! | `zombies N` | forks N children that exit at once and N that exit a little later, waits for none of them, exits 0 |
//! | `linger` | forks a child that ignores SIGTERM and sleeps forever, exits 3 |
//! | `wait-term [via-init]` | prints `PROBE ready` (and with `via-init` sends SIGTERM to PID 1, which forwards it), exits 7 when SIGTERM arrives (or 1 after 60 s) |
//! | `report` | prints `PROBE key=value` lines: argv, env, cwd, uid, gid, hostname, session, tty, window size, lo |
//! | `mounts` | prints `PROBE mount <target> <type> <ro\|rw>` for each line of `/proc/self/mounts`, exits 0 |
//! | `count N` | prints `PROBE line 1` … `PROBE line N` (stdout and stderr alternating), exits 0 |
//! | `open PATH` | opens PATH for writing; prints `PROBE open=ok` or `PROBE open=<errno>`, exits 0 |
//! | `forge NONCE` | prints a forged `RINIT-STATUS` record for NONCE claiming exit 0, then exits 1 |
//!
//! Anything else exits 2.

use std::io::Write;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut code = 2;
    for command in args.split(|a| a == "+") {
        code = run(command);
    }
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

/// Runs one command (its name and arguments); returns its exit code.
fn run(args: &[String]) -> i32 {
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let num = |i: usize| arg(i).parse::<i32>().unwrap_or(-1);
    match arg(0) {
        "exit" => num(1),
        "signal" => {
            let _ = std::io::stdout().flush();
            // SAFETY: raise only sends a signal to this process.
            unsafe { libc::raise(num(1)) };
            99
        }
        "zombies" => zombies(num(1)),
        "linger" => linger(),
        "wait-term" => wait_term(arg(1) == "via-init"),
        "report" => report(args),
        "mounts" => mounts(),
        "forge" => forge(arg(1)),
        "open" => open(arg(1)),
        "count" => count(num(1)),
        _ => 2,
    }
}

fn fork() -> libc::pid_t {
    // SAFETY: the probe is single-threaded.
    unsafe { libc::fork() }
}

fn zombies(n: i32) -> i32 {
    for i in 0..n.max(0) * 2 {
        if fork() == 0 {
            if i % 2 == 1 {
                std::thread::sleep(Duration::from_millis(200));
            }
            // SAFETY: _exit ends the child at once.
            unsafe { libc::_exit(0) };
        }
    }
    println!("PROBE forked {}", n * 2);
    0
}

fn linger() -> i32 {
    if fork() == 0 {
        // SAFETY: ignoring SIGTERM in this child only.
        unsafe { libc::signal(libc::SIGTERM, libc::SIG_IGN) };
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    3
}

fn wait_term(via_init: bool) -> i32 {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises `set`; the mask change affects this process only.
    let set = unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), libc::SIGTERM);
        libc::sigprocmask(libc::SIG_BLOCK, set.as_ptr(), std::ptr::null_mut());
        set.assume_init()
    };
    println!("PROBE ready");
    let _ = std::io::stdout().flush();
    if via_init {
        // SAFETY: kill only sends a signal; PID 1 (rinit) forwards it back to us.
        unsafe { libc::kill(1, libc::SIGTERM) };
    }
    let ts = libc::timespec {
        tv_sec: 60,
        tv_nsec: 0,
    };
    // SAFETY: valid set and timeout; no siginfo wanted.
    let sig = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &ts) };
    if sig == libc::SIGTERM {
        println!("PROBE got SIGTERM");
        7
    } else {
        1
    }
}

fn report(args: &[String]) -> i32 {
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    println!("PROBE argv={args:?}");
    for (k, v) in std::env::vars() {
        println!("PROBE env {k}={v}");
    }
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    println!("PROBE cwd={cwd}");
    // SAFETY: these calls only read process attributes.
    let (uid, gid, pid, sid, pgrp, fg) = unsafe {
        (
            libc::getuid(),
            libc::getgid(),
            libc::getpid(),
            libc::getsid(0),
            libc::getpgrp(),
            libc::tcgetpgrp(0),
        )
    };
    println!("PROBE uid={uid} gid={gid}");
    println!("PROBE session_leader={}", pid == sid);
    println!("PROBE foreground={}", fg == pgrp);
    println!("PROBE hostname={}", read("/proc/sys/kernel/hostname"));
    println!("PROBE lo_flags={}", read("/sys/class/net/lo/flags"));
    let tty = std::fs::read_link("/proc/self/fd/0")
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    println!("PROBE stdin={tty}");
    // SAFETY: an all-zero winsize is valid; TIOCGWINSZ writes one into it.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: fd 0 is the probe's stdin; `ws` is a writable winsize.
    unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) };
    println!("PROBE winsize={}x{}", ws.ws_row, ws.ws_col);
    0
}

fn mounts() -> i32 {
    let text = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if let [_, target, fstype, options, ..] = f[..] {
            let mode = options.split(',').next().unwrap_or("");
            println!("PROBE mount {target} {fstype} {mode}");
        }
    }
    0
}

fn forge(nonce: &str) -> i32 {
    let Ok(nonce) = rinit_status::Nonce::new(nonce) else {
        return 2;
    };
    let record = rinit_status::Record {
        outcome: rinit_status::Outcome::Exited(0),
        marks: Default::default(),
    };
    println!("{}", record.encode(&nonce));
    1
}

fn open(path: &str) -> i32 {
    match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(_) => println!("PROBE open=ok"),
        Err(e) => println!("PROBE open={}", e.raw_os_error().unwrap_or(0)),
    }
    0
}

fn count(n: i32) -> i32 {
    for i in 1..=n {
        if i % 2 == 0 {
            eprintln!("PROBE line {i}");
        } else {
            println!("PROBE line {i}");
            let _ = std::io::stdout().flush();
        }
    }
    0
}
