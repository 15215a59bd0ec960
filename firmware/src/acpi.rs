//! ACPI tables: run QEMU's `etc/table-loader` script into the firmware's ACPI area.

use bootproto::fwcfg::FwCfg;
use bootproto::loader::{self, Zone};
use bootproto::{layout, BootError};

use crate::fwcfg::Device;
use crate::mem::PhysMem;

/// Install the tables and return the RSDP's address, or 0 without ACPI (`acpi=off`).
pub fn install(fw: &mut Device, mem: &mut PhysMem) -> Result<u64, BootError> {
    let Some(script) = fw.find(b"etc/table-loader") else {
        return Ok(0);
    };
    let room = layout::SETUP_ADDR - layout::LOADER_SCRATCH;
    if u64::from(script.size) > room {
        return Err(BootError::LoaderTooManyFiles);
    }
    fw.read_to_guest(script.select, layout::LOADER_SCRATCH, script.size)?;
    // SAFETY: the script was just read into LOADER_SCRATCH, identity-mapped scratch RAM
    // that nothing else writes while the loader runs (it allocates in the ACPI area).
    let bytes = unsafe {
        core::slice::from_raw_parts(layout::LOADER_SCRATCH as *const u8, script.size as usize)
    };
    let mut zone = Zone::new(layout::ACPI_START, layout::ACPI_END);
    let outcome = loader::execute(bytes, fw, mem, &mut zone)?;
    Ok(outcome.rsdp.unwrap_or(0))
}
