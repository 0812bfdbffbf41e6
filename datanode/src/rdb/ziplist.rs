//! Ziplist: the compact sequence of Redis before 7.0 (small lists, hashes and sorted sets, and
//! quicklist nodes up to RDB version 9). Redis 7.0 no longer writes it but still loads it.
//!
//! Layout: `zlbytes u32 LE`, `zltail u32 LE` (offset of the last entry), `zllen u16 LE` (65535 =
//! too many to count), the entries, `0xFF`. Each entry is the previous entry's size (1 byte, or
//! `0xFE` and 4 bytes LE), an encoding (strings: 1, 2 or 5 bytes with the length; integers: one
//! byte, or an immediate 0..=12 in the low nibble), then the data.
//!
//! Invariant: `parse` checks every size against the blob before reading, and checks the
//! previous-entry sizes and the tail offset, so any input yields either the elements or an error.

use super::{BlobError, Elem, check_total};

const KIND: &str = "ziplist";
const HEADER: usize = 10;
const END: u8 = 0xff;
const BIG_PREVLEN: u8 = 0xfe;
const UNKNOWN_COUNT: usize = u16::MAX as usize;

/// The elements of a ziplist, validated.
pub fn parse(blob: &[u8]) -> Result<Vec<Elem<'_>>, BlobError> {
    check_total(KIND, blob, HEADER)?;
    let tail = u32::from_le_bytes([blob[4], blob[5], blob[6], blob[7]]) as usize;
    let count = usize::from(u16::from_le_bytes([blob[8], blob[9]]));
    let last = blob.len() - 1;
    if blob[last] != END {
        return Err(BlobError::new(KIND, last, "no end marker"));
    }
    let mut out = Vec::with_capacity(count.min(blob.len() / 2));
    let mut p = HEADER;
    let mut prev_size = 0;
    let mut last_entry = HEADER;
    while p < last {
        let overrun = || BlobError::new(KIND, p, "entry overruns the blob");
        let (prevlen, mut q) = if blob[p] == BIG_PREVLEN {
            let b = blob.get(p + 1..p + 5).ok_or_else(overrun)?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, p + 5)
        } else {
            (usize::from(blob[p]), p + 1)
        };
        if prevlen != prev_size {
            return Err(BlobError::new(
                KIND,
                p,
                format!("previous-entry size {prevlen}, but that entry has {prev_size} bytes"),
            ));
        }
        let enc = *blob.get(q).filter(|_| q < last).ok_or_else(overrun)?;
        q += 1;
        let (header, len, int) = match enc >> 6 {
            0 => (0, usize::from(enc & 0x3f), false),
            1 => {
                let b = *blob.get(q).ok_or_else(overrun)?;
                (1, (usize::from(enc & 0x3f) << 8) | usize::from(b), false)
            }
            2 => {
                let b = blob.get(q..q + 4).ok_or_else(overrun)?;
                (
                    4,
                    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize,
                    false,
                )
            }
            _ => match enc {
                0xc0 => (0, 2, true),
                0xd0 => (0, 4, true),
                0xe0 => (0, 8, true),
                0xf0 => (0, 3, true),
                0xfe => (0, 1, true),
                0xf1..=0xfd => (0, 0, true),
                _ => {
                    return Err(BlobError::new(
                        KIND,
                        q - 1,
                        format!("invalid encoding {enc:#04x}"),
                    ));
                }
            },
        };
        let data_at = q + header;
        let end = data_at
            .checked_add(len)
            .filter(|&e| e <= last)
            .ok_or_else(overrun)?;
        let data = &blob[data_at..end];
        out.push(if !int {
            Elem::Bytes(data)
        } else if len == 0 {
            Elem::Int(i64::from(enc & 0x0f) - 1)
        } else {
            // Little-endian two's complement of 1, 2, 3, 4 or 8 bytes, sign-extended.
            let mut v = [0u8; 8];
            v[..len].copy_from_slice(data);
            let shift = 64 - 8 * len as u32;
            Elem::Int((i64::from_le_bytes(v) << shift) >> shift)
        });
        last_entry = p;
        prev_size = end - p;
        p = end;
    }
    if tail != last_entry {
        return Err(BlobError::new(
            KIND,
            4,
            format!("tail offset {tail}, but the last entry starts at {last_entry}"),
        ));
    }
    if count != UNKNOWN_COUNT && count != out.len() {
        return Err(BlobError::new(
            KIND,
            8,
            format!("header says {count} elements, found {}", out.len()),
        ));
    }
    Ok(out)
}

/// Encodes `elems` as a ziplist, picking the smallest encoding as Redis does (tests use it to
/// produce the values older Redis versions wrote).
#[cfg(test)]
pub(crate) fn build(elems: &[Elem<'_>]) -> Vec<u8> {
    let mut out = vec![0u8; HEADER];
    let mut prev = 0usize;
    let mut tail = HEADER;
    for e in elems {
        let start = out.len();
        tail = start;
        if prev < 254 {
            out.push(prev as u8);
        } else {
            out.push(BIG_PREVLEN);
            out.extend_from_slice(&(prev as u32).to_le_bytes());
        }
        match *e {
            Elem::Int(i @ 0..=12) => out.push(0xf1 + i as u8),
            Elem::Int(i) if i8::try_from(i).is_ok() => out.extend_from_slice(&[0xfe, i as u8]),
            Elem::Int(i) if i16::try_from(i).is_ok() => {
                out.push(0xc0);
                out.extend_from_slice(&(i as i16).to_le_bytes());
            }
            Elem::Int(i) if (-(1 << 23)..1 << 23).contains(&i) => {
                out.push(0xf0);
                out.extend_from_slice(&(i as i32).to_le_bytes()[..3]);
            }
            Elem::Int(i) if i32::try_from(i).is_ok() => {
                out.push(0xd0);
                out.extend_from_slice(&(i as i32).to_le_bytes());
            }
            Elem::Int(i) => {
                out.push(0xe0);
                out.extend_from_slice(&i.to_le_bytes());
            }
            Elem::Bytes(b) if b.len() < 64 => out.push(b.len() as u8),
            Elem::Bytes(b) if b.len() < 16384 => {
                out.extend_from_slice(&[0x40 | (b.len() >> 8) as u8, (b.len() & 0xff) as u8]);
            }
            Elem::Bytes(b) => {
                out.push(0x80);
                out.extend_from_slice(&(b.len() as u32).to_be_bytes());
            }
        }
        if let Elem::Bytes(b) = e {
            out.extend_from_slice(b);
        }
        prev = out.len() - start;
    }
    out.push(END);
    let total = out.len() as u32;
    out[..4].copy_from_slice(&total.to_le_bytes());
    out[4..8].copy_from_slice(&(tail as u32).to_le_bytes());
    let count = u16::try_from(elems.len()).unwrap_or(u16::MAX);
    out[8..10].copy_from_slice(&count.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_encoding_and_rejects_every_truncation() {
        let long = vec![b'L'; 300];
        let huge = vec![b'H'; 20_000];
        let elems = [
            Elem::Int(0),
            Elem::Int(12),
            Elem::Int(-5),
            Elem::Int(1000),
            Elem::Int(-3_000_000),
            Elem::Int(1 << 30),
            Elem::Int(6_000_000_000),
            Elem::Bytes(b""),
            Elem::Bytes(b"abc"),
            Elem::Bytes(&long),
            Elem::Bytes(&huge),
            Elem::Bytes(b"after a big entry"),
        ];
        let blob = build(&elems);
        assert_eq!(parse(&blob).expect("valid ziplist"), elems.to_vec());
        for cut in (0..blob.len()).filter(|c| *c < 400 || *c > blob.len() - 40) {
            assert!(parse(&blob[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn hand_assembled_bytes_parse() {
        // Assembled by hand from ziplist.c's layout: header, "a", the immediate 1, end marker.
        let blob = [
            0x11, 0, 0, 0, 0x0d, 0, 0, 0, 2, 0, 0x00, 0x01, b'a', 0x03, 0xf2, 0xff,
        ];
        let mut fixed = blob.to_vec();
        fixed[0] = blob.len() as u8;
        assert_eq!(
            parse(&fixed).expect("valid"),
            vec![Elem::Bytes(b"a"), Elem::Int(1)]
        );
        assert!(parse(&blob).is_err(), "wrong zlbytes is rejected");
    }

    #[test]
    fn inconsistent_headers_are_rejected() {
        let mut blob = build(&[Elem::Bytes(b"x"), Elem::Bytes(b"y")]);
        blob[8] = 3;
        assert!(parse(&blob).is_err());
        let mut blob = build(&[Elem::Bytes(b"x"), Elem::Bytes(b"y")]);
        blob[4] = 10;
        assert!(parse(&blob).is_err());
        let mut blob = build(&[Elem::Bytes(b"x"), Elem::Bytes(b"y")]);
        blob[13] = 7;
        assert!(parse(&blob).is_err());
    }
}
