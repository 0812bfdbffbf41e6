//! The RDB snapshot codec: Redis 7.0's on-disk and full-resync format (RDB version 10), pure.
//!
//! A snapshot is a header (`REDIS0010`), AUX fields (`redis-ver`, `repl-id`, ...), then per
//! database a SELECTDB and RESIZEDB opcode followed by its keys, each an optional expiry opcode, a
//! value type byte, the key and the value; then EOF and a CRC-64 of everything before it.
//!
//! - `RdbWriter` streams a snapshot into any `std::io::Write`, one entry at a time, in the plain
//!   encodings every Redis since 2.x loads (string, list, set, hash, binary-score zset); a diskless
//!   full sync can hand it the socket.
//! - `RdbReader` streams one out of any `std::io::Read`, one `Item` at a time, and reads every
//!   encoding Redis 7.0 writes plus the older ones it still loads (ziplist, zipmap, intset,
//!   quicklist v1, ascii zset scores) and Redis 7.2's set listpack.
//! - `lzf`, `crc64`, `listpack`, `ziplist`, `intset` and `zipmap` are the building blocks.
//!
//! Invariants: nothing here opens a file, a socket or reads the clock (callers pass `ctime`);
//! no input can make the reader panic, and its memory grows only with the bytes it has actually
//! read (every declared length is checked against `ReadLimits`, buffers grow only as bytes
//! arrive, counts are never trusted as capacities; the constant factor is LZF's at most 88x
//! expansion and a few dozen bytes per element); every error names the byte offset at which the
//! input stopped making sense. The
//! reader yields entries before it has seen the checksum, so a loader must commit nothing until
//! `RdbReader::next_item` returned `Ok(None)`.

pub mod crc64;
pub mod intset;
pub mod listpack;
pub mod lzf;
mod reader;
mod writer;
pub mod ziplist;
pub mod zipmap;

pub use reader::{Item, RdbReader, ReadLimits};
pub use writer::{RdbWriter, ReplInfo, SnapshotInfo};

/// The RDB version this module writes (Redis 7.0).
pub const RDB_VERSION: u32 = 10;
/// The newest RDB version the reader accepts: Redis 7.2 and Valkey 7.2/8 write 11, Redis 7.4
/// writes 12 with the same framing. Values of types it does not know are rejected one by one.
pub const MAX_READ_VERSION: u32 = 12;

/// Value types (the byte before each key), as in Redis' `rdb.h`.
pub(crate) mod ty {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE_PRE_GA: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    pub const SET_LISTPACK: u8 = 20;
    pub const STREAM_LISTPACKS_3: u8 = 21;
}

/// Opcodes that may appear where a value type is expected.
pub(crate) mod op {
    pub const FUNCTION2: u8 = 245;
    pub const FUNCTION_PRE_GA: u8 = 246;
    pub const MODULE_AUX: u8 = 247;
    pub const IDLE: u8 = 248;
    pub const FREQ: u8 = 249;
    pub const AUX: u8 = 250;
    pub const RESIZEDB: u8 = 251;
    pub const EXPIRETIME_MS: u8 = 252;
    pub const EXPIRETIME: u8 = 253;
    pub const SELECTDB: u8 = 254;
    pub const EOF: u8 = 255;
}

/// Quicklist node containers in `LIST_QUICKLIST_2`.
pub(crate) const QUICKLIST_PLAIN: u64 = 1;
pub(crate) const QUICKLIST_PACKED: u64 = 2;

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RdbError {
    /// The input ended before the snapshot did.
    #[error("truncated RDB at offset {offset} while reading {what}")]
    Truncated {
        /// Offset of the first missing byte (the input's length).
        offset: u64,
        /// What was being read.
        what: &'static str,
    },
    /// The input does not start with `REDIS` and four digits.
    #[error("not an RDB file: the header is {found:?}, expected \"REDIS\" and a 4-digit version")]
    BadMagic {
        /// The first bytes, escaped.
        found: String,
    },
    /// A version this reader does not load.
    #[error("unsupported RDB version {version} (this reader loads versions 1 to {max})")]
    UnsupportedVersion {
        /// The file's version.
        version: u32,
        /// The newest version supported.
        max: u32,
    },
    /// A value type byte (or opcode) nobody defined.
    #[error("unknown value type {ty} at offset {offset}")]
    UnknownType {
        /// The byte.
        ty: u8,
        /// Its offset.
        offset: u64,
    },
    /// A well-formed construct Vigil cannot hold: modules, streams, hash field expiry.
    #[error("unsupported {what} at offset {offset}")]
    Unsupported {
        /// What it was.
        what: &'static str,
        /// Offset of its opcode or type byte.
        offset: u64,
    },
    /// Bytes that are not a valid encoding.
    #[error("corrupt RDB at offset {offset}: {what}")]
    Corrupt {
        /// Offset of the string, length or value that is wrong (for an error inside a
        /// listpack, ziplist, intset or zipmap, the offset of that blob; the message gives the
        /// position inside it).
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// A declared length above a configured limit (`ReadLimits`).
    #[error("RDB at offset {offset} declares {what} of {len} bytes, above the limit of {limit}")]
    TooLarge {
        /// Offset of the length.
        offset: u64,
        /// What the length is of.
        what: &'static str,
        /// The declared length.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// The CRC-64 at the end does not match the content.
    #[error("bad checksum: the RDB says {expected:#018x}, its content sums to {actual:#018x}")]
    BadChecksum {
        /// The checksum stored in the file.
        expected: u64,
        /// The checksum of the bytes read.
        actual: u64,
    },
    /// `next_item` was called again after it had returned an error.
    #[error("RDB reader used after an error")]
    AfterError,
    /// Reading the input failed.
    #[error("i/o error at RDB offset {offset}: {source}")]
    Io {
        /// Offset reached when it failed.
        offset: u64,
        /// The error.
        source: std::io::Error,
    },
}

/// One element of a listpack, ziplist or intset: they store integers in binary.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
pub enum Elem<'a> {
    /// A string element.
    Bytes(&'a [u8]),
    /// An integer element (its string form is the decimal representation).
    Int(i64),
}

impl Elem<'_> {
    /// The element as a string, integers in decimal (what Redis returns for them).
    pub fn to_sds(self) -> crate::sds::Sds {
        match self {
            Elem::Bytes(b) => crate::sds::Sds::new(b),
            Elem::Int(i) => crate::sds::Sds::from_i64(i),
        }
    }
}

/// A listpack, ziplist, intset or zipmap that does not hold together.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
#[error("{kind}: {what} at byte {at}")]
pub struct BlobError {
    /// Which structure.
    pub kind: &'static str,
    /// Position inside the blob.
    pub at: usize,
    /// What is wrong.
    pub what: String,
}

/// Checks the 32-bit little-endian total size that opens a listpack or a ziplist of `header`
/// bytes: the blob must be at least the header plus its end marker, and exactly that long.
pub(crate) fn check_total(kind: &'static str, blob: &[u8], header: usize) -> Result<(), BlobError> {
    if blob.len() < header + 1 {
        return Err(BlobError::new(
            kind,
            0,
            format!("only {} bytes", blob.len()),
        ));
    }
    let total = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
    if total != blob.len() {
        return Err(BlobError::new(
            kind,
            0,
            format!("header says {total} bytes, the blob has {}", blob.len()),
        ));
    }
    Ok(())
}

impl BlobError {
    pub(crate) fn new(kind: &'static str, at: usize, what: impl Into<String>) -> BlobError {
        BlobError {
            kind,
            at,
            what: what.into(),
        }
    }
}

#[cfg(test)]
mod tests;
