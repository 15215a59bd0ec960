//! MP tables for kernels booted without ACPI, so that they find every CPU and the I/O
//! APIC (built by [`bootproto::mptable`]).

use bootproto::fwcfg::key;
use bootproto::mem::GuestMem;
use bootproto::{layout, mptable, BootError};

use crate::fwcfg::Device;
use crate::mem::PhysMem;

/// Write the floating pointer at the EBDA and the configuration table at the start of the
/// ACPI area (unused: this runs only when QEMU supplied no ACPI tables).
pub fn install(fw: &Device, mem: &mut PhysMem) -> Result<(), BootError> {
    let cpus = (fw.u32(key::NB_CPUS) & 0xffff) as u16;
    let irq0_on_pin2 = fw.u32(key::IRQ0_OVERRIDE) != 0;
    let mut floating = [0u8; mptable::FLOATING_SIZE];
    let room = (layout::ACPI_END - layout::ACPI_START) as usize;
    // SAFETY: the ACPI area is firmware-owned, identity-mapped, reserved in e820, and
    // holds nothing when there is no ACPI.
    let config = unsafe { core::slice::from_raw_parts_mut(layout::ACPI_START as *mut u8, room) };
    mptable::build(
        &mut floating,
        config,
        layout::ACPI_START,
        cpus,
        irq0_on_pin2,
    )
    .ok_or(BootError::BadAddress {
        addr: layout::ACPI_START,
    })?;
    mem.write(layout::EBDA, &floating)
}
