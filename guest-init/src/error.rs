//! rinit's one error type: a message with the failed step and, for system calls, the OS error.

use std::fmt;
use std::io;

/// An error that ends the run with status 125.
#[derive(Debug)]
pub struct Error(String);

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with a message only.
    pub fn msg(msg: impl Into<String>) -> Error {
        Error(msg.into())
    }

    /// An OS error with what was being done.
    pub fn io(what: impl fmt::Display, err: io::Error) -> Error {
        Error(format!("{what}: {err}"))
    }

    /// The last OS error (`errno`) with what was being done.
    pub fn last(what: impl fmt::Display) -> Error {
        Error::io(what, io::Error::last_os_error())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}
