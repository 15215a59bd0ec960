//! COM1 output for error lines and the optional milestone log.
//!
//! Nothing waits on the UART: QEMU's 16550 accepts every byte at once, and writes to an
//! absent port (`isa-serial=off`) are simply dropped, so the firmware never depends on
//! COM1 being there. There is no lock (`spin`) and no `embedded-io` layer: the firmware
//! runs on one CPU with interrupts off and only writes whole lines through
//! `core::fmt::Write`.

use core::fmt;

use crate::io;

/// A `fmt::Write` sink for COM1.
#[derive(Debug)]
pub struct Com1;

impl fmt::Write for Com1 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if b == b'\n' {
                io::outb(io::COM1, b'\r');
            }
            io::outb(io::COM1, b);
        }
        Ok(())
    }
}

/// Print a milestone line (`fw: ...`) when built with the `log` feature; otherwise the
/// arguments are type-checked and nothing is emitted.
macro_rules! milestone {
    ($($arg:tt)*) => {
        if cfg!(feature = "log") {
            let _ = core::fmt::Write::write_fmt(&mut $crate::console::Com1, format_args!("fw: {}\n", format_args!($($arg)*)));
        }
    };
}
pub(crate) use milestone;
