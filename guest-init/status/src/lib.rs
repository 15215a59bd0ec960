//! The rinit exit-status protocol, defined once for both ends: `rinit` (PID 1 in the guest) writes a
//! [`Record`]; the host runner reads it back and turns it into its own exit status.
//!
//! # Exit codes
//!
//! | code | [`Outcome`] | meaning |
//! |---|---|---|
//! | 0–255 | [`Outcome::Exited`] | the workload called `exit(code)` (codes that collide with the rows below keep their value; `how=` tells them apart) |
//! | 128+N | [`Outcome::Signaled`] | the workload was killed by signal N (e.g. 137 for SIGKILL, 143 for SIGTERM) |
//! | 127 | [`Outcome::NotFound`] | the workload's program does not exist (`execve` gave `ENOENT`/`ENOTDIR`, or no `PATH` entry has it) |
//! | 126 | [`Outcome::NotExecutable`] | the program exists but cannot be executed (`EACCES`, `ENOEXEC`, `EISDIR`, …) |
//! | 125 | [`Outcome::SetupFailed`] | rinit itself failed before or while starting the workload (bad command line, mount, module, root, chdir, uid…) |
//! | 124 | (host only: [`HOST_TIMEOUT`]) | the host runner gave up waiting; never sent by rinit |
//! | 255 | (host only: [`HOST_NO_RECORD`]) | the guest ended without a valid record (kernel panic, crash, forged/garbled line); never sent by rinit as such |
//!
//! These are the container conventions (docker, podman, crun, bash) so that a command behaves the same
//! in the VM as in a container or a shell.
//!
//! # The record line
//!
//! ```text
//! RINIT-STATUS <nonce> v1 code=<0..255> how=<exit|signal|notfound|noexec|setup> [sig=<N>] t_start=<µs> t_mounts=<µs> t_modules=<µs> t_exec=<µs> t_exit=<µs> sum=<fnv1a32 hex>
//! ```
//!
//! Times are microseconds of `CLOCK_BOOTTIME` (time since the kernel started), `-` when the step did not
//! happen (e.g. no `t_exec` after a setup failure). `sum` is FNV-1a (32 bit) over every byte before
//! `" sum="`, so a line garbled by interleaved output is rejected rather than misread.
//!
//! # Why the workload cannot forge it
//!
//! The nonce is chosen by the host per run and passed on the kernel command line (`rinit.nonce=`), which
//! the workload can read in `/proc/cmdline`. The nonce alone therefore only stops *accidental*
//! forgery: a workload that prints logs of other runs, runs rinit's own tests, or runs a nested VM
//! whose console shows its own record. Deliberate forgery is stopped by *ordering* and *exclusivity*:
//!
//! 1. rinit prints the record only after the workload and every other process in the guest are dead
//!    (SIGTERM, grace period, SIGKILL, reaped until `ECHILD`) and after `tcdrain` on the console. No
//!    user process exists any more that could write after it, so the host accepts only the **last**
//!    record line carrying its nonce ([`find_last`]); an earlier forged line is superseded. If the last
//!    marked line does not decode, the host treats the run as [`HOST_NO_RECORD`], never falls back.
//! 2. The virtio-serial port `rinit.status` is opened by rinit *before* the workload starts and held
//!    open; virtio-console ports admit one opener at a time, so the workload gets `EBUSY` and cannot
//!    write to it at all. When that port exists, the host should prefer it over the console.
//!
//! A workload running as root could still power the machine off itself right after printing a forged
//! line. It owns the guest kernel, so no in-guest secret can resist it (it could read PID 1's memory).
//! The protocol defends against a misbehaving workload, not a hostile root inside the VM; the
//! `rinit.status` port narrows the gap, since a root workload that never saw the port open cannot
//! write to it while rinit holds it.
//!
//! # Standard streams on ports
//!
//! The workload's stdin, stdout and stderr may each be a virtio-serial port instead of the console
//! (`rinit.stdin=`, `rinit.stdout=`, `rinit.stderr=`; the host runner names them [`STDIN_PORT_NAME`],
//! [`STDOUT_PORT_NAME`], [`STDERR_PORT_NAME`]). Ports carry bytes unchanged (no tty translation) and
//! keep stdout and stderr apart. Once every process in the guest is dead, rinit writes
//! [`end_mark`] to each output port: the last bytes of a stream, so the host knows it has read all
//! of it. The host then stops the VM itself (rinit waits `rinit.hold` milliseconds for that), since
//! data that QEMU still buffers when the guest exits through `isa-debug-exit` would be lost.

#![forbid(unsafe_code)]

mod outcome;
mod record;

pub use outcome::{code_from_debug_exit, debug_exit_value, Outcome};
pub use record::{find_last, DecodeError, Marks, Nonce, NonceError, Record, MARKER, VERSION};

/// Exit status the host runner uses when it timed out (never sent by rinit).
pub const HOST_TIMEOUT: u8 = 124;
/// Exit status the host runner uses when the guest ended without a valid record (never sent by rinit).
pub const HOST_NO_RECORD: u8 = 255;
/// Name of the virtio-serial port that carries the record out of band.
pub const STATUS_PORT_NAME: &str = "rinit.status";
/// Name of the virtio-serial port the host runner gives the workload as stdin.
pub const STDIN_PORT_NAME: &str = "rinit.stdin";
/// Name of the virtio-serial port the host runner reads the workload's stdout from.
pub const STDOUT_PORT_NAME: &str = "rinit.stdout";
/// Name of the virtio-serial port the host runner reads the workload's stderr from.
pub const STDERR_PORT_NAME: &str = "rinit.stderr";

/// Name of the virtio-serial port that carries the host terminal's new sizes in an interactive run
/// (`rinit.resize=`): lines of `ROWS COLS`.
pub const RESIZE_PORT_NAME: &str = "rinit.resize";

/// The bytes rinit writes last to an output port: `NUL "RINIT-END " nonce NUL`. Text output never
/// contains NUL, so a host only ever holds back bytes of binary output while checking for it.
pub fn end_mark(nonce: &Nonce) -> Vec<u8> {
    format!("\0RINIT-END {}\0", nonce.as_str()).into_bytes()
}

/// I/O port of QEMU's `isa-debug-exit` device as the host runner configures it (`iobase=0xf4,iosize=4`).
pub const DEBUG_EXIT_PORT: u16 = 0xf4;
