//! The CPU state at each entry, as captured by the probe's first instructions, and the
//! rules it must follow: Linux `Documentation/arch/x86/boot.rst` ("64-bit Boot Protocol":
//! long mode, `__BOOT_CS` = 0x10, `__BOOT_DS` = 0x18, interrupts off) and Xen
//! `docs/misc/pvh.pandoc` (32-bit protected mode, paging off, interrupts off).

use crate::Fail;

/// `__BOOT_CS`.
pub const BOOT_CS: u16 = 0x10;
/// `__BOOT_DS`.
pub const BOOT_DS: u16 = 0x18;
/// RFLAGS.IF.
pub const FLAGS_IF: u64 = 1 << 9;
/// EFER.LMA (long mode active).
pub const EFER_LMA: u64 = 1 << 10;
/// CR0.PE.
pub const CR0_PE: u64 = 1 << 0;
/// CR0.PG.
pub const CR0_PG: u64 = 1 << 31;

/// State at the 64-bit entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LongEntry {
    /// RFLAGS.
    pub rflags: u64,
    /// CS, DS, ES, SS selectors.
    pub cs: u16,
    /// DS.
    pub ds: u16,
    /// ES.
    pub es: u16,
    /// SS.
    pub ss: u16,
    /// IA32_EFER.
    pub efer: u64,
}

impl LongEntry {
    /// Unpack the selectors as `probe_entry64` packs them: CS in bits 0..16, DS 16..32,
    /// ES 32..48, SS 48..64.
    pub fn new(rflags: u64, selectors: u64, efer: u64) -> LongEntry {
        LongEntry {
            rflags,
            cs: selectors as u16,
            ds: (selectors >> 16) as u16,
            es: (selectors >> 32) as u16,
            ss: (selectors >> 48) as u16,
            efer,
        }
    }

    /// Check long mode, the selectors and IF.
    pub fn check(&self) -> Result<(), Fail> {
        if self.efer & EFER_LMA == 0 {
            return Err(Fail::NotLongMode { efer: self.efer });
        }
        if self.cs != BOOT_CS || self.ds != BOOT_DS || self.es != BOOT_DS || self.ss != BOOT_DS {
            return Err(Fail::Selectors {
                cs: self.cs,
                ds: self.ds,
                es: self.es,
                ss: self.ss,
            });
        }
        if self.rflags & FLAGS_IF != 0 {
            return Err(Fail::InterruptsEnabled { flags: self.rflags });
        }
        Ok(())
    }
}

/// State at the PVH entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PvhEntry {
    /// CR0.
    pub cr0: u64,
    /// EFLAGS.
    pub eflags: u64,
}

impl PvhEntry {
    /// Check protected mode without paging, and IF.
    pub fn check(&self) -> Result<(), Fail> {
        if self.cr0 & CR0_PE == 0 || self.cr0 & CR0_PG != 0 {
            return Err(Fail::PvhCr0 { cr0: self.cr0 });
        }
        if self.eflags & FLAGS_IF != 0 {
            return Err(Fail::InterruptsEnabled { flags: self.eflags });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_entry() {
        let sel = 0x18u64 << 48 | 0x18 << 32 | 0x18 << 16 | 0x10;
        let good = LongEntry::new(0x2, sel, 0xd00);
        assert_eq!(good.check(), Ok(()));
        assert!(matches!(
            LongEntry::new(0x202, sel, 0xd00).check(),
            Err(Fail::InterruptsEnabled { .. })
        ));
        assert!(matches!(
            LongEntry::new(0x2, sel, 0x100).check(),
            Err(Fail::NotLongMode { .. })
        ));
        let e = LongEntry::new(0x2, 0x10u64 << 48 | 0x18 << 32 | 0x18 << 16 | 0x08, 0x500);
        assert_eq!(
            e.check(),
            Err(Fail::Selectors {
                cs: 8,
                ds: 0x18,
                es: 0x18,
                ss: 0x10
            })
        );
    }

    #[test]
    fn pvh_entry() {
        assert_eq!(
            PvhEntry {
                cr0: 0x11,
                eflags: 2
            }
            .check(),
            Ok(())
        );
        assert!(PvhEntry {
            cr0: 0x8000_0011,
            eflags: 2
        }
        .check()
        .is_err());
        assert!(PvhEntry {
            cr0: 0x10,
            eflags: 2
        }
        .check()
        .is_err());
        assert!(PvhEntry {
            cr0: 0x11,
            eflags: 0x202
        }
        .check()
        .is_err());
    }
}
