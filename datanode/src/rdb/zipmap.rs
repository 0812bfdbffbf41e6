//! Zipmap: the small-hash encoding of Redis before 2.6, still loaded by Redis 7.0.
//!
//! Layout: `count u8` (254 or more: count unknown), then per pair: key length, key, value length,
//! one byte of trailing free space `f`, the value, `f` unused bytes; then `0xFF`. A length is one
//! byte below 254, or `0xFE` and 4 bytes LE.
//!
//! Invariant: `parse` checks every length against the blob, so any input yields either the
//! pairs or an error.

use super::BlobError;

const KIND: &str = "zipmap";
const BIGLEN: u8 = 0xfe;
const END: u8 = 0xff;

/// A field and its value, borrowed from the blob.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

/// The field/value pairs of a zipmap, validated.
pub fn parse(blob: &[u8]) -> Result<Vec<Pair<'_>>, BlobError> {
    let Some(&count) = blob.first() else {
        return Err(BlobError::new(KIND, 0, "empty blob"));
    };
    let mut out = Vec::new();
    let mut p = 1;
    loop {
        let at = p;
        let Some(&b) = blob.get(p) else {
            return Err(BlobError::new(KIND, p, "no end marker"));
        };
        if b == END {
            if p + 1 != blob.len() {
                return Err(BlobError::new(KIND, p, "end marker before the end"));
            }
            break;
        }
        let key_len = length(blob, &mut p)?;
        let key = take(blob, &mut p, key_len)?;
        let value_len = length(blob, &mut p)?;
        let free = usize::from(*take(blob, &mut p, 1)?.first().unwrap_or(&0));
        let value = take(blob, &mut p, value_len)?;
        take(blob, &mut p, free)?;
        if p >= blob.len() {
            return Err(BlobError::new(KIND, at, "pair overruns the blob"));
        }
        out.push((key, value));
    }
    if count < BIGLEN && usize::from(count) != out.len() {
        return Err(BlobError::new(
            KIND,
            0,
            format!("header says {count} pairs, found {}", out.len()),
        ));
    }
    Ok(out)
}

fn length(blob: &[u8], p: &mut usize) -> Result<usize, BlobError> {
    let at = *p;
    match blob.get(at) {
        Some(&BIGLEN) => {
            let b = take(blob, p, 5)?;
            Ok(u32::from_le_bytes([b[1], b[2], b[3], b[4]]) as usize)
        }
        Some(&END) => Err(BlobError::new(KIND, at, "end marker inside a pair")),
        Some(&b) => {
            *p += 1;
            Ok(usize::from(b))
        }
        None => Err(BlobError::new(KIND, at, "pair overruns the blob")),
    }
}

fn take<'a>(blob: &'a [u8], p: &mut usize, n: usize) -> Result<&'a [u8], BlobError> {
    let at = *p;
    let s = at
        .checked_add(n)
        .and_then(|end| blob.get(at..end))
        .ok_or_else(|| BlobError::new(KIND, at, "pair overruns the blob"))?;
    *p += n;
    Ok(s)
}

/// Encodes pairs as a zipmap, with one byte of free space after each value (for tests).
#[cfg(test)]
pub(crate) fn build(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = vec![pairs.len().min(254) as u8];
    let len = |out: &mut Vec<u8>, n: usize| {
        if n < 254 {
            out.push(n as u8);
        } else {
            out.push(BIGLEN);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
    };
    for (k, v) in pairs {
        len(&mut out, k.len());
        out.extend_from_slice(k);
        len(&mut out, v.len());
        out.push(1);
        out.extend_from_slice(v);
        out.push(0);
    }
    out.push(END);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_and_rejects_truncation() {
        let long = vec![b'v'; 300];
        let pairs: Vec<(&[u8], &[u8])> = vec![(b"a", b"1"), (b"key", &long), (b"", b"")];
        let blob = build(&pairs);
        assert_eq!(parse(&blob), Ok(pairs));
        for cut in 0..blob.len() {
            assert!(parse(&blob[..cut]).is_err(), "cut {cut}");
        }
        let mut wrong_count = blob;
        wrong_count[0] = 2;
        assert!(parse(&wrong_count).is_err());
    }
}
