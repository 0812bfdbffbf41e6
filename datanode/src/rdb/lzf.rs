//! LZF, the compression Redis applies to long strings and quicklist nodes in RDB files.
//!
//! The format (liblzf, as vendored by Redis) is a sequence of chunks, each starting with a
//! control byte `c`:
//! - `c < 32`: a literal run of `c + 1` bytes follows;
//! - otherwise a back reference: length `(c >> 5) + 2` (when `c >> 5 == 7`, one more byte is
//!   added to the length), then one byte that, with the low 5 bits of `c`, gives the distance
//!   minus one (13 bits, so at most 8 KiB back).
//!
//! Invariants: `decompress` never reads or writes out of bounds and never allocates more than the
//! caller's declared output length; `compress` output always decompresses to its input.

/// Longest literal run one control byte can announce.
const MAX_LIT: usize = 32;
/// Farthest a back reference can reach (13 bits).
const MAX_OFF: usize = 1 << 13;
/// Longest back reference: `7 + 255` in the length fields, plus the implied 2.
const MAX_REF: usize = 264;
/// Hash table size (log2) of the compressor: 16 K slots (Redis uses 64 K; this trades a little
/// ratio for a table that stays in cache).
const HLOG: u32 = 14;

/// Why a compressed block could not be decompressed.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum LzfError {
    /// The data would decompress to more bytes than declared.
    TooLong,
    /// The data ended in the middle of a chunk, or referenced bytes before the output start.
    Corrupt,
    /// The data decompressed to fewer bytes than declared.
    TooShort,
}

/// The largest output `compressed_len` bytes of LZF can produce: a 3-byte back reference yields at
/// most 264 bytes. Callers reject a declared length above this before allocating.
pub fn max_expansion(compressed_len: u64) -> u64 {
    compressed_len.saturating_mul(88)
}

/// Decompresses `input`, which must yield exactly `out_len` bytes.
pub fn decompress(input: &[u8], out_len: usize) -> Result<Vec<u8>, LzfError> {
    let mut out: Vec<u8> = Vec::with_capacity(out_len);
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = usize::from(input[ip]);
        ip += 1;
        if ctrl < MAX_LIT {
            let run = ctrl + 1;
            if out.len() + run > out_len {
                return Err(LzfError::TooLong);
            }
            let lit = input.get(ip..ip + run).ok_or(LzfError::Corrupt)?;
            out.extend_from_slice(lit);
            ip += run;
            continue;
        }
        let mut len = ctrl >> 5;
        if len == 7 {
            len += usize::from(*input.get(ip).ok_or(LzfError::Corrupt)?);
            ip += 1;
        }
        let low = usize::from(*input.get(ip).ok_or(LzfError::Corrupt)?);
        ip += 1;
        let back = ((ctrl & 0x1f) << 8) + low + 1;
        let len = len + 2;
        if out.len() + len > out_len {
            return Err(LzfError::TooLong);
        }
        let start = out.len().checked_sub(back).ok_or(LzfError::Corrupt)?;
        // The reference may overlap the bytes it produces (a run), so copy byte by byte.
        for i in start..start + len {
            let b = out[i];
            out.push(b);
        }
    }
    if out.len() != out_len {
        return Err(LzfError::TooShort);
    }
    Ok(out)
}

/// Compresses `input`; `None` when that would not save at least 4 bytes (Redis then stores the
/// string raw, and so do we).
pub fn compress(input: &[u8]) -> Option<Vec<u8>> {
    Compressor::new().compress(input)
}

/// An LZF compressor that keeps its hash table between calls, so that compressing many short
/// strings (a snapshot's values) does not allocate and clear a table each time.
#[derive(Clone, Debug)]
pub struct Compressor {
    /// Position + 1 of the last 3-byte sequence seen per hash (0 = none). Entries left from an
    /// earlier input are harmless: a candidate is used only if it lies before the current
    /// position and its bytes match.
    table: Box<[u32]>,
}

impl Default for Compressor {
    fn default() -> Compressor {
        Compressor::new()
    }
}

impl Compressor {
    /// A compressor with an empty table.
    pub fn new() -> Compressor {
        Compressor {
            table: vec![0u32; 1 << HLOG].into_boxed_slice(),
        }
    }

    /// Compresses `input`; `None` when that would not save at least 4 bytes.
    pub fn compress(&mut self, input: &[u8]) -> Option<Vec<u8>> {
        let limit = input.len().checked_sub(4)?;
        let mut out = Vec::with_capacity(limit);
        let mut lit_start = 0;
        let mut ip = 0;
        while ip + 2 < input.len() {
            let h = hash(&input[ip..ip + 3]);
            // Positions past u32 (inputs over 4 GiB) are not recorded, so such inputs simply stop
            // finding matches there.
            let cand = self.table[h] as usize;
            self.table[h] = u32::try_from(ip + 1).unwrap_or(0);
            if cand != 0
                && cand <= ip
                && ip - (cand - 1) <= MAX_OFF
                && input[cand - 1..cand + 2] == input[ip..ip + 3]
            {
                let r = cand - 1;
                let max = MAX_REF.min(input.len() - ip);
                let mut len = 3;
                while len < max && input[r + len] == input[ip + len] {
                    len += 1;
                }
                flush_literals(&mut out, &input[lit_start..ip]);
                let off = ip - r - 1;
                let code = len - 2;
                if code < 7 {
                    out.push(((code << 5) | (off >> 8)) as u8);
                } else {
                    out.push(((7 << 5) | (off >> 8)) as u8);
                    out.push((code - 7) as u8);
                }
                out.push((off & 0xff) as u8);
                if out.len() >= limit {
                    return None;
                }
                ip += len;
                lit_start = ip;
                continue;
            }
            ip += 1;
        }
        flush_literals(&mut out, &input[lit_start..]);
        (out.len() <= limit).then_some(out)
    }
}

/// Emits `lit` as literal runs of at most 32 bytes.
fn flush_literals(out: &mut Vec<u8>, lit: &[u8]) {
    for run in lit.chunks(MAX_LIT) {
        out.push((run.len() - 1) as u8);
        out.extend_from_slice(run);
    }
}

fn hash(b: &[u8]) -> usize {
    let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
    (v.wrapping_mul(2_654_435_761) >> (32 - HLOG)) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_compressible_and_random_data() {
        let mut inputs: Vec<Vec<u8>> = vec![
            vec![b'a'; 1000],
            b"hello hello hello hello hello hello world".to_vec(),
            (0..5000u32).map(|i| (i % 251) as u8).collect(),
            (0..20_000u32)
                .flat_map(|i| format!("item-{i},").into_bytes())
                .collect(),
        ];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        inputs.push(
            (0..3000)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect(),
        );
        for input in &inputs {
            match compress(input) {
                Some(c) => {
                    assert!(c.len() + 4 <= input.len());
                    assert_eq!(decompress(&c, input.len()).as_deref(), Ok(&input[..]));
                }
                None => assert!(input.len() >= 3000, "only random data should not compress"),
            }
        }
        assert!(compress(&inputs[0]).is_some_and(|c| c.len() < 40));
        // A reused compressor, with a table full of another input's positions, is still exact.
        let mut c = Compressor::new();
        for input in inputs.iter().chain(inputs.iter().rev()) {
            if let Some(out) = c.compress(input) {
                assert_eq!(decompress(&out, input.len()).as_deref(), Ok(&input[..]));
            }
        }
    }

    #[test]
    fn decompress_rejects_bad_input_without_panicking() {
        let good = compress(&[b'x'; 300]).expect("compressible");
        assert_eq!(decompress(&good, 299), Err(LzfError::TooLong));
        assert_eq!(decompress(&good, 301), Err(LzfError::TooShort));
        // A back reference before any output.
        assert_eq!(decompress(&[0x20, 0x00], 3), Err(LzfError::Corrupt));
        // A literal run that overruns the input.
        assert_eq!(decompress(&[0x05, b'a'], 6), Err(LzfError::Corrupt));
        // A long reference missing its length byte.
        assert_eq!(decompress(&[0x00, b'a', 0xe0], 20), Err(LzfError::Corrupt));
        for cut in 0..good.len() {
            assert!(decompress(&good[..cut], 300).is_err());
        }
    }
}
