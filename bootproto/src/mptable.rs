//! The Intel MultiProcessor Specification 1.4 tables, for kernels booted without ACPI
//! (`-M microvm,acpi=off`): without them a kernel built with `CONFIG_X86_MPPARSE` sees one
//! CPU and no I/O APIC. (Debian's cloud kernel is built without it and ignores them.)
//!
//! [`build`] writes a floating pointer structure (16 bytes, to be placed where Linux
//! scans: the last KiB of conventional memory, [`crate::layout::EBDA`]) and a
//! configuration table (anywhere; the firmware uses its ACPI area, which is unused when
//! there is no ACPI). The configuration table lists every CPU, the ISA bus, the I/O APIC
//! at 0xFEC00000, the 16 ISA interrupts (IRQ 0 on pin 2 when QEMU overrides it, as
//! microvm does), and ExtINT/NMI on LINT0/LINT1.

use crate::le;

/// Size of the floating pointer structure.
pub const FLOATING_SIZE: usize = 16;
/// The local APIC's address.
pub const LAPIC_ADDR: u32 = 0xfee0_0000;
/// The I/O APIC's address.
pub const IOAPIC_ADDR: u32 = 0xfec0_0000;
/// Most CPUs [`build`] describes (APIC IDs are 8 bits and one ID goes to the I/O APIC).
pub const MAX_CPUS: u16 = 254;

const HEADER_SIZE: usize = 44;
const CPU_SIZE: usize = 20;
const SMALL_SIZE: usize = 8;
const ISA_IRQS: u8 = 16;

/// Bytes of configuration table [`build`] writes for `cpus` CPUs.
pub const fn config_size(cpus: u16) -> usize {
    HEADER_SIZE + CPU_SIZE * cpus as usize + SMALL_SIZE * (2 + ISA_IRQS as usize + 2)
}

/// Write the floating pointer into `floating` and the configuration table, which will be
/// placed at guest address `config_addr`, into `config`. `cpus` is clamped to
/// 1..=[`MAX_CPUS`]; `irq0_on_pin2` is QEMU's `FW_CFG_IRQ0_OVERRIDE`.
///
/// Returns the configuration table's length, or `None` if `config` is too short or
/// `config_addr` does not fit 32 bits.
pub fn build(
    floating: &mut [u8; FLOATING_SIZE],
    config: &mut [u8],
    config_addr: u64,
    cpus: u16,
    irq0_on_pin2: bool,
) -> Option<usize> {
    let cpus = cpus.clamp(1, MAX_CPUS);
    let len = config_size(cpus);
    let table = config.get_mut(..len)?;
    let addr = u32::try_from(config_addr).ok()?;
    table.fill(0);
    let ioapic_id = cpus as u8; // CPUs take APIC IDs 0..cpus
    let mut at = HEADER_SIZE;
    let mut entries: u16 = 0;
    let mut push = |table: &mut [u8], entry: &[u8]| {
        let ok = le::put(table, at, entry);
        at += entry.len();
        entries += 1;
        ok
    };
    let mut ok = true;
    for id in 0..cpus {
        let flags = if id == 0 { 0x3 } else { 0x1 }; // enabled, BSP
        let mut cpu = [0u8; CPU_SIZE];
        cpu[..4].copy_from_slice(&[0, id as u8, 0x14, flags]);
        cpu[4..8].copy_from_slice(&0x600u32.to_le_bytes()); // family 6
        cpu[8..12].copy_from_slice(&0x201u32.to_le_bytes()); // FPU, APIC
        ok &= push(table, &cpu);
    }
    ok &= push(table, &[1, 0, b'I', b'S', b'A', b' ', b' ', b' ']);
    let ioapic = IOAPIC_ADDR.to_le_bytes();
    ok &= push(
        table,
        &[
            2, ioapic_id, 0x11, 1, ioapic[0], ioapic[1], ioapic[2], ioapic[3],
        ],
    );
    for irq in 0..ISA_IRQS {
        let pin = if irq == 0 && irq0_on_pin2 { 2 } else { irq };
        ok &= push(table, &[3, 0, 0, 0, 0, irq, ioapic_id, pin]);
    }
    ok &= push(table, &[4, 3, 0, 0, 0, 0, 0xff, 0]); // ExtINT -> LINT0
    ok &= push(table, &[4, 1, 0, 0, 0, 0, 0xff, 1]); // NMI -> LINT1
    if !ok {
        return None;
    }
    let mut header = [0u8; HEADER_SIZE];
    header[..4].copy_from_slice(b"PCMP");
    header[4..6].copy_from_slice(&(len as u16).to_le_bytes());
    header[6] = 4; // spec revision 1.4
    header[8..16].copy_from_slice(b"MVM     ");
    header[16..28].copy_from_slice(b"MICROVM     ");
    header[34..36].copy_from_slice(&entries.to_le_bytes());
    header[36..40].copy_from_slice(&LAPIC_ADDR.to_le_bytes());
    le::put(table, 0, &header);
    table[7] = checksum(table);

    floating.fill(0);
    floating[..4].copy_from_slice(b"_MP_");
    floating[4..8].copy_from_slice(&addr.to_le_bytes());
    floating[8] = 1; // length in 16-byte units
    floating[9] = 4;
    floating[10] = checksum(floating);
    Some(len)
}

/// The byte that makes `bytes` sum to zero (modulo 256), given that its slot holds 0.
fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b)))
}
