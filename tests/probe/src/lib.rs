//! What the mvm probe kernel checks, and how it reports: the part of the probe that is
//! plain logic, always `no_std`, unit-tested on the host and shared with the host-side
//! test harness (`mvm-tests`).
//!
//! The probe is entered either through the Linux 64-bit boot protocol entry
//! (`Documentation/arch/x86/boot.rst`, "64-bit Boot Protocol") with RSI pointing at
//! `struct boot_params`, or through the PVH entry (Xen `include/public/arch-x86/hvm/start_info.h`,
//! `docs/misc/pvh.pandoc`) with EBX pointing at `struct hvm_start_info`. Either way it turns
//! what it was given into a [`handoff::Handoff`], checks it against the `probe.*` options on
//! its own command line ([`args::Expect`]), prints one verdict line on COM1 and writes an
//! exit code ([`Check::code`] or [`PASS`]) to the `isa-debug-exit` port, so QEMU exits with
//! status `(code << 1) | 1`.
//!
//! The probe reads `boot_params`, `hvm_start_info` and the e820 layout with its own
//! definitions, not the firmware's `bootproto` crate, on purpose: a check that shared the
//! firmware's constants could not catch a wrong one.
//!
//! Serial protocol (one line each, `\n`-terminated):
//!
//! | line | meaning |
//! |---|---|
//! | `PROBE ENTRY <bzImage-64\|pvh>` | the probe started (printed once per entry) |
//! | `PROBE TSC <n>` | the time-stamp counter at the entry's first instruction (decimal) |
//! | `PROBE TSC16 0x<hex>` | the same at the 16-bit setup entry (bzImage booted by a BIOS-style firmware such as qboot or SeaBIOS), printed before the failure line |
//! | `PROBE CMDLINE <bytes>` | the command line exactly as received, NUL excluded |
//! | `PROBE E820 <addr> <size> <type>` | one memory-map entry |
//! | `PROBE INFO <key>=<value> ...` | RSDP address, ACPI revision and table count, cmdline length |
//! | `PROBE PASS <summary>` | every check passed (exit code [`PASS`]) |
//! | `PROBE FAIL <check>: <detail>` | a check failed (exit code [`Check::code`]) |
//! | `PROBE REBOOT` | `probe.reboot=1`: jumping back to the reset vector instead of exiting |
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod acpi;
pub mod args;
pub mod cpu;
pub mod handoff;
pub mod memmap;
pub mod paging;

mod fail;

pub use fail::{Fail, Token};

/// Exit code of a probe that passed every check (QEMU exit status 3).
pub const PASS: u8 = 0x01;

/// Where the probe is linked: the protected-mode kernel's load address (`code32_start`).
pub const LOAD_ADDR: u64 = 0x10_0000;
/// Offset of the 64-bit entry from [`LOAD_ADDR`] (boot protocol: load address + 0x200).
pub const ENTRY64_OFFSET: u64 = 0x200;
/// `cmdline_size` in the probe's setup header: longest command line, NUL excluded.
pub const CMDLINE_SIZE: u32 = 2048;
/// Boot protocol version the probe's setup header declares (2.15).
pub const PROTOCOL_VERSION: u16 = 0x020f;

/// The check that failed. Each has its own `isa-debug-exit` code, all below 0x80 so that
/// QEMU's `(code << 1) | 1` fits an 8-bit exit status, and all above the firmware's
/// codes (0x10..=0x3f), so a test can tell who stopped the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// The 16-bit real-mode setup code in the bzImage ran (the firmware used the legacy
    /// real-mode entry, as qboot and SeaBIOS do).
    Entry16,
    /// The bzImage's 32-bit entry (`code32_start`) ran instead of the 64-bit one.
    Entry32,
    /// The probe was entered somewhere other than where it is linked.
    LoadAddress,
    /// Wrong CPU mode: not in long mode (64-bit entry), or paging on / protection off (PVH).
    CpuMode,
    /// Segment selectors differ from `__BOOT_CS` 0x10 / `__BOOT_DS` 0x18.
    Segments,
    /// Interrupts were enabled at entry.
    Interrupts,
    /// `boot_params` or `hvm_start_info` is missing or malformed.
    BootInfo,
    /// The memory map is too short, overlapping or does not add up to the machine's RAM.
    E820,
    /// The command line is missing or not terminated.
    Cmdline,
    /// The initrd is missing, unexpected, misplaced or corrupted.
    Initrd,
    /// The RSDP (or a table it points to) is missing, unexpected or fails its checksum.
    Acpi,
    /// A `probe.*` option on the command line could not be parsed.
    Args,
    /// A CPU exception (most likely a page fault on memory the firmware did not map).
    Exception,
    /// The probe itself panicked.
    Panic,
    /// RAM (or part of 0..4 GiB) is not identity-mapped by the firmware's page tables.
    IdentityMap,
}

impl Check {
    /// The byte written to `isa-debug-exit` when this check fails.
    pub const fn code(self) -> u8 {
        match self {
            Check::Entry16 => 0x40,
            Check::Entry32 => 0x41,
            Check::LoadAddress => 0x42,
            Check::CpuMode => 0x43,
            Check::Segments => 0x44,
            Check::Interrupts => 0x45,
            Check::BootInfo => 0x46,
            Check::E820 => 0x47,
            Check::Cmdline => 0x48,
            Check::Initrd => 0x49,
            Check::Acpi => 0x4a,
            Check::Args => 0x4b,
            Check::Exception => 0x4c,
            Check::Panic => 0x4d,
            Check::IdentityMap => 0x4e,
        }
    }

    /// The name printed in `PROBE FAIL <name>: ...`.
    pub const fn name(self) -> &'static str {
        match self {
            Check::Entry16 | Check::Entry32 | Check::LoadAddress => "entry",
            Check::CpuMode => "cpu-mode",
            Check::Segments => "segments",
            Check::Interrupts => "interrupts",
            Check::BootInfo => "boot-info",
            Check::E820 => "e820",
            Check::Cmdline => "cmdline",
            Check::Initrd => "initrd",
            Check::Acpi => "acpi",
            Check::IdentityMap => "identity-map",
            Check::Args => "args",
            Check::Exception => "exception",
            Check::Panic => "panic",
        }
    }

    /// Every check, for tables and tests.
    pub const ALL: [Check; 14] = [
        Check::Entry16,
        Check::Entry32,
        Check::LoadAddress,
        Check::CpuMode,
        Check::Segments,
        Check::Interrupts,
        Check::BootInfo,
        Check::E820,
        Check::Cmdline,
        Check::Initrd,
        Check::Acpi,
        Check::Args,
        Check::Exception,
        Check::Panic,
    ];

    /// The check whose [`Check::code`] is `code`.
    pub fn from_code(code: u8) -> Option<Check> {
        Check::ALL.into_iter().find(|c| c.code() == code)
    }
}

/// Guest-physical memory as the probe sees it (identity-mapped 0..4 GiB in the kernel; a
/// buffer in host tests).
pub trait Memory {
    /// `len` bytes at `addr`, or `None` if that range is not readable (address 0, or
    /// outside what is mapped).
    fn read(&self, addr: u64, len: usize) -> Option<&[u8]>;
}

/// FNV-1a, 64-bit: the initrd fingerprint used by `probe.initrd=<size>:<hash>`.
pub fn fnv1a64(data: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    data.iter()
        .fold(OFFSET_BASIS, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_known_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn codes_are_distinct_and_fit_debug_exit() {
        for (i, a) in Check::ALL.iter().enumerate() {
            assert!(a.code() < 0x80 && a.code() >= 0x40, "{a:?}");
            assert_ne!(a.code(), PASS);
            assert_eq!(Check::from_code(a.code()), Some(*a));
            for b in &Check::ALL[i + 1..] {
                assert_ne!(a.code(), b.code());
            }
        }
    }
}
