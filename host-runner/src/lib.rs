//! Host side of mvm: everything a runner needs to boot Linux in a QEMU `microvm`
//! with the mvm firmware, as a library (the `mvm` command line is a thin layer on top).
//!
//! - [`kernel`]: fetch the Debian cloud kernel into a cache and extract its PVH `vmlinux`.
//! - [`cpio`]: write initramfs archives (cpio "newc").
//! - [`host`]: host facts such as the TSC frequency for `tsc_early_khz=`.
//!
//! The runner, `mvm run [OPTIONS] -- CMD` ([`run::run`]), in the order a run uses it:
//! [`cli`] (options) → [`plan`] (kernel via [`bootkernel`], firmware and rinit via [`locate`],
//! [`accel`], shares and disks, [`modules`], the cached [`initramfs`], rinit's settings via
//! [`guest`], the [`qemu`] argv) → [`virtiofsd`] daemons and QEMU as [`process`] guards →
//! [`console`] (output and the status record) and [`stdio`] (the workload's streams) → exit status ([`error`]) and [`timings`].
//! [`doctor`] checks the host.

pub mod cpio;
pub mod host;
pub mod kernel;

// The `mvm` runner (issue 5): CLI, QEMU command line, initramfs, virtiofsd, run orchestration.
pub mod accel;
pub mod bootkernel;
pub mod cli;
pub mod console;
pub mod doctor;
pub mod error;
pub mod guest;
pub mod initramfs;
pub mod locate;
pub mod modules;
pub mod plan;
pub mod process;
pub mod qemu;
pub mod run;
pub mod stdio;
pub mod timings;
pub mod virtiofsd;
