//! In-memory fakes of the firmware's hardware traits, shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

use std::cell::RefCell;
use std::rc::Rc;

use bootproto::fwcfg::{FileEntry, FwCfg, NAME_LEN};
use bootproto::linux::{offset, BOOT_FLAG_MAGIC, LOADED_HIGH};
use bootproto::mem::GuestMem;
use bootproto::BootError;

/// Guest memory `[0, len)` backed by a shared `Vec`, so that a [`FakeFwCfg`] can DMA
/// into the same bytes the loader patches.
#[derive(Clone, Debug)]
pub struct FakeMem(pub Rc<RefCell<Vec<u8>>>);

impl FakeMem {
    pub fn new(len: usize) -> FakeMem {
        FakeMem(Rc::new(RefCell::new(vec![0; len])))
    }

    /// A copy of `len` bytes at `addr` (panics if out of range: test code only).
    pub fn bytes(&self, addr: u64, len: usize) -> Vec<u8> {
        let a = addr as usize;
        self.0.borrow()[a..a + len].to_vec()
    }

    pub fn u32(&self, addr: u64) -> u32 {
        u32::from_le_bytes(self.bytes(addr, 4).try_into().unwrap())
    }

    pub fn u64(&self, addr: u64) -> u64 {
        u64::from_le_bytes(self.bytes(addr, 8).try_into().unwrap())
    }

    fn range(&self, addr: u64, len: usize) -> Result<std::ops::Range<usize>, BootError> {
        let bad = BootError::BadAddress { addr };
        let start = usize::try_from(addr).map_err(|_| bad)?;
        let end = start.checked_add(len).ok_or(bad)?;
        if end > self.0.borrow().len() {
            return Err(bad);
        }
        Ok(start..end)
    }
}

impl GuestMem for FakeMem {
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), BootError> {
        let r = self.range(addr, data.len())?;
        self.0.borrow_mut()[r].copy_from_slice(data);
        Ok(())
    }

    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), BootError> {
        let r = self.range(addr, buf.len())?;
        buf.copy_from_slice(&self.0.borrow()[r]);
        Ok(())
    }
}

/// A fw_cfg device holding named files (selector `0x20 + index`), writing into `mem`.
#[derive(Debug)]
pub struct FakeFwCfg {
    pub files: Vec<(String, Vec<u8>)>,
    pub mem: FakeMem,
    /// `(select, addr, len)` of every `read_to_guest` call.
    pub reads: Vec<(u16, u64, u32)>,
}

impl FakeFwCfg {
    pub fn new(mem: &FakeMem, files: &[(&str, &[u8])]) -> FakeFwCfg {
        FakeFwCfg {
            files: files
                .iter()
                .map(|(n, d)| (n.to_string(), d.to_vec()))
                .collect(),
            mem: mem.clone(),
            reads: Vec::new(),
        }
    }
}

impl FwCfg for FakeFwCfg {
    fn find(&mut self, name: &[u8]) -> Option<FileEntry> {
        let i = self.files.iter().position(|(n, _)| n.as_bytes() == name)?;
        let (n, d) = &self.files[i];
        let mut raw = [0u8; NAME_LEN];
        raw[..n.len()].copy_from_slice(n.as_bytes());
        Some(FileEntry {
            size: d.len() as u32,
            select: 0x20 + i as u16,
            name: raw,
        })
    }

    fn read_to_guest(&mut self, select: u16, addr: u64, len: u32) -> Result<(), BootError> {
        self.reads.push((select, addr, len));
        let data = self.files[usize::from(select - 0x20)].1[..len as usize].to_vec();
        self.mem.write(addr, &data)
    }
}

/// The 8-bit sum of `bytes`.
pub fn sum8(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b))
}

/// A table-loader command: `cmd` followed by `body` at offset 4, zero-padded to 128 bytes.
fn command(cmd: u32, fields: &[(usize, &[u8])]) -> Vec<u8> {
    let mut c = vec![0u8; 128];
    c[..4].copy_from_slice(&cmd.to_le_bytes());
    for (off, bytes) in fields {
        c[*off..*off + bytes.len()].copy_from_slice(bytes);
    }
    c
}

pub fn allocate(file: &str, align: u32, zone: u8) -> Vec<u8> {
    command(
        1,
        &[
            (4, file.as_bytes()),
            (60, &align.to_le_bytes()),
            (64, &[zone]),
        ],
    )
}

pub fn add_pointer(dest: &str, src: &str, offset: u32, size: u8) -> Vec<u8> {
    command(
        2,
        &[
            (4, dest.as_bytes()),
            (60, src.as_bytes()),
            (116, &offset.to_le_bytes()),
            (120, &[size]),
        ],
    )
}

pub fn add_checksum(file: &str, offset: u32, start: u32, length: u32) -> Vec<u8> {
    command(
        3,
        &[
            (4, file.as_bytes()),
            (60, &offset.to_le_bytes()),
            (64, &start.to_le_bytes()),
            (68, &length.to_le_bytes()),
        ],
    )
}

pub fn write_pointer(dest: &str, src: &str, dst_offset: u32, src_offset: u32, size: u8) -> Vec<u8> {
    command(
        4,
        &[
            (4, dest.as_bytes()),
            (60, src.as_bytes()),
            (116, &dst_offset.to_le_bytes()),
            (120, &src_offset.to_le_bytes()),
            (124, &[size]),
        ],
    )
}

pub fn other(cmd: u32) -> Vec<u8> {
    command(cmd, &[(4, b"etc/acpi/tables")])
}

/// A setup blob like the Debian 6.1 cloud kernel's, as QEMU patches it: 39 setup
/// sectors, protocol 2.15, header ending at 0x26c. Bytes outside the header are 0xee.
pub fn setup_blob() -> Vec<u8> {
    let mut s = vec![0xeeu8; 40 * 512];
    let mut put = |off: usize, bytes: &[u8]| s[off..off + bytes.len()].copy_from_slice(bytes);
    put(0x1f1, &[39]); // setup_sects
    put(0x1f2, &[0; 0x0c]); // root_flags .. root_dev
    put(offset::BOOT_FLAG, &BOOT_FLAG_MAGIC.to_le_bytes());
    put(offset::JUMP, &[0xeb, 0x6a]);
    put(offset::HEADER, b"HdrS");
    put(offset::VERSION, &0x020fu16.to_le_bytes());
    put(0x208, &[0; 8]); // realmode_swtch .. kernel_version
    put(offset::TYPE_OF_LOADER, &[0xb0]);
    put(offset::LOADFLAGS, &[LOADED_HIGH]);
    put(0x212, &[0; 2]);
    put(offset::CODE32_START, &0x10_0000u32.to_le_bytes());
    put(offset::RAMDISK_IMAGE, &0x1ffb_4000u32.to_le_bytes());
    put(offset::RAMDISK_SIZE, &0x4_c000u32.to_le_bytes());
    put(0x220, &[0; 4]);
    put(offset::HEAP_END_PTR, &0xfe00u16.to_le_bytes());
    put(0x226, &[0, 0]);
    put(offset::CMD_LINE_PTR, &0x2_0000u32.to_le_bytes());
    put(offset::INITRD_ADDR_MAX, &0x7fff_ffffu32.to_le_bytes());
    put(offset::KERNEL_ALIGNMENT, &0x20_0000u32.to_le_bytes());
    put(offset::RELOCATABLE_KERNEL, &[1, 21]);
    put(offset::XLOADFLAGS, &0x7fu16.to_le_bytes());
    put(offset::CMDLINE_SIZE, &2047u32.to_le_bytes());
    put(0x23c, &[0x11; 0x14]); // hardware_subarch .. payload_length
    put(offset::SETUP_DATA, &0x1_2345u64.to_le_bytes());
    put(offset::PREF_ADDRESS, &0x100_0000u64.to_le_bytes());
    put(offset::INIT_SIZE, &0x337_7000u32.to_le_bytes());
    put(0x264, &[0x22; 8]); // handover_offset, kernel_info_offset
    s
}
