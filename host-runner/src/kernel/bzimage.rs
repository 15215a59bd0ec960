//! The x86 bzImage header and its compressed payload (Linux
//! `Documentation/arch/x86/boot.rst`, "The real-mode kernel header"), and turning the
//! payload back into the ELF `vmlinux` that QEMU can boot through PVH.
//!
//! The protected-mode part of a bzImage starts after `setup_sects + 1` sectors of 512
//! bytes. Inside it, `payload_offset`/`payload_length` (protocol 2.08+) locate the
//! compressed `vmlinux`. Kbuild appends the uncompressed size as a little-endian `u32`
//! to every payload (`size_append` in `scripts/Makefile.lib`; for gzip it is the gzip
//! trailer's own `ISIZE`), which is used here to check the decompressed length.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// Offset of `setup_sects` (u8) in the image.
const SETUP_SECTS: usize = 0x1f1;
/// Offset of `boot_flag` (u16, 0xAA55).
const BOOT_FLAG: usize = 0x1fe;
/// Offset of the `"HdrS"` magic.
const HEADER_MAGIC: usize = 0x202;
/// Offset of the boot protocol `version` (u16).
const VERSION: usize = 0x206;
/// Offset of `payload_offset` (u32, relative to the protected-mode code).
const PAYLOAD_OFFSET: usize = 0x248;
/// Offset of `payload_length` (u32).
const PAYLOAD_LENGTH: usize = 0x24c;
/// The first protocol version with `payload_offset`/`payload_length`.
const MIN_VERSION: u16 = 0x0208;
/// Size of one setup sector.
const SECTOR: usize = 512;

/// Magic of the LZ4 "legacy frame" that the kernel's LZ4 decompressor reads.
const LZ4_LEGACY_MAGIC: u32 = 0x184c_2102;
/// Uncompressed size of one legacy-frame block (8 MiB).
const LZ4_LEGACY_BLOCK: usize = 8 << 20;

/// Errors from reading a bzImage or decompressing its payload.
#[derive(Debug, thiserror::Error)]
pub enum BzImageError {
    /// The file is too short for the field being read.
    #[error("image too short: need {need} bytes, have {have}")]
    Truncated { need: usize, have: usize },
    /// `boot_flag` or `"HdrS"` is missing.
    #[error("not a bzImage (no 0xAA55 boot flag / \"HdrS\" header)")]
    NotBzImage,
    /// The boot protocol predates `payload_offset`.
    #[error("boot protocol {0:#06x} has no payload fields (need 2.08+)")]
    OldProtocol(u16),
    /// `payload_offset`/`payload_length` point outside the file.
    #[error("payload {offset:#x}+{length:#x} lies outside the {size}-byte image")]
    PayloadOutOfRange {
        offset: usize,
        length: usize,
        size: usize,
    },
    /// The payload magic is not one this module knows.
    #[error("unknown payload compression (first bytes {0:02x?})")]
    UnknownCompression([u8; 4]),
    /// The payload is LZ4 but not a well-formed legacy frame.
    #[error("corrupt LZ4 legacy payload: {0}")]
    Lz4(String),
    /// An external decompressor could not be run or failed.
    #[error("`{tool}` failed: {detail}")]
    Tool { tool: &'static str, detail: String },
    /// The decompressed size disagrees with the size Kbuild appended.
    #[error("decompressed {got} bytes, the image says {want}")]
    SizeMismatch { got: usize, want: u32 },
}

/// How the payload is compressed, detected from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// LZ4 legacy frame (`lz4 -l`): decoded in-process.
    Lz4Legacy,
    /// gzip: decoded with `gzip -dc`.
    Gzip,
    /// zstd: decoded with `zstd -dc`.
    Zstd,
    /// xz: decoded with `xz -dc`.
    Xz,
}

impl Compression {
    /// Detect the compression from the payload's magic bytes.
    pub fn detect(payload: &[u8]) -> Result<Self, BzImageError> {
        let mut head = [0u8; 4];
        let n = payload.len().min(4);
        head[..n].copy_from_slice(&payload[..n]);
        match head {
            [0x02, 0x21, 0x4c, 0x18] => Ok(Self::Lz4Legacy),
            [0x1f, 0x8b, _, _] => Ok(Self::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd] => Ok(Self::Zstd),
            [0xfd, 0x37, 0x7a, 0x58] => Ok(Self::Xz),
            other => Err(BzImageError::UnknownCompression(other)),
        }
    }
}

/// The parts of the bzImage header this module uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Number of 512-byte setup sectors after the boot sector (0 means 4).
    pub setup_sects: u8,
    /// Boot protocol version, e.g. `0x020f`.
    pub version: u16,
    /// Offset of the payload from the start of the protected-mode code.
    pub payload_offset: u32,
    /// Length of the payload in bytes.
    pub payload_length: u32,
}

impl Header {
    /// Parse and check the header of `image`.
    pub fn parse(image: &[u8]) -> Result<Self, BzImageError> {
        let need = PAYLOAD_LENGTH + 4;
        if image.len() < need {
            return Err(BzImageError::Truncated {
                need,
                have: image.len(),
            });
        }
        if le16(image, BOOT_FLAG) != 0xaa55 || &image[HEADER_MAGIC..HEADER_MAGIC + 4] != b"HdrS" {
            return Err(BzImageError::NotBzImage);
        }
        let version = le16(image, VERSION);
        if version < MIN_VERSION {
            return Err(BzImageError::OldProtocol(version));
        }
        Ok(Self {
            setup_sects: image[SETUP_SECTS],
            version,
            payload_offset: le32(image, PAYLOAD_OFFSET),
            payload_length: le32(image, PAYLOAD_LENGTH),
        })
    }

    /// Byte offset of the protected-mode code in the file.
    pub fn protected_mode_offset(&self) -> usize {
        let sects = if self.setup_sects == 0 {
            4
        } else {
            usize::from(self.setup_sects)
        };
        (sects + 1) * SECTOR
    }

    /// The compressed payload inside `image`.
    pub fn payload<'a>(&self, image: &'a [u8]) -> Result<&'a [u8], BzImageError> {
        let out_of_range = || BzImageError::PayloadOutOfRange {
            offset: self.payload_offset as usize,
            length: self.payload_length as usize,
            size: image.len(),
        };
        let start = self
            .protected_mode_offset()
            .checked_add(self.payload_offset as usize)
            .ok_or_else(out_of_range)?;
        let end = start
            .checked_add(self.payload_length as usize)
            .ok_or_else(out_of_range)?;
        image.get(start..end).ok_or_else(out_of_range)
    }
}

/// Decompress the payload of a bzImage: returns the ELF `vmlinux` bytes.
pub fn extract_vmlinux(image: &[u8]) -> Result<Vec<u8>, BzImageError> {
    let header = Header::parse(image)?;
    decompress_payload(header.payload(image)?)
}

/// Decompress a Kbuild payload (compressed data followed by the `u32` size).
pub fn decompress_payload(payload: &[u8]) -> Result<Vec<u8>, BzImageError> {
    let compression = Compression::detect(payload)?;
    let Some(split) = payload.len().checked_sub(4) else {
        return Err(BzImageError::Truncated {
            need: 4,
            have: payload.len(),
        });
    };
    let want = le32(payload, split);
    let out = match compression {
        Compression::Lz4Legacy => lz4_legacy(&payload[..split])?,
        // The gzip trailer already ends with ISIZE: the whole payload is one gzip file.
        Compression::Gzip => run_tool("gzip", payload)?,
        Compression::Zstd => run_tool("zstd", &payload[..split])?,
        Compression::Xz => run_tool("xz", &payload[..split])?,
    };
    // The appended size is the length modulo 2^32.
    if out.len() as u32 != want {
        return Err(BzImageError::SizeMismatch {
            got: out.len(),
            want,
        });
    }
    Ok(out)
}

/// Decode an LZ4 legacy frame: the magic, then blocks of `u32` compressed length +
/// LZ4 block, each at most 8 MiB uncompressed. A repeated magic starts a new frame.
pub fn lz4_legacy(data: &[u8]) -> Result<Vec<u8>, BzImageError> {
    if data.len() < 4 || le32(data, 0) != LZ4_LEGACY_MAGIC {
        return Err(BzImageError::Lz4("missing legacy magic".into()));
    }
    let mut out = Vec::new();
    let mut block = vec![0u8; LZ4_LEGACY_BLOCK];
    let mut pos = 4;
    while pos < data.len() {
        let Some(len_end) = pos.checked_add(4).filter(|&e| e <= data.len()) else {
            return Err(BzImageError::Lz4(format!(
                "truncated block length at {pos:#x}"
            )));
        };
        let len = le32(data, pos);
        pos = len_end;
        if len == LZ4_LEGACY_MAGIC {
            continue;
        }
        let end = pos
            .checked_add(len as usize)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| {
                BzImageError::Lz4(format!("block of {len} bytes at {pos:#x} overruns"))
            })?;
        let n = lz4_flex::block::decompress_into(&data[pos..end], &mut block)
            .map_err(|e| BzImageError::Lz4(format!("block at {pos:#x}: {e}")))?;
        out.extend_from_slice(&block[..n]);
        pos = end;
    }
    Ok(out)
}

/// Run `<tool> -dc`, feeding `input` on stdin from a helper thread.
fn run_tool(tool: &'static str, input: &[u8]) -> Result<Vec<u8>, BzImageError> {
    let fail = |detail: String| BzImageError::Tool { tool, detail };
    let mut child = Command::new(tool)
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            fail(format!(
                "cannot run it ({e}); install it to unpack this kernel"
            ))
        })?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| fail("no stdin pipe".into()))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| fail("no stdout pipe".into()))?;
    let (out, write) = std::thread::scope(|s| {
        let writer = s.spawn(move || stdin.write_all(input));
        let mut out = Vec::new();
        let read = stdout.read_to_end(&mut out);
        (read.map(|_| out), writer.join())
    });
    let output = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    if !output.status.success() {
        let err = String::from_utf8_lossy(&output.stderr);
        return Err(fail(format!("{}: {}", output.status, err.trim())));
    }
    match write {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(fail(format!("writing input: {e}"))),
        Err(_) => return Err(fail("input writer thread panicked".into())),
    }
    out.map_err(|e| fail(format!("reading output: {e}")))
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[cfg(test)]
#[path = "bzimage_tests.rs"]
pub(crate) mod tests;
