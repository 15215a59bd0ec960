//! Extending the identity map to RAM above 4 GiB.
//!
//! The image carries a ready-made map of 0..4 GiB (see `asm/reset.s`); this adds one page
//! directory of 2 MiB pages per GiB of RAM above 4 GiB, at [`layout::PD_HIGH`].

use bootproto::layout;

extern "C" {
    /// The page-directory-pointer table in the image (`asm/reset.s`).
    static mut pdpt: [u64; 512];
}

const PRESENT_WRITABLE: u64 = 0x3;
const HUGE: u64 = 0x80;
const GIB: u64 = 1 << 30;

/// Map `[4 GiB, ram_top)` and return the end of the identity map.
pub fn map_high_ram(ram_top: u64) -> u64 {
    let gibs = ram_top.div_ceil(GIB).min(4 + layout::PD_HIGH_COUNT);
    for gib in 4..gibs {
        let pd = layout::PD_HIGH + (gib - 4) * 4096;
        for i in 0..512u64 {
            let entry = (gib * GIB + (i << 21)) | PRESENT_WRITABLE | HUGE;
            // SAFETY: PD_HIGH..PD_HIGH + PD_HIGH_COUNT pages are firmware-owned low RAM
            // (layout), identity-mapped, and `gib - 4 < PD_HIGH_COUNT`.
            unsafe { core::ptr::write_volatile((pd + i * 8) as *mut u64, entry) };
        }
        // SAFETY: single-threaded firmware; entry `gib` < 512 of the image's PDPT was not
        // present before, so no stale translation exists.
        unsafe { (*core::ptr::addr_of_mut!(pdpt))[gib as usize] = pd | PRESENT_WRITABLE };
    }
    if gibs > 4 {
        x86_64::instructions::tlb::flush_all();
    }
    gibs.max(4) * GIB
}
