//! A writer for cpio "newc" archives, the format of a Linux initramfs (Linux
//! `Documentation/driver-api/early-userspace/buffer-format.rst`).
//!
//! Each entry is a 110-byte ASCII header (`070701` and 13 eight-digit hex fields), the
//! NUL-terminated name padded to 4 bytes, then the data padded to 4 bytes. The archive
//! ends with the entry `TRAILER!!!`. Output is deterministic: uid, gid and mtime are
//! 0, inode numbers count up from 1 in write order, and [`Archive`] writes its entries
//! sorted by path.

use std::collections::BTreeMap;
use std::io::{self, Write};

/// File type bits of `st_mode`.
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;
const S_IFBLK: u32 = 0o060_000;
/// The name of the last entry.
const TRAILER: &str = "TRAILER!!!";

/// Errors from writing an archive.
#[derive(Debug, thiserror::Error)]
pub enum CpioError {
    /// Writing to the output failed.
    #[error("writing cpio archive: {0}")]
    Io(#[from] io::Error),
    /// The path is empty, contains NUL, `.` or `..` components, or is the trailer name.
    #[error("invalid archive path {0:?}")]
    InvalidPath(String),
    /// A field does not fit the format's 32 bits (e.g. a file of 4 GiB or more).
    #[error("{what} too large for newc ({value})")]
    TooLarge { what: &'static str, value: u64 },
    /// The same path was added twice to an [`Archive`].
    #[error("duplicate archive path {0:?}")]
    Duplicate(String),
}

/// A device node's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// Character device.
    Char,
    /// Block device.
    Block,
}

/// Streams entries to `W` in the order they are written.
#[derive(Debug)]
pub struct Writer<W: Write> {
    out: W,
    next_ino: u32,
    written: u64,
}

impl<W: Write> Writer<W> {
    /// Start an archive on `out`.
    pub fn new(out: W) -> Self {
        Self {
            out,
            next_ino: 1,
            written: 0,
        }
    }

    /// A directory with permission bits `perm` (e.g. `0o755`).
    pub fn dir(&mut self, path: &str, perm: u32) -> Result<(), CpioError> {
        self.entry(path, S_IFDIR | (perm & 0o7777), 2, (0, 0), b"")
    }

    /// A regular file with permission bits `perm` and contents `data`.
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> Result<(), CpioError> {
        self.entry(path, S_IFREG | (perm & 0o7777), 1, (0, 0), data)
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), CpioError> {
        self.entry(path, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes())
    }

    /// A device node (`mknod`), e.g. `dev/console` = char 5:1.
    pub fn device(
        &mut self,
        path: &str,
        perm: u32,
        kind: DeviceKind,
        major: u32,
        minor: u32,
    ) -> Result<(), CpioError> {
        let ty = match kind {
            DeviceKind::Char => S_IFCHR,
            DeviceKind::Block => S_IFBLK,
        };
        self.entry(path, ty | (perm & 0o7777), 1, (major, minor), b"")
    }

    /// Write the trailer and return the output.
    pub fn finish(mut self) -> Result<W, CpioError> {
        self.header(TRAILER, 0, 0, 1, (0, 0), 0)?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn entry(
        &mut self,
        path: &str,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> Result<(), CpioError> {
        let name = normalize(path)?;
        let size = u32::try_from(data.len()).map_err(|_| CpioError::TooLarge {
            what: "file size",
            value: data.len() as u64,
        })?;
        let ino = self.next_ino;
        self.next_ino = ino.checked_add(1).ok_or(CpioError::TooLarge {
            what: "entry count",
            value: u64::from(ino),
        })?;
        self.header(&name, ino, mode, nlink, rdev, size)?;
        self.put(data)?;
        self.pad()
    }

    fn header(
        &mut self,
        name: &str,
        ino: u32,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        size: u32,
    ) -> Result<(), CpioError> {
        let namesize = u32::try_from(name.len() + 1).map_err(|_| CpioError::TooLarge {
            what: "name",
            value: name.len() as u64,
        })?;
        // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
        let fields = [
            ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, namesize, 0,
        ];
        let mut head = String::with_capacity(110);
        head.push_str("070701");
        for f in fields {
            head.push_str(&format!("{f:08x}"));
        }
        self.put(head.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(b"\0")?;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> Result<(), CpioError> {
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> Result<(), CpioError> {
        let n = (4 - (self.written % 4) as usize) % 4;
        self.put(&[0u8; 3][..n])
    }
}

/// `path` without leading `/` or `./`; rejects names the kernel would mishandle.
fn normalize(path: &str) -> Result<String, CpioError> {
    let trimmed = path.trim_start_matches('/');
    let trimmed = trimmed
        .strip_prefix("./")
        .unwrap_or(trimmed)
        .trim_end_matches('/');
    let bad = trimmed.is_empty()
        || trimmed == TRAILER
        || trimmed.contains('\0')
        || trimmed
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        Err(CpioError::InvalidPath(path.to_owned()))
    } else {
        Ok(trimmed.to_owned())
    }
}

/// One entry of an [`Archive`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Dir {
        perm: u32,
    },
    File {
        perm: u32,
        data: Vec<u8>,
    },
    Symlink {
        target: String,
    },
    Device {
        perm: u32,
        kind: DeviceKind,
        major: u32,
        minor: u32,
    },
}

/// An in-memory archive: entries are written sorted by path (so parents come before
/// children) and missing parent directories are added with mode 0755.
#[derive(Clone, Debug, Default)]
pub struct Archive {
    nodes: BTreeMap<String, Node>,
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a directory.
    pub fn dir(&mut self, path: &str, perm: u32) -> Result<&mut Self, CpioError> {
        self.add(path, Node::Dir { perm })
    }

    /// Add a regular file.
    pub fn file(&mut self, path: &str, perm: u32, data: Vec<u8>) -> Result<&mut Self, CpioError> {
        self.add(path, Node::File { perm, data })
    }

    /// Add a symbolic link.
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<&mut Self, CpioError> {
        self.add(
            path,
            Node::Symlink {
                target: target.to_owned(),
            },
        )
    }

    /// Add a device node.
    pub fn device(
        &mut self,
        path: &str,
        perm: u32,
        kind: DeviceKind,
        major: u32,
        minor: u32,
    ) -> Result<&mut Self, CpioError> {
        self.add(
            path,
            Node::Device {
                perm,
                kind,
                major,
                minor,
            },
        )
    }

    /// Write the whole archive, trailer included, to `out`.
    pub fn write_to<W: Write>(&self, out: W) -> Result<W, CpioError> {
        let mut w = Writer::new(out);
        for (path, node) in &self.nodes {
            match node {
                Node::Dir { perm } => w.dir(path, *perm)?,
                Node::File { perm, data } => w.file(path, *perm, data)?,
                Node::Symlink { target } => w.symlink(path, target)?,
                Node::Device {
                    perm,
                    kind,
                    major,
                    minor,
                } => w.device(path, *perm, *kind, *major, *minor)?,
            }
        }
        w.finish()
    }

    /// The archive as bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CpioError> {
        self.write_to(Vec::new())
    }

    fn add(&mut self, path: &str, node: Node) -> Result<&mut Self, CpioError> {
        let name = normalize(path)?;
        let mut parent = name.as_str();
        while let Some((p, _)) = parent.rsplit_once('/') {
            self.nodes
                .entry(p.to_owned())
                .or_insert(Node::Dir { perm: 0o755 });
            parent = p;
        }
        match self.nodes.get(&name) {
            // An implicit parent directory may be made explicit once.
            Some(Node::Dir { .. }) if matches!(node, Node::Dir { .. }) => {}
            Some(_) => return Err(CpioError::Duplicate(name)),
            None => {}
        }
        self.nodes.insert(name, node);
        Ok(self)
    }
}

#[cfg(test)]
#[path = "cpio_tests.rs"]
mod tests;
