//! Guest-physical memory, as the pure logic in this crate sees it.

use crate::BootError;

/// Read and write guest-physical memory.
///
/// The firmware implements this over its identity map; tests implement it over a `Vec`.
/// Implementations must reject (with [`BootError::BadAddress`]) any range they cannot
/// back, rather than wrap or truncate.
pub trait GuestMem {
    /// Copy `data` to guest-physical address `addr`.
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), BootError>;
    /// Fill `buf` from guest-physical address `addr`.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), BootError>;
}
