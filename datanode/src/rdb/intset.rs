//! Intset: a sorted array of integers, the encoding of small all-integer sets.
//!
//! Layout: `encoding u32 LE` (element width in bytes: 2, 4 or 8), `length u32 LE`, then the
//! elements, little-endian, strictly ascending.
//!
//! Invariant: `parse` checks the size, the width and the order, so any input yields either the
//! elements or an error. An empty intset is invalid, as in Redis.

use super::BlobError;

const KIND: &str = "intset";

/// The integers of an intset, validated.
pub fn parse(blob: &[u8]) -> Result<Vec<i64>, BlobError> {
    if blob.len() < 8 {
        return Err(BlobError::new(
            KIND,
            0,
            format!("only {} bytes", blob.len()),
        ));
    }
    let width = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return Err(BlobError::new(
            KIND,
            0,
            format!("invalid element width {width}"),
        ));
    }
    let count = u32::from_le_bytes([blob[4], blob[5], blob[6], blob[7]]) as usize;
    if count == 0 {
        return Err(BlobError::new(KIND, 4, "empty intset"));
    }
    if count.checked_mul(width).and_then(|n| n.checked_add(8)) != Some(blob.len()) {
        return Err(BlobError::new(
            KIND,
            4,
            format!(
                "{count} elements of {width} bytes do not fill {} bytes",
                blob.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(count);
    for (i, c) in blob[8..].chunks_exact(width).enumerate() {
        let v = match *c {
            [a, b] => i64::from(i16::from_le_bytes([a, b])),
            [a, b, c, d] => i64::from(i32::from_le_bytes([a, b, c, d])),
            [a, b, c, d, e, f, g, h] => i64::from_le_bytes([a, b, c, d, e, f, g, h]),
            _ => unreachable!("chunks_exact yields chunks of the checked width"),
        };
        if out.last().is_some_and(|&prev| prev >= v) {
            return Err(BlobError::new(
                KIND,
                8 + i * width,
                "elements not strictly ascending",
            ));
        }
        out.push(v);
    }
    Ok(out)
}

/// Encodes sorted, distinct `values` as an intset of the narrowest width (for tests).
#[cfg(test)]
pub(crate) fn build(values: &[i64]) -> Vec<u8> {
    let width: usize = if values.iter().all(|v| i16::try_from(*v).is_ok()) {
        2
    } else if values.iter().all(|v| i32::try_from(*v).is_ok()) {
        4
    } else {
        8
    };
    let mut out = (width as u32).to_le_bytes().to_vec();
    out.extend_from_slice(&(values.len() as u32).to_le_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_width_and_rejects_bad_blobs() {
        for values in [vec![-3, 1, 2], vec![1, 100_000], vec![-1, 5_000_000_000]] {
            assert_eq!(parse(&build(&values)), Ok(values));
        }
        let blob = build(&[1, 2, 3]);
        for cut in 0..blob.len() {
            assert!(parse(&blob[..cut]).is_err());
        }
        let mut unsorted = blob.clone();
        unsorted[8] = 9;
        assert!(parse(&unsorted).is_err());
        let mut bad_width = blob;
        bad_width[0] = 3;
        assert!(parse(&bad_width).is_err());
        assert!(parse(&build(&[])).is_err());
    }
}
