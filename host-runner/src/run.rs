//! `mvm run`: plan, start the virtiofs daemons and QEMU, stream the console, wait for the end
//! (QEMU exit, timeout, signal, a daemon dying), and turn rinit's status record into the exit
//! status. Teardown is by drop, in reverse order of creation: QEMU, the daemons, the run
//! directory; so every exit path, errors and signals included, leaves nothing behind.

use crate::cli::RunArgs;
use crate::console::{read_console, ConsoleResult, Show};
use crate::error::{Error, Result};
use crate::plan::{self, Plan, CONSOLE_FD, RESIZE_FD, STATUS_FD, STDERR_FD, STDIN_FD, STDOUT_FD};
use crate::process::{Guard, RunDir};
use crate::qemu::shell_line;
use crate::stdio::{self, Mode, RawTerminal};
use crate::timings::{self, HostTimes};
use rinit_status::Record;

use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM, SIGWINCH};
use std::io::{PipeReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a daemon's exit may precede QEMU's before it counts as a failure (QEMU closes the
/// vhost-user socket while it exits, and the daemon exits on that).
const DAEMON_EXIT_SLACK: Duration = Duration::from_secs(1);

/// What wakes the run loop.
#[derive(Debug)]
enum Event {
    Signal(i32),
    ConsoleClosed,
    /// The console carried a status record, or an output port's end changed: the run may be
    /// complete.
    Progress,
    /// The detach key was typed in an interactive run.
    Detach,
}

/// Runs `args`; returns the exit status for `mvm` (the workload's, or the runner's for errors).
pub fn run(args: &RunArgs) -> Result<u8> {
    let start = Instant::now();
    stdio::ensure_standard_fds();
    let (tx, rx) = mpsc::channel();
    let signals = SignalThread::start(tx.clone())?;
    let rundir = RunDir::create()?;
    let say = |msg: &str| {
        if !args.quiet {
            eprintln!("mvm: {msg}");
        }
    };
    let plan = plan::build(args, rundir.path(), &say)?;
    announce(args, &plan);
    if args.dry_run {
        return Ok(0);
    }
    if let Some((path, text)) = &plan.spec {
        crate::initramfs::with_spec(&plan.base_initrd, text, path)?;
    }
    check_signals(&rx)?;
    let planned = Instant::now();
    let mut daemons = start_daemons(&plan)?;
    let raw = match plan.stdio {
        Mode::Console { interactive: true } => RawTerminal::enter(),
        _ => None,
    };
    let mut vm = start_qemu(&plan, rundir.path(), tx)?;
    let qemu_spawned = Instant::now();
    let status = match wait(&rx, &mut vm, &mut daemons, args.timeout, &plan) {
        Ok(st) => st,
        Err(e) => {
            // Stop QEMU first, so the readers see the end and flush what they hold.
            vm.qemu.stop();
            vm.join_outputs();
            let _ = vm.console.join();
            drop(raw);
            return Err(e);
        }
    };
    let qemu_exited = Instant::now();
    vm.join_outputs();
    let mut seen = vm.console.join().unwrap_or_default();
    drop(raw);
    seen.port = vm.status_pipe.take().map(read_all);
    let outcome = conclude(status, &seen, &plan, &mut daemons, rundir.path());
    drop(daemons);
    drop(signals);
    if args.timings || args.verbose {
        let host = HostTimes {
            start,
            planned,
            qemu_spawned,
            first_output: seen.first_output,
            record: seen.record_at,
            qemu_exited,
            end: Instant::now(),
        };
        let marks = outcome.as_ref().ok().map(|r| r.marks);
        eprint!("{}", timings::render(&host, marks.as_ref()));
    }
    outcome.map(|r| r.outcome.code())
}

/// The notes and command lines the options ask for, on stderr.
fn announce(args: &RunArgs, plan: &Plan) {
    if let Some(note) = plan.accel_note.as_ref().filter(|_| !args.quiet) {
        eprintln!("mvm: {note}");
    }
    if args.verbose {
        plan.notes.iter().for_each(|n| eprintln!("mvm: {n}"));
    }
    if args.print_cmd || args.dry_run {
        print_commands(plan);
    }
}

fn print_commands(plan: &Plan) {
    if let Some(d) = &plan.virtiofsd {
        for dp in &plan.daemons {
            let mut argv = vec![d.path.clone().into_os_string()];
            argv.extend(d.args(&dp.share, 3, true));
            eprintln!(
                "mvm: virtiofsd (socket {}, fd 3): {}",
                dp.socket.display(),
                shell_line(&argv)
            );
        }
    }
    eprintln!("mvm: {}", shell_line(&plan.qemu.argv()));
    if let Some((_, spec)) = &plan.spec {
        eprintln!("mvm: rinit spec file:\n{spec}");
    }
}

fn check_signals(rx: &Receiver<Event>) -> Result<()> {
    while let Ok(ev) = rx.try_recv() {
        if let Event::Signal(sig) = ev {
            if sig != SIGCHLD && sig != SIGWINCH {
                return Err(Error::Interrupted(sig));
            }
        }
    }
    Ok(())
}

fn start_daemons(plan: &Plan) -> Result<Vec<Guard>> {
    let Some(d) = &plan.virtiofsd else {
        return Ok(Vec::new());
    };
    plan.daemons
        .iter()
        .map(|dp| d.start(&dp.share, &dp.socket, &dp.log))
        .collect()
}

/// A running QEMU and the threads around it.
struct Vm {
    qemu: Guard,
    console: JoinHandle<ConsoleResult>,
    status_pipe: Option<PipeReader>,
    /// The output port pumps (split mode).
    outputs: Vec<JoinHandle<()>>,
    /// Per output port: it ends with rinit's end mark.
    ended: Vec<Arc<AtomicBool>>,
    /// The console carried a status record.
    record: Arc<AtomicBool>,
    /// The host end of the stdin port, open until QEMU has gone (see [`stdio::forward_stdin`]).
    _stdin: Option<UnixStream>,
    /// The host end of the resize port (interactive runs).
    resize: Option<UnixStream>,
}

impl Vm {
    /// Waits for the output pumps; they end once QEMU has gone.
    fn join_outputs(&mut self) {
        for t in self.outputs.drain(..) {
            let _ = t.join();
        }
    }

    /// Tells the guest the terminal's new size (interactive runs, on SIGWINCH).
    fn resized(&mut self) {
        if let (Some(sock), Some((rows, cols))) = (self.resize.as_mut(), stdio::window_size(1)) {
            let _ = writeln!(sock, "{rows} {cols}");
        }
    }

    /// Split mode: the record and every output port's end mark are in, so nothing of the
    /// workload's is left inside QEMU.
    fn complete(&self) -> bool {
        !self.ended.is_empty()
            && self.record.load(Ordering::SeqCst)
            && self.ended.iter().all(|e| e.load(Ordering::SeqCst))
    }
}

fn pipe(what: &str) -> Result<(PipeReader, std::io::PipeWriter)> {
    std::io::pipe().map_err(|e| Error::io("create", what, e))
}

fn socket_pair(what: &str) -> Result<(UnixStream, UnixStream)> {
    UnixStream::pair().map_err(|e| Error::io("create", what, e))
}

/// Starts QEMU with the console on [`CONSOLE_FD`] (a pipe, or a socket when interactive), the
/// status port's pipe on [`STATUS_FD`] and the stream ports on [`STDOUT_FD`], [`STDERR_FD`] and
/// [`STDIN_FD`], with the threads that carry them.
fn start_qemu(plan: &Plan, rundir: &std::path::Path, tx: Sender<Event>) -> Result<Vm> {
    // QEMU's ends: kept until it is spawned, then closed here.
    let mut theirs: Vec<std::os::fd::OwnedFd> = Vec::new();
    let mut fds = Vec::new();
    let mut give = |fd: std::os::fd::OwnedFd, to: i32| {
        fds.push((fd.as_raw_fd(), to));
        theirs.push(fd);
    };
    let interactive = plan.qemu.console_socket.is_some();
    // The host end as a plain file, whether pipe or socket.
    let (console_in, keys): (std::fs::File, Option<UnixStream>) = if interactive {
        let (ours, qemu_end) = socket_pair("console socket")?;
        give(qemu_end.into(), CONSOLE_FD);
        let keys = ours
            .try_clone()
            .map_err(|e| Error::io("clone", "console socket", e))?;
        (std::os::fd::OwnedFd::from(ours).into(), Some(keys))
    } else {
        let (r, w) = pipe("console pipe")?;
        give(w.into(), CONSOLE_FD);
        (std::os::fd::OwnedFd::from(r).into(), None)
    };
    let mut resize = None;
    if interactive {
        let (ours, qemu_end) = socket_pair("resize socket")?;
        give(qemu_end.into(), RESIZE_FD);
        resize = Some(ours);
    }
    let status = match plan.qemu.status_port {
        Some(_) => {
            let (r, w) = pipe("status pipe")?;
            give(w.into(), STATUS_FD);
            Some(r)
        }
        None => None,
    };
    let mut out_pipes = Vec::new();
    let mut stdin_sock = None;
    if let Mode::Split { stdin_port } = plan.stdio {
        for (fd, to) in [(STDOUT_FD, 1), (STDERR_FD, 2)] {
            let (r, w) = pipe("output port pipe")?;
            give(w.into(), fd);
            out_pipes.push((r, to));
        }
        if stdin_port {
            let (ours, qemu_end) = socket_pair("stdin socket")?;
            give(qemu_end.into(), STDIN_FD);
            stdin_sock = Some(ours);
        }
    }
    let log_path = rundir.join("qemu.log");
    let log = std::fs::File::create(&log_path).map_err(|e| Error::io("create", &log_path, e))?;
    let argv = plan.qemu.argv();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    let guard = Guard::spawn(cmd, "qemu", fds)?;
    drop(theirs);
    let record = Arc::new(AtomicBool::new(false));
    let mut ended = Vec::new();
    let mut outputs = Vec::new();
    let mark = rinit_status::end_mark(&plan.nonce);
    for (r, to) in out_pipes {
        let flag = Arc::new(AtomicBool::new(false));
        ended.push(flag.clone());
        let (tx, mark) = (tx.clone(), mark.clone());
        outputs.push(std::thread::spawn(move || {
            stdio::pump_output(r, to, mark, flag, || {
                let _ = tx.send(Event::Progress);
            })
        }));
    }
    if let Some(sock) = &stdin_sock {
        let clone = sock
            .try_clone()
            .map_err(|e| Error::io("clone", "stdin socket", e))?;
        std::thread::spawn(move || stdio::forward_stdin(clone));
    }
    if let Some(keys) = keys {
        let tx = tx.clone();
        std::thread::spawn(move || {
            stdio::forward_keys(keys, || {
                let _ = tx.send(Event::Detach);
            })
        });
    }
    let show = Show {
        fd: if plan.stdio.needs_ports() { 2 } else { 1 },
        crlf: !interactive,
    };
    let nonce = plan.nonce.clone();
    let seen = record.clone();
    let progress = tx.clone();
    let console = std::thread::spawn(move || {
        read_console(
            console_in,
            &nonce,
            show,
            move || {
                seen.store(true, Ordering::SeqCst);
                let _ = progress.send(Event::Progress);
            },
            move || {
                let _ = tx.send(Event::ConsoleClosed);
            },
        )
    });
    Ok(Vm {
        qemu: guard,
        console,
        status_pipe: status,
        outputs,
        ended,
        record,
        _stdin: stdin_sock,
        resize,
    })
}

/// Everything in a pipe whose writers have all gone (a status line at most).
fn read_all(mut pipe: PipeReader) -> String {
    let mut s = String::new();
    let _ = pipe.read_to_string(&mut s);
    s
}

/// Waits for QEMU to exit; a timeout, a signal, or a daemon dying first is an error (the guards
/// then stop everything as they drop).
fn wait(
    rx: &Receiver<Event>,
    vm: &mut Vm,
    daemons: &mut [Guard],
    timeout: Option<Duration>,
    plan: &Plan,
) -> Result<ExitStatus> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let qemu = &mut vm.qemu;
        if let Some(st) = qemu.try_wait()? {
            return Ok(st);
        }
        if vm.complete() {
            // Everything is in; rinit is waiting for this (`rinit.hold`).
            vm.qemu.stop();
            return vm.qemu.wait();
        }
        let qemu = &mut vm.qemu;
        check_daemons(qemu, daemons, plan)?;
        let event = match deadline {
            None => rx.recv().ok(),
            Some(d) => match rx.recv_timeout(d.saturating_duration_since(Instant::now())) {
                Ok(ev) => Some(ev),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(Error::Timeout(timeout.unwrap_or_default()))
                }
                Err(RecvTimeoutError::Disconnected) => None,
            },
        };
        match event {
            Some(Event::Signal(SIGWINCH)) => vm.resized(),
            Some(Event::Signal(sig)) if sig != SIGCHLD => return Err(Error::Interrupted(sig)),
            Some(Event::Detach) => return Err(Error::Detached),
            Some(_) => {}
            // Nothing can wake us any more: block on QEMU itself.
            None => return vm.qemu.wait(),
        }
    }
}

/// A daemon that exited while QEMU still runs (beyond a short slack) is fatal.
fn check_daemons(qemu: &mut Guard, daemons: &mut [Guard], plan: &Plan) -> Result<()> {
    for (i, d) in daemons.iter_mut().enumerate() {
        let Some(st) = d.try_wait()? else { continue };
        if qemu.wait_for(DAEMON_EXIT_SLACK)?.is_some() {
            return Ok(());
        }
        return Err(daemon_died(plan, i, st));
    }
    Ok(())
}

fn daemon_died(plan: &Plan, i: usize, st: ExitStatus) -> Error {
    let dp = &plan.daemons[i];
    let log = crate::virtiofsd::last_log_line(&dp.log)
        .map(|l| format!(": {l}"))
        .unwrap_or_default();
    Error::DaemonDied {
        share: dp.share.host.display().to_string(),
        status: st.to_string(),
        log,
    }
}

/// The run's result from what the console carried, QEMU's status and the daemons' fate.
fn conclude(
    status: ExitStatus,
    seen: &ConsoleResult,
    plan: &Plan,
    daemons: &mut [Guard],
    rundir: &std::path::Path,
) -> Result<Record> {
    // The port cannot be written by the workload, so it wins when it has a record.
    if let Some(Ok(Some(record))) = seen
        .port
        .as_deref()
        .map(|p| rinit_status::find_last(p, &plan.nonce))
    {
        return Ok(record);
    }
    let transcript = String::from_utf8_lossy(&seen.tail);
    match rinit_status::find_last(&transcript, &plan.nonce) {
        Ok(Some(record)) => return Ok(record),
        Ok(None) => {}
        Err(e) => {
            return Err(Error::NoRecord(format!(
                "the last status line is invalid: {e}"
            )))
        }
    }
    for (i, d) in daemons.iter_mut().enumerate() {
        if let Some(st) = d.try_wait()?.filter(|st| !st.success()) {
            return Err(daemon_died(plan, i, st));
        }
    }
    let qemu_msg = crate::virtiofsd::last_log_line(&rundir.join("qemu.log"));
    // QEMU failing (status 1, or a crash) before the guest printed anything is a setup error;
    // a guest that ran and ended without a record is not.
    let qemu_failed = status.code() == Some(1) || status.signal().is_some();
    if qemu_failed && seen.first_output.is_none() {
        return Err(Error::Qemu(qemu_msg.unwrap_or_else(|| status.to_string())));
    }
    Err(Error::NoRecord(format!(
        "QEMU {status}{}",
        qemu_msg.map(|m| format!(": {m}")).unwrap_or_default()
    )))
}

/// Forwards SIGINT, SIGTERM, SIGHUP, SIGCHLD and SIGWINCH to the run loop; unregisters nothing (mvm exits
/// soon after), but stops its thread when dropped.
struct SignalThread {
    handle: signal_hook::iterator::Handle,
    thread: Option<JoinHandle<()>>,
}

impl SignalThread {
    fn start(tx: Sender<Event>) -> Result<SignalThread> {
        let mut signals =
            signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGWINCH])
                .map_err(|e| Error::io("install", "signal handlers", e))?;
        let handle = signals.handle();
        let thread = std::thread::spawn(move || {
            for sig in signals.forever() {
                if tx.send(Event::Signal(sig)).is_err() {
                    break;
                }
            }
        });
        Ok(SignalThread {
            handle,
            thread: Some(thread),
        })
    }
}

impl Drop for SignalThread {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for SignalThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignalThread")
    }
}
