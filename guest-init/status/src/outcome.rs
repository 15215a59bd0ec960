//! How the workload ended, and its mapping to an exit code (see the table in the crate docs).

/// Linux (all architectures rinit targets) errno values used by [`Outcome::from_exec_errno`].
mod errno {
    pub const ENOENT: i32 = 2;
    pub const ENOTDIR: i32 = 20;
}

/// How the workload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The workload exited with this code.
    Exited(u8),
    /// The workload was killed by this signal (1..=127).
    Signaled(u8),
    /// The program was not found (127).
    NotFound,
    /// The program exists but could not be executed (126).
    NotExecutable,
    /// rinit failed to set up the guest or to start the workload (125).
    SetupFailed,
}

impl Outcome {
    /// Exit code 126: found but not executable.
    pub const NOT_EXECUTABLE: u8 = 126;
    /// Exit code 127: not found.
    pub const NOT_FOUND: u8 = 127;
    /// Exit code 125: rinit setup failure.
    pub const SETUP_FAILED: u8 = 125;

    /// The exit code the host should report.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Exited(code) => code,
            Outcome::Signaled(sig) => 128u8.wrapping_add(sig & 0x7f),
            Outcome::NotFound => Self::NOT_FOUND,
            Outcome::NotExecutable => Self::NOT_EXECUTABLE,
            Outcome::SetupFailed => Self::SETUP_FAILED,
        }
    }

    /// Decodes a raw `wait(2)` status word (as filled in by `waitpid`).
    ///
    /// Returns `None` for stopped/continued reports, which are not terminations.
    pub fn from_wait_status(status: i32) -> Option<Outcome> {
        let low = status & 0x7f;
        if low == 0 {
            // WIFEXITED: the code is in bits 8..16.
            return Some(Outcome::Exited(((status >> 8) & 0xff) as u8));
        }
        if low != 0x7f {
            // WIFSIGNALED (0x7f marks stopped; 0xffff continued has low == 0x7f too).
            return Some(Outcome::Signaled(low as u8));
        }
        None
    }

    /// Maps the errno of a failed `execve` to 127 (not found) or 126 (anything else).
    pub fn from_exec_errno(errno: i32) -> Outcome {
        match errno {
            errno::ENOENT | errno::ENOTDIR => Outcome::NotFound,
            _ => Outcome::NotExecutable,
        }
    }

    /// The `how=` word of the record.
    pub fn how(self) -> &'static str {
        match self {
            Outcome::Exited(_) => "exit",
            Outcome::Signaled(_) => "signal",
            Outcome::NotFound => "notfound",
            Outcome::NotExecutable => "noexec",
            Outcome::SetupFailed => "setup",
        }
    }

    /// Rebuilds an outcome from the record's `how=`, `code=` and `sig=` fields, checking they agree.
    pub(crate) fn from_fields(how: &str, code: u8, sig: Option<u8>) -> Option<Outcome> {
        let outcome = match (how, sig) {
            ("exit", None) => Outcome::Exited(code),
            ("signal", Some(sig)) if (1..=127).contains(&sig) => Outcome::Signaled(sig),
            ("notfound", None) => Outcome::NotFound,
            ("noexec", None) => Outcome::NotExecutable,
            ("setup", None) => Outcome::SetupFailed,
            _ => return None,
        };
        (outcome.code() == code).then_some(outcome)
    }
}

/// The value rinit writes to QEMU's `isa-debug-exit` port for an exit code.
///
/// QEMU exits with `(value << 1) | 1`, truncated to 8 bits by `exit(3)`, so only 7 bits survive:
/// the host must take the full code from the record and use this channel only as a fast exit path.
pub fn debug_exit_value(code: u8) -> u32 {
    u32::from(code & 0x7f)
}

/// The host side of [`debug_exit_value`]: the 7-bit code from QEMU's exit status, or `None` when the
/// status is even (QEMU ended some other way).
pub fn code_from_debug_exit(qemu_status: i32) -> Option<u8> {
    (qemu_status & 1 == 1 && (0..=255).contains(&qemu_status))
        .then_some(((qemu_status >> 1) & 0x7f) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_container_conventions() {
        assert_eq!(Outcome::Exited(0).code(), 0);
        assert_eq!(Outcome::Exited(42).code(), 42);
        assert_eq!(Outcome::Exited(255).code(), 255);
        assert_eq!(Outcome::Signaled(9).code(), 137);
        assert_eq!(Outcome::Signaled(15).code(), 143);
        assert_eq!(Outcome::NotFound.code(), 127);
        assert_eq!(Outcome::NotExecutable.code(), 126);
        assert_eq!(Outcome::SetupFailed.code(), 125);
    }

    #[test]
    fn wait_status_decoding() {
        // Encodings as built by the kernel: exit code << 8, signal in the low 7 bits (0x80 = core).
        assert_eq!(Outcome::from_wait_status(0), Some(Outcome::Exited(0)));
        assert_eq!(
            Outcome::from_wait_status(42 << 8),
            Some(Outcome::Exited(42))
        );
        assert_eq!(
            Outcome::from_wait_status(255 << 8),
            Some(Outcome::Exited(255))
        );
        assert_eq!(Outcome::from_wait_status(9), Some(Outcome::Signaled(9)));
        assert_eq!(
            Outcome::from_wait_status(0x80 | 11),
            Some(Outcome::Signaled(11))
        );
        // Stopped by SIGSTOP (0x137f) and continued (0xffff) are not terminations.
        assert_eq!(Outcome::from_wait_status((19 << 8) | 0x7f), None);
        assert_eq!(Outcome::from_wait_status(0xffff), None);
    }

    #[test]
    fn exec_errno_mapping() {
        assert_eq!(Outcome::from_exec_errno(2), Outcome::NotFound); // ENOENT
        assert_eq!(Outcome::from_exec_errno(20), Outcome::NotFound); // ENOTDIR
        assert_eq!(Outcome::from_exec_errno(13), Outcome::NotExecutable); // EACCES
        assert_eq!(Outcome::from_exec_errno(8), Outcome::NotExecutable); // ENOEXEC
        assert_eq!(Outcome::from_exec_errno(21), Outcome::NotExecutable); // EISDIR
    }

    #[test]
    fn fields_must_agree() {
        assert_eq!(
            Outcome::from_fields("exit", 3, None),
            Some(Outcome::Exited(3))
        );
        assert_eq!(
            Outcome::from_fields("signal", 137, Some(9)),
            Some(Outcome::Signaled(9))
        );
        assert_eq!(Outcome::from_fields("signal", 136, Some(9)), None);
        assert_eq!(Outcome::from_fields("signal", 128, Some(0)), None);
        assert_eq!(Outcome::from_fields("exit", 3, Some(9)), None);
        assert_eq!(Outcome::from_fields("setup", 1, None), None);
        assert_eq!(
            Outcome::from_fields("notfound", 127, None),
            Some(Outcome::NotFound)
        );
        assert_eq!(Outcome::from_fields("bogus", 0, None), None);
    }

    #[test]
    fn debug_exit_round_trip_keeps_seven_bits() {
        for code in 0..=127u8 {
            let qemu = ((debug_exit_value(code) << 1) | 1) as i32 & 0xff;
            assert_eq!(code_from_debug_exit(qemu), Some(code));
        }
        assert_eq!(code_from_debug_exit(0), None);
        assert_eq!(code_from_debug_exit(-1), None);
        assert_eq!(debug_exit_value(137), 9);
    }
}
