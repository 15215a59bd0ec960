//! The `probe.*` options on the probe's command line: what the host expects the firmware to
//! have handed over. Other words of the command line are ignored.
//!
//! | option | meaning |
//! |---|---|
//! | `probe.mem=<bytes>` | the machine's RAM (`-m`), decimal or `0x` hex; absent: not checked |
//! | `probe.initrd=<size>:<fnv1a64 hex>` | the initrd's size and hash; absent: no initrd expected |
//! | `probe.acpi=<0\|1>` | whether an RSDP is expected; absent: only checked if present |
//! | `probe.reboot=<0\|1>` | after passing, jump back to the reset vector instead of exiting |

use core::fmt;

use crate::{Fail, Token};

/// Expected initrd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Initrd {
    /// Size in bytes.
    pub size: u64,
    /// [`crate::fnv1a64`] of its bytes.
    pub hash: u64,
}

impl Initrd {
    /// The expectation for an initrd with these contents.
    pub fn of(data: &[u8]) -> Initrd {
        Initrd {
            size: data.len() as u64,
            hash: crate::fnv1a64(data),
        }
    }
}

/// What the host told the probe to expect.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Expect {
    /// `probe.mem`.
    pub mem: Option<u64>,
    /// `probe.initrd` (absent: no initrd expected).
    pub initrd: Option<Initrd>,
    /// `probe.acpi`.
    pub acpi: Option<bool>,
    /// `probe.reboot`.
    pub reboot: bool,
}

impl Expect {
    /// Parse the `probe.*` words of `cmdline` (space-separated, as Linux splits them;
    /// quoting is not supported).
    pub fn parse(cmdline: &[u8]) -> Result<Expect, Fail> {
        let mut expect = Expect::default();
        for word in cmdline.split(|&b| b == b' ' || b == b'\t' || b == b'\n') {
            let Some(option) = word.strip_prefix(b"probe.") else {
                continue;
            };
            let (key, value) = match option.iter().position(|&b| b == b'=') {
                Some(i) => (&option[..i], &option[i + 1..]),
                None => (option, &b""[..]),
            };
            let bad = || Fail::BadValue(Token::new(word));
            match key {
                b"mem" => expect.mem = Some(parse_u64(value).ok_or_else(bad)?),
                b"initrd" => expect.initrd = Some(parse_initrd(value).ok_or_else(bad)?),
                b"acpi" => expect.acpi = Some(parse_bool(value).ok_or_else(bad)?),
                b"reboot" => expect.reboot = parse_bool(value).ok_or_else(bad)?,
                _ => return Err(Fail::UnknownOption(Token::new(word))),
            }
        }
        Ok(expect)
    }
}

/// The options as command-line words (`probe.mem=... probe.initrd=...`), with a leading
/// space before each, so `format!("console=ttyS0{expect}")` works.
impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(mem) = self.mem {
            write!(f, " probe.mem={mem}")?;
        }
        if let Some(Initrd { size, hash }) = self.initrd {
            write!(f, " probe.initrd={size}:{hash:016x}")?;
        }
        if let Some(acpi) = self.acpi {
            write!(f, " probe.acpi={}", u8::from(acpi))?;
        }
        if self.reboot {
            f.write_str(" probe.reboot=1")?;
        }
        Ok(())
    }
}

fn parse_bool(s: &[u8]) -> Option<bool> {
    match s {
        b"0" => Some(false),
        b"1" => Some(true),
        _ => None,
    }
}

fn parse_initrd(s: &[u8]) -> Option<Initrd> {
    let colon = s.iter().position(|&b| b == b':')?;
    let size = parse_u64(&s[..colon])?;
    let hash = parse_radix(&s[colon + 1..], 16)?;
    Some(Initrd { size, hash })
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    match s.strip_prefix(b"0x") {
        Some(hex) => parse_radix(hex, 16),
        None => parse_radix(s, 10),
    }
}

fn parse_radix(s: &[u8], radix: u32) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| {
        let digit = (b as char).to_digit(radix)?;
        acc.checked_mul(u64::from(radix))?
            .checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    #[test]
    fn parses_all_options() {
        let e = Expect::parse(
            b"console=ttyS0 probe.mem=134217728  probe.initrd=1000:00000000deadbeef probe.acpi=0 probe.reboot=1",
        )
        .unwrap();
        assert_eq!(
            e,
            Expect {
                mem: Some(128 << 20),
                initrd: Some(Initrd {
                    size: 1000,
                    hash: 0xdead_beef
                }),
                acpi: Some(false),
                reboot: true,
            }
        );
    }

    #[test]
    fn absent_options_mean_defaults() {
        assert_eq!(Expect::parse(b"").unwrap(), Expect::default());
        assert_eq!(Expect::parse(b"quiet probe").unwrap(), Expect::default());
        assert_eq!(
            Expect::parse(b"probe.mem=0x40000000").unwrap().mem,
            Some(1 << 30)
        );
    }

    #[test]
    fn rejects_bad_and_unknown() {
        assert!(matches!(
            Expect::parse(b"probe.mem=12k"),
            Err(Fail::BadValue(_))
        ));
        assert!(matches!(
            Expect::parse(b"probe.initrd=12"),
            Err(Fail::BadValue(_))
        ));
        assert!(matches!(
            Expect::parse(b"probe.mem=99999999999999999999999"),
            Err(Fail::BadValue(_))
        ));
        match Expect::parse(b"probe.memory=1") {
            Err(Fail::UnknownOption(t)) => assert_eq!(t.as_bytes(), b"probe.memory=1"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn display_round_trips() {
        let e = Expect {
            mem: Some(4 << 30),
            initrd: Some(Initrd::of(b"hello")),
            acpi: Some(true),
            reboot: true,
        };
        let text = format!("console=ttyS0{e}");
        assert!(text.starts_with("console=ttyS0 probe.mem=4294967296 probe.initrd=5:"));
        assert_eq!(Expect::parse(text.as_bytes()).unwrap(), e);
    }
}
