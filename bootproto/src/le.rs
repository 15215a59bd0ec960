//! Bounds-checked little-endian access to byte slices (private helpers).
//!
//! Every accessor returns `None` (or `false`) instead of panicking when the range does
//! not fit, and computes range ends with checked arithmetic.

/// The `N` bytes at `off`, if they lie inside `buf`.
pub(crate) fn array_at<const N: usize>(buf: &[u8], off: usize) -> Option<[u8; N]> {
    let src = buf.get(off..off.checked_add(N)?)?;
    let mut out = [0u8; N];
    out.copy_from_slice(src);
    Some(out)
}

/// The little-endian `u16` at `off`.
pub(crate) fn u16_at(buf: &[u8], off: usize) -> Option<u16> {
    array_at(buf, off).map(u16::from_le_bytes)
}

/// The little-endian `u32` at `off`.
pub(crate) fn u32_at(buf: &[u8], off: usize) -> Option<u32> {
    array_at(buf, off).map(u32::from_le_bytes)
}

/// The little-endian `u64` at `off`.
pub(crate) fn u64_at(buf: &[u8], off: usize) -> Option<u64> {
    array_at(buf, off).map(u64::from_le_bytes)
}

/// Copy `data` to `buf[off..]`; `false` (and nothing written) if it does not fit.
pub(crate) fn put(buf: &mut [u8], off: usize, data: &[u8]) -> bool {
    let Some(end) = off.checked_add(data.len()) else {
        return false;
    };
    match buf.get_mut(off..end) {
        Some(dst) => {
            dst.copy_from_slice(data);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounds_checked() {
        let b = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(u16_at(&b, 0), Some(0x0201));
        assert_eq!(u32_at(&b, 5), Some(0x0908_0706));
        assert_eq!(u32_at(&b, 6), None);
        assert_eq!(u64_at(&b, 1), Some(0x0908_0706_0504_0302));
        assert_eq!(u64_at(&b, 2), None);
        assert_eq!(u16_at(&b, usize::MAX), None);
    }

    #[test]
    fn put_is_bounds_checked() {
        let mut b = [0u8; 4];
        assert!(put(&mut b, 2, &[7, 8]));
        assert_eq!(b, [0, 0, 7, 8]);
        assert!(!put(&mut b, 3, &[1, 2]));
        assert!(!put(&mut b, usize::MAX, &[1]));
        assert_eq!(b, [0, 0, 7, 8]);
    }
}
