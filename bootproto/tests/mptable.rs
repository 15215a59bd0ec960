//! MP tables: checksums, lengths and entries decoded back.

use bootproto::mptable::{build, config_size, FLOATING_SIZE, IOAPIC_ADDR, LAPIC_ADDR, MAX_CPUS};

fn sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |s, &b| s.wrapping_add(b))
}

#[test]
fn two_cpus_decode() {
    let mut fp = [0u8; FLOATING_SIZE];
    let mut cfg = [0u8; 1024];
    let len = build(&mut fp, &mut cfg, 0xe0000, 2, true).unwrap();
    assert_eq!(len, config_size(2));
    assert_eq!(&fp[..4], b"_MP_");
    assert_eq!(u32::from_le_bytes(fp[4..8].try_into().unwrap()), 0xe0000);
    assert_eq!((fp[8], fp[9], fp[11]), (1, 4, 0));
    assert_eq!(sum(&fp), 0);
    let t = &cfg[..len];
    assert_eq!(&t[..4], b"PCMP");
    assert_eq!(usize::from(u16::from_le_bytes([t[4], t[5]])), len);
    assert_eq!(sum(t), 0);
    assert_eq!(
        u32::from_le_bytes(t[36..40].try_into().unwrap()),
        LAPIC_ADDR
    );
    let count = u16::from_le_bytes([t[34], t[35]]);
    assert_eq!(count, 2 + 1 + 1 + 16 + 2);
    // CPUs: IDs 0 and 1, the first is the BSP.
    assert_eq!(&t[44..48], &[0, 0, 0x14, 3]);
    assert_eq!(&t[64..68], &[0, 1, 0x14, 1]);
    // Bus, then the I/O APIC with ID 2 at 0xFEC00000.
    assert_eq!(&t[84..90], b"\x01\x00ISA ");
    assert_eq!(&t[92..96], &[2, 2, 0x11, 1]);
    assert_eq!(
        u32::from_le_bytes(t[96..100].try_into().unwrap()),
        IOAPIC_ADDR
    );
    // IRQ 0 on pin 2, IRQ 1..15 identity.
    assert_eq!(&t[100..108], &[3, 0, 0, 0, 0, 0, 2, 2]);
    assert_eq!(&t[108..116], &[3, 0, 0, 0, 0, 1, 2, 1]);
    assert_eq!(&t[len - 16..len - 8], &[4, 3, 0, 0, 0, 0, 0xff, 0]);
    assert_eq!(&t[len - 8..], &[4, 1, 0, 0, 0, 0, 0xff, 1]);
}

#[test]
fn irq0_without_override_and_cpu_clamping() {
    let mut fp = [0u8; FLOATING_SIZE];
    let mut cfg = vec![0u8; config_size(MAX_CPUS)];
    let len = build(&mut fp, &mut cfg, 0xe0000, 0, false).unwrap();
    assert_eq!(len, config_size(1));
    assert_eq!(&cfg[64 + 16..64 + 24], &[3, 0, 0, 0, 0, 0, 1, 0]);
    let len = build(&mut fp, &mut cfg, 0xe0000, u16::MAX, false).unwrap();
    assert_eq!(len, config_size(MAX_CPUS));
    assert_eq!(sum(&cfg[..len]), 0);
}

#[test]
fn rejects_short_buffers_and_high_addresses() {
    let mut fp = [0u8; FLOATING_SIZE];
    let mut cfg = [0u8; 100];
    assert_eq!(build(&mut fp, &mut cfg, 0xe0000, 2, true), None);
    let mut cfg = [0u8; 1024];
    assert_eq!(build(&mut fp, &mut cfg, 1 << 32, 2, true), None);
}
