//! The guest console as the workload's output: undo the tty's `\n` → `\r\n` (`ONLCR`), take out
//! rinit's status record line (and the newline rinit writes before it), pass everything else
//! through unchanged and in order.
//!
//! rinit prints `"\n" + record + "\n"` once everything else in the guest has stopped (protocol in
//! the `rinit_status` crate). Only lines starting with this run's marker `RINIT-STATUS <nonce> `
//! are taken out; a line is held back only while it could still become one, and the newline
//! before it only until the next byte shows what follows, or until the console has been idle for
//! a moment ([`ConsoleFilter::idle`]), so a line shows at once even when the workload then waits.
//! rinit writes the newline and the record in one `write`, so they are never an idle gap apart.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Longest record line accepted; a longer "marker" line is passed through as output.
const MAX_RECORD: usize = 1024;

/// Streaming filter over console bytes.
#[derive(Debug)]
pub struct ConsoleFilter {
    needle: Vec<u8>,
    crlf: bool,
    held_cr: bool,
    held_nl: bool,
    line: Vec<u8>,
    pass: bool,
    records: Vec<String>,
}

impl ConsoleFilter {
    /// A filter for records of `nonce`; `crlf` undoes the tty's newline translation.
    pub fn new(nonce: &rinit_status::Nonce, crlf: bool) -> ConsoleFilter {
        ConsoleFilter {
            needle: format!("{} {} ", rinit_status::MARKER, nonce.as_str()).into_bytes(),
            crlf,
            held_cr: false,
            held_nl: false,
            line: Vec::new(),
            pass: false,
            records: Vec::new(),
        }
    }

    /// Feeds console bytes; appends what should be shown to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) {
        for &b in data {
            if !self.crlf {
                self.byte(b, out);
                continue;
            }
            if self.held_cr {
                self.held_cr = false;
                if b != b'\n' {
                    self.byte(b'\r', out);
                }
            }
            if b == b'\r' {
                self.held_cr = true;
            } else {
                self.byte(b, out);
            }
        }
    }

    /// Flushes what is held back at the end of the stream.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.held_cr) {
            self.byte(b'\r', out);
        }
        self.release(out);
    }

    /// The console has been quiet for a while: release the held newline and line start, so the
    /// output so far is complete on screen.
    pub fn idle(&mut self, out: &mut Vec<u8>) {
        if self.line.starts_with(&self.needle) {
            return;
        }
        if std::mem::take(&mut self.held_cr) {
            self.byte(b'\r', out);
        }
        let partial = !self.line.is_empty();
        self.release(out);
        self.pass |= partial;
    }

    /// Record lines seen so far (the last one decides, see [`rinit_status::find_last`]).
    pub fn records(&self) -> &[String] {
        &self.records
    }

    /// Whether a record line has been seen.
    pub fn has_record(&self) -> bool {
        !self.records.is_empty()
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        if self.pass {
            if b == b'\n' {
                self.pass = false;
                self.held_nl = true;
            } else {
                out.push(b);
            }
            return;
        }
        if b == b'\n' {
            if self.line.starts_with(&self.needle) {
                self.records
                    .push(String::from_utf8_lossy(&self.line).into_owned());
                self.line.clear();
                self.held_nl = false;
            } else {
                self.release(out);
                self.held_nl = true;
            }
            return;
        }
        self.line.push(b);
        let may_be_record = if self.line.len() <= self.needle.len() {
            self.needle.starts_with(&self.line)
        } else {
            self.line.starts_with(&self.needle) && self.line.len() <= MAX_RECORD
        };
        if !may_be_record {
            self.release(out);
            self.pass = true;
        }
    }

    /// Emits the held newline and the held start of the current line.
    fn release(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.held_nl) {
            out.push(b'\n');
        }
        out.append(&mut self.line);
    }
}

// The reader thread of `mvm run`.

/// What the console reader saw.
#[derive(Debug, Default)]
pub struct ConsoleResult {
    /// What the status port carried (`--status-port`).
    pub port: Option<String>,
    /// The end of the raw console transcript.
    pub tail: Vec<u8>,
    pub first_output: Option<Instant>,
    pub record_at: Option<Instant>,
}

/// How the console reader shows what it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Show {
    /// `mvm`'s fd the output goes to (1, or 2 when the workload's own streams use ports).
    pub fd: i32,
    /// Undo the guest tty's `\n` → `\r\n` (not for a raw host terminal, which wants the bytes).
    pub crlf: bool,
}

/// Copies the console to `show.fd` through the filter until QEMU closes it; calls `on_record`
/// when the first status record has been read. When the console is idle for `IDLE`, what the
/// filter holds back is released, so a waiting workload's last line shows at once.
pub fn read_console<R: Read + AsRawFd>(
    mut pipe: R,
    nonce: &rinit_status::Nonce,
    show: Show,
    on_record: impl Fn(),
    on_end: impl FnOnce(),
) -> ConsoleResult {
    let mut filter = ConsoleFilter::new(nonce, show.crlf);
    let mut res = ConsoleResult::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::with_capacity(buf.len());
    loop {
        out.clear();
        match read_or_idle(&mut pipe, &mut buf) {
            ReadResult::Data(n) => {
                res.first_output.get_or_insert_with(Instant::now);
                res.keep_tail(&buf[..n]);
                filter.feed(&buf[..n], &mut out);
                if res.record_at.is_none() && filter.has_record() {
                    res.record_at = Some(Instant::now());
                    on_record();
                }
            }
            ReadResult::Idle => filter.idle(&mut out),
            ReadResult::End => break,
        }
        crate::stdio::write_fd(show.fd, &out);
    }
    out.clear();
    filter.finish(&mut out);
    crate::stdio::write_fd(show.fd, &out);
    on_end();
    res
}

/// How long the console must be quiet before held-back output is released.
const IDLE: Duration = Duration::from_millis(100);
/// How much of the end of the console transcript is kept for finding the status record.
const TAIL: usize = 16 * 1024;

enum ReadResult {
    Data(usize),
    Idle,
    End,
}

/// Waits up to [`IDLE`] for console data and reads it.
fn read_or_idle<R: Read + AsRawFd>(pipe: &mut R, buf: &mut [u8]) -> ReadResult {
    let mut pfd = libc::pollfd {
        fd: pipe.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = IDLE.as_millis() as libc::c_int;
    // SAFETY: `pfd` is one valid pollfd for the duration of the call.
    let ready = unsafe { libc::poll(&mut pfd, 1, ms) };
    if ready == 0 {
        return ReadResult::Idle;
    }
    loop {
        match pipe.read(buf) {
            Ok(0) => return ReadResult::End,
            Ok(n) => return ReadResult::Data(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return ReadResult::End,
        }
    }
}

impl ConsoleResult {
    fn keep_tail(&mut self, data: &[u8]) {
        self.tail.extend_from_slice(data);
        if self.tail.len() > 2 * TAIL {
            self.tail.drain(..self.tail.len() - TAIL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rinit_status::Nonce;

    fn run(chunks: &[&[u8]], crlf: bool) -> (Vec<u8>, Vec<String>) {
        let mut f = ConsoleFilter::new(&Nonce::new("abc").unwrap(), crlf);
        let mut out = Vec::new();
        for c in chunks {
            f.feed(c, &mut out);
        }
        f.finish(&mut out);
        (out, f.records().to_vec())
    }

    const REC: &[u8] = b"\r\nRINIT-STATUS abc v1 code=0 how=exit t_start=1 sum=0\r\n";

    #[test]
    fn record_and_its_newline_are_removed() {
        let (out, recs) = run(&[b"hello\r\nworld\r\n", REC], true);
        assert_eq!(out, b"hello\nworld\n");
        assert_eq!(
            recs,
            ["RINIT-STATUS abc v1 code=0 how=exit t_start=1 sum=0"]
        );
        // Output without a final newline keeps it that way.
        let (out, recs) = run(&[b"no newline", REC], true);
        assert_eq!(out, b"no newline");
        assert_eq!(recs.len(), 1);
    }

    #[test]
    fn byte_by_byte_equals_all_at_once() {
        let mut text = b"a\r\n\r\n\r\nRINIT\r\nRINIT-STATUS other 1\r\nx\ry\r\r\n".to_vec();
        text.extend_from_slice(REC);
        text.extend_from_slice(b"reboot: Power down\r\n");
        let (whole, r1) = run(&[&text], true);
        let chunks: Vec<&[u8]> = text.chunks(1).collect();
        let (split, r2) = run(&chunks, true);
        assert_eq!(whole, split);
        assert_eq!(r1, r2);
        assert_eq!(
            whole,
            b"a\n\n\nRINIT\nRINIT-STATUS other 1\nx\ry\r\nreboot: Power down\n"
        );
    }

    #[test]
    fn idle_releases_what_is_held() {
        let mut f = ConsoleFilter::new(&Nonce::new("abc").unwrap(), true);
        let mut out = Vec::new();
        f.feed(b"started\r\nRIN", &mut out);
        assert_eq!(out, b"started");
        f.idle(&mut out);
        assert_eq!(out, b"started\nRIN");
        f.feed(b"IT\r\n", &mut out);
        f.feed(REC, &mut out);
        f.finish(&mut out);
        assert_eq!(out, b"started\nRINIT\n");
        assert_eq!(f.records().len(), 1);
    }

    #[test]
    fn raw_mode_keeps_carriage_returns() {
        let (out, _) = run(&[b"a\r\nb\n"], false);
        assert_eq!(out, b"a\r\nb\n");
    }

    #[test]
    fn binary_data_without_markers_is_unchanged() {
        let data: Vec<u8> = (0..=255u8)
            .cycle()
            .take(5000)
            .filter(|&b| b != b'\r')
            .collect();
        let (out, recs) = run(&[&data], true);
        assert_eq!(out, data);
        assert!(recs.is_empty());
    }

    #[test]
    fn over_long_marker_line_is_output() {
        let mut line = b"RINIT-STATUS abc ".to_vec();
        line.extend(std::iter::repeat_n(b'x', MAX_RECORD));
        line.push(b'\n');
        let (out, recs) = run(&[&line], false);
        assert_eq!(out, line);
        assert!(recs.is_empty());
    }
}
