//! Why a boot failed, as one line of text and one exit code.
//!
//! The firmware prints [`BootError`]'s `Display` text on COM1 (prefixed `fw: error: `) and
//! then writes [`BootError::exit_code`] to the `isa-debug-exit` port, so QEMU exits with
//! status `(code << 1) | 1`. The codes are part of the project's documented interface
//! (README, "Firmware exit codes"): never renumber one.

use core::fmt;

/// A reason the firmware cannot boot the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootError {
    /// The fw_cfg signature register did not read "QEMU".
    NoFwCfg,
    /// A fw_cfg DMA transfer completed with the error bit set.
    DmaError,
    /// fw_cfg has no `etc/e820` file, so the RAM size is unknown.
    NoE820,
    /// More memory-map entries than the firmware's map holds (`e820::MAP_CAPACITY`).
    E820Overflow,
    /// No kernel was given (`-kernel` missing).
    NoKernel,
    /// The kernel image is neither a bzImage nor an ELF with a PVH note.
    UnknownKernelFormat,
    /// The bzImage's boot protocol is older than 2.12 (the 64-bit entry needs 2.12).
    ProtocolTooOld {
        /// `version` field of the setup header, e.g. 0x020f.
        version: u16,
    },
    /// The bzImage does not advertise the 64-bit entry point (XLF_KERNEL_64).
    NoKernel64,
    /// The kernel (plus the memory it needs to decompress) does not fit in RAM.
    KernelTooBig {
        /// Bytes of low RAM the kernel needs, counted from address 0.
        need: u64,
        /// Bytes of low RAM the machine has.
        have: u64,
    },
    /// The initrd does not fit in RAM next to the kernel.
    InitrdTooBig {
        /// Initrd size in bytes.
        size: u64,
    },
    /// The command line is longer than the kernel accepts.
    CmdlineTooLong {
        /// Command line length in bytes, without the terminating NUL.
        len: u32,
        /// The kernel's `cmdline_size`.
        max: u32,
    },
    /// A table-loader command is malformed (bad size, alignment or zone).
    LoaderBadCommand {
        /// Index of the command in `etc/table-loader`.
        index: u16,
    },
    /// A table-loader command names a file that fw_cfg or an earlier ALLOCATE lacks.
    LoaderUnknownFile {
        /// Index of the command in `etc/table-loader`.
        index: u16,
    },
    /// A table-loader command reaches outside the file it patches.
    LoaderOutOfBounds {
        /// Index of the command in `etc/table-loader`.
        index: u16,
    },
    /// The ACPI area is too small for the tables QEMU supplied.
    LoaderOutOfSpace,
    /// More ALLOCATE commands than the firmware tracks.
    LoaderTooManyFiles,
    /// WRITE_POINTER (used by vmgenid and GHES) is not supported.
    LoaderWritePointer,
    /// A guest-physical access fell outside the memory the firmware may touch.
    BadAddress {
        /// The offending guest-physical address.
        addr: u64,
    },
}

impl BootError {
    /// The value written to `isa-debug-exit`; QEMU then exits with `(code << 1) | 1`.
    ///
    /// Codes start at 0x10 so that no firmware error can look like a guest's status 0
    /// (QEMU 1) or a QEMU start-up failure (QEMU 1).
    pub const fn exit_code(self) -> u8 {
        match self {
            BootError::NoFwCfg => 0x10,
            BootError::DmaError => 0x11,
            BootError::NoE820 => 0x12,
            BootError::E820Overflow => 0x13,
            BootError::NoKernel => 0x20,
            BootError::UnknownKernelFormat => 0x21,
            BootError::ProtocolTooOld { .. } => 0x22,
            BootError::NoKernel64 => 0x23,
            BootError::KernelTooBig { .. } => 0x24,
            BootError::InitrdTooBig { .. } => 0x25,
            BootError::CmdlineTooLong { .. } => 0x26,
            BootError::LoaderBadCommand { .. } => 0x30,
            BootError::LoaderUnknownFile { .. } => 0x31,
            BootError::LoaderOutOfBounds { .. } => 0x32,
            BootError::LoaderOutOfSpace => 0x33,
            BootError::LoaderTooManyFiles => 0x34,
            BootError::LoaderWritePointer => 0x35,
            BootError::BadAddress { .. } => 0x3f,
        }
    }
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BootError::NoFwCfg => f.write_str("fw_cfg not found (signature is not \"QEMU\")"),
            BootError::DmaError => f.write_str("fw_cfg DMA transfer failed"),
            BootError::NoE820 => f.write_str("fw_cfg has no etc/e820: cannot size RAM"),
            BootError::E820Overflow => f.write_str("memory map has too many entries"),
            BootError::NoKernel => f.write_str("no kernel given (use -kernel)"),
            BootError::UnknownKernelFormat => {
                f.write_str("kernel is neither a bzImage nor an ELF vmlinux with a PVH note")
            }
            BootError::ProtocolTooOld { version } => write!(
                f,
                "bzImage boot protocol {}.{:02} is too old (need 2.12 or later)",
                version >> 8,
                version & 0xff
            ),
            BootError::NoKernel64 => f.write_str("bzImage has no 64-bit entry point"),
            BootError::KernelTooBig { need, have } => write!(
                f,
                "kernel does not fit in RAM: needs {} KiB of low memory, machine has {} KiB",
                need / 1024,
                have / 1024
            ),
            BootError::InitrdTooBig { size } => {
                write!(
                    f,
                    "initrd of {} KiB does not fit in RAM next to the kernel",
                    size / 1024
                )
            }
            BootError::CmdlineTooLong { len, max } => write!(
                f,
                "command line is {len} bytes, the kernel accepts at most {max}"
            ),
            BootError::LoaderBadCommand { index } => {
                write!(f, "etc/table-loader command {index} is malformed")
            }
            BootError::LoaderUnknownFile { index } => {
                write!(f, "etc/table-loader command {index} names an unknown file")
            }
            BootError::LoaderOutOfBounds { index } => {
                write!(
                    f,
                    "etc/table-loader command {index} reaches outside its file"
                )
            }
            BootError::LoaderOutOfSpace => f.write_str("ACPI tables do not fit in the ACPI area"),
            BootError::LoaderTooManyFiles => {
                f.write_str("etc/table-loader allocates more files than supported")
            }
            BootError::LoaderWritePointer => f.write_str(
                "etc/table-loader WRITE_POINTER is not supported (remove vmgenid/GHES devices)",
            ),
            BootError::BadAddress { addr } => {
                write!(f, "guest address {addr:#x} is outside usable memory")
            }
        }
    }
}
