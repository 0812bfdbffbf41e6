//! Argument parsing and typed access to values, shared by every command family.
//!
//! Numbers parse exactly as Redis parses them (`string2ll`, `strtod` without NaN), and a value of
//! the wrong type is always `WRONGTYPE`, so each command only states its own rules.

use std::collections::VecDeque;

use bytes::Bytes;
use vigil_proto::float;
use vigil_proto::resp::{Frame, parse_i64};

use super::{CmdError, Ctx};
use crate::engine::{Entry, HashValue, ListValue, SetValue, Value, ZSet};
use crate::sds::Sds;

/// Parses an integer argument.
pub fn int(arg: &[u8]) -> Result<i64, CmdError> {
    parse_i64(arg).ok_or(CmdError::NotInteger)
}

/// Parses a non-negative integer argument.
pub fn uint(arg: &[u8]) -> Result<u64, CmdError> {
    match parse_i64(arg) {
        Some(n) if n >= 0 => Ok(n as u64),
        _ => Err(CmdError::NotInteger),
    }
}

/// Parses a float argument (no NaN).
pub fn float(arg: &[u8]) -> Result<f64, CmdError> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(float::parse)
        .ok_or(CmdError::NotFloat)
}

/// Case-insensitive comparison of an argument with an upper-case keyword.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// A bulk reply holding `s`.
pub fn bulk(s: &[u8]) -> Frame {
    Frame::bulk(s)
}

/// An array of bulk strings.
pub fn bulk_array<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Frame {
    Frame::Array(items.into_iter().map(Frame::bulk).collect())
}

/// The string of an entry, or `WRONGTYPE`.
pub fn as_str(e: &Entry) -> Result<&Sds, CmdError> {
    match &e.value {
        Value::Str(s) => Ok(s),
        _ => Err(CmdError::WrongType),
    }
}

macro_rules! typed_access {
    ($get:ident, $create:ident, $variant:ident, $ty:ty, $new:expr) => {
        /// The value at `key` if it exists and has this type; `WRONGTYPE` for another type.
        pub fn $get(&mut self, key: &[u8]) -> Result<Option<&mut $ty>, CmdError> {
            match self.ks.get(self.db, key) {
                None => Ok(None),
                Some(Entry {
                    value: Value::$variant(v),
                    ..
                }) => Ok(Some(&mut **v)),
                Some(_) => Err(CmdError::WrongType),
            }
        }

        /// The value at `key`, created empty if missing; `WRONGTYPE` for another type.
        pub fn $create(&mut self, key: &[u8]) -> Result<&mut $ty, CmdError> {
            let make = &mut || Value::$variant(Box::new($new));
            match self.ks.get_or_insert(self.db, key, make) {
                Entry {
                    value: Value::$variant(v),
                    ..
                } => Ok(&mut **v),
                _ => Err(CmdError::WrongType),
            }
        }
    };
}

impl Ctx<'_> {
    typed_access!(list, list_or_create, List, ListValue, VecDeque::new());
    typed_access!(hash, hash_or_create, Hash, HashValue, HashValue::default());
    typed_access!(set, set_or_create, Set, SetValue, SetValue::default());
    typed_access!(zset, zset_or_create, ZSet, ZSet, ZSet::new());

    /// The string at `key` (copied), `None` if missing, `WRONGTYPE` for another type.
    pub fn string(&mut self, key: &[u8]) -> Result<Option<Sds>, CmdError> {
        match self.ks.get(self.db, key) {
            None => Ok(None),
            Some(e) => as_str(e).cloned().map(Some),
        }
    }

    /// Stores a string at `key`, keeping its expiry when `keep_ttl`.
    pub fn put_string(&mut self, key: &[u8], value: Sds, keep_ttl: bool) {
        let expire_at = if keep_ttl {
            self.ks.peek(self.db, key).map_or(0, |e| e.expire_at)
        } else {
            0
        };
        let mut e = Entry::new(key, Value::Str(value));
        e.expire_at = expire_at;
        self.ks.insert(self.db, e);
        self.dirty += 1;
    }

    /// Arguments from `from` on, as bytes.
    pub fn rest(&self, from: usize) -> &[Bytes] {
        self.args.get(from..).unwrap_or(&[])
    }
}

/// Normalises a Redis range (`start`, `stop`, negatives from the end) over `len` items into a
/// half-open index range, or `None` when it is empty.
pub fn range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut s = if start < 0 { len + start } else { start };
    let mut e = if stop < 0 { len + stop } else { stop };
    if s < 0 {
        s = 0;
    }
    if s > e || s >= len {
        return None;
    }
    if e >= len {
        e = len - 1;
    }
    Some((s as usize, e as usize + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_normalise_like_redis() {
        assert_eq!(range(0, -1, 3), Some((0, 3)));
        assert_eq!(range(-2, -1, 3), Some((1, 3)));
        assert_eq!(range(-100, 100, 3), Some((0, 3)));
        assert_eq!(range(2, 1, 3), None);
        assert_eq!(range(5, 10, 3), None);
        assert_eq!(range(0, 0, 0), None);
    }
}
