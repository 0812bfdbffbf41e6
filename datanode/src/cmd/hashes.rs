//! Hash commands: HSET and friends, counters on fields, random fields and HSCAN.
//!
//! Replies and error texts follow Redis 7.0's `t_hash.c`. A hash is an insertion-ordered map, so
//! small hashes list their fields in the order Redis' listpack encoding does; fields are removed
//! with `shift_remove` to keep that order. An emptied hash is removed from the keyspace.
//!
//! This file also holds the helpers the other collection families share: the SCAN-style
//! argument parser (`ScanArgs`) and the random-count parser of HRANDFIELD, SRANDMEMBER and
//! ZRANDMEMBER (`RandomCount`).

use rand::Rng;
use vigil_proto::float::fmt_human;
use vigil_proto::resp::{Frame, parse_i64};

use super::*;
use crate::engine::HashValue;
use crate::glob;
use crate::sds::Sds;

/// The hash commands.
pub static COMMANDS: &[CommandSpec] = &[
    data(
        "hset",
        -4,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        "hash",
        hset,
    ),
    data(
        "hmset",
        -4,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        "hash",
        hset,
    ),
    data(
        "hsetnx",
        4,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        "hash",
        hsetnx,
    ),
    data("hget", 3, READONLY | FAST, keys(1, 1, 1), "hash", hget),
    data("hmget", -3, READONLY | FAST, keys(1, 1, 1), "hash", hmget),
    data("hdel", -3, WRITE | FAST, keys(1, 1, 1), "hash", hdel),
    data("hlen", 2, READONLY | FAST, keys(1, 1, 1), "hash", hlen),
    data(
        "hstrlen",
        3,
        READONLY | FAST,
        keys(1, 1, 1),
        "hash",
        hstrlen,
    ),
    data(
        "hexists",
        3,
        READONLY | FAST,
        keys(1, 1, 1),
        "hash",
        hexists,
    ),
    data("hkeys", 2, READONLY, keys(1, 1, 1), "hash", hkeys),
    data("hvals", 2, READONLY, keys(1, 1, 1), "hash", hvals),
    data("hgetall", 2, READONLY, keys(1, 1, 1), "hash", hgetall),
    data(
        "hincrby",
        4,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        "hash",
        hincrby,
    ),
    data(
        "hincrbyfloat",
        4,
        WRITE | DENYOOM | FAST,
        keys(1, 1, 1),
        "hash",
        hincrbyfloat,
    ),
    data(
        "hrandfield",
        -2,
        READONLY,
        keys(1, 1, 1),
        "hash",
        hrandfield,
    ),
    data("hscan", -3, READONLY, keys(1, 1, 1), "hash", hscan),
];

/// Most elements a reply of random picks may hold (HRANDFIELD, SRANDMEMBER, ZRANDMEMBER with a
/// negative count). Redis streams such replies without a bound; we build replies in memory, and
/// our own RESP decoder refuses aggregates larger than this, so a larger request is refused with
/// Redis' "value is out of range" error instead of allocating without bound.
pub(crate) const MAX_RANDOM_REPLY: u64 = 1 << 20;

/// The COUNT a SCAN-style command uses when none is given.
const DEFAULT_SCAN_COUNT: usize = 10;

/// The optional arguments of HSCAN, SSCAN and ZSCAN.
pub(crate) struct ScanArgs {
    /// The `MATCH` pattern, if any (`*` counts as none).
    pub pattern: Option<Bytes>,
    /// The `COUNT` hint.
    pub count: usize,
}

impl ScanArgs {
    /// Parses `[MATCH pattern] [COUNT count]` from `args[from..]` as Redis' `scanGenericCommand`.
    pub fn parse(args: &[Bytes], from: usize) -> Result<ScanArgs, CmdError> {
        let mut out = ScanArgs {
            pattern: None,
            count: DEFAULT_SCAN_COUNT,
        };
        let mut i = from;
        while i < args.len() {
            let Some(value) = args.get(i + 1) else {
                return Err(CmdError::Syntax);
            };
            if is(&args[i], "COUNT") {
                let n = int(value)?;
                if n < 1 {
                    return Err(CmdError::Syntax);
                }
                out.count = usize::try_from(n).unwrap_or(usize::MAX);
            } else if is(&args[i], "MATCH") {
                out.pattern = (&value[..] != b"*").then(|| value.clone());
            } else {
                return Err(CmdError::Syntax);
            }
            i += 2;
        }
        Ok(out)
    }

    /// True when `item` passes the `MATCH` filter.
    pub fn matches(&self, item: &[u8]) -> bool {
        self.pattern
            .as_ref()
            .is_none_or(|p| glob::matches(p, item, false))
    }
}

/// Parses a SCAN cursor as Redis' `parseScanCursorOrReply` (`strtoul`, base 10): an optional
/// sign (a minus wraps around, as in C), at least one digit unless the argument is empty, no
/// leading space and nothing after the digits.
pub(crate) fn scan_cursor(arg: &[u8]) -> Result<u64, CmdError> {
    let invalid = || CmdError::other("ERR invalid cursor");
    if arg.is_empty() {
        return Ok(0);
    }
    let (neg, digits) = match arg[0] {
        b'-' => (true, &arg[1..]),
        b'+' => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() {
        return Err(invalid());
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(invalid());
        }
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or_else(invalid)?;
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// One step of a positional scan over `len` items whose positions only ever move down (removal
/// shifts or swaps later items into the hole) and whose new items are appended.
///
/// The walk goes from the last position to the first; `cursor` is one more than the next
/// position to visit (0 starts at the end). Items present for the whole walk are visited at
/// least once: an item not yet visited sits below the cursor and can only move further down.
/// Returns the positions to visit now and the next cursor (0 when the walk is over).
pub(crate) fn positional_scan(len: usize, cursor: u64, count: usize) -> (Vec<usize>, u64) {
    if len == 0 {
        return (Vec::new(), 0);
    }
    let top = match usize::try_from(cursor) {
        Ok(0) | Err(_) => len,
        Ok(c) => c.min(len),
    };
    let bottom = top.saturating_sub(count);
    let positions = (bottom..top).rev().collect();
    (positions, bottom as u64)
}

/// A parsed count of HRANDFIELD, SRANDMEMBER or ZRANDMEMBER.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RandomCount {
    /// Number of picks.
    pub count: u64,
    /// True when picks are distinct (a non-negative count).
    pub unique: bool,
}

impl RandomCount {
    /// Parses `count` as Redis 7.0 does (`-LONG_MAX..=LONG_MAX`); with `pairs` (WITHVALUES,
    /// WITHSCORES) the count must also fit twice in a long.
    pub fn parse(arg: &[u8], pairs: bool) -> Result<RandomCount, CmdError> {
        let n = int(arg)?;
        if n == i64::MIN {
            return Err(CmdError::other(
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            ));
        }
        if pairs && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
            return Err(out_of_range());
        }
        Ok(RandomCount {
            count: n.unsigned_abs(),
            unique: n >= 0,
        })
    }

    /// Refuses a repeating pick count whose reply would exceed `MAX_RANDOM_REPLY` elements.
    pub fn check_reply_size(self, pairs: bool) -> Result<(), CmdError> {
        let items = if pairs {
            self.count.saturating_mul(2)
        } else {
            self.count
        };
        if !self.unique && items > MAX_RANDOM_REPLY {
            return Err(out_of_range());
        }
        Ok(())
    }
}

/// Redis' generic "value is out of range" error.
pub(crate) fn out_of_range() -> CmdError {
    CmdError::other("ERR value is out of range")
}

/// The lower-case command name, for arity errors raised by the handler.
pub(crate) fn cmd_name(c: &Ctx<'_>) -> String {
    String::from_utf8_lossy(&c.args[0].to_ascii_lowercase()).into_owned()
}

fn hset(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    if args.len() % 2 != 0 {
        return Err(CmdError::Arity(cmd_name(c)));
    }
    let h = c.hash_or_create(&args[1])?;
    let mut added = 0;
    for pair in args[2..].chunks_exact(2) {
        if h.insert(Sds::new(&pair[0]), Sds::new(&pair[1])).is_none() {
            added += 1;
        }
    }
    c.dirty += (args.len() as u64 - 2) / 2;
    Ok(if is(&args[0], "HMSET") {
        Frame::ok()
    } else {
        Frame::Integer(added)
    })
}

fn hsetnx(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let h = c.hash_or_create(&args[1])?;
    if h.contains_key(&args[2][..]) {
        return Ok(Frame::Integer(0));
    }
    h.insert(Sds::new(&args[2]), Sds::new(&args[3]));
    c.dirty += 1;
    Ok(Frame::Integer(1))
}

fn hget(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    Ok(match c.hash(&args[1])?.and_then(|h| h.get(&args[2][..])) {
        Some(v) => bulk(v),
        None => Frame::Null,
    })
}

fn hmget(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let h = c.hash(&args[1])?;
    let out = args[2..]
        .iter()
        .map(|f| match h.as_ref().and_then(|h| h.get(&f[..])) {
            Some(v) => bulk(v),
            None => Frame::Null,
        })
        .collect();
    Ok(Frame::Array(out))
}

fn hdel(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let Some(h) = c.hash(&args[1])? else {
        return Ok(Frame::Integer(0));
    };
    let mut deleted = 0;
    for f in &args[2..] {
        // `shift_remove` keeps the remaining fields in insertion order, like a listpack.
        if h.shift_remove(&f[..]).is_some() {
            deleted += 1;
        }
    }
    c.dirty += deleted;
    c.drop_if_empty(&args[1]);
    Ok(Frame::Integer(deleted as i64))
}

fn hlen(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    Ok(Frame::Integer(
        c.hash(&args[1])?.map_or(0, |h| h.len()) as i64
    ))
}

fn hstrlen(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let len = c
        .hash(&args[1])?
        .and_then(|h| h.get(&args[2][..]))
        .map_or(0, |v| v.len());
    Ok(Frame::Integer(len as i64))
}

fn hexists(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let found = c
        .hash(&args[1])?
        .is_some_and(|h| h.contains_key(&args[2][..]));
    Ok(Frame::Integer(i64::from(found)))
}

fn hkeys(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let h = c.hash(&args[1])?;
    Ok(bulk_array(h.iter().flat_map(|h| h.keys()).map(|k| &k[..])))
}

fn hvals(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let h = c.hash(&args[1])?;
    Ok(bulk_array(
        h.iter().flat_map(|h| h.values()).map(|v| &v[..]),
    ))
}

fn hgetall(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let h = c.hash(&args[1])?;
    let pairs = h
        .iter()
        .flat_map(|h| h.iter())
        .map(|(k, v)| (bulk(k), bulk(v)))
        .collect();
    Ok(Frame::Map(pairs))
}

fn hincrby(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let incr = int(&args[3])?;
    let h = c.hash_or_create(&args[1])?;
    let cur = match h.get(&args[2][..]) {
        Some(v) => {
            parse_i64(v).ok_or_else(|| CmdError::other("ERR hash value is not an integer"))?
        }
        None => 0,
    };
    let new = cur.checked_add(incr).ok_or(CmdError::Overflow)?;
    h.insert(Sds::new(&args[2]), Sds::from_i64(new));
    c.dirty += 1;
    Ok(Frame::Integer(new))
}

fn hincrbyfloat(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let incr = float(&args[3])?;
    if !incr.is_finite() {
        return Err(CmdError::other("ERR value is NaN or Infinity"));
    }
    let h = c.hash_or_create(&args[1])?;
    let cur_text = h.get(&args[2][..]).map(|v| v.to_vec());
    let cur = match &cur_text {
        Some(v) => float(v).map_err(|_| CmdError::other("ERR hash value is not a float"))?,
        None => 0.0,
    };
    let new = cur + incr;
    if !new.is_finite() {
        return Err(CmdError::other(
            "ERR increment would produce NaN or Infinity",
        ));
    }
    // The exact decimal sum where Redis' long double shows one (see `add_decimal`).
    let cur_text = cur_text.as_deref().unwrap_or(b"0");
    let text =
        vigil_proto::float::add_decimal(cur_text, &args[3]).unwrap_or_else(|| fmt_human(new));
    h.insert(Sds::new(&args[2]), Sds::new(text.as_bytes()));
    c.dirty += 1;
    Ok(bulk(text.as_bytes()))
}

fn hrandfield(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let resp3 = c.resp3;
    let Some(count_arg) = args.get(2) else {
        let Some(h) = c.hash(&args[1])?.filter(|h| !h.is_empty()) else {
            return Ok(Frame::Null);
        };
        let i = rand::rng().random_range(0..h.len());
        let (k, _) = h.get_index(i).expect("the index is below the length");
        return Ok(bulk(k));
    };
    let withvalues = match args.get(3) {
        None => false,
        Some(a) if args.len() == 4 && is(a, "WITHVALUES") => true,
        Some(_) => {
            // Redis parses the count before it looks at the rest.
            RandomCount::parse(count_arg, false)?;
            return Err(CmdError::Syntax);
        }
    };
    let rc = RandomCount::parse(count_arg, withvalues)?;
    let Some(h) = c.hash(&args[1])?.filter(|h| !h.is_empty()) else {
        return Ok(Frame::Array(Vec::new()));
    };
    if rc.count == 0 {
        return Ok(Frame::Array(Vec::new()));
    }
    rc.check_reply_size(withvalues)?;
    let picks = random_picks(h.len(), rc);
    Ok(field_reply(h, &picks, withvalues, resp3))
}

/// Positions of `rc` random picks out of `len` items (`len > 0`), as Redis chooses them: a
/// negative count (or 1) repeats, a count of at least `len` takes everything in order, and a
/// smaller positive count takes distinct items.
pub(crate) fn random_picks(len: usize, rc: RandomCount) -> Vec<usize> {
    let mut rng = rand::rng();
    if !rc.unique || rc.count == 1 {
        // The caller bounded repeating counts by MAX_RANDOM_REPLY.
        return (0..rc.count).map(|_| rng.random_range(0..len)).collect();
    }
    if rc.count >= len as u64 {
        return (0..len).collect();
    }
    rand::seq::index::sample(&mut rng, len, rc.count as usize).into_vec()
}

/// The reply of HRANDFIELD with a count: fields, or field-value pairs (flat in RESP2, nested in
/// RESP3).
fn field_reply(h: &HashValue, picks: &[usize], withvalues: bool, resp3: bool) -> Frame {
    let mut out = Vec::with_capacity(picks.len() * if withvalues && !resp3 { 2 } else { 1 });
    for &i in picks {
        let (k, v) = h.get_index(i).expect("picks are below the length");
        match (withvalues, resp3) {
            (false, _) => out.push(bulk(k)),
            (true, false) => {
                out.push(bulk(k));
                out.push(bulk(v));
            }
            (true, true) => out.push(Frame::Array(vec![bulk(k), bulk(v)])),
        }
    }
    Frame::Array(out)
}

fn hscan(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let cursor = scan_cursor(&args[2])?;
    let Some(h) = c.hash(&args[1])? else {
        return Ok(scan_reply(0, Vec::new()));
    };
    let opts = ScanArgs::parse(args, 3)?;
    let mut out = Vec::new();
    let mut push = |k: &Sds, v: &Sds| {
        if opts.matches(k) {
            out.push(bulk(k));
            out.push(bulk(v));
        }
    };
    // Redis returns a listpack-encoded hash whole, in order, whatever the cursor.
    if is_listpack(h) {
        h.iter().for_each(|(k, v)| push(k, v));
        return Ok(scan_reply(0, out));
    }
    let (positions, next) = positional_scan(h.len(), cursor, opts.count);
    for i in positions {
        let (k, v) = h.get_index(i).expect("positions are below the length");
        push(k, v);
    }
    Ok(scan_reply(next, out))
}

/// True when Redis 7.0 would keep `h` as a listpack (default `hash-max-listpack-*` limits).
fn is_listpack(h: &HashValue) -> bool {
    h.len() <= 512 && h.iter().all(|(k, v)| k.len() <= 64 && v.len() <= 64)
}

/// The reply of a SCAN-style command: the next cursor and the items.
pub(crate) fn scan_reply(cursor: u64, items: Vec<Frame>) -> Frame {
    Frame::Array(vec![
        Frame::bulk(cursor.to_string().as_bytes()),
        Frame::Array(items),
    ])
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::zsets::tests::run3;
    use super::{positional_scan, scan_cursor, scan_reply};
    use crate::engine::memory::MemoryEngine;
    use vigil_proto::resp::Frame;

    fn arr(items: &[&str]) -> Frame {
        Frame::Array(items.iter().map(|s| b(s)).collect())
    }

    #[test]
    fn hash_commands_reply_like_redis() {
        let e = MemoryEngine::new(16);
        let table: &[(&[&str], Frame)] = &[
            (
                &["hset", "h", "a", "1", "b"],
                Frame::error("ERR wrong number of arguments for 'hset' command"),
            ),
            (&["hset", "h", "a", "1", "b", "2"], i(2)),
            (&["hset", "h", "a", "9", "c", "3"], i(1)),
            (&["hmset", "h", "d", "4"], Frame::ok()),
            (
                &["hmset", "h", "d"],
                Frame::error("ERR wrong number of arguments for 'hmset' command"),
            ),
            (&["hsetnx", "h", "a", "x"], i(0)),
            (&["hsetnx", "h", "e", "5"], i(1)),
            (&["hget", "h", "a"], b("9")),
            (&["hget", "h", "zz"], Frame::Null),
            (&["hget", "nokey", "a"], Frame::Null),
            (
                &["hmget", "h", "a", "zz", "b"],
                Frame::Array(vec![b("9"), Frame::Null, b("2")]),
            ),
            (&["hmget", "nokey", "a"], Frame::Array(vec![Frame::Null])),
            (&["hlen", "h"], i(5)),
            (&["hstrlen", "h", "a"], i(1)),
            (&["hstrlen", "h", "zz"], i(0)),
            (&["hexists", "h", "a"], i(1)),
            (&["hexists", "h", "zz"], i(0)),
            (&["hkeys", "h"], arr(&["a", "b", "c", "d", "e"])),
            (&["hdel", "h", "b", "b", "zz"], i(1)),
            (&["hkeys", "h"], arr(&["a", "c", "d", "e"])),
            (&["hvals", "h"], arr(&["9", "3", "4", "5"])),
            (
                &["hgetall", "h"],
                Frame::Map(vec![
                    (b("a"), b("9")),
                    (b("c"), b("3")),
                    (b("d"), b("4")),
                    (b("e"), b("5")),
                ]),
            ),
            (&["hgetall", "nokey"], Frame::Map(vec![])),
            (&["hkeys", "nokey"], arr(&[])),
            (&["hdel", "h", "a", "c", "d", "e"], i(4)),
            (&["exists", "h"], i(0)),
            (&["hdel", "nokey", "a"], i(0)),
            (&["set", "str", "x"], Frame::ok()),
            (
                &["hget", "str", "a"],
                Frame::error("WRONGTYPE Operation against a key holding the wrong kind of value"),
            ),
            (
                &["hset", "str", "a", "b"],
                Frame::error("WRONGTYPE Operation against a key holding the wrong kind of value"),
            ),
            (
                &["hmget", "str", "a"],
                Frame::error("WRONGTYPE Operation against a key holding the wrong kind of value"),
            ),
            (
                &["hlen", "str"],
                Frame::error("WRONGTYPE Operation against a key holding the wrong kind of value"),
            ),
        ];
        for (cmd, want) in table {
            assert_eq!(&run_one(&e, cmd), want, "{cmd:?}");
        }
    }

    #[test]
    fn hash_counters_reply_like_redis() {
        let e = MemoryEngine::new(16);
        let table: &[(&[&str], Frame)] = &[
            (&["hincrby", "h", "n", "5"], i(5)),
            (&["hincrby", "h", "n", "-7"], i(-2)),
            (
                &["hincrby", "h", "n", "x"],
                Frame::error("ERR value is not an integer or out of range"),
            ),
            (
                &["hincrby", "h", "n", "-9223372036854775807"],
                Frame::error("ERR increment or decrement would overflow"),
            ),
            (
                &[
                    "hset",
                    "h",
                    "m",
                    "9223372036854775807",
                    "s",
                    "abc",
                    "sp",
                    " 1",
                    "lz",
                    "01",
                ],
                i(4),
            ),
            (
                &["hincrby", "h", "m", "1"],
                Frame::error("ERR increment or decrement would overflow"),
            ),
            (
                &["hincrby", "h", "s", "1"],
                Frame::error("ERR hash value is not an integer"),
            ),
            (
                &["hincrby", "h", "lz", "1"],
                Frame::error("ERR hash value is not an integer"),
            ),
            (
                &["hincrbyfloat", "h", "s", "1"],
                Frame::error("ERR hash value is not a float"),
            ),
            (
                &["hincrbyfloat", "h", "sp", "1"],
                Frame::error("ERR hash value is not a float"),
            ),
            (&["hincrbyfloat", "h", "f", "10.5"], b("10.5")),
            (&["hincrbyfloat", "h", "f", "0.1"], b("10.6")),
            (&["hincrbyfloat", "h", "f", "-10.6"], b("0")),
            (
                &["hincrbyfloat", "h", "g", "5e20"],
                b("500000000000000000000"),
            ),
            (
                &["hincrbyfloat", "h", "g", "inf"],
                Frame::error("ERR value is NaN or Infinity"),
            ),
            (
                &["hincrbyfloat", "h", "g", "nan"],
                Frame::error("ERR value is not a valid float"),
            ),
            (
                &["hincrbyfloat", "h", "g", " 1"],
                Frame::error("ERR value is not a valid float"),
            ),
            (&["hset", "h", "big", "1.7e308"], i(1)),
            (
                &["hincrbyfloat", "h", "big", "1.7e308"],
                Frame::error("ERR increment would produce NaN or Infinity"),
            ),
            (&["hget", "h", "f"], b("0")),
            (&["hget", "h", "n"], b("-2")),
        ];
        for (cmd, want) in table {
            assert_eq!(&run_one(&e, cmd), want, "{cmd:?}");
        }
    }

    #[test]
    fn hrandfield_counts_follow_redis_rules() {
        let e = MemoryEngine::new(16);
        run_one(&e, &["hset", "h", "a", "1", "b", "2", "c", "3"]);
        let table: &[(&[&str], Frame)] = &[
            (&["hrandfield", "nokey"], Frame::Null),
            (&["hrandfield", "nokey", "3"], arr(&[])),
            (
                &["hrandfield", "nokey", "x"],
                Frame::error("ERR value is not an integer or out of range"),
            ),
            (&["hrandfield", "h", "0"], arr(&[])),
            (&["hrandfield", "h", "3"], arr(&["a", "b", "c"])),
            (
                &["hrandfield", "h", "9223372036854775807"],
                arr(&["a", "b", "c"]),
            ),
            (
                &["hrandfield", "h", "5", "withvalues"],
                arr(&["a", "1", "b", "2", "c", "3"]),
            ),
            (
                &["hrandfield", "h", "2", "withvalues", "x"],
                Frame::error("ERR syntax error"),
            ),
            (
                &["hrandfield", "h", "2", "foo"],
                Frame::error("ERR syntax error"),
            ),
            (
                &["hrandfield", "h", "-9223372036854775808"],
                Frame::error(
                    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                ),
            ),
            (
                &["hrandfield", "h", "9223372036854775807", "withvalues"],
                Frame::error("ERR value is out of range"),
            ),
            (
                &["hrandfield", "h", "-9223372036854775807", "withvalues"],
                Frame::error("ERR value is out of range"),
            ),
            (
                &["hrandfield", "h", "-9223372036854775807"],
                Frame::error("ERR value is out of range"),
            ),
            (
                &["hrandfield", "h", "-4611686018427387903", "withvalues"],
                Frame::error("ERR value is out of range"),
            ),
        ];
        for (cmd, want) in table {
            assert_eq!(&run_one(&e, cmd), want, "{cmd:?}");
        }
        let Frame::Array(picks) = run_one(&e, &["hrandfield", "h", "-5", "withvalues"]) else {
            panic!("array expected");
        };
        assert_eq!(picks.len(), 10);
        let Frame::Array(picks) = run_one(&e, &["hrandfield", "h", "2"]) else {
            panic!("array expected");
        };
        assert_eq!(picks.len(), 2);
        assert_ne!(picks[0], picks[1]);
        assert!(matches!(run_one(&e, &["hrandfield", "h"]), Frame::Bulk(_)));
    }

    #[test]
    fn hrandfield_nests_pairs_for_resp3() {
        let e = MemoryEngine::new(16);
        run_one(&e, &["hset", "h", "a", "1", "b", "2"]);
        let pair = |k: &str, v: &str| Frame::Array(vec![b(k), b(v)]);
        let all = Frame::Array(vec![pair("a", "1"), pair("b", "2")]);
        assert_eq!(run3(&e, &["hrandfield", "h", "2", "withvalues"]), all);
        assert_eq!(run3(&e, &["hrandfield", "h", "2"]), arr(&["a", "b"]));
        let Frame::Array(picks) = run3(&e, &["hrandfield", "h", "-3", "withvalues"]) else {
            panic!("array expected");
        };
        assert_eq!(picks.len(), 3);
        assert!(
            picks
                .iter()
                .all(|p| *p == pair("a", "1") || *p == pair("b", "2"))
        );
    }

    #[test]
    fn hscan_returns_small_hashes_whole_and_pages_large_ones() {
        let e = MemoryEngine::new(16);
        run_one(&e, &["hset", "h", "a", "1", "b", "2", "ab", "3"]);
        let table: &[(&[&str], Frame)] = &[
            (
                &["hscan", "h", "0"],
                scan_reply(0, vec![b("a"), b("1"), b("b"), b("2"), b("ab"), b("3")]),
            ),
            (
                &["hscan", "h", "0", "match", "a*"],
                scan_reply(0, vec![b("a"), b("1"), b("ab"), b("3")]),
            ),
            (&["hscan", "h", "x"], Frame::error("ERR invalid cursor")),
            (
                &["hscan", "h", "18446744073709551616"],
                Frame::error("ERR invalid cursor"),
            ),
            (
                &["hscan", "h", "0", "count", "0"],
                Frame::error("ERR syntax error"),
            ),
            (
                &["hscan", "h", "0", "count"],
                Frame::error("ERR syntax error"),
            ),
            (
                &["hscan", "h", "0", "count", "x"],
                Frame::error("ERR value is not an integer or out of range"),
            ),
            (
                &["hscan", "h", "0", "novalues"],
                Frame::error("ERR syntax error"),
            ),
            (&["hscan", "nokey", "0", "bad"], scan_reply(0, vec![])),
        ];
        for (cmd, want) in table {
            assert_eq!(&run_one(&e, cmd), want, "{cmd:?}");
        }

        // A large hash: every field present for the whole walk is seen, despite deletions.
        let mut cmd = vec!["hset".to_string(), "big".to_string()];
        for n in 0..600 {
            cmd.push(format!("f{n}"));
            cmd.push(n.to_string());
        }
        let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
        run_one(&e, &cmd);
        let mut seen = std::collections::HashSet::new();
        let mut cursor = "0".to_string();
        let mut rounds = 0;
        loop {
            let Frame::Array(reply) = run_one(&e, &["hscan", "big", &cursor, "count", "20"]) else {
                panic!("array expected");
            };
            let (Some(Frame::Bulk(next)), Some(Frame::Array(items))) =
                (reply.first(), reply.get(1))
            else {
                panic!("cursor and items expected");
            };
            assert!(items.len() <= 40);
            for pair in items.chunks(2) {
                seen.insert(pair[0].as_bytes().map(<[u8]>::to_vec));
            }
            // Delete fields already returned, which shifts later ones down.
            let del = format!("f{rounds}");
            run_one(&e, &["hdel", "big", &del]);
            cursor = String::from_utf8_lossy(next).into_owned();
            rounds += 1;
            if cursor == "0" {
                break;
            }
            assert!(rounds < 100);
        }
        for n in rounds..600 {
            assert!(
                seen.contains(&Some(format!("f{n}").into_bytes())),
                "f{n} missed"
            );
        }
    }

    #[test]
    fn scan_cursor_parses_like_strtoul() {
        assert_eq!(scan_cursor(b"0"), Ok(0));
        assert_eq!(scan_cursor(b""), Ok(0));
        assert_eq!(scan_cursor(b"+5"), Ok(5));
        assert_eq!(scan_cursor(b"-1"), Ok(u64::MAX));
        assert_eq!(scan_cursor(b"18446744073709551615"), Ok(u64::MAX));
        assert!(scan_cursor(b"-").is_err());
        assert!(scan_cursor(b" 1").is_err());
        assert!(scan_cursor(b"1 ").is_err());
        assert!(scan_cursor(b"0x1").is_err());
    }

    #[test]
    fn positional_scan_walks_down_from_the_end() {
        assert_eq!(positional_scan(0, 0, 10), (vec![], 0));
        assert_eq!(positional_scan(3, 0, 10), (vec![2, 1, 0], 0));
        assert_eq!(positional_scan(5, 0, 2), (vec![4, 3], 3));
        assert_eq!(positional_scan(5, 3, 2), (vec![2, 1], 1));
        assert_eq!(positional_scan(5, 1, 2), (vec![0], 0));
        // A cursor beyond the end (items were removed) restarts at the current end.
        assert_eq!(positional_scan(2, 9, 5), (vec![1, 0], 0));
    }
}
