//! The workload's standard streams when they are not the console: `/dev/null`, or virtio-serial
//! ports found by name through sysfs (`/sys/class/virtio-ports/*/name`; there is no udev). A port
//! carries bytes unchanged, so stdout and stderr reach the host apart and byte-exact.
//!
//! The workload gets pipes, not the ports themselves: a port admits one opener, so a workload
//! that reopens `/dev/stderr` (`/proc/self/fd/2`) would get `EBUSY`; a pipe reopens fine. One
//! thread per port copies between its pipe and the port. An output copier ends when every writer
//! of its pipe is gone; [`crate::report`] then waits for it and ends the port with the end mark
//! ([`rinit_status::end_mark`]).

use crate::config::{Config, Stream};
use crate::error::{Error, Result};
use crate::log::{self, step};
use crate::report;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// The `/dev` node of the virtio-serial port called `name`, if it exists now.
pub fn find_port(name: &str) -> Option<String> {
    let dir = std::fs::read_dir("/sys/class/virtio-ports").ok()?;
    dir.flatten().find_map(|entry| {
        let port_name = std::fs::read_to_string(entry.path().join("name")).ok()?;
        (port_name.trim_end() == name)
            .then(|| format!("/dev/{}", entry.file_name().to_string_lossy()))
    })
}

/// Waits up to `wait` for the port called `name` to appear (ports show up once the device's
/// control queue has announced them, after the driver loaded).
pub fn wait_port(name: &str, wait: Duration) -> Option<String> {
    let deadline = Instant::now() + wait;
    loop {
        match find_port(name) {
            Some(dev) => return Some(dev),
            None if Instant::now() >= deadline => return None,
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
}

/// A port with the pipe end rinit copies to or from.
#[derive(Debug)]
struct Copier {
    fd: usize,
    port: File,
    pipe: File,
}

/// The streams, opened before the workload starts.
#[derive(Debug, Default)]
pub struct Opened {
    /// What the workload gets as fds 0–2 (`None`: the console).
    given: [Option<OwnedFd>; 3],
    copiers: Vec<Copier>,
}

impl Opened {
    /// The fds the workload gets as 0, 1 and 2 (`None`: the console).
    pub fn fds(&self) -> [Option<RawFd>; 3] {
        [0, 1, 2].map(|i| self.given[i].as_ref().map(AsRawFd::as_raw_fd))
    }

    /// Once the workload runs: closes rinit's copies of its ends (so an output pipe ends when
    /// the last process writing to it does) and starts the copiers.
    pub fn start(self) {
        drop(self.given);
        for c in self.copiers {
            let name = stream_name(c.fd);
            let spawned = if c.fd == 0 {
                std::thread::Builder::new()
                    .name(name.into())
                    .spawn(move || copy(c.port, c.pipe, "stdin"))
                    .map(drop)
            } else {
                std::thread::Builder::new()
                    .name(name.into())
                    .spawn(move || {
                        let mut port = c.port;
                        copy(c.pipe, &mut port, name);
                        port
                    })
                    .map(report::keep_output)
            };
            if let Err(e) = spawned {
                log::warn(&format!("start the {name} copier: {e}"));
            }
        }
    }
}

/// Copies until end-of-file or an error (a reader that went away).
fn copy(mut from: impl Read, mut to: impl Write, what: &str) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                step!("{what}: read: {e}");
                return;
            }
        };
        if let Err(e) = to.write_all(&buf[..n]) {
            step!("{what}: write: {e}");
            return;
        }
    }
}

fn pipe(what: &str) -> Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(Error::last(what));
    }
    // SAFETY: pipe2 just returned two new descriptors that nothing else owns.
    let ends = unsafe {
        use std::os::fd::FromRawFd;
        (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1]))
    };
    Ok(ends)
}

/// Opens every stream that is not the console. A port that does not appear within `rinit.waitport`
/// is a setup error naming it.
pub fn open(cfg: &Config) -> Result<Opened> {
    let mut opened = Opened::default();
    let wait = Duration::from_millis(cfg.wait_port_ms.into());
    for (fd, stream) in cfg.stdio.iter().enumerate() {
        let output = fd > 0;
        let name = match stream {
            Stream::Console => continue,
            Stream::Null => {
                let null = std::fs::OpenOptions::new()
                    .read(!output)
                    .write(output)
                    .open("/dev/null")
                    .map_err(|e| Error::io("open /dev/null", e))?;
                opened.given[fd] = Some(null.into());
                continue;
            }
            Stream::Port(name) => name,
        };
        let dev = wait_port(name, wait).ok_or_else(|| {
            Error::msg(format!(
                "virtio-serial port {name:?} (for {}) not found",
                stream_name(fd)
            ))
        })?;
        let port = std::fs::OpenOptions::new()
            .read(!output)
            .write(output)
            .open(&dev)
            .map_err(|e| Error::io(format_args!("open port {name:?} at {dev}"), e))?;
        let (r, w) = pipe("pipe for the workload's streams")?;
        let (given, ours) = if output { (w, r) } else { (r, w) };
        opened.given[fd] = Some(given.into());
        opened.copiers.push(Copier {
            fd,
            port,
            pipe: ours,
        });
        step!("{} is port {name:?} ({dev})", stream_name(fd));
    }
    Ok(opened)
}

fn stream_name(fd: usize) -> &'static str {
    ["stdin", "stdout", "stderr"][fd]
}
