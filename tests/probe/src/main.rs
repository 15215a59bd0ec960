//! The mvm probe kernel: a tiny payload that the firmware boots like Linux, which checks
//! the hand-off and reports on COM1 and through `isa-debug-exit` (see the library docs,
//! `mvm_probe`, for the serial protocol and the exit codes).
//!
//! Entry points are in `asm/boot.s`: the Linux 64-bit boot protocol entry
//! (`Documentation/arch/x86/boot.rst`) for `probe.bzImage`, and the PVH entry (Xen
//! `docs/misc/pvh.pandoc`) for `probe-pvh.elf`. Built for `x86_64-unknown-none` by
//! `cargo xtask build-probe`; on the host this binary is a stub so that workspace-wide
//! commands keep working.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod hw;
#[cfg(target_os = "none")]
mod kernel;

#[cfg(not(target_os = "none"))]
fn main() {
    println!(
        "mvm-probe is a test kernel built for x86_64-unknown-none; \
         build it with `cargo xtask build-probe`"
    );
}
