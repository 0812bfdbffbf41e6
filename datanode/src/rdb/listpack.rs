//! Listpack: the compact sequence Redis 7 uses for small hashes, sorted sets, sets (7.2) and
//! quicklist nodes.
//!
//! Layout: `total-bytes u32 LE`, `count u16 LE` (65535 = too many to count), the entries, `0xFF`.
//! Each entry is an encoding byte (with, for strings, its length), the data, then the entry's
//! size written backwards in 1 to 5 bytes (so the list can be walked from the tail).
//!
//! Invariant: `parse` checks every size against the blob before reading, so any input yields
//! either the elements or an error.

use super::{BlobError, Elem, check_total};

const KIND: &str = "listpack";
const HEADER: usize = 6;
const END: u8 = 0xff;
const UNKNOWN_COUNT: usize = u16::MAX as usize;

/// The elements of a listpack, validated: total size, sizes of every entry, back-lengths, end
/// marker and element count.
pub fn parse(blob: &[u8]) -> Result<Vec<Elem<'_>>, BlobError> {
    check_total(KIND, blob, HEADER)?;
    let count = usize::from(u16::from_le_bytes([blob[4], blob[5]]));
    let last = blob.len() - 1;
    if blob[last] != END {
        return Err(BlobError::new(KIND, last, "no end marker"));
    }
    // Each entry takes at least two bytes, so the blob bounds the count we reserve for.
    let mut out = Vec::with_capacity(count.min(blob.len() / 2));
    let mut p = HEADER;
    while p < last {
        let (elem, size) = entry(blob, p, last)?;
        let back = backlen_size(size);
        let back_at = p + size;
        if back_at + back > last {
            return Err(BlobError::new(KIND, p, "entry overruns the blob"));
        }
        if blob[back_at..back_at + back] != encode_backlen(size)[..back] {
            return Err(BlobError::new(
                KIND,
                back_at,
                "back-length does not match the entry",
            ));
        }
        out.push(elem);
        p = back_at + back;
    }
    if count != UNKNOWN_COUNT && count != out.len() {
        return Err(BlobError::new(
            KIND,
            4,
            format!("header says {count} elements, found {}", out.len()),
        ));
    }
    Ok(out)
}

/// Encodes `elems` as a listpack, integers always as int64 (tests use it to produce values in
/// the encodings Redis writes; the writer emits only plain encodings).
#[cfg(test)]
pub(crate) fn build(elems: &[Elem<'_>]) -> Vec<u8> {
    let mut out = vec![0u8; HEADER];
    for e in elems {
        let start = out.len();
        match *e {
            Elem::Int(i) => {
                out.push(0xf4);
                out.extend_from_slice(&i.to_le_bytes());
            }
            Elem::Bytes(b) if b.len() < 64 => {
                out.push(0x80 | b.len() as u8);
                out.extend_from_slice(b);
            }
            Elem::Bytes(b) if b.len() < 4096 => {
                out.push(0xe0 | (b.len() >> 8) as u8);
                out.push((b.len() & 0xff) as u8);
                out.extend_from_slice(b);
            }
            Elem::Bytes(b) => {
                out.push(0xf0);
                out.extend_from_slice(&(b.len() as u32).to_le_bytes());
                out.extend_from_slice(b);
            }
        }
        let size = out.len() - start;
        out.extend_from_slice(&encode_backlen(size)[..backlen_size(size)]);
    }
    out.push(END);
    let total = out.len() as u32;
    out[..4].copy_from_slice(&total.to_le_bytes());
    let count = u16::try_from(elems.len()).unwrap_or(u16::MAX);
    out[4..6].copy_from_slice(&count.to_le_bytes());
    out
}

/// Decodes the entry at `p` (before `last`, the end marker); returns it and its size without
/// the back-length.
fn entry(blob: &[u8], p: usize, last: usize) -> Result<(Elem<'_>, usize), BlobError> {
    let b = blob[p];
    let need = |n: usize| -> Result<&[u8], BlobError> {
        blob.get(p..p + n)
            .filter(|_| p + n <= last)
            .ok_or_else(|| BlobError::new(KIND, p, "entry overruns the blob"))
    };
    let int = |bytes: &[u8]| -> i64 {
        // Sign-extend a little-endian two's complement integer of 2, 3, 4 or 8 bytes.
        let mut v = [0u8; 8];
        v[..bytes.len()].copy_from_slice(bytes);
        let shift = 64 - 8 * bytes.len() as u32;
        (i64::from_le_bytes(v) << shift) >> shift
    };
    let string = |header: usize, len: usize| -> Result<(Elem<'_>, usize), BlobError> {
        let e = need(header + len)?;
        Ok((Elem::Bytes(&e[header..]), header + len))
    };
    match b {
        0x00..=0x7f => Ok((Elem::Int(i64::from(b)), 1)),
        0x80..=0xbf => string(1, usize::from(b & 0x3f)),
        0xc0..=0xdf => {
            let e = need(2)?;
            let u = (i64::from(b & 0x1f) << 8) | i64::from(e[1]);
            Ok((Elem::Int(if u >= 1 << 12 { u - (1 << 13) } else { u }), 2))
        }
        0xe0..=0xef => {
            let e = need(2)?;
            string(2, (usize::from(b & 0x0f) << 8) | usize::from(e[1]))
        }
        0xf0 => {
            let e = need(5)?;
            string(5, u32::from_le_bytes([e[1], e[2], e[3], e[4]]) as usize)
        }
        0xf1 => Ok((Elem::Int(int(&need(3)?[1..])), 3)),
        0xf2 => Ok((Elem::Int(int(&need(4)?[1..])), 4)),
        0xf3 => Ok((Elem::Int(int(&need(5)?[1..])), 5)),
        0xf4 => Ok((Elem::Int(int(&need(9)?[1..])), 9)),
        END => Err(BlobError::new(KIND, p, "end marker before the end")),
        _ => Err(BlobError::new(
            KIND,
            p,
            format!("invalid encoding byte {b:#04x}"),
        )),
    }
}

/// Bytes the back-length of an entry of `size` bytes takes.
fn backlen_size(size: usize) -> usize {
    match size {
        0..=127 => 1,
        128..16383 => 2,
        16383..2_097_151 => 3,
        2_097_151..268_435_455 => 4,
        _ => 5,
    }
}

/// The back-length bytes in file order (most significant group first; every byte but the first
/// has its high bit set), padded to 5.
fn encode_backlen(size: usize) -> [u8; 5] {
    let n = backlen_size(size);
    let mut out = [0u8; 5];
    for (i, slot) in out.iter_mut().take(n).enumerate() {
        let group = ((size >> (7 * (n - 1 - i))) & 0x7f) as u8;
        *slot = if i == 0 { group } else { group | 0x80 };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_encoding() {
        // Hand-assembled: 7-bit uint 5, 13-bit int -1, 6-bit string "ab", int16 1000,
        // int24 -100000, int32 2^30, int64 -2^40, 12-bit string of 100 bytes.
        let mut body = Vec::new();
        let mut push = |enc: &[u8]| {
            body.extend_from_slice(enc);
            body.extend_from_slice(&encode_backlen(enc.len())[..backlen_size(enc.len())]);
        };
        push(&[0x05]);
        push(&[0xdf, 0xff]);
        push(&[0x82, b'a', b'b']);
        push(&[&[0xf1][..], &1000i16.to_le_bytes()].concat());
        push(&[&[0xf2][..], &(-100_000i32).to_le_bytes()[..3]].concat());
        push(&[&[0xf3][..], &(1i32 << 30).to_le_bytes()].concat());
        push(&[&[0xf4][..], &(-(1i64 << 40)).to_le_bytes()].concat());
        let long = [b'z'; 100];
        push(&[&[0xe0, 100][..], &long].concat());
        let mut blob = (7 + body.len() as u32).to_le_bytes().to_vec();
        blob.extend_from_slice(&8u16.to_le_bytes());
        blob.extend_from_slice(&body);
        blob.push(END);
        let got = parse(&blob).expect("valid listpack");
        assert_eq!(
            got,
            vec![
                Elem::Int(5),
                Elem::Int(-1),
                Elem::Bytes(b"ab"),
                Elem::Int(1000),
                Elem::Int(-100_000),
                Elem::Int(1 << 30),
                Elem::Int(-(1 << 40)),
                Elem::Bytes(&long),
            ]
        );
        for cut in 0..blob.len() {
            assert!(parse(&blob[..cut]).is_err());
        }
    }

    #[test]
    fn build_round_trips_and_sizes_back_lengths() {
        let big = vec![b'q'; 20_000];
        let elems = [
            Elem::Bytes(b""),
            Elem::Int(-7),
            Elem::Bytes(&big),
            Elem::Bytes(&big[..200]),
        ];
        let blob = build(&elems);
        assert_eq!(parse(&blob).expect("valid"), elems.to_vec());
        assert_eq!(encode_backlen(127)[..1], [127]);
        assert_eq!(encode_backlen(128)[..2], [1, 0x80]);
        assert_eq!(backlen_size(20_005), 3);
    }
}
