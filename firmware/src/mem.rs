//! Guest-physical memory through the firmware's identity map.

use bootproto::mem::GuestMem;
use bootproto::BootError;

/// Identity-mapped physical memory below `limit`.
#[derive(Debug)]
pub struct PhysMem {
    limit: u64,
}

impl PhysMem {
    /// Memory `[0, limit)`; `limit` must not exceed what the page tables map.
    pub fn new(limit: u64) -> PhysMem {
        PhysMem { limit }
    }

    fn check(&self, addr: u64, len: usize) -> Result<(), BootError> {
        match addr.checked_add(len as u64) {
            Some(end) if end <= self.limit => Ok(()),
            _ => Err(BootError::BadAddress { addr }),
        }
    }
}

impl GuestMem for PhysMem {
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), BootError> {
        self.check(addr, data.len())?;
        // SAFETY: `check` proved the range lies in identity-mapped memory; the firmware's
        // callers only write ranges it owns (ACPI area, boot info, kernel destinations).
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), addr as *mut u8, data.len()) };
        Ok(())
    }

    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), BootError> {
        self.check(addr, buf.len())?;
        // SAFETY: as in `write`; reading mapped RAM has no side effects.
        unsafe { core::ptr::copy_nonoverlapping(addr as *const u8, buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }
}
