//! The fw_cfg device on its x86 I/O ports (QEMU `docs/specs/fw_cfg.rst`): signature and
//! feature check, the file directory, and transfers into guest memory by DMA, with a
//! port-I/O fallback when the DMA interface is absent.

use core::ptr;

use bootproto::fwcfg::{self, dma, key, FileEntry, FwCfg, DIR_ENTRY_SIZE};
use bootproto::{layout, BootError};

use crate::io;

/// Most directory entries read into [`layout::DIR_SCRATCH`].
const MAX_DIR_ENTRIES: u32 = ((layout::LOADER_SCRATCH - layout::DIR_SCRATCH) as u32 - 4) / 64;

/// `FWCfgDmaAccess`: all fields big-endian.
#[repr(C, align(16))]
struct DmaAccess {
    control: u32,
    length: u32,
    address: u64,
}

/// The fw_cfg device, after its signature has been checked.
#[derive(Debug)]
pub struct Device {
    /// The DMA interface is available.
    pub dma: bool,
    entries: u32,
}

impl Device {
    /// Check the "QEMU" signature, read the feature bits and load the file directory.
    pub fn probe() -> Result<Device, BootError> {
        let mut sig = [0u8; 4];
        read_port(key::SIGNATURE, &mut sig);
        if sig != fwcfg::SIGNATURE {
            return Err(BootError::NoFwCfg);
        }
        let mut dev = Device {
            dma: read_u32(key::ID) & fwcfg::FEATURE_DMA != 0,
            entries: 0,
        };
        let count = read_u32_be(key::FILE_DIR).min(MAX_DIR_ENTRIES);
        dev.read_to_guest(
            key::FILE_DIR,
            layout::DIR_SCRATCH,
            4 + count * DIR_ENTRY_SIZE as u32,
        )?;
        dev.entries = count;
        Ok(dev)
    }

    /// Read a little-endian `u32` item such as `FW_CFG_KERNEL_SIZE`.
    pub fn u32(&self, key: u16) -> u32 {
        read_u32(key)
    }

    fn dma_read(&self, select: u16, addr: u64, len: u32) -> Result<(), BootError> {
        let access = DmaAccess {
            control: dma::select_read(select).to_be(),
            length: len.to_be(),
            address: addr.to_be(),
        };
        let desc = ptr::addr_of!(access) as u64;
        // SAFETY: the descriptor lives on the stack until the loop below sees the device
        // clear its control word; the caller of `read_to_guest` owns `[addr, addr+len)`.
        unsafe { io::kick_dma(desc) };
        loop {
            // SAFETY: `access` is a live local; the device updates it behind the
            // compiler's back, hence the volatile read.
            let control =
                u32::from_be(unsafe { ptr::read_volatile(ptr::addr_of!(access.control)) });
            if control & !dma::ERROR == 0 {
                return if control & dma::ERROR != 0 {
                    Err(BootError::DmaError)
                } else {
                    Ok(())
                };
            }
            core::hint::spin_loop();
        }
    }
}

impl FwCfg for Device {
    fn find(&mut self, name: &[u8]) -> Option<FileEntry> {
        (0..self.entries)
            .map(dir_entry)
            .find(|raw| fwcfg::entry_has_name(raw, name))
            .map(FileEntry::parse)
    }

    fn read_to_guest(&mut self, select: u16, addr: u64, len: u32) -> Result<(), BootError> {
        if len == 0 {
            return Ok(());
        }
        if self.dma {
            return self.dma_read(select, addr, len);
        }
        io::outw(io::FW_CFG_SELECTOR, select);
        // SAFETY: callers pass only ranges of identity-mapped RAM they own (see
        // `layout`); fw_cfg writes exactly `len` bytes there.
        unsafe { io::insb(io::FW_CFG_DATA, addr, u64::from(len)) };
        Ok(())
    }
}

fn dir_entry(i: u32) -> &'static [u8; DIR_ENTRY_SIZE] {
    let at = layout::DIR_SCRATCH + 4 + u64::from(i) * DIR_ENTRY_SIZE as u64;
    // SAFETY: `probe` filled `entries` whole entries at DIR_SCRATCH (identity-mapped RAM
    // reserved for it), and `i < entries`.
    unsafe { &*(at as *const [u8; DIR_ENTRY_SIZE]) }
}

fn read_port(key: u16, buf: &mut [u8]) {
    io::outw(io::FW_CFG_SELECTOR, key);
    for b in buf {
        *b = io::inb(io::FW_CFG_DATA);
    }
}

fn read_u32(key: u16) -> u32 {
    let mut b = [0u8; 4];
    read_port(key, &mut b);
    u32::from_le_bytes(b)
}

fn read_u32_be(key: u16) -> u32 {
    let mut b = [0u8; 4];
    read_port(key, &mut b);
    u32::from_be_bytes(b)
}
