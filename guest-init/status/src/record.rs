//! The status record and its one-line text encoding (format in the crate docs).

use crate::Outcome;
use std::fmt::{self, Write as _};

/// The first word of every record line.
pub const MARKER: &str = "RINIT-STATUS";
/// The protocol version word.
pub const VERSION: &str = "v1";

/// A per-run token chosen by the host: 1 to 64 bytes of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nonce(String);

/// Why a string is not a valid [`Nonce`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceError {
    /// Empty or longer than [`Nonce::MAX_LEN`].
    Length,
    /// A byte outside `[A-Za-z0-9_-]`.
    Character,
}

impl fmt::Display for NonceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NonceError::Length => write!(f, "nonce must be 1 to {} bytes", Nonce::MAX_LEN),
            NonceError::Character => f.write_str("nonce may hold only A-Z a-z 0-9 _ -"),
        }
    }
}

impl std::error::Error for NonceError {}

impl Default for Nonce {
    /// The nonce `0`, used by rinit when the host gave none.
    fn default() -> Nonce {
        Nonce("0".to_owned())
    }
}

impl Nonce {
    /// Longest accepted nonce.
    pub const MAX_LEN: usize = 64;

    /// Validates a nonce.
    pub fn new(s: &str) -> Result<Nonce, NonceError> {
        if s.is_empty() || s.len() > Self::MAX_LEN {
            return Err(NonceError::Length);
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(NonceError::Character);
        }
        Ok(Nonce(s.to_owned()))
    }

    /// The nonce text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Timing marks in microseconds of `CLOCK_BOOTTIME`; `None` when the step did not happen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Marks {
    /// rinit (PID 1) started.
    pub start: Option<u64>,
    /// All mounts done (root and pseudo filesystems).
    pub mounts: Option<u64>,
    /// Kernel modules loaded.
    pub modules: Option<u64>,
    /// The workload is about to be executed.
    pub exec: Option<u64>,
    /// The workload was reaped (or rinit gave up).
    pub exit: Option<u64>,
}

impl Marks {
    const NAMES: [&'static str; 5] = ["t_start", "t_mounts", "t_modules", "t_exec", "t_exit"];

    fn values(&self) -> [Option<u64>; 5] {
        [self.start, self.mounts, self.modules, self.exec, self.exit]
    }

    fn from_values(v: [Option<u64>; 5]) -> Marks {
        Marks {
            start: v[0],
            mounts: v[1],
            modules: v[2],
            exec: v[3],
            exit: v[4],
        }
    }
}

/// What rinit reports at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// How the workload (or rinit) ended.
    pub outcome: Outcome,
    /// When each step happened.
    pub marks: Marks,
}

/// Why a record line was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The line does not start with the marker and this run's nonce.
    NotARecord,
    /// A version other than [`VERSION`].
    Version,
    /// A field is missing, out of order, or malformed.
    Field(&'static str),
    /// `code`, `how` and `sig` do not agree.
    Inconsistent,
    /// The checksum does not match (garbled line).
    Checksum,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::NotARecord => f.write_str("not a status record for this run"),
            DecodeError::Version => f.write_str("unsupported status record version"),
            DecodeError::Field(name) => {
                write!(f, "status record field {name} missing or malformed")
            }
            DecodeError::Inconsistent => f.write_str("status record code, how and sig disagree"),
            DecodeError::Checksum => f.write_str("status record checksum mismatch"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// FNV-1a, 32 bit: small, dependency-free, and enough to catch garbling (not an authenticator).
fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

impl Record {
    /// The record as one line, without a line terminator.
    pub fn encode(&self, nonce: &Nonce) -> String {
        let mut s = String::with_capacity(160);
        let o = self.outcome;
        // Writing to a String cannot fail.
        let _ = write!(
            s,
            "{MARKER} {} {VERSION} code={} how={}",
            nonce.as_str(),
            o.code(),
            o.how()
        );
        if let Outcome::Signaled(sig) = o {
            let _ = write!(s, " sig={sig}");
        }
        for (name, value) in Marks::NAMES.iter().zip(self.marks.values()) {
            match value {
                Some(v) => {
                    let _ = write!(s, " {name}={v}");
                }
                None => {
                    let _ = write!(s, " {name}=-");
                }
            }
        }
        let sum = fnv1a32(s.as_bytes());
        let _ = write!(s, " sum={sum:08x}");
        s
    }

    /// Decodes one line. Text before the marker (the tail of an unterminated workload line) and a
    /// trailing `\r` are ignored.
    pub fn decode_line(line: &str, nonce: &Nonce) -> Result<Record, DecodeError> {
        let start = marker_pos(line, nonce).ok_or(DecodeError::NotARecord)?;
        let line = line[start..].trim_end_matches(['\r', '\n']);
        let (body, sum) = line.rsplit_once(" sum=").ok_or(DecodeError::Field("sum"))?;
        let sum = parse_hex32(sum).ok_or(DecodeError::Field("sum"))?;
        if sum != fnv1a32(body.as_bytes()) {
            return Err(DecodeError::Checksum);
        }
        let mut words = body.split(' ').skip(2);
        if words.next() != Some(VERSION) {
            return Err(DecodeError::Version);
        }
        let code = field(words.next(), "code")?
            .parse::<u8>()
            .map_err(|_| DecodeError::Field("code"))?;
        let how = field(words.next(), "how")?;
        let mut next = words.next();
        let mut sig = None;
        if let Some(v) = next.and_then(|w| w.strip_prefix("sig=")) {
            sig = Some(v.parse::<u8>().map_err(|_| DecodeError::Field("sig"))?);
            next = words.next();
        }
        let outcome = Outcome::from_fields(how, code, sig).ok_or(DecodeError::Inconsistent)?;
        let mut values = [None; 5];
        for (i, name) in Marks::NAMES.iter().enumerate() {
            let v = field(next, name)?;
            values[i] = match v {
                "-" => None,
                _ => Some(v.parse::<u64>().map_err(|_| DecodeError::Field(name))?),
            };
            next = words.next();
        }
        if next.is_some() {
            return Err(DecodeError::Field("end"));
        }
        Ok(Record {
            outcome,
            marks: Marks::from_values(values),
        })
    }
}

/// Where `"RINIT-STATUS <nonce> "` starts in `line`, if it does.
fn marker_pos(line: &str, nonce: &Nonce) -> Option<usize> {
    let needle = format!("{MARKER} {} ", nonce.as_str());
    line.rfind(&needle)
}

/// The value of `word` if it is `name=value`.
fn field<'a>(word: Option<&'a str>, name: &'static str) -> Result<&'a str, DecodeError> {
    word.and_then(|w| w.strip_prefix(name))
        .and_then(|w| w.strip_prefix('='))
        .ok_or(DecodeError::Field(name))
}

fn parse_hex32(s: &str) -> Option<u32> {
    (s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u32::from_str_radix(s, 16).ok())
        .flatten()
}

/// The host's reading of a console transcript: the **last** line carrying this run's marker decides.
///
/// `Ok(None)`: no such line (the guest died before reporting). `Err`: the last marked line is
/// malformed; an earlier line is never used instead, since only the last one can be rinit's.
pub fn find_last(text: &str, nonce: &Nonce) -> Result<Option<Record>, DecodeError> {
    match text.lines().rev().find(|l| marker_pos(l, nonce).is_some()) {
        None => Ok(None),
        Some(line) => Record::decode_line(line, nonce).map(Some),
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
