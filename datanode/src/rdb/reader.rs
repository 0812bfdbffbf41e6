//! `RdbReader`: streams a snapshot out of any `std::io::Read`, one `Item` at a time.
//!
//! The reader owns a 64 KiB read buffer; it tracks the file offset of every byte (for error
//! messages) and folds consumed bytes into the CRC-64 as the buffer is recycled, so the checksum
//! costs one pass over data that is already in cache.
//!
//! Invariants: a length read from the file is checked against `ReadLimits` before anything is
//! sized by it, and buffers grow only as bytes actually arrive, so a corrupt 2^60 length fails
//! with a truncation error after reading the real input instead of allocating; element counts are
//! never used as capacities without a small cap; nothing here panics on any input. Items come out
//! before the checksum is verified: the load is valid only once `next_item` returned `Ok(None)`.

use std::io::{ErrorKind, Read};

use super::crc64::Crc64;
use super::{
    BlobError, Elem, MAX_READ_VERSION, QUICKLIST_PACKED, QUICKLIST_PLAIN, RdbError, intset,
    listpack, lzf, op, ty, ziplist, zipmap,
};
use crate::engine::{Entry, HashValue, ListValue, SetValue, Value, ZSet};
use crate::sds::Sds;

/// One thing read from a snapshot, in file order.
#[derive(Clone, Debug)]
pub enum Item {
    /// An AUX field (`redis-ver`, `repl-id`, `repl-offset`, ...). Unknown ones are yours to ignore.
    Aux {
        /// The field name.
        key: Sds,
        /// Its value (integers in decimal).
        value: Sds,
    },
    /// The sizes the writer announced for a database: hints for pre-sizing, not to be trusted
    /// beyond that (cap them before reserving).
    ResizeDb {
        /// The database.
        db: usize,
        /// Keys announced.
        keys: u64,
        /// Keys with an expiry announced.
        expires: u64,
    },
    /// A Redis 7 function library (`FUNCTION LOAD` source). Vigil has no functions; a loader
    /// decides whether to ignore it or refuse the snapshot.
    Function {
        /// The library source code.
        code: Vec<u8>,
    },
    /// A key with its value, in database `db`. `entry.expire_at` may already be in the past: a
    /// master drops such keys, a replica keeps them (it never expires keys on its own clock).
    /// The reader keeps no index of keys, so a corrupt file may repeat one: a loader must treat a
    /// key it already holds as corruption, as Redis does.
    Entry {
        /// The database.
        db: usize,
        /// The key, value and expiry (`lru` is 0).
        entry: Entry,
        /// Seconds since last access, if the writer used an LRU policy.
        idle_secs: Option<u64>,
        /// The LFU counter, if the writer used an LFU policy.
        freq: Option<u8>,
    },
}

/// Limits on what a snapshot may declare; above them the reader fails with `TooLarge` or
/// `Corrupt` before allocating anything.
#[derive(Clone, Copy, Debug)]
pub struct ReadLimits {
    /// Longest string (key, value, element, or encoded listpack/ziplist blob), in bytes,
    /// after decompression.
    pub max_string_len: u64,
    /// Number of databases: a SELECTDB at or above it is an error.
    pub databases: usize,
}

impl Default for ReadLimits {
    /// 1 GiB strings (twice Redis' default `proto-max-bulk-len`), 16 databases.
    fn default() -> ReadLimits {
        ReadLimits {
            max_string_len: 1 << 30,
            databases: 16,
        }
    }
}

/// A streaming RDB parser.
///
/// Protocol: call `next_item` until it returns `Ok(None)` (EOF seen and checksum verified) or an
/// error; after an error every call fails with `AfterError`. The reader buffers ahead, so when
/// the snapshot is followed by more data (a replication stream) take the unread bytes back with
/// `into_parts`.
#[derive(Debug)]
pub struct RdbReader<R> {
    input: Input<R>,
    version: u32,
    limits: ReadLimits,
    db: usize,
    state: State,
}

#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum State {
    Running,
    Done,
    Failed,
}

impl<R: Read> RdbReader<R> {
    /// Reads the header with default limits.
    pub fn new(input: R) -> Result<RdbReader<R>, RdbError> {
        RdbReader::with_limits(input, ReadLimits::default())
    }

    /// Reads the header (`REDIS` and a 4-digit version) and checks the version.
    pub fn with_limits(input: R, limits: ReadLimits) -> Result<RdbReader<R>, RdbError> {
        let mut input = Input::new(input);
        let magic: [u8; 9] = input.array("the RDB header")?;
        let digits = &magic[5..];
        if &magic[..5] != b"REDIS" || !digits.iter().all(u8::is_ascii_digit) {
            return Err(RdbError::BadMagic {
                found: magic.escape_ascii().to_string(),
            });
        }
        let version = digits
            .iter()
            .fold(0u32, |v, d| v * 10 + u32::from(d - b'0'));
        if version == 0 || version > MAX_READ_VERSION {
            return Err(RdbError::UnsupportedVersion {
                version,
                max: MAX_READ_VERSION,
            });
        }
        Ok(RdbReader {
            input,
            version,
            limits,
            db: 0,
            state: State::Running,
        })
    }

    /// The file's RDB version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.input.offset()
    }

    /// The next item; `Ok(None)` once EOF was read and the checksum verified.
    pub fn next_item(&mut self) -> Result<Option<Item>, RdbError> {
        match self.state {
            State::Running => {}
            State::Done => return Ok(None),
            State::Failed => return Err(RdbError::AfterError),
        }
        let r = self.step();
        match r {
            Ok(None) => self.state = State::Done,
            Err(_) => self.state = State::Failed,
            Ok(Some(_)) => {}
        }
        r
    }

    /// The underlying reader and the bytes buffered from it but not consumed (whatever follows
    /// the snapshot, when it was read to the end).
    pub fn into_parts(self) -> (R, Vec<u8>) {
        let Input {
            inner,
            buf,
            pos,
            end,
            ..
        } = self.input;
        (inner, buf[pos..end].to_vec())
    }

    fn step(&mut self) -> Result<Option<Item>, RdbError> {
        let mut expire_at = None;
        let mut idle_secs = None;
        let mut freq = None;
        loop {
            let at = self.offset();
            let code = self.input.byte("an opcode or value type")?;
            match code {
                op::EOF => {
                    self.finish()?;
                    return Ok(None);
                }
                op::SELECTDB => {
                    let db = self.len("a database number")?;
                    self.db = self.db_index(db, at)?;
                }
                op::RESIZEDB => {
                    let keys = self.len("a RESIZEDB key count")?;
                    let expires = self.len("a RESIZEDB expires count")?;
                    return Ok(Some(Item::ResizeDb {
                        db: self.db,
                        keys,
                        expires,
                    }));
                }
                op::AUX => {
                    let key = Sds::from(self.string("an AUX field name")?);
                    let value = Sds::from(self.string("an AUX field value")?);
                    return Ok(Some(Item::Aux { key, value }));
                }
                op::EXPIRETIME_MS => {
                    let ms = i64::from_le_bytes(self.input.array("an expiry time")?);
                    expire_at = Some(expiry(ms));
                }
                op::EXPIRETIME => {
                    let secs = i32::from_le_bytes(self.input.array("an expiry time")?);
                    expire_at = Some(expiry(i64::from(secs) * 1000));
                }
                op::IDLE => idle_secs = Some(self.len("an LRU idle time")?),
                op::FREQ => freq = Some(self.input.byte("an LFU frequency")?),
                op::FUNCTION2 => {
                    let code = self.string("a function library")?;
                    return Ok(Some(Item::Function { code }));
                }
                op::FUNCTION_PRE_GA => {
                    return Err(RdbError::Unsupported {
                        what: "pre-release (Redis 7.0 RC) function format",
                        offset: at,
                    });
                }
                op::MODULE_AUX => {
                    return Err(RdbError::Unsupported {
                        what: "module AUX data (Vigil loads no modules)",
                        offset: at,
                    });
                }
                _ => {
                    let key = Sds::from(self.string("a key")?);
                    let Some(value) = self.value(code, at)? else {
                        // Redis skips empty collections (older versions could save them), and so
                        // do we: an empty collection must never enter the keyspace.
                        expire_at = None;
                        idle_secs = None;
                        freq = None;
                        continue;
                    };
                    let entry = Entry {
                        key,
                        value,
                        expire_at: expire_at.unwrap_or(0),
                        lru: 0,
                    };
                    return Ok(Some(Item::Entry {
                        db: self.db,
                        entry,
                        idle_secs,
                        freq,
                    }));
                }
            }
        }
    }

    /// After EOF: checks the CRC-64 (version 5 and later; a stored 0 means the writer had
    /// checksums disabled).
    fn finish(&mut self) -> Result<(), RdbError> {
        if self.version < 5 {
            return Ok(());
        }
        let actual = self.input.checksum();
        let expected = u64::from_le_bytes(self.input.array("the checksum")?);
        if expected != 0 && expected != actual {
            return Err(RdbError::BadChecksum { expected, actual });
        }
        Ok(())
    }

    fn db_index(&self, db: u64, at: u64) -> Result<usize, RdbError> {
        usize::try_from(db)
            .ok()
            .filter(|&d| d < self.limits.databases)
            .ok_or_else(|| RdbError::Corrupt {
                offset: at,
                what: format!(
                    "database {db} is out of range (this node has {} databases)",
                    self.limits.databases
                ),
            })
    }

    /// Reads the value of type `code` (at offset `at`); `None` for an empty collection.
    fn value(&mut self, code: u8, at: u64) -> Result<Option<Value>, RdbError> {
        let value = match code {
            ty::STRING => Value::Str(Sds::from(self.string("a string value")?)),
            ty::LIST => {
                let n = self.len("a list length")?;
                let mut list = ListValue::with_capacity(capped(n));
                for _ in 0..n {
                    list.push_back(Sds::from(self.string("a list element")?));
                }
                Value::List(Box::new(list))
            }
            ty::SET => {
                let n = self.len("a set size")?;
                let mut set = new_set(n);
                for _ in 0..n {
                    let at = self.offset();
                    let member = Sds::from(self.string("a set member")?);
                    if !set.insert(member) {
                        return Err(corrupt(at, "duplicate set member"));
                    }
                }
                Value::Set(Box::new(set))
            }
            ty::ZSET | ty::ZSET_2 => {
                let n = self.len("a sorted set size")?;
                let mut z = ZSet::new();
                for _ in 0..n {
                    let at = self.offset();
                    let member = self.string("a sorted set member")?;
                    let score = if code == ty::ZSET_2 {
                        f64::from_le_bytes(self.input.array("a binary score")?)
                    } else {
                        self.ascii_score()?
                    };
                    zadd(&mut z, &member, score, at)?;
                }
                Value::ZSet(Box::new(z))
            }
            ty::HASH => {
                let n = self.len("a hash size")?;
                let mut h = new_hash(n);
                for _ in 0..n {
                    let at = self.offset();
                    let field = Sds::from(self.string("a hash field")?);
                    let value = Sds::from(self.string("a hash value")?);
                    if h.insert(field, value).is_some() {
                        return Err(corrupt(at, "duplicate hash field"));
                    }
                }
                Value::Hash(Box::new(h))
            }
            ty::HASH_ZIPMAP => {
                let (blob, at) = self.blob("a zipmap")?;
                let pairs = zipmap::parse(&blob).map_err(|e| blob_err(at, e))?;
                let mut h = new_hash(pairs.len() as u64);
                for (f, v) in pairs {
                    if h.insert(Sds::new(f), Sds::new(v)).is_some() {
                        return Err(corrupt(at, "zipmap: duplicate hash field"));
                    }
                }
                Value::Hash(Box::new(h))
            }
            ty::LIST_ZIPLIST => {
                let (blob, at) = self.blob("a ziplist")?;
                let elems = ziplist::parse(&blob).map_err(|e| blob_err(at, e))?;
                Value::List(Box::new(elems.into_iter().map(Elem::to_sds).collect()))
            }
            ty::SET_INTSET => {
                let (blob, at) = self.blob("an intset")?;
                let ints = intset::parse(&blob).map_err(|e| blob_err(at, e))?;
                // The intset is strictly ascending (checked), so its members are distinct.
                Value::Set(Box::new(ints.into_iter().map(Sds::from_i64).collect()))
            }
            ty::SET_LISTPACK => {
                let (blob, at) = self.blob("a set listpack")?;
                let elems = listpack::parse(&blob).map_err(|e| blob_err(at, e))?;
                let mut set = new_set(elems.len() as u64);
                for e in elems {
                    if !set.insert(e.to_sds()) {
                        return Err(corrupt(at, "listpack: duplicate set member"));
                    }
                }
                Value::Set(Box::new(set))
            }
            ty::ZSET_ZIPLIST | ty::ZSET_LISTPACK => {
                let (blob, at) = self.blob("a sorted set ziplist or listpack")?;
                let elems = if code == ty::ZSET_ZIPLIST {
                    ziplist::parse(&blob)
                } else {
                    listpack::parse(&blob)
                }
                .map_err(|e| blob_err(at, e))?;
                if elems.len() % 2 != 0 {
                    return Err(corrupt(
                        at,
                        "sorted set blob with an odd number of elements",
                    ));
                }
                let mut z = ZSet::new();
                for pair in elems.chunks_exact(2) {
                    let score = match pair[1] {
                        Elem::Int(i) => i as f64,
                        Elem::Bytes(b) => parse_score(b)
                            .ok_or_else(|| corrupt(at, "sorted set blob with an invalid score"))?,
                    };
                    zadd(&mut z, &pair[0].to_sds(), score, at)?;
                }
                Value::ZSet(Box::new(z))
            }
            ty::HASH_ZIPLIST | ty::HASH_LISTPACK => {
                let (blob, at) = self.blob("a hash ziplist or listpack")?;
                let elems = if code == ty::HASH_ZIPLIST {
                    ziplist::parse(&blob)
                } else {
                    listpack::parse(&blob)
                }
                .map_err(|e| blob_err(at, e))?;
                if elems.len() % 2 != 0 {
                    return Err(corrupt(at, "hash blob with an odd number of elements"));
                }
                let mut h = new_hash(elems.len() as u64 / 2);
                for pair in elems.chunks_exact(2) {
                    if h.insert(pair[0].to_sds(), pair[1].to_sds()).is_some() {
                        return Err(corrupt(at, "hash blob with a duplicate field"));
                    }
                }
                Value::Hash(Box::new(h))
            }
            ty::LIST_QUICKLIST | ty::LIST_QUICKLIST_2 => {
                Value::List(Box::new(self.quicklist(code)?))
            }
            ty::MODULE_PRE_GA | ty::MODULE_2 => {
                return Err(RdbError::Unsupported {
                    what: "module value (Vigil loads no modules)",
                    offset: at,
                });
            }
            ty::STREAM_LISTPACKS | ty::STREAM_LISTPACKS_2 | ty::STREAM_LISTPACKS_3 => {
                return Err(RdbError::Unsupported {
                    what: "stream value (Vigil has no streams)",
                    offset: at,
                });
            }
            22..=25 => {
                return Err(RdbError::Unsupported {
                    what: "hash with field expiry (Redis 7.4)",
                    offset: at,
                });
            }
            _ => {
                return Err(RdbError::UnknownType {
                    ty: code,
                    offset: at,
                });
            }
        };
        Ok((!value.is_empty_collection()).then_some(value))
    }

    /// A list stored as quicklist nodes: ziplists (v1), or plain elements and listpacks (v2).
    fn quicklist(&mut self, code: u8) -> Result<ListValue, RdbError> {
        let nodes = self.len("a quicklist node count")?;
        let mut list = ListValue::new();
        for _ in 0..nodes {
            let at = self.offset();
            let container = if code == ty::LIST_QUICKLIST_2 {
                self.len("a quicklist container")?
            } else {
                QUICKLIST_PACKED
            };
            let (blob, blob_at) = self.blob("a quicklist node")?;
            if blob.is_empty() {
                return Err(corrupt(blob_at, "empty quicklist node"));
            }
            match container {
                QUICKLIST_PLAIN => list.push_back(Sds::from(blob)),
                QUICKLIST_PACKED => {
                    let elems = if code == ty::LIST_QUICKLIST_2 {
                        listpack::parse(&blob)
                    } else {
                        ziplist::parse(&blob)
                    }
                    .map_err(|e| blob_err(blob_at, e))?;
                    list.extend(elems.into_iter().map(Elem::to_sds));
                }
                other => {
                    return Err(corrupt(at, format!("unknown quicklist container {other}")));
                }
            }
        }
        Ok(list)
    }

    /// A length (not a string encoding).
    fn len(&mut self, what: &'static str) -> Result<u64, RdbError> {
        let at = self.offset();
        match self.length(what)? {
            (n, false) => Ok(n),
            (enc, true) => Err(corrupt(
                at,
                format!("expected {what}, found string encoding {enc}"),
            )),
        }
    }

    /// A length or, with `true`, the special string encoding in the low 6 bits.
    fn length(&mut self, what: &'static str) -> Result<(u64, bool), RdbError> {
        let at = self.offset();
        let b = self.input.byte(what)?;
        Ok(match b >> 6 {
            0 => (u64::from(b & 0x3f), false),
            1 => {
                let lo = self.input.byte(what)?;
                ((u64::from(b & 0x3f) << 8) | u64::from(lo), false)
            }
            2 => match b {
                0x80 => (
                    u64::from(u32::from_be_bytes(self.input.array(what)?)),
                    false,
                ),
                0x81 => (u64::from_be_bytes(self.input.array(what)?), false),
                _ => return Err(corrupt(at, format!("unknown length encoding {b:#04x}"))),
            },
            _ => (u64::from(b & 0x3f), true),
        })
    }

    /// A string in any of its encodings: raw, 8/16/32-bit integer (returned in decimal), or LZF.
    fn string(&mut self, what: &'static str) -> Result<Vec<u8>, RdbError> {
        let at = self.offset();
        let (len, encoded) = self.length(what)?;
        if !encoded {
            self.check_len(len, at, what)?;
            return self.input.vec(len, what);
        }
        let n = match len {
            0 => i64::from(i8::from_le_bytes(self.input.array(what)?)),
            1 => i64::from(i16::from_le_bytes(self.input.array(what)?)),
            2 => i64::from(i32::from_le_bytes(self.input.array(what)?)),
            3 => return self.lzf_string(at, what),
            enc => return Err(corrupt(at, format!("unknown string encoding {enc}"))),
        };
        Ok(itoa::Buffer::new().format(n).as_bytes().to_vec())
    }

    fn lzf_string(&mut self, at: u64, what: &'static str) -> Result<Vec<u8>, RdbError> {
        let clen = self.len("a compressed length")?;
        let len = self.len("an uncompressed length")?;
        self.check_len(len, at, what)?;
        self.check_len(clen, at, what)?;
        if len > lzf::max_expansion(clen) {
            return Err(corrupt(
                at,
                format!("{clen} LZF bytes cannot expand to {len} bytes"),
            ));
        }
        let compressed = self.input.vec(clen, "LZF-compressed bytes")?;
        // `len` is at most 88 times bytes we really read, and below the string limit.
        let out_len = usize::try_from(len).map_err(|_| corrupt(at, "string too long"))?;
        lzf::decompress(&compressed, out_len)
            .map_err(|e| corrupt(at, format!("LZF data does not decompress: {e:?}")))
    }

    /// A string holding an embedded structure, with its offset for error messages.
    fn blob(&mut self, what: &'static str) -> Result<(Vec<u8>, u64), RdbError> {
        let at = self.offset();
        Ok((self.string(what)?, at))
    }

    /// The ascii score of RDB_TYPE_ZSET: a length byte (253 NaN, 254 +inf, 255 -inf), then text.
    fn ascii_score(&mut self) -> Result<f64, RdbError> {
        let at = self.offset();
        let n = self.input.byte("a score length")?;
        match n {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            _ => {
                let text = self.input.vec(u64::from(n), "a score")?;
                parse_score(&text).ok_or_else(|| {
                    corrupt(
                        at,
                        format!("invalid score {:?}", text.escape_ascii().to_string()),
                    )
                })
            }
        }
    }

    fn check_len(&self, len: u64, at: u64, what: &'static str) -> Result<(), RdbError> {
        if len > self.limits.max_string_len {
            return Err(RdbError::TooLarge {
                offset: at,
                what,
                len,
                limit: self.limits.max_string_len,
            });
        }
        Ok(())
    }
}

/// The reader's buffered input: tracks the offset and the checksum of consumed bytes.
#[derive(Debug)]
struct Input<R> {
    inner: R,
    buf: Box<[u8]>,
    /// Next unconsumed byte in `buf`.
    pos: usize,
    /// End of the valid bytes in `buf`.
    end: usize,
    /// `buf[summed..pos]` is consumed but not yet folded into `crc`.
    summed: usize,
    /// File offset of `buf[0]`.
    base: u64,
    crc: Crc64,
}

impl<R: Read> Input<R> {
    fn new(inner: R) -> Input<R> {
        Input {
            inner,
            buf: vec![0; 64 * 1024].into_boxed_slice(),
            pos: 0,
            end: 0,
            summed: 0,
            base: 0,
            crc: Crc64::new(),
        }
    }

    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Refills an exhausted buffer; false at end of input.
    fn fill(&mut self) -> Result<bool, RdbError> {
        debug_assert_eq!(self.pos, self.end, "fill only an exhausted buffer");
        self.crc.update(&self.buf[self.summed..self.pos]);
        self.base += self.pos as u64;
        self.pos = 0;
        self.end = 0;
        self.summed = 0;
        loop {
            match self.inner.read(&mut self.buf) {
                Ok(n) => {
                    self.end = n;
                    return Ok(n > 0);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(RdbError::Io {
                        offset: self.base,
                        source,
                    });
                }
            }
        }
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, RdbError> {
        if self.pos == self.end && !self.fill()? {
            return Err(self.truncated(what));
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(b)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], RdbError> {
        let mut out = [0u8; N];
        let mut got = 0;
        while got < N {
            if self.pos == self.end && !self.fill()? {
                return Err(self.truncated(what));
            }
            let n = (N - got).min(self.end - self.pos);
            out[got..got + n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            got += n;
        }
        Ok(out)
    }

    /// `len` bytes; the vector starts small and grows only as bytes arrive.
    fn vec(&mut self, len: u64, what: &'static str) -> Result<Vec<u8>, RdbError> {
        let mut out = Vec::with_capacity(len.min(64 * 1024) as usize);
        let mut left = len;
        while left > 0 {
            if self.pos == self.end && !self.fill()? {
                return Err(self.truncated(what));
            }
            let n = (self.end - self.pos).min(usize::try_from(left).unwrap_or(usize::MAX));
            out.extend_from_slice(&self.buf[self.pos..self.pos + n]);
            self.pos += n;
            left -= n as u64;
        }
        Ok(out)
    }

    /// The CRC-64 of every byte consumed so far.
    fn checksum(&mut self) -> u64 {
        self.crc.update(&self.buf[self.summed..self.pos]);
        self.summed = self.pos;
        self.crc.value()
    }

    fn truncated(&self, what: &'static str) -> RdbError {
        RdbError::Truncated {
            offset: self.offset(),
            what,
        }
    }
}

/// An expiry time from the file as `Entry::expire_at`: 0 means "none" there, so a time at or
/// before the epoch (long expired) becomes 1.
fn expiry(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0).max(1)
}

/// A capacity for `n` declared elements: trusting a corrupt count would allocate unbounded memory.
fn capped(n: u64) -> usize {
    n.min(4096) as usize
}

fn new_set(n: u64) -> SetValue {
    SetValue::with_capacity_and_hasher(capped(n), Default::default())
}

fn new_hash(n: u64) -> HashValue {
    HashValue::with_capacity_and_hasher(capped(n), Default::default())
}

/// Adds a member, rejecting NaN scores and duplicates as Redis does.
fn zadd(z: &mut ZSet, member: &[u8], score: f64, at: u64) -> Result<(), RdbError> {
    if score.is_nan() {
        return Err(corrupt(at, "sorted set member with a NaN score"));
    }
    if z.insert(member, score).is_some() {
        return Err(corrupt(at, "duplicate sorted set member"));
    }
    Ok(())
}

/// A score as Redis prints it (`1.5`, `inf`, `-inf`, `1e+20`); NaN is refused by `zadd`.
fn parse_score(text: &[u8]) -> Option<f64> {
    std::str::from_utf8(text).ok()?.trim().parse().ok()
}

fn corrupt(offset: u64, what: impl Into<String>) -> RdbError {
    RdbError::Corrupt {
        offset,
        what: what.into(),
    }
}

fn blob_err(offset: u64, e: BlobError) -> RdbError {
    corrupt(offset, e.to_string())
}
