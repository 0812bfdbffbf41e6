//! List commands: pushes, pops, ranges, positional edits, moves, and their blocking variants.
//!
//! Replies, error texts and the order in which arguments are checked follow Redis 7.0's
//! `t_list.c`, so a malformed command fails with the same error as on Redis.
//!
//! Invariants: a list key is never left empty in the keyspace (every removal ends with
//! `drop_if_empty`); every change adds to `c.dirty`, which the dispatcher uses to wake blocked
//! clients and to invalidate `WATCH`; and no count, index or length from a client sizes an
//! allocation or a loop before it is clamped to the list's length.
//!
//! Blocking commands (`BLPOP`, `BRPOP`, `BRPOPLPUSH`, `BLMOVE`, `BLMPOP`) validate their timeout
//! with `block_timeout`, try the non-blocking operation over their keys in order, and return
//! `CmdError::Block` when every key is missing or empty. The dispatcher then registers the client
//! on the command's keys, re-runs the command when one of them is written, and owns the deadline.

use std::time::Duration;

use bytes::Bytes;
use vigil_proto::resp::{Frame, parse_i64};

use super::*;
use crate::engine::ListValue;
use crate::sds::Sds;

/// The list commands, with Redis 7.0's arity and flags.
#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    data("lpush", -3, WRITE | DENYOOM | FAST, keys(1, 1, 1), "list", lpush),
    data("rpush", -3, WRITE | DENYOOM | FAST, keys(1, 1, 1), "list", rpush),
    data("lpushx", -3, WRITE | DENYOOM | FAST, keys(1, 1, 1), "list", lpushx),
    data("rpushx", -3, WRITE | DENYOOM | FAST, keys(1, 1, 1), "list", rpushx),
    data("lpop", -2, WRITE | FAST, keys(1, 1, 1), "list", lpop),
    data("rpop", -2, WRITE | FAST, keys(1, 1, 1), "list", rpop),
    data("llen", 2, READONLY | FAST, keys(1, 1, 1), "list", llen),
    data("lrange", 4, READONLY, keys(1, 1, 1), "list", lrange),
    data("lindex", 3, READONLY, keys(1, 1, 1), "list", lindex),
    data("lset", 4, WRITE | DENYOOM, keys(1, 1, 1), "list", lset),
    data("linsert", 5, WRITE | DENYOOM, keys(1, 1, 1), "list", linsert),
    data("lrem", 4, WRITE, keys(1, 1, 1), "list", lrem),
    data("ltrim", 4, WRITE, keys(1, 1, 1), "list", ltrim),
    data("lpos", -3, READONLY, keys(1, 1, 1), "list", lpos),
    data("rpoplpush", 3, WRITE | DENYOOM, keys(1, 2, 1), "list", rpoplpush),
    data("lmove", 5, WRITE | DENYOOM, keys(1, 2, 1), "list", lmove),
    data("lmpop", -4, WRITE, KeySpec::Custom(lmpop_keys), "list", lmpop),
    data("blpop", -3, WRITE | BLOCKING, keys(1, -2, 1), "list", blpop),
    data("brpop", -3, WRITE | BLOCKING, keys(1, -2, 1), "list", brpop),
    data("brpoplpush", 4, WRITE | DENYOOM | BLOCKING, keys(1, 2, 1), "list", brpoplpush),
    data("blmove", 6, WRITE | DENYOOM | BLOCKING, keys(1, 2, 1), "list", blmove),
    data("blmpop", -5, WRITE | BLOCKING, KeySpec::Custom(blmpop_keys), "list", blmpop),
];

/// Parses a blocking command's timeout (seconds, fractions allowed) as Redis 7.0 does:
/// `None` waits forever, `Some(d)` gives up after `d`.
///
/// Redis rounds the timeout up to whole milliseconds (`ceill(secs * 1000)`) before checking its
/// sign, so `-0.0005` means "forever" and `0.0001` means one millisecond. It then converts to
/// `long long`; on x86-64 an out-of-range value becomes `LLONG_MIN`, which is why Redis answers
/// "timeout is negative" for `1e16` or `inf`, and so do we.
pub fn block_timeout(arg: &[u8]) -> Result<Option<Duration>, CmdError> {
    let secs = float(arg).map_err(|_| CmdError::Timeout)?;
    let ms = (secs * 1000.0).ceil();
    // 2^63 is the first value `(long long)` cannot hold; `inf` and `-inf` fall out here too.
    if !(0.0..9_223_372_036_854_775_808.0).contains(&ms) {
        return Err(CmdError::other("ERR timeout is negative"));
    }
    // In range and non-negative, so the cast is exact (up to f64 rounding of the input).
    Ok((ms > 0.0).then(|| Duration::from_millis(ms as u64)))
}

/// One end of a list.
#[derive(Clone, Copy, Debug, Eq, PartialEq)]
enum End {
    /// The head (`LEFT`, index 0).
    Left,
    /// The tail (`RIGHT`, index -1).
    Right,
}

impl End {
    /// Parses `LEFT` or `RIGHT`; anything else is a syntax error.
    fn parse(arg: &[u8]) -> Result<End, CmdError> {
        if is(arg, "LEFT") {
            Ok(End::Left)
        } else if is(arg, "RIGHT") {
            Ok(End::Right)
        } else {
            Err(CmdError::Syntax)
        }
    }

    fn push(self, list: &mut ListValue, value: Sds) {
        match self {
            End::Left => list.push_front(value),
            End::Right => list.push_back(value),
        }
    }

    fn pop(self, list: &mut ListValue) -> Option<Sds> {
        match self {
            End::Left => list.pop_front(),
            End::Right => list.pop_back(),
        }
    }
}

fn lpush(c: &mut Ctx<'_>) -> CmdResult {
    push(c, End::Left, false)
}

fn rpush(c: &mut Ctx<'_>) -> CmdResult {
    push(c, End::Right, false)
}

fn lpushx(c: &mut Ctx<'_>) -> CmdResult {
    push(c, End::Left, true)
}

fn rpushx(c: &mut Ctx<'_>) -> CmdResult {
    push(c, End::Right, true)
}

/// `[LR]PUSH[X] key value…`: pushes each value in turn and replies with the new length.
fn push(c: &mut Ctx<'_>, end: End, only_existing: bool) -> CmdResult {
    let args = c.args;
    let key = &args[1];
    let list = if only_existing {
        match c.list(key)? {
            Some(l) => l,
            None => return Ok(Frame::Integer(0)),
        }
    } else {
        c.list_or_create(key)?
    };
    for v in &args[2..] {
        end.push(list, Sds::new(v));
    }
    let len = list.len();
    c.dirty += (args.len() - 2) as u64;
    Ok(Frame::Integer(len as i64))
}

fn lpop(c: &mut Ctx<'_>) -> CmdResult {
    pop(c, End::Left)
}

fn rpop(c: &mut Ctx<'_>) -> CmdResult {
    pop(c, End::Right)
}

/// `[LR]POP key [count]`: one element as a bulk string, or with a count an array of up to
/// `count` elements. A missing key is a null (a null array when a count was given).
fn pop(c: &mut Ctx<'_>, end: End) -> CmdResult {
    let args = c.args;
    if args.len() > 3 {
        return Err(CmdError::Arity(
            String::from_utf8_lossy(&args[0]).to_ascii_lowercase(),
        ));
    }
    let count = match args.get(2) {
        Some(a) => Some(ranged(a, 0, "ERR value is out of range, must be positive")?),
        None => None,
    };
    let key = &args[1];
    let Some(list) = c.list(key)? else {
        return Ok(if count.is_some() {
            Frame::NullArray
        } else {
            Frame::Null
        });
    };
    let (reply, popped) = match count {
        Some(0) => return Ok(Frame::Array(Vec::new())),
        Some(n) => {
            let items = pop_many(list, end, n);
            let n = items.len() as u64;
            (Frame::Array(items), n)
        }
        None => match end.pop(list) {
            Some(v) => (bulk(&v), 1),
            None => (Frame::Null, 0),
        },
    };
    c.dirty += popped;
    c.drop_if_empty(key);
    Ok(reply)
}

fn llen(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    Ok(Frame::Integer(
        c.list(&args[1])?.map_or(0, |l| l.len()) as i64
    ))
}

fn lrange(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let start = int(&args[2])?;
    let stop = int(&args[3])?;
    let Some(list) = c.list(&args[1])? else {
        return Ok(Frame::Array(Vec::new()));
    };
    // `range` clamps both ends to the list, so `LRANGE k 0 <huge>` costs only the list's length.
    let Some((from, to)) = range(start, stop, list.len()) else {
        return Ok(Frame::Array(Vec::new()));
    };
    Ok(Frame::Array(
        list.range(from..to).map(|v| bulk(v)).collect(),
    ))
}

fn lindex(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    // Redis looks the key up before parsing the index: a missing key is null whatever the index.
    let Some(list) = c.list(&args[1])? else {
        return Ok(Frame::Null);
    };
    let index = int(&args[2])?;
    Ok(position(list.len(), index).map_or(Frame::Null, |i| bulk(&list[i])))
}

fn lset(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let Some(list) = c.list(&args[1])? else {
        return Err(CmdError::NoSuchKey);
    };
    let index = int(&args[2])?;
    let i = position(list.len(), index).ok_or(CmdError::IndexOutOfRange)?;
    list[i] = Sds::new(&args[3]);
    c.dirty += 1;
    Ok(Frame::ok())
}

fn linsert(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let after = if is(&args[2], "AFTER") {
        true
    } else if is(&args[2], "BEFORE") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let Some(list) = c.list(&args[1])? else {
        return Ok(Frame::Integer(0));
    };
    let pivot = &args[3][..];
    let Some(at) = list.iter().position(|e| e.as_slice() == pivot) else {
        return Ok(Frame::Integer(-1));
    };
    list.insert(at + usize::from(after), Sds::new(&args[4]));
    let len = list.len();
    c.dirty += 1;
    Ok(Frame::Integer(len as i64))
}

fn lrem(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let count = int(&args[2])?;
    let key = &args[1];
    let Some(list) = c.list(key)? else {
        return Ok(Frame::Integer(0));
    };
    let elem = &args[3][..];
    // 0 removes every match; `unsigned_abs` keeps `i64::MIN` meaningful (Redis removes all).
    let limit = match count {
        0 => usize::MAX,
        n => usize::try_from(n.unsigned_abs()).unwrap_or(usize::MAX),
    };
    let mut removed = 0usize;
    let mut keep = |e: &Sds| {
        if removed < limit && e.as_slice() == elem {
            removed += 1;
            false
        } else {
            true
        }
    };
    if count >= 0 {
        list.retain(|e| keep(e));
    } else {
        // From the tail: walk backwards, rebuilding the kept elements in their original order.
        let mut kept = ListValue::with_capacity(list.len());
        for e in list.drain(..).rev() {
            if keep(&e) {
                kept.push_front(e);
            }
        }
        *list = kept;
    }
    c.dirty += removed as u64;
    c.drop_if_empty(key);
    Ok(Frame::Integer(removed as i64))
}

fn ltrim(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let start = int(&args[2])?;
    let stop = int(&args[3])?;
    let key = &args[1];
    let Some(list) = c.list(key)? else {
        return Ok(Frame::ok());
    };
    let len = list.len();
    let (from, to) = range(start, stop, len).unwrap_or((len, len));
    list.truncate(to);
    list.drain(..from);
    c.dirty += (len - list.len()) as u64;
    c.drop_if_empty(key);
    Ok(Frame::ok())
}

fn lpos(c: &mut Ctx<'_>) -> CmdResult {
    let args = c.args;
    let mut rank: i64 = 1;
    let mut count: Option<i64> = None;
    let mut maxlen: i64 = 0;
    let mut j = 3;
    while j < args.len() {
        let opt = &args[j];
        let Some(val) = args.get(j + 1) else {
            return Err(CmdError::Syntax);
        };
        if is(opt, "RANK") {
            rank = int(val)?;
            if rank == 0 {
                return Err(CmdError::other(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the \
                     second ... or use negative to start from the end of the list",
                ));
            }
        } else if is(opt, "COUNT") {
            count = Some(ranged(val, 0, "ERR COUNT can't be negative")?);
        } else if is(opt, "MAXLEN") {
            maxlen = ranged(val, 0, "ERR MAXLEN can't be negative")?;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 2;
    }
    let from_tail = rank < 0;
    // Redis negates the rank in C, where `-LONG_MIN` wraps to itself and then matches from the
    // first hit with no COUNT limit; wrapping arithmetic reproduces that without overflowing.
    let rank = if from_tail { rank.wrapping_neg() } else { rank };
    let none = || {
        if count.is_some() {
            Frame::Array(Vec::new())
        } else {
            Frame::Null
        }
    };
    let Some(list) = c.list(&args[1])? else {
        return Ok(none());
    };
    let len = list.len();
    let scan = match usize::try_from(maxlen) {
        Ok(0) | Err(_) => len,
        Ok(m) => m.min(len),
    };
    let elem = &args[2][..];
    let mut matches: i64 = 0;
    let mut found = Vec::new();
    for step in 0..scan {
        let index = if from_tail { len - 1 - step } else { step };
        if list[index].as_slice() != elem {
            continue;
        }
        matches += 1;
        if matches < rank {
            continue;
        }
        let Some(n) = count else {
            return Ok(Frame::Integer(index as i64));
        };
        found.push(Frame::Integer(index as i64));
        if n != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= n {
            break;
        }
    }
    Ok(if count.is_some() {
        Frame::Array(found)
    } else {
        none()
    })
}

fn rpoplpush(c: &mut Ctx<'_>) -> CmdResult {
    move_one(c, End::Right, End::Left)
}

fn lmove(c: &mut Ctx<'_>) -> CmdResult {
    let from = End::parse(&c.args[3])?;
    let to = End::parse(&c.args[4])?;
    move_one(c, from, to)
}

/// Pops from `args[1]` at `from` and pushes onto `args[2]` at `to`, replying with the element.
/// With the same key on both sides this rotates the list.
fn move_one(c: &mut Ctx<'_>, from: End, to: End) -> CmdResult {
    let args = c.args;
    let (src, dst) = (&args[1], &args[2]);
    if c.list(src)?.is_none_or(|l| l.is_empty()) {
        return Ok(Frame::Null);
    }
    // Check the destination's type before popping, so a WRONGTYPE leaves the source untouched.
    c.list(dst)?;
    let Some(value) = c.list(src)?.and_then(|l| from.pop(l)) else {
        return Ok(Frame::Null);
    };
    let reply = bulk(&value);
    to.push(c.list_or_create(dst)?, value);
    // After the push, so a one-element rotation does not delete the key it is pushing to.
    c.drop_if_empty(src);
    c.dirty += 1;
    Ok(reply)
}

fn lmpop(c: &mut Ctx<'_>) -> CmdResult {
    let m = Mpop::parse(c.args, 1)?;
    Ok(mpop(c, &m)?.unwrap_or(Frame::NullArray))
}

fn blpop(c: &mut Ctx<'_>) -> CmdResult {
    bpop(c, End::Left)
}

fn brpop(c: &mut Ctx<'_>) -> CmdResult {
    bpop(c, End::Right)
}

/// `B[LR]POP key… timeout`: `[key, element]` from the first non-empty list, else block.
fn bpop(c: &mut Ctx<'_>, end: End) -> CmdResult {
    let args = c.args;
    let last = args.len() - 1;
    block_timeout(&args[last])?;
    let Some(key) = first_nonempty(c, &args[1..last])? else {
        return Err(CmdError::Block);
    };
    let value = c.list(key)?.and_then(|l| end.pop(l));
    c.drop_if_empty(key);
    let Some(value) = value else {
        return Err(CmdError::Block);
    };
    c.dirty += 1;
    Ok(Frame::Array(vec![Frame::Bulk(key.clone()), bulk(&value)]))
}

fn brpoplpush(c: &mut Ctx<'_>) -> CmdResult {
    block_timeout(&c.args[3])?;
    bmove(c, End::Right, End::Left)
}

fn blmove(c: &mut Ctx<'_>) -> CmdResult {
    let from = End::parse(&c.args[3])?;
    let to = End::parse(&c.args[4])?;
    block_timeout(&c.args[5])?;
    bmove(c, from, to)
}

/// Blocks while the source is missing; only the source's type is checked before that, as in
/// Redis (a wrong-typed destination fails once there is something to move).
fn bmove(c: &mut Ctx<'_>, from: End, to: End) -> CmdResult {
    let args = c.args;
    if c.list(&args[1])?.is_none_or(|l| l.is_empty()) {
        return Err(CmdError::Block);
    }
    move_one(c, from, to)
}

fn blmpop(c: &mut Ctx<'_>) -> CmdResult {
    let m = Mpop::parse(c.args, 2)?;
    // Redis checks the timeout only after numkeys, the direction and COUNT.
    block_timeout(&c.args[1])?;
    mpop(c, &m)?.ok_or(CmdError::Block)
}

/// The parsed tail of `LMPOP numkeys key… LEFT|RIGHT [COUNT n]` (and of `BLMPOP`).
struct Mpop {
    /// Index of the first key in the arguments.
    first: usize,
    /// Index just past the last key (where `LEFT|RIGHT` is).
    end_at: usize,
    /// Which end to pop from.
    end: End,
    /// Most elements to pop (at least 1).
    count: i64,
}

impl Mpop {
    /// Parses from the `numkeys` argument at `at`, in Redis' order: numkeys, direction, COUNT.
    fn parse(args: &[Bytes], at: usize) -> Result<Mpop, CmdError> {
        let numkeys = args.get(at).map_or(Err(CmdError::Syntax), |a| {
            ranged(a, 1, "ERR numkeys should be greater than 0")
        })?;
        let first = at + 1;
        let end_at = usize::try_from(numkeys)
            .ok()
            .and_then(|n| first.checked_add(n))
            .filter(|&i| i < args.len())
            .ok_or(CmdError::Syntax)?;
        let end = End::parse(&args[end_at])?;
        let mut count = None;
        let mut j = end_at + 1;
        while j < args.len() {
            match args.get(j + 1) {
                Some(n) if count.is_none() && is(&args[j], "COUNT") => {
                    count = Some(ranged(n, 1, "ERR count should be greater than 0")?);
                }
                _ => return Err(CmdError::Syntax),
            }
            j += 2;
        }
        Ok(Mpop {
            first,
            end_at,
            end,
            count: count.unwrap_or(1),
        })
    }
}

/// Pops up to `m.count` elements from the first non-empty list: `[key, [element…]]`, or `None`
/// when every key is missing or empty.
fn mpop(c: &mut Ctx<'_>, m: &Mpop) -> Result<Option<Frame>, CmdError> {
    let args = c.args;
    let Some(key) = first_nonempty(c, &args[m.first..m.end_at])? else {
        return Ok(None);
    };
    let items = c
        .list(key)?
        .map_or_else(Vec::new, |l| pop_many(l, m.end, m.count));
    c.dirty += items.len() as u64;
    c.drop_if_empty(key);
    Ok(Some(Frame::Array(vec![
        Frame::Bulk(key.clone()),
        Frame::Array(items),
    ])))
}

/// The first of `keys` holding a non-empty list. A key of another type before it is
/// `WRONGTYPE`; one after it is never looked at, as in Redis.
fn first_nonempty<'k>(c: &mut Ctx<'_>, keys: &'k [Bytes]) -> Result<Option<&'k Bytes>, CmdError> {
    for key in keys {
        if c.list(key)?.is_some_and(|l| !l.is_empty()) {
            return Ok(Some(key));
        }
    }
    Ok(None)
}

/// Pops up to `n` elements from `end`, in pop order (tail first for `Right`).
fn pop_many(list: &mut ListValue, end: End, n: i64) -> Vec<Frame> {
    // Clamped to the length first: `LPOP k 9223372036854775807` must not size anything.
    let n = usize::try_from(n).map_or(0, |n| n.min(list.len()));
    match end {
        End::Left => list.drain(..n).map(|v| bulk(&v)).collect(),
        End::Right => {
            let tail = list.split_off(list.len() - n);
            tail.iter().rev().map(|v| bulk(v)).collect()
        }
    }
}

/// Resolves a Redis index (negative counts from the tail) to a position in a list of `len`.
fn position(len: usize, index: i64) -> Option<usize> {
    let i = if index < 0 {
        // `len` is at most `isize::MAX`, so the sum cannot overflow.
        len as i64 + index
    } else {
        index
    };
    usize::try_from(i).ok().filter(|&i| i < len)
}

/// Parses an integer that must be at least `min`, with Redis' `getRangeLongFromObjectOrReply`
/// behaviour: `msg` is the error both for a non-integer and for a value out of range.
fn ranged(arg: &[u8], min: i64, msg: &'static str) -> Result<i64, CmdError> {
    match parse_i64(arg) {
        Some(n) if n >= min => Ok(n),
        _ => Err(CmdError::other(msg)),
    }
}

/// Key indexes of `LMPOP numkeys key…`.
fn lmpop_keys(args: &[Bytes]) -> Vec<usize> {
    numkeys_keys(args, 1)
}

/// Key indexes of `BLMPOP timeout numkeys key…`.
fn blmpop_keys(args: &[Bytes]) -> Vec<usize> {
    numkeys_keys(args, 2)
}

/// The `numkeys` keys after `args[at]`, cut at the end of the arguments; none when `numkeys` is
/// not a positive integer. Never longer than `args`, whatever `numkeys` claims.
fn numkeys_keys(args: &[Bytes], at: usize) -> Vec<usize> {
    let n = args
        .get(at)
        .and_then(|a| parse_i64(a))
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    let first = at + 1;
    let last = first.saturating_add(n).min(args.len());
    (first..last).collect()
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use crate::engine::memory::MemoryEngine;
    use crate::engine::{Engine, Scope};

    fn err(text: &str) -> Frame {
        Frame::error(text)
    }

    fn arr(items: &[&str]) -> Frame {
        Frame::Array(items.iter().map(|s| b(s)).collect())
    }

    fn ints(items: &[i64]) -> Frame {
        Frame::Array(items.iter().map(|&n| i(n)).collect())
    }

    const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
    const NOT_INT: &str = "ERR value is not an integer or out of range";

    fn check(e: &MemoryEngine, table: &[(&[&str], Frame)]) {
        for (cmd, want) in table {
            assert_eq!(&run_one(e, cmd), want, "{cmd:?}");
        }
    }

    /// Runs a data command and returns the handler's raw result and its dirty count.
    fn raw(e: &MemoryEngine, cmd: &[&str]) -> (CmdResult, u64) {
        let args: Vec<Bytes> = cmd
            .iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect();
        let spec = lookup(&args[0]).expect("known command");
        let Handler::Data(f) = spec.handler else {
            panic!("not a data command");
        };
        // Lock only the shards the key spec names, as the dispatcher does, so a handler that
        // strays outside its keys panics here (when the stray key is in another shard).
        let keys: Vec<&[u8]> = spec
            .keys
            .indexes(&args)
            .iter()
            .map(|&i| &args[i][..])
            .collect();
        let mut out = None;
        e.with_view(1_000_000, Scope::Keys(&keys), &mut |ks| {
            let mut ctx = Ctx {
                args: &args,
                db: 0,
                dbs: 16,
                ks,
                resp3: false,
                dirty: 0,
            };
            let r = f(&mut ctx);
            out = Some((r, ctx.dirty));
        });
        out.expect("the view ran")
    }

    #[test]
    fn pushes_and_pops_reply_like_redis() {
        let e = MemoryEngine::new(16);
        check(
            &e,
            &[
                (&["rpush", "l", "a", "b", "c"], i(3)),
                (&["lpush", "l", "z", "y"], i(5)),
                (&["lrange", "l", "0", "-1"], arr(&["y", "z", "a", "b", "c"])),
                (&["lpushx", "none", "a"], i(0)),
                (&["rpushx", "l", "d"], i(6)),
                (&["exists", "none"], i(0)),
                (&["lpop", "l"], b("y")),
                (&["rpop", "l"], b("d")),
                (&["lpop", "l", "2"], arr(&["z", "a"])),
                (&["rpop", "l", "0"], Frame::Array(vec![])),
                (&["rpop", "l", "9223372036854775807"], arr(&["c", "b"])),
                (&["exists", "l"], i(0)),
                (&["lpop", "l"], Frame::Null),
                (&["lpop", "l", "2"], Frame::NullArray),
                (&["lpop", "l", "0"], Frame::NullArray),
                (
                    &["lpop", "l", "-1"],
                    err("ERR value is out of range, must be positive"),
                ),
                (
                    &["lpop", "l", "x"],
                    err("ERR value is out of range, must be positive"),
                ),
                (
                    &["lpop", "l", "1", "2"],
                    err("ERR wrong number of arguments for 'lpop' command"),
                ),
                (&["set", "s", "x"], Frame::ok()),
                (&["lpush", "s", "a"], err(WRONGTYPE)),
                (&["rpushx", "s", "a"], err(WRONGTYPE)),
                (&["lpop", "s", "0"], err(WRONGTYPE)),
                (&["llen", "s"], err(WRONGTYPE)),
                (&["llen", "none"], i(0)),
            ],
        );
    }

    #[test]
    fn reads_and_positional_edits_reply_like_redis() {
        let e = MemoryEngine::new(16);
        check(
            &e,
            &[
                (&["rpush", "l", "a", "b", "c", "b"], i(4)),
                (&["set", "s", "x"], Frame::ok()),
                (&["llen", "l"], i(4)),
                (&["lrange", "l", "1", "2"], arr(&["b", "c"])),
                (
                    &["lrange", "l", "-100", "9223372036854775807"],
                    arr(&["a", "b", "c", "b"]),
                ),
                (&["lrange", "l", "3", "1"], arr(&[])),
                (&["lrange", "none", "0", "-1"], arr(&[])),
                (&["lrange", "s", "x", "1"], err(NOT_INT)),
                (&["lrange", "s", "0", "1"], err(WRONGTYPE)),
                (&["lindex", "l", "-1"], b("b")),
                (&["lindex", "l", "4"], Frame::Null),
                (&["lindex", "l", "-9223372036854775808"], Frame::Null),
                (&["lindex", "none", "x"], Frame::Null),
                (&["lindex", "l", "x"], err(NOT_INT)),
                (&["lindex", "s", "x"], err(WRONGTYPE)),
                (&["lset", "l", "-1", "d"], Frame::ok()),
                (&["lset", "l", "4", "d"], err("ERR index out of range")),
                (&["lset", "none", "x", "d"], err("ERR no such key")),
                (&["lset", "l", "x", "d"], err(NOT_INT)),
                (&["lset", "s", "0", "d"], err(WRONGTYPE)),
                (&["linsert", "l", "BEFORE", "b", "x"], i(5)),
                (&["linsert", "l", "after", "d", "e"], i(6)),
                (&["linsert", "l", "after", "zz", "e"], i(-1)),
                (&["linsert", "none", "before", "a", "e"], i(0)),
                (
                    &["linsert", "l", "middle", "a", "e"],
                    err("ERR syntax error"),
                ),
                (&["linsert", "s", "before", "a", "e"], err(WRONGTYPE)),
                (
                    &["lrange", "l", "0", "-1"],
                    arr(&["a", "x", "b", "c", "d", "e"]),
                ),
                (&["ltrim", "l", "1", "-2"], Frame::ok()),
                (&["lrange", "l", "0", "-1"], arr(&["x", "b", "c", "d"])),
                (&["ltrim", "none", "0", "1"], Frame::ok()),
                (&["ltrim", "l", "x", "1"], err(NOT_INT)),
                (&["ltrim", "s", "0", "1"], err(WRONGTYPE)),
                (&["ltrim", "l", "5", "10"], Frame::ok()),
                (&["exists", "l"], i(0)),
            ],
        );
    }

    #[test]
    fn lrem_counts_from_either_end() {
        let e = MemoryEngine::new(16);
        check(
            &e,
            &[
                (&["rpush", "l", "a", "b", "a", "c", "a", "a"], i(6)),
                (&["lrem", "l", "-2", "a"], i(2)),
                (&["lrange", "l", "0", "-1"], arr(&["a", "b", "a", "c"])),
                (&["lrem", "l", "1", "a"], i(1)),
                (&["lrange", "l", "0", "-1"], arr(&["b", "a", "c"])),
                (&["lrem", "l", "0", "zz"], i(0)),
                (&["lrem", "l", "x", "a"], err(NOT_INT)),
                (&["lrem", "none", "0", "a"], i(0)),
                (&["rpush", "m", "a", "a"], i(2)),
                (&["lrem", "m", "-9223372036854775808", "a"], i(2)),
                (&["exists", "m"], i(0)),
                (&["set", "s", "x"], Frame::ok()),
                (&["lrem", "s", "0", "a"], err(WRONGTYPE)),
            ],
        );
    }

    #[test]
    fn lpos_options_and_errors_match_redis() {
        let e = MemoryEngine::new(16);
        let rank_zero = "ERR RANK can't be zero: use 1 to start from the first match, 2 from the \
                         second ... or use negative to start from the end of the list";
        check(
            &e,
            &[
                (&["rpush", "l", "a", "b", "a", "c", "a"], i(5)),
                (&["lpos", "l", "a"], i(0)),
                (&["lpos", "l", "a", "RANK", "2"], i(2)),
                (&["lpos", "l", "a", "RANK", "-1"], i(4)),
                (&["lpos", "l", "a", "RANK", "4"], Frame::Null),
                (&["lpos", "l", "a", "RANK", "1", "RANK", "2"], i(2)),
                (&["lpos", "l", "a", "COUNT", "0"], ints(&[0, 2, 4])),
                (
                    &["lpos", "l", "a", "COUNT", "0", "RANK", "-1"],
                    ints(&[4, 2, 0]),
                ),
                (
                    &["lpos", "l", "a", "RANK", "2", "COUNT", "1", "MAXLEN", "3"],
                    ints(&[2]),
                ),
                (
                    &["lpos", "l", "a", "RANK", "-1", "MAXLEN", "2", "COUNT", "0"],
                    ints(&[4]),
                ),
                (
                    &[
                        "lpos",
                        "l",
                        "a",
                        "MAXLEN",
                        "9223372036854775807",
                        "COUNT",
                        "9223372036854775807",
                    ],
                    ints(&[0, 2, 4]),
                ),
                (&["lpos", "l", "a", "RANK", "-9223372036854775808"], i(4)),
                (
                    &[
                        "lpos",
                        "l",
                        "a",
                        "RANK",
                        "-9223372036854775808",
                        "COUNT",
                        "2",
                    ],
                    ints(&[4, 2, 0]),
                ),
                (&["lpos", "l", "zz", "COUNT", "2"], ints(&[])),
                (&["lpos", "l", "zz"], Frame::Null),
                (&["lpos", "none", "a"], Frame::Null),
                (&["lpos", "none", "a", "COUNT", "0"], ints(&[])),
                (&["lpos", "l", "a", "RANK", "0"], err(rank_zero)),
                (&["lpos", "l", "a", "RANK", "x"], err(NOT_INT)),
                (
                    &["lpos", "l", "a", "COUNT", "-1"],
                    err("ERR COUNT can't be negative"),
                ),
                (
                    &["lpos", "l", "a", "COUNT", "x"],
                    err("ERR COUNT can't be negative"),
                ),
                (
                    &["lpos", "l", "a", "MAXLEN", "-1"],
                    err("ERR MAXLEN can't be negative"),
                ),
                (&["lpos", "l", "a", "RANK"], err("ERR syntax error")),
                (&["lpos", "l", "a", "FOO", "1"], err("ERR syntax error")),
                (&["set", "s", "x"], Frame::ok()),
                (&["lpos", "s", "a"], err(WRONGTYPE)),
                (&["lpos", "s", "a", "RANK", "0"], err(rank_zero)),
            ],
        );
    }

    #[test]
    fn moves_rotate_and_check_types_like_redis() {
        let e = MemoryEngine::new(16);
        check(
            &e,
            &[
                (&["rpush", "l", "a", "b", "c"], i(3)),
                (&["set", "s", "x"], Frame::ok()),
                (&["rpoplpush", "l", "l"], b("c")),
                (&["lrange", "l", "0", "-1"], arr(&["c", "a", "b"])),
                (&["lmove", "l", "l", "LEFT", "RIGHT"], b("c")),
                (&["lmove", "l", "d", "left", "left"], b("a")),
                (&["lmove", "l", "d", "LEFT", "RIGHT"], b("b")),
                (&["lmove", "l", "d", "RIGHT", "RIGHT"], b("c")),
                (&["exists", "l"], i(0)),
                (&["lrange", "d", "0", "-1"], arr(&["a", "b", "c"])),
                (&["lmove", "none", "d", "LEFT", "LEFT"], Frame::Null),
                (&["rpoplpush", "none", "s"], Frame::Null),
                (&["lmove", "d", "s", "LEFT", "LEFT"], err(WRONGTYPE)),
                (&["lrange", "d", "0", "-1"], arr(&["a", "b", "c"])),
                (&["lmove", "s", "d", "LEFT", "LEFT"], err(WRONGTYPE)),
                (&["lmove", "d", "x", "UP", "LEFT"], err("ERR syntax error")),
                (&["lmove", "d", "x", "LEFT", "UP"], err("ERR syntax error")),
                (&["rpush", "one", "x"], i(1)),
                (&["lmove", "one", "one", "LEFT", "LEFT"], b("x")),
                (&["lrange", "one", "0", "-1"], arr(&["x"])),
            ],
        );
    }

    #[test]
    fn lmpop_parses_numkeys_direction_and_count_like_redis() {
        let e = MemoryEngine::new(16);
        let numkeys = "ERR numkeys should be greater than 0";
        let count = "ERR count should be greater than 0";
        check(
            &e,
            &[
                (&["rpush", "l", "a", "b", "c"], i(3)),
                (&["set", "s", "x"], Frame::ok()),
                (
                    &["lmpop", "2", "none", "l", "LEFT"],
                    Frame::Array(vec![b("l"), arr(&["a"])]),
                ),
                (
                    &["lmpop", "2", "l", "s", "RIGHT", "COUNT", "5"],
                    Frame::Array(vec![b("l"), arr(&["c", "b"])]),
                ),
                (&["exists", "l"], i(0)),
                (&["lmpop", "1", "l", "LEFT"], Frame::NullArray),
                (&["lmpop", "2", "s", "l", "LEFT"], err(WRONGTYPE)),
                (&["lmpop", "0", "l", "LEFT"], err(numkeys)),
                (&["lmpop", "x", "l", "LEFT"], err(numkeys)),
                (&["lmpop", "-1", "l", "LEFT"], err(numkeys)),
                (&["lmpop", "2", "l", "LEFT"], err("ERR syntax error")),
                (
                    &["lmpop", "9223372036854775807", "l", "LEFT"],
                    err("ERR syntax error"),
                ),
                (&["lmpop", "1", "l", "MID"], err("ERR syntax error")),
                (
                    &["lmpop", "1", "l", "LEFT", "COUNT"],
                    err("ERR syntax error"),
                ),
                (&["lmpop", "1", "l", "LEFT", "COUNT", "0"], err(count)),
                (&["lmpop", "1", "l", "LEFT", "COUNT", "x"], err(count)),
                (
                    &["lmpop", "1", "l", "LEFT", "COUNT", "1", "COUNT", "2"],
                    err("ERR syntax error"),
                ),
                (&["lmpop", "1", "l", "LEFT", "FOO"], err("ERR syntax error")),
            ],
        );
    }

    #[test]
    fn blocking_commands_validate_then_serve_like_redis() {
        let e = MemoryEngine::new(16);
        let negative = "ERR timeout is negative";
        let not_float = "ERR timeout is not a float or out of range";
        check(
            &e,
            &[
                (&["rpush", "l", "a", "b", "c", "d"], i(4)),
                (&["set", "s", "x"], Frame::ok()),
                (&["blpop", "none", "l", "0"], arr(&["l", "a"])),
                (&["brpop", "l", "0.5"], arr(&["l", "d"])),
                (&["blpop", "l", "-0.0005"], arr(&["l", "b"])),
                (&["blpop", "l", "x"], err(not_float)),
                (&["blpop", "l", "nan"], err(not_float)),
                (&["blpop", "l", " 1"], err(not_float)),
                (&["blpop", "l", "-1"], err(negative)),
                (&["blpop", "l", "1e16"], err(negative)),
                (&["blpop", "l", "inf"], err(negative)),
                (&["blpop", "s", "x"], err(not_float)),
                (&["blpop", "s", "0"], err(WRONGTYPE)),
                (&["blpop", "none", "s", "0"], err(WRONGTYPE)),
                (&["blpop", "l", "s", "0"], arr(&["l", "c"])),
                (&["exists", "l"], i(0)),
                (&["rpush", "l", "a", "b"], i(2)),
                (&["blmove", "l", "d", "RIGHT", "LEFT", "0"], b("b")),
                (&["brpoplpush", "l", "d", "0"], b("a")),
                (&["lrange", "d", "0", "-1"], arr(&["a", "b"])),
                (
                    &["blmove", "d", "x", "UP", "LEFT", "x"],
                    err("ERR syntax error"),
                ),
                (&["blmove", "d", "x", "LEFT", "LEFT", "x"], err(not_float)),
                (&["brpoplpush", "s", "d", "x"], err(not_float)),
                (&["brpoplpush", "s", "d", "0"], err(WRONGTYPE)),
                (&["brpoplpush", "d", "s", "0"], err(WRONGTYPE)),
                (
                    &["blmpop", "0", "2", "none", "d", "LEFT", "COUNT", "3"],
                    Frame::Array(vec![b("d"), arr(&["a", "b"])]),
                ),
                (&["blmpop", "x", "1", "d", "LEFT"], err(not_float)),
                (&["blmpop", "x", "1", "d", "MID"], err("ERR syntax error")),
                (
                    &["blmpop", "x", "0", "d", "LEFT"],
                    err("ERR numkeys should be greater than 0"),
                ),
                (
                    &["blmpop", "x", "1", "d", "LEFT", "COUNT", "0"],
                    err("ERR count should be greater than 0"),
                ),
                (&["blmpop", "-1", "1", "d", "LEFT"], err(negative)),
                (&["blmpop", "0", "1", "s", "LEFT"], err(WRONGTYPE)),
            ],
        );
    }

    #[test]
    fn blocking_commands_block_on_empty_keys_and_serve_when_data_exists() {
        let e = MemoryEngine::new(16);
        let blocking: &[&[&str]] = &[
            &["blpop", "a", "b", "0"],
            &["brpop", "a", "1.5"],
            &["brpoplpush", "a", "b", "0"],
            &["blmove", "a", "b", "LEFT", "RIGHT", "0"],
            &["blmpop", "0", "2", "a", "b", "RIGHT", "COUNT", "2"],
        ];
        for cmd in blocking {
            let (r, dirty) = raw(&e, cmd);
            assert_eq!(r, Err(CmdError::Block), "{cmd:?}");
            assert_eq!(dirty, 0, "{cmd:?}");
        }
        let served = [
            arr(&["b", "1"]),
            arr(&["a", "3"]),
            b("3"),
            b("1"),
            Frame::Array(vec![b("b"), arr(&["3", "2"])]),
        ];
        for (cmd, want) in blocking.iter().zip(served) {
            assert_eq!(
                run_one(&e, &["rpush", cmd_src(cmd), "1", "2", "3"]),
                i(3),
                "{cmd:?}"
            );
            let (r, dirty) = raw(&e, cmd);
            assert_eq!(r, Ok(want), "{cmd:?}");
            assert!(dirty > 0, "{cmd:?}");
            run_one(&e, &["del", "a", "b"]);
        }
    }

    /// The key each blocking command in the test above will find data in.
    fn cmd_src<'a>(cmd: &[&'a str]) -> &'a str {
        match cmd[0] {
            "blpop" => "b",
            "blmpop" => "b",
            _ => "a",
        }
    }

    #[test]
    fn writes_count_dirty_only_when_they_change_something() {
        let e = MemoryEngine::new(16);
        let table: &[(&[&str], u64)] = &[
            (&["rpush", "l", "a", "b", "c"], 3),
            (&["lpushx", "none", "a"], 0),
            (&["ltrim", "l", "0", "-1"], 0),
            (&["ltrim", "l", "1", "-1"], 1),
            (&["lrem", "l", "0", "zz"], 0),
            (&["linsert", "l", "before", "zz", "x"], 0),
            (&["lset", "l", "0", "x"], 1),
            (&["lpop", "l", "0"], 0),
            (&["rpop", "l", "5"], 2),
            (&["lmove", "l", "d", "LEFT", "LEFT"], 0),
        ];
        for (cmd, want) in table {
            let (r, dirty) = raw(&e, cmd);
            assert!(r.is_ok(), "{cmd:?}: {r:?}");
            assert_eq!(dirty, *want, "{cmd:?}");
        }
    }

    #[test]
    fn numkeys_key_finders_never_overrun_the_arguments() {
        let args = |v: &[&str]| -> Vec<Bytes> {
            v.iter()
                .map(|s| Bytes::copy_from_slice(s.as_bytes()))
                .collect()
        };
        assert_eq!(
            lmpop_keys(&args(&["lmpop", "2", "a", "b", "LEFT"])),
            vec![2, 3]
        );
        assert_eq!(
            lmpop_keys(&args(&["lmpop", "9223372036854775807", "a"])),
            vec![2]
        );
        assert_eq!(
            lmpop_keys(&args(&["lmpop", "-1", "a", "LEFT"])),
            Vec::<usize>::new()
        );
        assert_eq!(lmpop_keys(&args(&["lmpop", "x", "a"])), Vec::<usize>::new());
        assert_eq!(lmpop_keys(&args(&["lmpop"])), Vec::<usize>::new());
        assert_eq!(
            blmpop_keys(&args(&["blmpop", "0", "1", "a", "LEFT"])),
            vec![3]
        );
        assert_eq!(blmpop_keys(&args(&["blmpop", "0"])), Vec::<usize>::new());
    }

    #[test]
    fn arbitrary_arguments_never_panic_and_never_leave_empty_lists() {
        let e = MemoryEngine::new(16);
        // Comma-separated so that the empty argument is one of them (the last).
        let tokens: Vec<&str> = "k,l,s,a,b,c,d,e,f,g,h,0,1,2,-1,-2,LEFT,RIGHT,COUNT,RANK,MAXLEN,\
                                 BEFORE,AFTER,x,9223372036854775807,-9223372036854775808,0.01,"
            .split(',')
            .collect();
        // A fixed-seed LCG keeps the run reproducible without a dev-dependency.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as usize % n
        };
        for round in 0..10_000 {
            if round % 50 == 0 {
                run_one(&e, &["flushall"]);
                run_one(&e, &["rpush", "l", "0", "1", "x", "1"]);
                run_one(&e, &["rpush", "a", "a", "b", "x"]);
                run_one(&e, &["set", "s", "x"]);
            }
            let spec = &COMMANDS[next(COMMANDS.len())];
            let min = spec.arity.unsigned_abs() as usize;
            let argc = if spec.arity < 0 { min + next(5) } else { min };
            let mut cmd = vec![spec.name];
            cmd.extend((1..argc).map(|_| tokens[next(tokens.len())]));
            // Any result is fine; the handler must only not panic.
            let _ = raw(&e, &cmd);
            for key in ["k", "l", "a", "b", "c", "d", "e", "f", "g", "h"] {
                let exists = run_one(&e, &["exists", key]) == i(1);
                let empty = run_one(&e, &["llen", key]) == i(0);
                assert!(!(exists && empty), "{cmd:?} left {key} empty");
            }
        }
    }

    #[test]
    fn timeouts_round_up_to_milliseconds_like_redis() {
        assert_eq!(block_timeout(b"0"), Ok(None));
        assert_eq!(block_timeout(b"-0.0005"), Ok(None));
        assert_eq!(block_timeout(b"0.0001"), Ok(Some(Duration::from_millis(1))));
        assert_eq!(block_timeout(b"1.5"), Ok(Some(Duration::from_millis(1500))));
        assert_eq!(
            block_timeout(b"-0.0011"),
            Err(CmdError::other("ERR timeout is negative"))
        );
        assert_eq!(
            block_timeout(b"1e16"),
            Err(CmdError::other("ERR timeout is negative"))
        );
        assert_eq!(block_timeout(b"abc"), Err(CmdError::Timeout));
    }
}
