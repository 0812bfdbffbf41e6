//! `RdbWriter`: streams an RDB version 10 snapshot into any `std::io::Write`.
//!
//! It writes only the plain encodings, which every Redis since 2.x loads and re-encodes by its own
//! size rules (so a Redis replica ends up with the same listpack/quicklist/intset layout it would
//! have built itself):
//! - strings as `RDB_TYPE_STRING`: a canonical decimal integer in the 32-bit range as an integer
//!   encoding, a string over 20 bytes LZF-compressed when that saves space and compression is on,
//!   otherwise raw (exactly Redis' `rdbSaveRawString`); keys, members and fields likewise;
//! - lists as `RDB_TYPE_LIST` (a count and the elements; Redis 7.0's `rdbLoadObject` rebuilds the
//!   quicklist with its own node size, where `LIST_QUICKLIST_2` would make us pick node sizes);
//! - sets as `RDB_TYPE_SET`, hashes as `RDB_TYPE_HASH`, sorted sets as `RDB_TYPE_ZSET_2` with
//!   binary little-endian doubles, highest score first as Redis saves its skiplist.
//!
//! Protocol: `new` (header and AUX fields), then for each non-empty database `select_db` followed
//! by its entries, then `finish` (EOF and CRC-64). Output is buffered in 64 KiB chunks; the CRC is
//! folded in as chunks leave. Dropping the writer without `finish` leaves an incomplete snapshot
//! that every reader rejects.

use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use super::crc64::Crc64;
use super::{RDB_VERSION, lzf, op, ty};
use crate::engine::{Entry, Value};

/// What the AUX fields of a snapshot say.
#[derive(Clone, Debug)]
pub struct SnapshotInfo {
    /// When the snapshot was taken (`ctime`, written in whole seconds).
    pub ctime: SystemTime,
    /// Memory in use when it was taken, in bytes (`used-mem`).
    pub used_mem: u64,
    /// Replication position, for a snapshot that seeds a replica or lets a restarted node
    /// resume partial syncs; `None` omits the `repl-*` fields.
    pub repl: Option<ReplInfo>,
    /// True when the snapshot is the base of an append-only file (`aof-base`).
    pub aof_base: bool,
    /// LZF-compress strings over 20 bytes when that saves space (`rdbcompression`).
    pub compress: bool,
}

impl SnapshotInfo {
    /// A snapshot taken at `ctime`, without replication fields, compressed.
    pub fn new(ctime: SystemTime) -> SnapshotInfo {
        SnapshotInfo {
            ctime,
            used_mem: 0,
            repl: None,
            aof_base: false,
            compress: true,
        }
    }
}

/// The replication AUX fields.
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ReplInfo {
    /// Database the replication stream had selected (`repl-stream-db`).
    pub stream_db: usize,
    /// The master's replication id, 40 hex characters (`repl-id`).
    pub replid: String,
    /// The replication offset the snapshot corresponds to (`repl-offset`).
    pub offset: u64,
}

/// A streaming RDB writer; see the module docs for the calling protocol.
#[derive(Debug)]
pub struct RdbWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    crc: Crc64,
    /// Bytes handed to `out` so far.
    flushed: u64,
    /// `Some` when compression is on.
    lzf: Option<Box<lzf::Compressor>>,
}

impl<W: Write> RdbWriter<W> {
    /// Writes the header and the AUX fields Redis 7.0 writes, in its order.
    pub fn new(out: W, info: &SnapshotInfo) -> io::Result<RdbWriter<W>> {
        let mut w = RdbWriter {
            out,
            buf: Vec::with_capacity(FLUSH_AT + 1024),
            crc: Crc64::new(),
            flushed: 0,
            lzf: info.compress.then(Box::default),
        };
        w.buf
            .extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
        let int = |n: u64| itoa::Buffer::new().format(n).as_bytes().to_vec();
        let ctime = info
            .ctime
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        w.aux(b"redis-ver", REDIS_VERSION.as_bytes())?;
        w.aux(b"redis-bits", &int(u64::from(usize::BITS)))?;
        w.aux(b"ctime", &int(ctime))?;
        w.aux(b"used-mem", &int(info.used_mem))?;
        if let Some(repl) = &info.repl {
            w.aux(b"repl-stream-db", &int(repl.stream_db as u64))?;
            w.aux(b"repl-id", repl.replid.as_bytes())?;
            w.aux(b"repl-offset", &int(repl.offset))?;
        }
        w.aux(b"aof-base", &int(u64::from(info.aof_base)))?;
        Ok(w)
    }

    /// Writes one more AUX field (Redis ignores fields it does not know).
    pub fn aux(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.buf.push(op::AUX);
        self.string(key);
        self.string(value);
        self.maybe_flush()
    }

    /// Starts database `db`, announcing its key count and how many keys have an expiry (Redis
    /// pre-sizes its tables from them).
    pub fn select_db(&mut self, db: usize, keys: u64, expires: u64) -> io::Result<()> {
        self.buf.push(op::SELECTDB);
        self.len(db as u64);
        self.buf.push(op::RESIZEDB);
        self.len(keys);
        self.len(expires);
        self.maybe_flush()
    }

    /// Writes one key of the current database: its expiry if it has one, then type, key, value.
    pub fn entry(&mut self, entry: &Entry) -> io::Result<()> {
        if entry.expire_at != 0 {
            self.buf.push(op::EXPIRETIME_MS);
            let ms = i64::try_from(entry.expire_at).unwrap_or(i64::MAX);
            self.buf.extend_from_slice(&ms.to_le_bytes());
        }
        match &entry.value {
            Value::Str(s) => {
                self.buf.push(ty::STRING);
                self.string(&entry.key);
                self.string(s);
            }
            Value::List(list) => {
                self.buf.push(ty::LIST);
                self.string(&entry.key);
                self.len(list.len() as u64);
                for e in list.iter() {
                    self.string(e);
                    self.maybe_flush()?;
                }
            }
            Value::Set(set) => {
                self.buf.push(ty::SET);
                self.string(&entry.key);
                self.len(set.len() as u64);
                for m in set.iter() {
                    self.string(m);
                    self.maybe_flush()?;
                }
            }
            Value::Hash(hash) => {
                self.buf.push(ty::HASH);
                self.string(&entry.key);
                self.len(hash.len() as u64);
                for (f, v) in hash.iter() {
                    self.string(f);
                    self.string(v);
                    self.maybe_flush()?;
                }
            }
            Value::ZSet(z) => {
                self.buf.push(ty::ZSET_2);
                self.string(&entry.key);
                self.len(z.len() as u64);
                // Highest first, as Redis walks its skiplist from the tail, so that its loader
                // inserts each member at the head.
                for (m, score) in z.iter().rev() {
                    self.string(m);
                    self.buf.extend_from_slice(&score.to_le_bytes());
                    self.maybe_flush()?;
                }
            }
        }
        self.maybe_flush()
    }

    /// Bytes produced so far (buffered or not).
    pub fn bytes_written(&self) -> u64 {
        self.flushed + self.buf.len() as u64
    }

    /// Writes EOF and the checksum, flushes, and hands back the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.buf.push(op::EOF);
        self.crc.update(&self.buf);
        let crc = self.crc.value();
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.out.write_all(&self.buf)?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn maybe_flush(&mut self) -> io::Result<()> {
        if self.buf.len() < FLUSH_AT {
            return Ok(());
        }
        self.crc.update(&self.buf);
        self.out.write_all(&self.buf)?;
        self.flushed += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// A length: 6 bits, 14 bits, 32 or 64 bits big-endian.
    fn len(&mut self, n: u64) {
        if n < 1 << 6 {
            self.buf.push(n as u8);
        } else if n < 1 << 14 {
            self.buf
                .extend_from_slice(&[0x40 | (n >> 8) as u8, n as u8]);
        } else if let Ok(n) = u32::try_from(n) {
            self.buf.push(0x80);
            self.buf.extend_from_slice(&n.to_be_bytes());
        } else {
            self.buf.push(0x81);
            self.buf.extend_from_slice(&n.to_be_bytes());
        }
    }

    /// A string, integer-encoded or compressed where Redis would do so.
    fn string(&mut self, s: &[u8]) {
        if let Some(n) = int_encodable(s) {
            if let Ok(n) = i8::try_from(n) {
                self.buf.extend_from_slice(&[ENC_INT8, n as u8]);
            } else if let Ok(n) = i16::try_from(n) {
                self.buf.push(ENC_INT16);
                self.buf.extend_from_slice(&n.to_le_bytes());
            } else {
                self.buf.push(ENC_INT32);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            return;
        }
        if s.len() > 20 {
            if let Some(c) = self.lzf.as_mut().and_then(|z| z.compress(s)) {
                self.buf.push(ENC_LZF);
                self.len(c.len() as u64);
                self.len(s.len() as u64);
                self.buf.extend_from_slice(&c);
                return;
            }
        }
        self.len(s.len() as u64);
        self.buf.extend_from_slice(s);
    }
}

/// The value of `s` if it is the canonical decimal form of an integer in the 32-bit range (no
/// sign but `-`, no leading zero, not `-0`): then Redis stores it as an integer, and reading it
/// back gives the same bytes.
fn int_encodable(s: &[u8]) -> Option<i32> {
    if s.is_empty() || s.len() > 11 {
        return None;
    }
    let digits = s.strip_prefix(b"-").unwrap_or(s);
    if digits.is_empty()
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits[0] == b'0' && (digits.len() > 1 || s.len() > 1))
    {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// The version the snapshot claims to come from; Redis only reads it for display.
const REDIS_VERSION: &str = "7.0.15";
/// Flush the buffer to the output once it holds this much.
const FLUSH_AT: usize = 64 * 1024;
/// Special string encodings (a length byte of `0b11xxxxxx`).
const ENC_INT8: u8 = 0xc0;
const ENC_INT16: u8 = 0xc1;
const ENC_INT32: u8 = 0xc2;
const ENC_LZF: u8 = 0xc3;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_canonical_32_bit_integers_are_int_encoded() {
        for (s, want) in [
            (&b"0"[..], Some(0)),
            (b"-1", Some(-1)),
            (b"2147483647", Some(i32::MAX)),
            (b"-2147483648", Some(i32::MIN)),
            (b"2147483648", None),
            (b"007", None),
            (b"-0", None),
            (b"+1", None),
            (b"1 ", None),
            (b"", None),
            (b"-", None),
        ] {
            assert_eq!(int_encodable(s), want, "{:?}", String::from_utf8_lossy(s));
        }
    }
}
