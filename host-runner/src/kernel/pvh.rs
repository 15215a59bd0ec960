//! PVH entry detection in an ELF `vmlinux` (Xen `include/public/elfnote.h`,
//! `XEN_ELFNOTE_PHYS32_ENTRY`; Linux `arch/x86/platform/pvh/head.S`).
//!
//! QEMU boots an ELF `-kernel` only if it carries a `"Xen"` note of type 18 whose
//! descriptor is the 32-bit physical entry point; the firmware then enters the kernel
//! there with an `hvm_start_info`.

use goblin::elf::Elf;

/// `XEN_ELFNOTE_PHYS32_ENTRY`: physical address of the 32-bit PVH entry point.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;

/// Errors from checking a `vmlinux` for a PVH entry.
#[derive(Debug, thiserror::Error)]
pub enum PvhError {
    /// The bytes are not a parseable ELF file.
    #[error("not a valid ELF file: {0}")]
    Elf(#[from] goblin::error::Error),
    /// The ELF has no `XEN_ELFNOTE_PHYS32_ENTRY` note (kernel built without `CONFIG_PVH`).
    #[error("ELF has no XEN_ELFNOTE_PHYS32_ENTRY (type 18) note: kernel lacks CONFIG_PVH")]
    NoPvhNote,
    /// The note's descriptor is not a 4- or 8-byte address.
    #[error("XEN_ELFNOTE_PHYS32_ENTRY descriptor has {0} bytes, expected 4 or 8")]
    BadDescriptor(usize),
}

/// Return the PVH entry address of the ELF image `bytes`.
///
/// Notes are looked up through `PT_NOTE` program headers first (what QEMU reads),
/// then through `SHT_NOTE` sections.
pub fn pvh_entry(bytes: &[u8]) -> Result<u64, PvhError> {
    let elf = Elf::parse(bytes)?;
    let from_phdrs = elf.iter_note_headers(bytes).into_iter().flatten();
    let from_sections = elf.iter_note_sections(bytes, None).into_iter().flatten();
    for note in from_phdrs.chain(from_sections) {
        let Ok(note) = note else { continue };
        if note.name == "Xen" && note.n_type == XEN_ELFNOTE_PHYS32_ENTRY {
            return match note.desc.len() {
                4 => Ok(u64::from(u32::from_le_bytes([
                    note.desc[0],
                    note.desc[1],
                    note.desc[2],
                    note.desc[3],
                ]))),
                8 => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(note.desc);
                    Ok(u64::from_le_bytes(b))
                }
                n => Err(PvhError::BadDescriptor(n)),
            };
        }
    }
    Err(PvhError::NoPvhNote)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal ELF64 x86-64 executable with one `PT_NOTE` segment holding a note
    /// named `name`, of type `n_type`, with descriptor `desc`.
    pub(crate) fn tiny_elf(name: &str, n_type: u32, desc: &[u8]) -> Vec<u8> {
        let mut note = Vec::new();
        let name_z = [name.as_bytes(), b"\0"].concat();
        note.extend_from_slice(&(name_z.len() as u32).to_le_bytes());
        note.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        note.extend_from_slice(&n_type.to_le_bytes());
        note.extend_from_slice(&name_z);
        note.resize(note.len().next_multiple_of(4), 0);
        note.extend_from_slice(desc);
        note.resize(note.len().next_multiple_of(4), 0);

        let (ehsize, phentsize) = (64u16, 56u16);
        let note_off = u64::from(ehsize + phentsize);
        let mut f = Vec::new();
        f.extend_from_slice(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0"); // 64-bit, LE, v1
        f.extend_from_slice(&2u16.to_le_bytes()); // e_type = ET_EXEC
        f.extend_from_slice(&62u16.to_le_bytes()); // e_machine = EM_X86_64
        f.extend_from_slice(&1u32.to_le_bytes()); // e_version
        f.extend_from_slice(&0x100_0000u64.to_le_bytes()); // e_entry
        f.extend_from_slice(&64u64.to_le_bytes()); // e_phoff
        f.extend_from_slice(&0u64.to_le_bytes()); // e_shoff
        f.extend_from_slice(&0u32.to_le_bytes()); // e_flags
        f.extend_from_slice(&ehsize.to_le_bytes());
        f.extend_from_slice(&phentsize.to_le_bytes());
        f.extend_from_slice(&1u16.to_le_bytes()); // e_phnum
        f.extend_from_slice(&64u16.to_le_bytes()); // e_shentsize
        f.extend_from_slice(&0u16.to_le_bytes()); // e_shnum
        f.extend_from_slice(&0u16.to_le_bytes()); // e_shstrndx
        f.extend_from_slice(&4u32.to_le_bytes()); // p_type = PT_NOTE
        f.extend_from_slice(&4u32.to_le_bytes()); // p_flags = R
        f.extend_from_slice(&note_off.to_le_bytes()); // p_offset
        f.extend_from_slice(&0u64.to_le_bytes()); // p_vaddr
        f.extend_from_slice(&0u64.to_le_bytes()); // p_paddr
        f.extend_from_slice(&(note.len() as u64).to_le_bytes()); // p_filesz
        f.extend_from_slice(&(note.len() as u64).to_le_bytes()); // p_memsz
        f.extend_from_slice(&4u64.to_le_bytes()); // p_align
        f.extend_from_slice(&note);
        f
    }

    #[test]
    fn finds_64bit_entry_note() {
        let elf = tiny_elf("Xen", 18, &0x100_0850u64.to_le_bytes());
        assert_eq!(pvh_entry(&elf).unwrap(), 0x100_0850);
    }

    #[test]
    fn finds_32bit_entry_note() {
        let elf = tiny_elf("Xen", 18, &0x1234u32.to_le_bytes());
        assert_eq!(pvh_entry(&elf).unwrap(), 0x1234);
    }

    #[test]
    fn other_notes_do_not_count() {
        let elf = tiny_elf("Xen", 1, &[0; 8]);
        assert!(matches!(pvh_entry(&elf), Err(PvhError::NoPvhNote)));
        let elf = tiny_elf("GNU", 18, &[0; 8]);
        assert!(matches!(pvh_entry(&elf), Err(PvhError::NoPvhNote)));
        let elf = tiny_elf("Xen", 18, &[0; 2]);
        assert!(matches!(pvh_entry(&elf), Err(PvhError::BadDescriptor(2))));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(
            pvh_entry(b"not an elf at all"),
            Err(PvhError::Elf(_))
        ));
        let mut elf = tiny_elf("Xen", 18, &[0; 8]);
        elf.truncate(90);
        assert!(pvh_entry(&elf).is_err());
    }
}
