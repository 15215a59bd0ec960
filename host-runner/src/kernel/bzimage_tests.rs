//! Tests of bzImage header parsing and payload decompression on synthetic images.

use super::*;

/// A fake bzImage with `setup_sects` setup sectors and `payload` at `payload_offset`.
pub(crate) fn fake_image(setup_sects: u8, payload_offset: u32, payload: &[u8]) -> Vec<u8> {
    let sects = if setup_sects == 0 {
        4
    } else {
        usize::from(setup_sects)
    };
    let pm = (sects + 1) * SECTOR;
    let mut img = vec![0u8; pm + payload_offset as usize + payload.len()];
    img[SETUP_SECTS] = setup_sects;
    img[BOOT_FLAG..BOOT_FLAG + 2].copy_from_slice(&0xaa55u16.to_le_bytes());
    img[HEADER_MAGIC..HEADER_MAGIC + 4].copy_from_slice(b"HdrS");
    img[VERSION..VERSION + 2].copy_from_slice(&0x020fu16.to_le_bytes());
    img[PAYLOAD_OFFSET..PAYLOAD_OFFSET + 4].copy_from_slice(&payload_offset.to_le_bytes());
    img[PAYLOAD_LENGTH..PAYLOAD_LENGTH + 4].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    let at = pm + payload_offset as usize;
    img[at..at + payload.len()].copy_from_slice(payload);
    img
}

/// An LZ4 legacy payload of `data` in blocks of `block` bytes, plus the size trailer.
pub(crate) fn lz4_payload(data: &[u8], block: usize) -> Vec<u8> {
    let mut p = LZ4_LEGACY_MAGIC.to_le_bytes().to_vec();
    for chunk in data.chunks(block) {
        let c = lz4_flex::block::compress(chunk);
        p.extend_from_slice(&(c.len() as u32).to_le_bytes());
        p.extend_from_slice(&c);
    }
    p.extend_from_slice(&(data.len() as u32).to_le_bytes());
    p
}

#[test]
fn parses_header_and_locates_payload() {
    let img = fake_image(27, 0x3b0, b"\x02\x21\x4c\x18abcd");
    let h = Header::parse(&img).unwrap();
    assert_eq!(h.setup_sects, 27);
    assert_eq!(h.version, 0x020f);
    assert_eq!(h.protected_mode_offset(), 28 * 512);
    assert_eq!(h.payload(&img).unwrap(), b"\x02\x21\x4c\x18abcd");
    assert_eq!(
        Compression::detect(h.payload(&img).unwrap()).unwrap(),
        Compression::Lz4Legacy
    );
}

#[test]
fn zero_setup_sects_means_four() {
    let img = fake_image(0, 0, b"xyz");
    assert_eq!(
        Header::parse(&img).unwrap().protected_mode_offset(),
        5 * 512
    );
}

#[test]
fn rejects_bad_images() {
    assert!(matches!(
        Header::parse(&[0; 16]),
        Err(BzImageError::Truncated { .. })
    ));
    let mut img = fake_image(4, 0, b"data");
    img[HEADER_MAGIC] = b'X';
    assert!(matches!(Header::parse(&img), Err(BzImageError::NotBzImage)));
    let mut img = fake_image(4, 0, b"data");
    img[PAYLOAD_LENGTH..PAYLOAD_LENGTH + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let h = Header::parse(&img).unwrap();
    assert!(matches!(
        h.payload(&img),
        Err(BzImageError::PayloadOutOfRange { .. })
    ));
    assert!(matches!(
        Compression::detect(b"PK\x03\x04"),
        Err(BzImageError::UnknownCompression(_))
    ));
}

#[test]
fn lz4_legacy_round_trip_through_image() {
    let data: Vec<u8> = (0..100_000u32)
        .flat_map(|i| (i / 7).to_le_bytes())
        .collect();
    let img = fake_image(30, 0x200, &lz4_payload(&data, 64 * 1024));
    assert_eq!(extract_vmlinux(&img).unwrap(), data);
}

#[test]
fn lz4_size_mismatch_and_corruption_are_errors() {
    let data = vec![7u8; 5000];
    let mut p = lz4_payload(&data, 4096);
    let n = p.len();
    p[n - 4..].copy_from_slice(&4999u32.to_le_bytes());
    assert!(matches!(
        decompress_payload(&p),
        Err(BzImageError::SizeMismatch { .. })
    ));
    let mut p = lz4_payload(&data, 4096);
    p[4..8].copy_from_slice(&0xffffu32.to_le_bytes());
    assert!(matches!(decompress_payload(&p), Err(BzImageError::Lz4(_))));
}

#[test]
fn gzip_payload_via_cli() {
    let data = b"hello vmlinux ".repeat(1000);
    let Ok(gz) = run_gzip(&data) else {
        eprintln!("gzip not available, skipping");
        return;
    };
    assert_eq!(decompress_payload(&gz).unwrap(), data);
}

fn run_gzip(data: &[u8]) -> Result<Vec<u8>, BzImageError> {
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| BzImageError::Tool {
            tool: "gzip",
            detail: e.to_string(),
        })?;
    child.stdin.take().unwrap().write_all(data).unwrap();
    Ok(child.wait_with_output().unwrap().stdout)
}
